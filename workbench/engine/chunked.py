"""Chunked autograd over rows: a loss summed over the positions of [N, V] logits without ever holding all of the
positions' float32 probabilities (or their gradient graph) at once.

`rowwise_mean(row_fn, student, extras, rows, chunk_size=...)` walks the rows in chunks inside a custom autograd
Function: the forward computes each chunk's value and its gradient, writes the gradient into one buffer the size
of the logits, and frees the chunk. With a closed form of the gradient (`workbench.engine.closed_form`) the chunks skip
autograd altogether. The losses in `workbench.engine.losses` and `workbench.engine.topk_losses` are built on it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from workbench.engine.closed_form import block_rows


def math_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half and float32 inputs, float64 for float64 inputs."""
    return torch.promote_types(dtype, torch.float32)


RowFn = Callable[..., "torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]"]


def valid_rows(
    position_shape: torch.Size, labels: torch.Tensor | None, ignore_index: int, device: torch.device
) -> torch.Tensor | None:
    """Flat indices [n] of the positions whose label != ignore_index; None means every position."""
    if labels is None:
        return None
    if labels.shape != position_shape:
        raise ValueError(f"labels shape {tuple(labels.shape)} does not match logits positions {tuple(position_shape)}")
    return (labels.reshape(-1) != ignore_index).nonzero().squeeze(1).to(device)


def _math_inputs(pieces: list[torch.Tensor], dtype: torch.dtype, keep_size: int = -1) -> list[torch.Tensor]:
    """Cast floating pieces to the math dtype. Pieces made under torch.inference_mode (a teacher run there) cannot
    be saved for backward, so they are cloned, except those of `keep_size` elements: the dense teacher logits,
    which the dense path never saves (it saves log_softmax outputs), so a full copy is avoided."""
    pieces = [p.clone() if p.is_inference() and p.numel() != keep_size else p for p in pieces]
    return [p.to(dtype) if p.is_floating_point() else p for p in pieces]


