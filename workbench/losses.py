"""Distillation losses as pure tensor functions: logit divergences, hidden-state and attention matching.

Nothing here knows about configs or models. Every function takes tensors, does its math in float32 (float64 when
given float64), excludes masked positions and returns a scalar that is 0, not NaN, when nothing is left.

    kd = divergence(student_logits, teacher_logits, labels, kind="forward_kl", temperature=2.0, chunk_size=1024)

With p = softmax(teacher / T) and q = softmax(student / T), the kinds are (README, "Losses"):
forward_kl KL(p‖q), reverse_kl KL(q‖p), jsd β·KL(p‖m) + (1−β)·KL(q‖m) with m = βp + (1−β)q (exactly KL(p‖q) at
β=0 and KL(q‖p) at β=1), skew_forward_kl KL(p‖αp + (1−α)q), skew_reverse_kl KL(q‖(1−α)p + αq), tvd ½Σ|p−q|,
soft_ce −Σ p log q, and mse: the mean over the vocabulary of (student − teacher)² on raw logits. With t2_scale
every kind but mse is multiplied by T².

`chunk_size` walks the positions in chunks inside a custom autograd Function (`rowwise_mean`): the forward computes
each chunk's value and its gradient, writes the gradient into one buffer the size of the logits, and frees the
chunk, so neither the forward nor the backward ever holds [B, T, V] float32 probabilities at once. Pass the full
logits and mark the last position with ignore_index instead of slicing logits[:, :-1]: a slice would be copied.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F

from workbench.closed_form import block_rows, closed_block, closed_kind, closed_rows
from workbench.config import DIVERGENCE_KINDS


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


def _call_rows(row_fn: RowFn, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    out = row_fn(*inputs)
    return out if isinstance(out, tuple) else (out, {})


def _math_inputs(pieces: list[torch.Tensor], dtype: torch.dtype, keep_size: int = -1) -> list[torch.Tensor]:
    """Cast floating pieces to the math dtype. Pieces made under torch.inference_mode (a teacher run there) cannot
    be saved for backward, so they are cloned, except those of `keep_size` elements: the dense teacher logits,
    which the dense path never saves (it saves log_softmax outputs), so a full copy is avoided."""
    pieces = [p.clone() if p.is_inference() and p.numel() != keep_size else p for p in pieces]
    return [p.to(dtype) if p.is_floating_point() else p for p in pieces]


def _chunk_pass(row_fn, tensors, rows, chunk_size, denom, needs, part_names, closed=None):
    """One pass over the rows in chunks: (value, parts [len(part_names)], gradient buffers or None per tensor).

    When most rows are selected (packed data leaves out one position per sequence), the chunks are slices of all
    rows (views, no copy) and the unselected rows' values are replaced by 0 with `torch.where`, which zeroes their
    gradient too; gathering the selected rows instead would copy both logits tensors once per step. Sparse
    selections are gathered. With `closed` (a closed-form value-and-gradient of the student only, see
    `workbench.closed_form`) the rows go in cache-sized blocks and autograd is not used.
    """
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
        if closed is not None:
            chunk_total, chunk_parts, chunk_grad = closed_block(
                closed, pieces, None if keep is None else keep[index], denom, dtype, part_names, needs[0])
            total += chunk_total
            parts += chunk_parts
            if chunk_grad is not None:
                grads[0][index] = chunk_grad.to(grads[0].dtype)
            continue
        with torch.enable_grad():
            inputs = _math_inputs(pieces, dtype)
            for tensor, need in zip(inputs, needs, strict=True):
                tensor.requires_grad_(need)
            per_row, part_rows = _call_rows(row_fn, inputs)
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
    return total, parts, grads


class _ChunkedRows(torch.autograd.Function):
    """Chunked value whose gradient is computed chunk by chunk in the forward and kept in a logits-sized buffer.

    The first backward scales that buffer in place and hands it over; a second backward (retain_graph, gradcheck)
    recomputes it chunk by chunk from the saved inputs.
    """

    @staticmethod
    def forward(ctx, row_fn, closed, rows, chunk_size, denom, needs, part_names, *tensors):
        total, parts, grads = _chunk_pass(row_fn, tensors, rows, chunk_size, denom, needs, part_names, closed)
        ctx.setup = (row_fn, rows, chunk_size, denom, needs, part_names, closed)
        ctx.inputs = tensors  # not save_for_backward: a teacher made under inference_mode may not be saved
        ctx.grads = grads
        ctx.mark_non_differentiable(parts)
        return total, parts

    @staticmethod
    def backward(ctx, grad_total, _grad_parts):
        grads, ctx.grads = ctx.grads, None
        if grads is None:
            row_fn, rows, chunk_size, denom, needs, part_names, closed = ctx.setup
            _, _, grads = _chunk_pass(row_fn, ctx.inputs, rows, chunk_size, denom, needs, part_names, closed)
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
        per_row, part_rows = _call_rows(row_fn, inputs)
        parts = {name: part_rows[name].detach().sum() / denom for name in part_names}
        return per_row.sum() / denom, parts
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
    needs = tuple(torch.is_grad_enabled() and t.requires_grad for t in tensors)
    total, parts = _ChunkedRows.apply(row_fn, closed, rows, chunk_size, denom, needs, part_names, *tensors)
    return total, {name: parts[i] for i, name in enumerate(part_names)}


def check_divergence_args(kind: str, beta: float, alpha: float, temperature: float) -> None:
    if kind not in DIVERGENCE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(DIVERGENCE_KINDS)}, got {kind!r}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """KL(a‖b) per row from log-probabilities [n, K] -> [n]; terms with a = 0 contribute 0 (no 0·inf)."""
    a = log_a.exp()
    return torch.where(a > 0, a * (log_a - log_b), 0.0).sum(-1)


def _log_mix(log_a: torch.Tensor, log_b: torch.Tensor, weight_a: float) -> torch.Tensor:
    """log(w·a + (1−w)·b) computed as a logsumexp, for 0 < w < 1."""
    return torch.logaddexp(log_a + math.log(weight_a), log_b + math.log1p(-weight_a))


def divergence_from_log_probs(
    log_p: torch.Tensor, log_q: torch.Tensor, kind: str, beta: float = 0.5, alpha: float = 0.1
) -> torch.Tensor:
    """Per-row divergence between teacher log-probs `log_p` and student log-probs `log_q`, both [n, K] -> [n].

    Shared by the dense path (K = vocabulary) and the top-k path (K = k + 1 buckets). Has no temperature and no T²:
    the callers apply both. `mse` is not a divergence of probabilities and is handled by the callers.
    """
    same_as = closed_kind(kind, beta, alpha)  # forward / reverse KL, and the jsd / skew end points equal to them
    if same_as in ("forward_kl", "reverse_kl"):
        return _kl(log_p, log_q) if same_as == "forward_kl" else _kl(log_q, log_p)
    if kind == "jsd":
        log_m = _log_mix(log_p, log_q, beta)
        return beta * _kl(log_p, log_m) + (1.0 - beta) * _kl(log_q, log_m)
    if kind == "skew_forward_kl":
        if alpha == 1.0:
            return log_p.new_zeros(log_p.shape[:-1]) + 0.0 * log_q.sum(-1)
        return _kl(log_p, _log_mix(log_p, log_q, alpha))
    if kind == "skew_reverse_kl":
        if alpha == 1.0:
            return log_q.new_zeros(log_q.shape[:-1]) + 0.0 * log_q.sum(-1)
        return _kl(log_q, _log_mix(log_p, log_q, 1.0 - alpha))
    if kind == "tvd":
        return 0.5 * (log_p.exp() - log_q.exp()).abs().sum(-1)
    if kind == "soft_ce":
        p = log_p.exp()
        return -torch.where(p > 0, p * log_q, 0.0).sum(-1)
    raise ValueError(f"kind {kind!r} is not a divergence of probabilities")


def dense_rows(
    student: torch.Tensor, teacher: torch.Tensor, *, kind: str, temperature: float, beta: float, alpha: float
) -> torch.Tensor:
    """Per-position loss for rows of logits [n, V] (already in the math dtype) -> [n]."""
    if kind == "mse":
        return (student - teacher).square().mean(-1)
    log_q = F.log_softmax(student / temperature, dim=-1)
    log_p = F.log_softmax(teacher / temperature, dim=-1)
    return divergence_from_log_probs(log_p, log_q, kind, beta, alpha)


def t2_factor(kind: str, temperature: float, t2_scale: bool) -> float:
    return temperature**2 if t2_scale and kind != "mse" else 1.0


def divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    kind: str,
    temperature: float = 1.0,
    beta: float = 0.5,
    alpha: float = 0.1,
    t2_scale: bool = True,
    ignore_index: int = -100,
    chunk_size: int | None = None,
    reduction: str = "mean",
    closed_form: bool = True,
) -> torch.Tensor:
    """Logit divergence between student and teacher, averaged over the positions whose label != ignore_index.

    student_logits, teacher_logits: [B, T, V] (any leading shape works; the last dim is the vocabulary).
    labels: [B, T] aligned with the logits' positions (no shifting here) or None for every position.
    reduction: "mean" over valid positions, or "sum" (for normalising by a global token count across
    gradient-accumulation steps and processes). closed_form: when chunked, use the closed-form gradient of
    forward_kl / reverse_kl / soft_ce (`workbench.closed_form`) instead of autograd; same value and gradient.
    Returns a float32 (float64 for float64 inputs) scalar.
    """
    check_divergence_args(kind, beta, alpha, temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {student_logits.shape} vs {teacher_logits.shape}")
    row_fn = partial(dense_rows, kind=kind, temperature=temperature, beta=beta, alpha=alpha)
    vocab = student_logits.shape[-1]
    rows = valid_rows(student_logits.shape[:-1], labels, ignore_index, student_logits.device)
    total, _ = rowwise_mean(
        row_fn,
        student_logits.reshape(-1, vocab),
        (teacher_logits.reshape(-1, vocab),),
        rows,
        chunk_size=chunk_size,
        reduction=reduction,
        closed=closed_rows(kind, beta, alpha, temperature, ce_weight=0.0, kd_weight=1.0, with_targets=False)
        if closed_form else None,
    )
    return total * t2_factor(kind, temperature, t2_scale)


class LogitLosses(NamedTuple):
    """`total` carries the gradient (ce_weight·ce + kd_weight·kd); `ce` and `kd` are detached, for logging."""

    total: torch.Tensor
    ce: torch.Tensor
    kd: torch.Tensor


def fused_ce_rows(
    student: torch.Tensor,
    targets: torch.Tensor,
    *teacher: torch.Tensor,
    ce_weight: float,
    kd_weight: float,
    kd_rows: RowFn,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-row ce_weight·CE(targets) + kd_weight·kd_rows(student, *teacher), with both terms as parts."""
    with torch.set_grad_enabled(torch.is_grad_enabled() and ce_weight != 0.0):  # CE logged only: no backward
        log_q1 = F.log_softmax(student, dim=-1)
        ce = -log_q1.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    if kd_weight == 0.0:
        return ce_weight * ce, {"ce": ce.detach(), "kd": torch.zeros_like(ce).detach()}
    kd = kd_rows(student, *teacher)
    return ce_weight * ce + kd_weight * kd, {"ce": ce.detach(), "kd": kd.detach()}


