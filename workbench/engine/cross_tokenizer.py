"""Distillation across tokenizers: align two tokenizations of one text and compare like with like.

    rows = [align_row(ids, student_lengths, student_table, teacher_tokenizer, teacher_lengths) for ids in rows]
    batch = batch_alignment(rows, pad_id)               # spans, exact matches, positions as flat index tensors
    kd, parts = aligned_divergence(student_logits, teacher_logits, student_ids, batch, shared, kind="forward_kl")
    kd, parts = uld_distance(student_logits, teacher_logits, batch, temperature=1.0)

Alignment is by byte offsets into the common text (character offsets, counted in UTF-8 bytes): a span ends wherever
both tokenizations end a token, so every span covers exactly the same text on both sides and the spans tile the text
in order. A span that is one token on each side (an exact match) compares the two next-token distributions over the
strings both vocabularies hold (the exact id map, plus one bucket for all other strings); any other span compares the
probability of its whole text, built by the chain rule from each side's conditionals (p = Π p(token | prefix)), as
the two-outcome distribution {span, not span}. The first span of a row has no context on either side and is skipped.
`uld_distance` is Universal Logit Distillation: the L1 distance between the two sorted probability vectors (the
shorter padded with zeros) at the first token of each span. Losses are summed over spans; callers normalise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from workbench.engine.chunked import math_dtype
from workbench.engine.losses import DivergenceSpec, divergence_from_log_probs, t2_factor
from workbench.models.vocab import utf8_window

_FILL = -1e30  # log 0 for an empty bucket, finite so that no 0·inf appears


@dataclass
class RowAlignment:
    """Spans of one row: span index of each student and each teacher token, and the text they tile."""

    student_span: np.ndarray  # [Ts] int64, non-decreasing from 0
    teacher_span: np.ndarray  # [Tt] int64, non-decreasing from 0
    teacher_ids: list[int]
    spans: int
    text: str
    student_ends: np.ndarray  # [Ts] byte end of each student token in `text`
    teacher_ends: np.ndarray  # [Tt]


def align_ends(student_ends: np.ndarray, teacher_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Span index of each token given each side's cumulative byte ends (both reaching the same total).

    A span closes at every end the two sides share; a token belongs to the span that closes first at or after its
    end, so a token of zero bytes joins the span holding the bytes around it."""
    common = np.intersect1d(student_ends[student_ends > 0], teacher_ends[teacher_ends > 0])
    student_span = np.searchsorted(common, student_ends, side="left")
    teacher_span = np.searchsorted(common, teacher_ends, side="left")
    return student_span, teacher_span, int(common.size)


def _teacher_ends(tokenizer, text: str, ids: list[int], lengths: np.ndarray, size: int) -> np.ndarray:
    ends = np.cumsum(lengths[ids]) if ids else np.zeros(0, dtype=np.int64)
    if ids and int(ends[-1]) == size:
        return ends
    # the teacher's tokens do not spell the text byte for byte (a normaliser, an added prefix space):
    # fall back to its character offsets, counted in UTF-8 bytes
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    char_bytes = np.concatenate([[0], np.cumsum([len(ch.encode()) for ch in text])])
    ends = np.maximum.accumulate(np.array([char_bytes[end] for _, end in offsets], dtype=np.int64))
    if ends.size:
        ends[-1] = size
    return ends


def align_row(student_ids: list[int], student_lengths: np.ndarray, student_table: list[bytes], tokenizer,
              teacher_lengths: np.ndarray, teacher_ids: list[int] | None = None) -> RowAlignment:
    """Decode a student row to text, tokenize it with the teacher (unless `teacher_ids` is given) and align both.

    Student tokens before or after the whole characters of the row are counted into the first or last span."""
    data = b"".join(student_table[i] for i in student_ids)
    lo, hi = utf8_window(data)
    text = data[lo:hi].decode("utf-8", errors="replace")
    size = len(text.encode())
    if teacher_ids is None:
        teacher_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    student_ends = np.clip(np.cumsum(student_lengths[student_ids]) - lo, 0, size)
    teacher_ends = _teacher_ends(tokenizer, text, teacher_ids, teacher_lengths, size)
    if student_ends.size:
        student_ends[-1] = size
    student_span, teacher_span, spans = align_ends(student_ends, teacher_ends)
    return RowAlignment(student_span, teacher_span, list(teacher_ids), max(spans, 1), text, student_ends,
                        teacher_ends)


def exact_spans(row: RowAlignment) -> np.ndarray:
    """[spans] bool: the span is one token on each side (the same string, so an exact match)."""
    student = np.bincount(row.student_span, minlength=row.spans)[: row.spans]
    teacher = np.bincount(row.teacher_span, minlength=row.spans)[: row.spans]
    return (student == 1) & (teacher == 1)


