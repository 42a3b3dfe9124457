"""Distillation losses as pure tensor functions: logit divergences, hidden-state and attention matching.

Nothing here knows about configs or models. Every function takes tensors, does its math in float32 (float64 when
given float64), excludes masked positions and returns a scalar that is 0, not NaN, when nothing is left.

    kd = divergence(student_logits, teacher_logits, labels, kind="forward_kl", temperature=2.0, chunk_size=1024)
    spec = DivergenceSpec("jsd", temperature=2.0, beta=0.3, chunk_size=1024)    # one divergence, written once
    losses = logit_losses(student_logits, targets, teacher, ce_weight=0.5, kd_weight=1.0, spec=spec)
    losses.total.backward()       # ce_weight·ce + kd_weight·kd; losses.ce and losses.kd are detached, for logging

`logit_losses` takes the teacher as dense logits or as a top-k cache (`workbench.engine.topk_losses.TopKTeacher`):
each gives its rows, its per-row divergence and its closed form, so one function serves both.

With p = softmax(teacher / T) and q = softmax(student / T), the kinds are (README, "Losses"):
forward_kl KL(p‖q), reverse_kl KL(q‖p), jsd β·KL(p‖m) + (1−β)·KL(q‖m) with m = βp + (1−β)q (exactly KL(p‖q) at
β=0 and KL(q‖p) at β=1), kl_mix (1−β)·KL(p‖q) + β·KL(q‖p), skew_forward_kl KL(p‖αp + (1−α)q), skew_reverse_kl KL(q‖(1−α)p + αq), tvd ½Σ|p−q|,
soft_ce −Σ p log q, and mse: the mean over the vocabulary of (student − teacher)² on raw logits. With t2_scale
every kind but mse is multiplied by T².

`chunk_size` walks the positions in chunks inside a custom autograd Function (`workbench.engine.chunked`): the forward computes
each chunk's value and its gradient, writes the gradient into one buffer the size of the logits, and frees the
chunk, so neither the forward nor the backward ever holds [B, T, V] float32 probabilities at once. Pass the full
logits and mark the last position with ignore_index instead of slicing logits[:, :-1]: a slice would be copied.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F

from workbench.config import DIVERGENCE_KINDS, HIDDEN_KINDS
from workbench.engine.chunked import math_dtype, rowwise_mean, valid_rows
from workbench.engine.closed_form import closed_kind, closed_rows

LN_EPS = 1e-5  # ln_mse: added to the variance, as torch.nn.LayerNorm does


def check_divergence_args(kind: str, beta: float, alpha: float, temperature: float) -> None:
    if kind not in DIVERGENCE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(DIVERGENCE_KINDS)}, got {kind!r}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def kl_rows(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """KL(a‖b) per row from log-probabilities [n, K] -> [n]; terms with a = 0 contribute 0 (no 0·inf). The autograd
    reference of the closed forms (workbench.engine.closed_form) and the per-token disagreement of the app."""
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
        return kl_rows(log_p, log_q) if same_as == "forward_kl" else kl_rows(log_q, log_p)
    if kind == "jsd":
        log_m = _log_mix(log_p, log_q, beta)
        return beta * kl_rows(log_p, log_m) + (1.0 - beta) * kl_rows(log_q, log_m)
    if kind == "kl_mix":
        return (1.0 - beta) * kl_rows(log_p, log_q) + beta * kl_rows(log_q, log_p)
    if kind == "skew_forward_kl":
        if alpha == 1.0:
            return log_p.new_zeros(log_p.shape[:-1]) + 0.0 * log_q.sum(-1)
        return kl_rows(log_p, _log_mix(log_p, log_q, alpha))
    if kind == "skew_reverse_kl":
        if alpha == 1.0:
            return log_q.new_zeros(log_q.shape[:-1]) + 0.0 * log_q.sum(-1)
        return kl_rows(log_q, _log_mix(log_p, log_q, 1.0 - alpha))
    if kind == "tvd":
        return 0.5 * (log_p.exp() - log_q.exp()).abs().sum(-1)
    if kind == "soft_ce":
        p = log_p.exp()
        return -torch.where(p > 0, p * log_q, 0.0).sum(-1)
    raise ValueError(f"kind {kind!r} is not a divergence of probabilities")


def t2_factor(kind: str, temperature: float, t2_scale: bool) -> float:
    return temperature**2 if t2_scale and kind != "mse" else 1.0


@dataclass(frozen=True)
class DivergenceSpec:
    """How the logit divergence is taken, in one place: the kind, the temperature T, β of jsd and kl_mix, α of the
    skewed kinds, T² scaling, positions per chunk (None: all at once; chunks bound memory) and whether the chunked
    path uses the closed-form gradient (`workbench.engine.closed_form`) where the kind has one. Checked when made.

        spec = DivergenceSpec.of(cfg.loss)            # a run's loss section (anything with those attributes)
        spec = DivergenceSpec("jsd", temperature=2.0, beta=0.3, chunk_size=1024)
    """

    kind: str = "forward_kl"
    temperature: float = 1.0
    beta: float = 0.5
    alpha: float = 0.1
    t2_scale: bool = True
    chunk_size: int | None = None
    closed_form: bool = True

    def __post_init__(self) -> None:
        check_divergence_args(self.kind, self.beta, self.alpha, self.temperature)

    @classmethod
    def of(cls, loss) -> DivergenceSpec:
        return cls(loss.divergence, loss.temperature, loss.beta, loss.alpha, loss.t2_scale, loss.chunk_size)

    @property
    def scale(self) -> float:
        """T² where t2_scale asks for it (every kind but mse), else 1."""
        return t2_factor(self.kind, self.temperature, self.t2_scale)

    def closed(self, *, ce_weight: float, kd_weight: float, with_targets: bool, teacher_rows: Callable | None = None):
        """The closed form of weighted CE + this divergence for `rowwise_mean(closed=...)`, or None (autograd)."""
        if not self.closed_form:
            return None
        return closed_rows(self.kind, self.beta, self.alpha, self.temperature, ce_weight=ce_weight,
                           kd_weight=kd_weight, with_targets=with_targets, teacher_rows=teacher_rows)


class DenseTeacher(NamedTuple):
    """A teacher given as logits [*positions, V], the student's shape. `TopKTeacher`
    (workbench.engine.topk_losses) is the other form `logit_losses` takes; each gives its rows, how the rows become
    dense teacher logits (`teacher_rows`, None: they are) and its closed form."""

    logits: torch.Tensor
    teacher_rows = None

    def rows(self, student_logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if student_logits.shape != self.logits.shape:
            raise ValueError(f"student and teacher logits differ in shape: {student_logits.shape} vs "
                             f"{self.logits.shape}")
        return (self.logits.reshape(-1, self.logits.shape[-1]),)

    def closed(self, spec: DivergenceSpec, **weights):
        return spec.closed(**weights)


class LogitLosses(NamedTuple):
    """`total` carries the gradient (ce_weight·ce + kd_weight·kd); `ce` and `kd` are detached, for logging."""

    total: torch.Tensor
    ce: torch.Tensor
    kd: torch.Tensor


def loss_rows(
    student: torch.Tensor,
    *extras: torch.Tensor,
    spec: DivergenceSpec,
    ce_weight: float,
    kd_weight: float,
    with_targets: bool = True,
    teacher_rows: Callable | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per row ce_weight·CE + kd_weight·divergence, with both terms as parts: the autograd form of
    `workbench.engine.closed_form.logit_rows`, on the same rows (the targets when `with_targets`, then the teacher's
    pieces, which `teacher_rows(student, *pieces)` turns into dense logits or log-probabilities; None: one piece,
    the logits). `mse` compares raw logits; every other kind the tempered distributions."""
    targets, pieces = (extras[0], extras[1:]) if with_targets else (None, extras)
    ce = student.new_zeros(student.shape[0])
    if targets is not None:
        with torch.set_grad_enabled(torch.is_grad_enabled() and ce_weight != 0.0):  # CE logged only: no backward
            ce = -F.log_softmax(student, dim=-1).gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    if kd_weight == 0.0 or not pieces:
        return ce_weight * ce, {"ce": ce.detach(), "kd": torch.zeros_like(ce).detach()}
    teacher = teacher_rows(student, *pieces) if teacher_rows else pieces[0]
    if spec.kind == "mse":
        kd = (student - teacher).square().mean(-1)
    else:
        kd = divergence_from_log_probs(F.log_softmax(teacher / spec.temperature, dim=-1),
                                       F.log_softmax(student / spec.temperature, dim=-1), spec.kind, spec.beta,
                                       spec.alpha)
    return ce_weight * ce + kd_weight * kd, {"ce": ce.detach(), "kd": kd.detach()}