def ce_and_divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    ce_weight: float,
    kd_weight: float,
    kind: str = "forward_kl",
    temperature: float = 1.0,
    beta: float = 0.5,
    alpha: float = 0.1,
    t2_scale: bool = True,
    ignore_index: int = -100,
    chunk_size: int | None = None,
    reduction: str = "mean",
    closed_form: bool = True,
) -> LogitLosses:
    """Hard-label cross-entropy and the logit divergence in one pass over the same (chunked) student logits.

    targets: [B, T] next-token ids aligned with the logits' positions (already shifted by the caller); positions
    equal to ignore_index are excluded from both terms. teacher_logits may be None when kd_weight is 0.
    Same kd value as `divergence(...)` over the same positions; ce is the usual mean token cross-entropy.
    closed_form as in `divergence`.
    """
    check_divergence_args(kind, beta, alpha, temperature)
    if teacher_logits is None and kd_weight != 0.0:
        raise ValueError("teacher_logits is required when kd_weight is not 0")
    vocab = student_logits.shape[-1]
    scale = t2_factor(kind, temperature, t2_scale)
    kd_rows = partial(dense_rows, kind=kind, temperature=temperature, beta=beta, alpha=alpha)
    row_fn = partial(
        fused_ce_rows,
        ce_weight=ce_weight,
        kd_weight=kd_weight * scale,
        kd_rows=kd_rows,
    )
    rows = valid_rows(student_logits.shape[:-1], targets, ignore_index, student_logits.device)
    safe_targets = targets.reshape(-1).clamp(min=0)
    extras = (safe_targets,) if teacher_logits is None or kd_weight == 0.0 else (
        safe_targets,
        teacher_logits.reshape(-1, vocab),
    )
    total, parts = rowwise_mean(
        row_fn,
        student_logits.reshape(-1, vocab),
        extras,
        rows,
        chunk_size=chunk_size,
        reduction=reduction,
        part_names=("ce", "kd"),
        closed=closed_rows(kind, beta, alpha, temperature, ce_weight=ce_weight, kd_weight=kd_weight * scale)
        if closed_form else None,
    )
    return LogitLosses(total, parts["ce"], parts["kd"] * scale)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-position values [B, T] over mask [B, T] (True = keep); 0 with a gradient when none is kept."""
    if mask is None:
        return values.mean() if values.numel() else values.sum()
    keep = mask.to(device=values.device, dtype=torch.bool)
    if keep.shape != values.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match positions {tuple(values.shape)}")
    return torch.where(keep, values, 0.0).sum() / keep.sum().clamp(min=1)


def hidden_state_loss(
    student_h: torch.Tensor, teacher_h: torch.Tensor, kind: str = "mse", mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Distance between hidden states [B, T, D] (the student's already projected to the teacher's width).

    mse: mean over valid positions of the mean over D of (s − t)². cosine: mean over valid positions of
    1 − cos(s, t). mask [B, T] marks valid positions (True / 1).
    """
    if student_h.shape != teacher_h.shape:
        raise ValueError(f"hidden states differ in shape: {tuple(student_h.shape)} vs {tuple(teacher_h.shape)}")
    dtype = math_dtype(student_h.dtype)
    s, t = student_h.to(dtype), teacher_h.to(dtype)
    if kind == "mse":
        per_position = (s - t).square().mean(-1)
    elif kind == "cosine":
        per_position = 1.0 - F.cosine_similarity(s, t, dim=-1, eps=1e-8)
    else:
        raise ValueError(f"hidden-state kind must be mse or cosine, got {kind!r}")
    return _masked_mean(per_position, mask)