@dataclass
class BatchAlignment:
    """A batch of row alignments as flat index tensors. Spans are numbered across the batch (row offsets added)."""

    student_span: torch.Tensor  # [B, Ts] global span of each student token
    teacher_span: torch.Tensor  # [B, Tt] global span of each teacher token; -1 on padding
    teacher_ids: torch.Tensor  # [B, Tt] padded with `pad_id`
    scored: torch.Tensor  # [S] global ids of the scored spans (every span but each row's first)
    student_pos: torch.Tensor  # [S] flat position (b·Ts + i) whose logits predict the span's first student token
    teacher_pos: torch.Tensor  # [S] flat position (b·Tt + j) whose logits predict the span's first teacher token
    exact: torch.Tensor  # [S] bool: the span is one token on each side
    num_spans: int
    student_positions: int  # student positions that predict a token (B·(Ts − 1))

    @property
    def exact_share(self) -> float:
        """Share of the student's predicting positions whose next token is matched exactly by one teacher token."""
        return float(self.exact.sum()) / max(self.student_positions, 1)


def batch_alignment(rows: list[RowAlignment], pad_id: int) -> BatchAlignment:
    width = max(1, max(len(row.teacher_ids) for row in rows))
    ts = len(rows[0].student_span)
    student_span, teacher_span = [], []
    teacher_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    scored, student_pos, teacher_pos, exact = [], [], [], []
    offset = 0
    for b, row in enumerate(rows):
        count = row.spans
        s_span, t_span = torch.from_numpy(row.student_span), torch.from_numpy(row.teacher_span)
        student_span.append(s_span + offset)
        teacher_span.append(F.pad(t_span + offset, (0, width - t_span.numel()), value=-1))
        teacher_ids[b, : len(row.teacher_ids)] = torch.tensor(row.teacher_ids, dtype=torch.long)
        s_count = torch.bincount(s_span, minlength=count)[:count]
        t_count = torch.bincount(t_span, minlength=count)[:count]
        s_first = torch.cumsum(s_count, 0) - s_count  # first student token of each span
        t_first = torch.cumsum(t_count, 0) - t_count
        keep = (torch.arange(count) >= 1) & (s_count > 0) & (t_count > 0) & (s_first >= 1) & (t_first >= 1)
        index = keep.nonzero().squeeze(1)
        scored.append(index + offset)
        student_pos.append(b * ts + s_first[index] - 1)
        teacher_pos.append(b * width + t_first[index] - 1)
        exact.append((s_count[index] == 1) & (t_count[index] == 1))
        offset += count
    return BatchAlignment(torch.stack(student_span), torch.stack(teacher_span), teacher_ids, torch.cat(scored),
                          torch.cat(student_pos), torch.cat(teacher_pos), torch.cat(exact), offset,
                          len(rows) * max(ts - 1, 0))


def span_log_probs(logits: torch.Tensor, log_norm: torch.Tensor, ids: torch.Tensor, span: torch.Tensor,
                   num_spans: int) -> torch.Tensor:
    """log p(span) = Σ log p(token | prefix) over each span's tokens, by the chain rule -> [num_spans].

    logits [B, T, V] (already divided by the temperature), log_norm [B, T] their logsumexp over V; ids [B, T] the
    tokens; span [B, T] global span ids (-1: none). Token i is scored by the logits at position i − 1, so each
    row's first token adds nothing."""
    token_lp = logits[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1) - log_norm[:, :-1]  # [B, T-1]
    target = span[:, 1:]
    valid = target >= 0
    out = token_lp.new_zeros(num_spans)
    return out.index_add(0, target[valid], token_lp[valid])


