"""Closed-form value and gradient of the common logit losses, for the chunked path of `workbench.engine.losses`.

With student logits z, teacher logits u, temperature T, q = softmax(z / T), p = softmax(u / T), q1 = softmax(z):

    forward_kl  KL(p‖q) = Σ p (log p − log q)     d/dz = (q − p) / T
    soft_ce     −Σ p log q                        d/dz = (q − p) / T
    reverse_kl  KL(q‖p) = Σ q (log q − log p)     d/dz = q ⊙ (log q − log p − KL(q‖p)) / T
    CE          −log q1[y]                        d/dz = q1 − onehot(y)

Written out, a block of rows costs a dozen in-place passes over [rows, V] and three float32 buffers; autograd
through log_softmax, exp and where costs several times more passes and keeps every intermediate. On a CPU the
rows go in blocks small enough for the buffers to stay in cache (`block_rows`), which is where most of the
speed comes from; on a GPU the caller's chunk size is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

# float32 elements per buffer on a CPU: three buffers of 2 MiB each stay in a core's L2 / the shared L3
CPU_BLOCK_ELEMENTS = 2**19
# teacher logits of -inf (tokens a model never emits) become this, so that 0 · log 0 is 0, not NaN
LOG_FLOOR = -1e30


BETA_ENDS = ("jsd", "kl_mix")  # kinds that are forward KL at β = 0 and reverse KL at β = 1


def closed_kind(kind: str, beta: float, alpha: float) -> str | None:
    """The closed-form kind equal to `kind` at these beta/alpha, or None when the loss needs autograd."""
    if kind == "forward_kl" or (kind in BETA_ENDS and beta == 0.0) or (kind == "skew_forward_kl" and alpha == 0.0):
        return "forward_kl"
    if kind == "reverse_kl" or (kind in BETA_ENDS and beta == 1.0) or (kind == "skew_reverse_kl" and alpha == 0.0):
        return "reverse_kl"
    return "soft_ce" if kind == "soft_ce" else None


def block_rows(chunk_size: int, vocab: int, device: torch.device) -> int:
    """Rows per block: the caller's chunk size, capped on a CPU so that a float32 block stays in cache."""
    if device.type != "cpu":
        return chunk_size
    return max(1, min(chunk_size, CPU_BLOCK_ELEMENTS // max(vocab, 1)))


def _log_softmax_(x: torch.Tensor) -> torch.Tensor:
    return x.sub_(torch.logsumexp(x, dim=-1, keepdim=True))


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ_v a[i, v] · b[i, v] per row (vecdot: an order of magnitude faster than bmm for a block on a CPU)."""
    return torch.linalg.vecdot(a, b)


def _student_log_probs(student: torch.Tensor, targets: torch.Tensor | None, dtype: torch.dtype):
    """(a float32-or-better copy of the logits, their logsumexp [n, 1], CE at the targets [n] or None)."""
    logits = student.to(dtype, copy=True)
    lse = torch.logsumexp(logits, dim=-1, keepdim=True)
    ce = None if targets is None else (lse - logits.gather(-1, targets.unsqueeze(-1))).squeeze(-1)
    return logits, lse, ce


def logit_rows(
    student: torch.Tensor,
    *extras: torch.Tensor,
    row_scale: torch.Tensor,
    need_grad: bool,
    kind: str,
    temperature: float,
    ce_weight: float,
    kd_weight: float,
    with_targets: bool = True,
    teacher_rows: Callable | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
    """(ce_weight·ce + kd_weight·kd [n], {"ce", "kd"} [n], grad [n, V] or None) for rows of student logits [n, V].

    `extras` are the targets [n] (when `with_targets`) and then the teacher's rows: dense logits [n, V], or pieces
    that `teacher_rows(student_rows, *pieces)` turns into dense teacher logits or log-probabilities. grad is d/d
    student of Σ_i row_scale[i] · (ce_weight · ce[i] + kd_weight · kd[i]) in the dtype of `row_scale` (the math
    dtype). ce is 0 without targets, kd is 0 without a teacher; the inputs are not modified.
    """
    targets, pieces = (extras[0].long(), extras[1:]) if with_targets else (None, extras)
    dtype, t = row_scale.dtype, float(temperature)
    with_ce = targets is not None
    with_kd = bool(pieces) and kd_weight != 0.0
    if with_kd:
        teacher = teacher_rows(student.to(dtype), *pieces) if teacher_rows else pieces[0]
    ce_coef = (ce_weight * row_scale).unsqueeze(-1) if need_grad and with_ce and ce_weight != 0.0 else None
    log_q, lse1, ce = _student_log_probs(student, targets, dtype)
    q1 = None  # softmax at T = 1 for CE's gradient, kept apart only when the divergence is tempered
    if ce_coef is not None and (t != 1.0 or not with_kd):
        q1 = (log_q - lse1).exp_()
    if t == 1.0:
        log_q.sub_(lse1)
    else:
        _log_softmax_(log_q.div_(t))
    grad = None
    if with_kd:
        log_p = teacher.to(dtype, copy=True).clamp_(min=LOG_FLOOR)
        _log_softmax_(log_p.div_(t) if t != 1.0 else log_p)
        coef = (kd_weight * row_scale / t).unsqueeze(-1) if need_grad else None
        q_coef = ce_coef if q1 is None else None  # at T = 1, CE's q1 is the divergence's q
        kd, grad = _divergence(log_q, log_p, kind, coef, q_coef)
    else:
        kd = log_q.new_zeros(log_q.shape[0])
        if need_grad:
            grad = torch.zeros_like(log_q)
    if grad is not None and ce_coef is not None:
        if q1 is not None:
            grad.addcmul_(q1, ce_coef)
        grad.scatter_add_(-1, targets.unsqueeze(-1), -ce_coef)
    if ce is None:
        ce = kd.new_zeros(kd.shape)
    return ce_weight * ce + kd_weight * kd, {"ce": ce, "kd": kd}, grad


def _divergence(log_q, log_p, kind, coef, q_coef):
    """kd [n] and, when coef is given, coef · d kd / d(z / T) + q_coef · q; reuses the storage of log_q and log_p.

    coef and q_coef are [n, 1] (q_coef may be None).
    """
    if kind == "reverse_kl":
        q = log_q.exp()
        diff = log_q.sub_(log_p)  # log q − log p
        kd = _rowdot(q, diff)
        if coef is None:
            return kd, None
        diff.sub_(kd.unsqueeze(-1)).mul_(coef)
        if q_coef is not None:
            diff.add_(q_coef)
        return kd, diff.mul_(q)
    p = log_p.exp()
    cross = _rowdot(p, log_q)
    kd = -cross if kind == "soft_ce" else _rowdot(p, log_p) - cross
    if coef is None:
        return kd, None
    q_weight = coef if q_coef is None else coef + q_coef
    return kd, log_q.exp_().mul_(q_weight).addcmul_(p, -coef)


def topk_forward_kl_rows(
    student: torch.Tensor,
    targets: torch.Tensor,
    topk_ids: torch.Tensor,
    topk_log_probs: torch.Tensor,
    tail_mass: torch.Tensor,
    row_scale: torch.Tensor,
    *,
    ce_weight: float,
    kd_weight: float,
    min_tail: float,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`logit_rows` for forward KL at T = 1 against a cached top-k teacher, without building its dense estimate.

    The estimate (workbench.engine.topk_losses) is the cached p at the k ids and the tail mass r spread over the rest in
    the shape of the student's q, normalised by Z = Σ p + r. With Q = the student's mass outside the k ids:
    KL = Σ_k p (log p − log q) + r (log r − log Q), and d/dz = q − estimate: q_j · (1 − r / Q) outside the ids,
    q − p at them. Q is summed from the small probabilities themselves, not as 1 − Σ_k q, so it keeps its digits
    when the student puts nearly everything on the k ids.
    """
    dtype = row_scale.dtype
    log_q, lse, ce = _student_log_probs(student, targets, dtype)
    log_q.sub_(lse)
    log_q_top = log_q.gather(-1, topk_ids)
    p_top = topk_log_probs.to(dtype).exp()
    tail = tail_mass.to(dtype).clamp(min=min_tail)
    norm = p_top.sum(-1) + tail
    p_top, tail = p_top / norm.unsqueeze(-1), tail / norm
    q = log_q.exp_()
    q.scatter_(-1, topk_ids, 0.0)
    rest = q.sum(-1).clamp(min=torch.finfo(dtype).tiny)
    kd = (torch.special.xlogy(p_top, p_top) - p_top * log_q_top).sum(-1) + tail * (tail.log() - rest.log())
    if not need_grad:
        return ce, kd, None
    kd_coef, ce_coef = kd_weight * row_scale, ce_weight * row_scale
    q.mul_((kd_coef * (1.0 - tail / rest) + ce_coef).unsqueeze(-1))
    q_top = log_q_top.exp()
    q.scatter_(-1, topk_ids, kd_coef.unsqueeze(-1) * (q_top - p_top) + ce_coef.unsqueeze(-1) * q_top)
    if ce_weight != 0.0:
        q.scatter_add_(-1, targets.unsqueeze(-1), -ce_coef.unsqueeze(-1))
    return ce, kd, q


def closed_rows(
    kind: str, beta: float, alpha: float, temperature: float, *, ce_weight: float, kd_weight: float,
    with_targets: bool = True, teacher_rows: Callable | None = None,
) -> Callable | None:
    """The `rowwise_mean(closed=...)` function of weighted CE + divergence (`logit_rows` with these settings), or
    None when `kind` has no closed form at this beta and alpha."""
    closed = closed_kind(kind, beta, alpha)
    if closed is None:
        return None
    return partial(logit_rows, kind=closed, temperature=temperature, ce_weight=ce_weight, kd_weight=kd_weight,
                   with_targets=with_targets, teacher_rows=teacher_rows)