def attention_loss(
    student_attn: torch.Tensor,
    teacher_attn: torch.Tensor,
    kind: str = "kl",
    mask: torch.Tensor | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Attention transfer between attention maps [B, Hs, T, T] and [B, Ht, T, T] (rows = queries, cols = keys).

    When Hs != Ht both are averaged over heads first and compared as one map. kl: KL(teacher row ‖ student row)
    summed over keys (TinyBERT); entries where the teacher is 0 (causal or padding zeros) contribute 0 and the
    student is floored at eps so a student zero stays finite. mse: mean over keys of the squared difference.
    Either is averaged over heads and valid query rows; mask [B, T] marks valid query positions.
    """
    if student_attn.dim() != 4 or teacher_attn.dim() != 4:
        raise ValueError("attention maps must be [batch, heads, queries, keys]")
    if student_attn.shape[0] != teacher_attn.shape[0] or student_attn.shape[2:] != teacher_attn.shape[2:]:
        raise ValueError(f"attention maps differ in shape: {tuple(student_attn.shape)} vs {tuple(teacher_attn.shape)}")
    dtype = math_dtype(student_attn.dtype)
    s, t = student_attn.to(dtype), teacher_attn.to(dtype)
    if s.shape[1] != t.shape[1]:
        s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    if kind == "kl":
        log_ratio = torch.log(t.clamp(min=eps)) - torch.log(s.clamp(min=eps))
        per_row = torch.where(t > 0, t * log_ratio, 0.0).sum(-1)
    elif kind == "mse":
        per_row = (s - t).square().mean(-1)
    else:
        raise ValueError(f"attention kind must be kl or mse, got {kind!r}")
    per_position = per_row.mean(1)  # [B, T]: average over heads
    return _masked_mean(per_position, mask)