def _log1mexp(log_p: torch.Tensor) -> torch.Tensor:
    """log(1 − p) from log p < 0, accurate on both ends; p is capped just below 1 so the log stays finite."""
    x = log_p.clamp(max=-1e-7)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _bucket_log_probs(log_probs: torch.Tensor, shared: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """[n, V] -> [n, K + 1]: the shared ids in map order, then all other ids as one bucket (log 0 if none)."""
    rest = log_probs[:, others].logsumexp(-1, keepdim=True) if others.numel() else log_probs[:, :1] * 0 + _FILL
    return torch.cat([log_probs[:, shared], rest], dim=-1)


def _others(size: int, ids: torch.Tensor) -> torch.Tensor:
    """The ids in [0, size) that are not in `ids`."""
    mask = torch.ones(size, dtype=torch.bool, device=ids.device)
    mask[ids] = False
    return mask.nonzero().squeeze(1)


def aligned_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, student_ids: torch.Tensor,
                       batch: BatchAlignment, shared: tuple[torch.Tensor, torch.Tensor],
                       spec: DivergenceSpec | None = None, **fields) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum over scored spans of the divergence `spec` (or a `DivergenceSpec` of `fields`: kind, temperature, beta,
    alpha, t2_scale) between teacher and student.

    student_logits [B, Ts, Vs], teacher_logits [B, Tt, Vt], student_ids [B, Ts]; shared = (student ids, teacher
    ids) [K] of the exact id map. Exact spans compare [K + 1]-bucket distributions at the positions predicting them,
    the others the two-outcome span distributions. Returns (sum, {"exact": sum over exact spans, "spans": count}).
    """
    spec = spec or DivergenceSpec(**fields)
    kind, temperature, beta, alpha = spec.kind, spec.temperature, spec.beta, spec.alpha
    if kind == "mse":
        raise ValueError("kind mse compares raw logits over one vocabulary; it has no cross-tokenizer form")
    dtype = math_dtype(student_logits.dtype)
    device = student_logits.device
    student = student_logits.to(dtype) / temperature
    student_norm = student.logsumexp(-1)  # [B, Ts]
    with torch.no_grad():  # log-softmax of the teacher rows only where needed: its vocabulary is the large one
        teacher = teacher_logits.to(dtype) / temperature
        teacher_norm = teacher.logsumexp(-1)  # [B, Tt]
    s_shared, t_shared = (ids.to(device) for ids in shared)
    exact = batch.exact.to(device)
    s_pos, t_pos = batch.student_pos.to(device)[exact], batch.teacher_pos.to(device)[exact]
    q_rows = student.flatten(0, 1)[s_pos] - student_norm.flatten()[s_pos].unsqueeze(-1)
    p_rows = teacher.flatten(0, 1)[t_pos] - teacher_norm.flatten()[t_pos].unsqueeze(-1)
    q_rows = _bucket_log_probs(q_rows, s_shared, _others(student.shape[-1], s_shared))
    p_rows = _bucket_log_probs(p_rows, t_shared, _others(teacher.shape[-1], t_shared))
    exact_sum = divergence_from_log_probs(p_rows, q_rows, kind, beta, alpha).sum()
    span_q = span_log_probs(student, student_norm, student_ids, batch.student_span.to(device), batch.num_spans)
    span_p = span_log_probs(teacher, teacher_norm, batch.teacher_ids.to(device), batch.teacher_span.to(device),
                            batch.num_spans)
    multi = batch.scored.to(device)[~exact]
    lq, lp = span_q[multi], span_p[multi]
    two_q = torch.stack([lq, _log1mexp(lq)], dim=-1)
    two_p = torch.stack([lp, _log1mexp(lp)], dim=-1)
    span_sum = divergence_from_log_probs(two_p, two_q, kind, beta, alpha).sum()
    scale = spec.scale
    total = (exact_sum + span_sum) * scale
    return total, {"exact": exact_sum.detach() * scale, "spans": torch.tensor(float(batch.scored.numel()))}


def uld_distance(student_logits: torch.Tensor, teacher_logits: torch.Tensor, batch: BatchAlignment, *,
                 temperature: float = 1.0, t2_scale: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ over scored spans of ‖sort(p) − sort(q)‖₁ at the positions predicting each span's first token (ULD).

    Both probability vectors are sorted in decreasing order and the shorter one is padded with zeros; only the k =
    min(Vs, Vt) largest of each are sorted, since past rank k the padded side is 0 and the sum is the larger side's
    remaining mass."""
    dtype = math_dtype(student_logits.dtype)
    device = student_logits.device
    k = min(student_logits.shape[-1], teacher_logits.shape[-1])
    q = F.softmax(student_logits.to(dtype).flatten(0, 1)[batch.student_pos.to(device)] / temperature, dim=-1)
    with torch.no_grad():
        p = F.softmax(teacher_logits.to(dtype).flatten(0, 1)[batch.teacher_pos.to(device)] / temperature, dim=-1)
        p_top = p.topk(k, dim=-1).values
    q_top = q.topk(k, dim=-1).values
    rest = (1.0 - p_top.sum(-1)).clamp(min=0.0) + (1.0 - q_top.sum(-1)).clamp(min=0.0)
    total = ((p_top - q_top).abs().sum(-1) + rest).sum() * t2_factor("uld", temperature, t2_scale)
    return total, {"exact": total.new_zeros(()), "spans": torch.tensor(float(batch.scored.numel()))}