class _ChunkedRows(torch.autograd.Function):
    """Chunked value whose gradient is computed chunk by chunk in the forward and kept in a logits-sized buffer.

    The first backward scales that buffer in place and hands it over; a second backward (retain_graph, gradcheck)
    runs the forward again from the saved inputs.
    """

    @staticmethod
    def forward(ctx, row_fn, closed, rows, chunk_size, denom, needs, part_names, *tensors):
        """One pass over the rows in chunks: the value, the parts [len(part_names)], and in `ctx.grads` a gradient
        buffer (or None) per tensor.

        When most rows are selected (packed data leaves out one position per sequence), the chunks are slices of all
        rows (views, no copy) and the unselected rows' values are replaced by 0 with `torch.where`, which zeroes
        their gradient too; gathering the selected rows instead would copy both logits tensors once per step. Sparse
        selections are gathered. With `closed` (a closed-form value-and-gradient of the student only, see
        `workbench.engine.closed_form`) the rows go in cache-sized blocks and autograd is not used.
        """
        again = hasattr(ctx, "grads")  # run again by a second backward
        ctx.setup = (row_fn, closed, rows, chunk_size, denom, needs, part_names)
        ctx.inputs = tensors  # not save_for_backward: a teacher made under inference_mode may not be saved
        student = tensors[0]
        keep = None
        if rows is not None and 2 * rows.numel() >= student.shape[0]:
            keep = torch.zeros(student.shape[0], dtype=torch.bool, device=student.device)
            keep[rows] = True
            rows = None
        count = student.shape[0] if rows is None else rows.numel()
        dtype = math_dtype(student.dtype)
        if closed is not None and any(needs[1:]):
            closed = None  # a gradient for the teacher side too: only autograd has it
        if closed is not None:
            chunk_size = block_rows(chunk_size, student.shape[-1], student.device)
        # every row of a buffer is written below when the chunks cover all rows; gathered rows leave gaps at 0
        new_buffer = torch.empty_like if rows is None else torch.zeros_like
        grads = [new_buffer(t) if need else None for t, need in zip(tensors, needs, strict=True)]
        total = student.new_zeros((), dtype=dtype)
        parts = student.new_zeros(len(part_names), dtype=dtype)
        for start in range(0, count, chunk_size):
            index = slice(start, start + chunk_size) if rows is None else rows[start : start + chunk_size]
            pieces = [t[index].detach() for t in tensors]
            if closed is not None:  # value, parts and gradient in closed form: no autograd
                size = pieces[0].shape[0]
                kept = keep[index] if keep is not None else None
                row_scale = (kept.to(dtype) if kept is not None else pieces[0].new_ones(size, dtype=dtype)) / denom
                per_row, part_rows, chunk_grad = closed(*pieces, row_scale=row_scale, need_grad=needs[0])
                counted = row_scale != 0  # where, not a product: a left-out row's value may be inf or NaN
                total += torch.where(counted, per_row * row_scale, 0.0).sum()
                if part_names:
                    parts += torch.stack([torch.where(counted, part_rows[name] * row_scale, 0.0).sum()
                                          for name in part_names])
                if chunk_grad is not None:
                    grads[0][index] = chunk_grad.to(grads[0].dtype)
                continue
            with torch.enable_grad():
                inputs = _math_inputs(pieces, dtype)
                for tensor, need in zip(inputs, needs, strict=True):
                    tensor.requires_grad_(need)
                out = row_fn(*inputs)
                per_row, part_rows = out if isinstance(out, tuple) else (out, {})
                if keep is not None:
                    per_row = torch.where(keep[index], per_row, 0.0)
                    part_rows = {name: torch.where(keep[index], value, 0.0) for name, value in part_rows.items()}
                chunk_total = per_row.sum() / denom
                wanted = [tensor for tensor, need in zip(inputs, needs, strict=True) if need]
                chunk_grads = iter(torch.autograd.grad(chunk_total, wanted) if wanted else ())
            total += chunk_total.detach()
            if part_names:
                parts += torch.stack([part_rows[name].sum() for name in part_names]) / denom
            for buffer in grads:
                if buffer is not None:
                    buffer[index] = next(chunk_grads).to(buffer.dtype)
        ctx.grads = grads
        if not again:
            ctx.mark_non_differentiable(parts)
        return total, parts

    @staticmethod
    def backward(ctx, grad_total, _grad_parts):
        if ctx.grads is None:  # a second backward: the first handed its buffers over
            _ChunkedRows.forward(ctx, *ctx.setup, *ctx.inputs)
        grads, ctx.grads = ctx.grads, None
        scaled = tuple(None if g is None else g.mul_(grad_total.to(g.dtype)) for g in grads)
        return (None,) * 7 + scaled


def rowwise_mean(
    row_fn: RowFn,
    student: torch.Tensor,
    extras: tuple[torch.Tensor, ...],
    rows: torch.Tensor | None,
    *,
    chunk_size: int | None = None,
    reduction: str = "mean",
    part_names: tuple[str, ...] = (),
    closed: Callable | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean (or sum) over the selected rows of `row_fn(student_rows, *extra_rows)`, optionally in chunks.

    student [N, V]; each extra is indexed by row ([N, ...]). row_fn gets the rows in the math dtype and returns the
    per-row loss [n], or (per-row loss, {name: per-row value}) whose detached means come back as parts.
    closed(student_rows, *extra_rows, row_scale=[n], need_grad=bool) -> (per-row loss, parts, gradient of
    Σ row_scale · per-row loss w.r.t. the student rows, or None) is the same loss in closed form: the chunked path
    uses it when only the student needs a gradient.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be mean or sum, got {reduction!r}")
    count = student.shape[0] if rows is None else rows.numel()
    denom = float(max(count, 1)) if reduction == "mean" else 1.0
    tensors = (student, *extras)
    if chunk_size is None:
        pieces = list(tensors) if rows is None else [t[rows] for t in tensors]  # faster than index_select on CPU
        inputs = _math_inputs(pieces, math_dtype(student.dtype), keep_size=student.numel())
        out = row_fn(*inputs)
        per_row, part_rows = out if isinstance(out, tuple) else (out, {})
        parts = {name: part_rows[name].detach().sum() / denom for name in part_names}
        return per_row.sum() / denom, parts
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
    needs = tuple(torch.is_grad_enabled() and t.requires_grad for t in tensors)
    total, parts = _ChunkedRows.apply(row_fn, closed, rows, chunk_size, denom, needs, part_names, *tensors)
    return total, {name: parts[i] for i, name in enumerate(part_names)}