def logit_losses(
    student_logits: torch.Tensor,
    targets: torch.Tensor | None,
    teacher,
    *,
    ce_weight: float,
    kd_weight: float,
    spec: DivergenceSpec = DivergenceSpec(),
    labels: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> LogitLosses:
    """Hard-label CE and the logit divergence in one pass over the same (chunked) student logits [*positions, V].

    targets: next-token ids [*positions] aligned with the logits (already shifted by the caller), or None for no CE;
    positions equal to ignore_index are left out of both terms (without targets, `labels` chooses the positions the
    same way; None: all). teacher: dense logits (a tensor or `DenseTeacher`), a `TopKTeacher`, or None when kd_weight
    is 0. reduction: "mean" over the kept positions, or "sum" (to normalise by a count over several micro-batches).
    The divergence is `spec`'s, times T² where it asks for it. Returns float32 sums (float64 for float64 inputs).
    """
    if isinstance(teacher, torch.Tensor):
        teacher = DenseTeacher(teacher)
    if teacher is None and kd_weight != 0.0:
        raise ValueError("a teacher is required when kd_weight is not 0")
    with_kd, with_targets = teacher is not None and kd_weight != 0.0, targets is not None
    form = teacher if with_kd else DenseTeacher(None)  # no teacher: CE alone, in the dense closed form
    rows = valid_rows(student_logits.shape[:-1], targets if with_targets else labels, ignore_index,
                      student_logits.device)
    extras = teacher.rows(student_logits) if with_kd else ()
    if with_targets:
        extras = (targets.reshape(-1).clamp(min=0), *extras)
    weights = dict(ce_weight=ce_weight, kd_weight=kd_weight * spec.scale) if with_targets else dict(
        ce_weight=0.0, kd_weight=1.0)  # without targets: the divergence alone, scaled below
    total, parts = rowwise_mean(
        partial(loss_rows, spec=spec, with_targets=with_targets, teacher_rows=form.teacher_rows, **weights),
        student_logits.reshape(-1, student_logits.shape[-1]), extras, rows, chunk_size=spec.chunk_size,
        reduction=reduction, part_names=("ce", "kd") if with_targets else (),
        closed=form.closed(spec, with_targets=with_targets, **weights))
    if with_targets:
        return LogitLosses(total, parts["ce"], parts["kd"] * spec.scale)
    return LogitLosses(total * kd_weight * spec.scale, total.new_zeros(()), total.detach() * spec.scale)


def divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    **spec,
) -> torch.Tensor:
    """Logit divergence between student and teacher logits [*positions, V], averaged over the positions whose label
    != ignore_index (labels [*positions] aligned with the logits, no shifting here; None: every position).

    `spec` holds `DivergenceSpec`'s fields (kind, temperature, beta, alpha, t2_scale, chunk_size, closed_form);
    reduction as in `logit_losses`. Returns a float32 (float64 for float64 inputs) scalar.
    """
    return logit_losses(student_logits, None, teacher_logits, ce_weight=0.0, kd_weight=1.0,
                        spec=DivergenceSpec(**spec), labels=labels, ignore_index=ignore_index,
                        reduction=reduction).total


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
    1 − cos(s, t). ln_mse: mse after a layer norm without parameters on each side, (h − mean_D h) / std_D h, so
    every position weighs the same whatever its scale (a decoder's few "massive activation" positions hold
    values thousands of times larger than the rest); it lies in [0, 4] and equals 2·(1 − Pearson correlation of
    s and t over D). mask [B, T] marks valid positions (True / 1).
    """
    if student_h.shape != teacher_h.shape:
        raise ValueError(f"hidden states differ in shape: {tuple(student_h.shape)} vs {tuple(teacher_h.shape)}")
    dtype = math_dtype(student_h.dtype)
    s, t = student_h.to(dtype), teacher_h.to(dtype)
    if kind == "mse":
        per_position = (s - t).square().mean(-1)
    elif kind == "cosine":
        per_position = 1.0 - F.cosine_similarity(s, t, dim=-1, eps=1e-8)
    elif kind == "ln_mse":
        width = s.shape[-1:]
        per_position = (F.layer_norm(s, width, eps=LN_EPS) - F.layer_norm(t, width, eps=LN_EPS)).square().mean(-1)
    else:
        raise ValueError(f"hidden-state kind must be one of {', '.join(HIDDEN_KINDS)}, got {kind!r}")
    return _masked_mean(per_position, mask)


def attention_loss(
    student_attn: torch.Tensor,
    teacher_attn: torch.Tensor,
    kind: str = "kl",
    mask: torch.Tensor | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Attention transfer between attention maps [B, Hs, T, T] and [B, Ht, T, T] (rows = queries, cols = keys).

    The maps are attention probabilities (after the softmax). When Hs != Ht both are averaged over heads first and
    compared as one map. kl: KL(teacher row ‖ student row) summed over keys, the attention-distribution loss of
    MiniLM (Wang et al. 2020); entries where the teacher is 0 (causal or padding zeros) contribute 0 and the
    student is floored at eps so a student zero stays finite. mse: mean over keys of the squared difference of
    the probabilities (TinyBERT's attention loss is an MSE too, but on the scores before the softmax, which
    eager attention does not return). Either is averaged over heads and valid query rows; mask [B, T] marks
    valid query positions.
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
