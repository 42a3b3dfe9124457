"""Divergences against a cached teacher that kept only its top-k log-probabilities and the remaining (tail) mass.

The teacher cache stores, per position, the ids and log-probabilities (at temperature 1) of the teacher's k most
likely tokens and the probability mass r of everything else. The rest of the teacher's distribution is gone, so it
is estimated (README, "Teacher cache: top-k + tail"):

- the teacher's full distribution at T = 1 is rebuilt as its exact k cached probabilities plus the tail mass r
  spread over the other tokens in the shape of the student's own distribution over them (detached: the estimate is
  a fixed target, like a teacher, not something the student moves by changing its tail);
- both sides are then tempered and compared over the whole vocabulary by the same row function as the dense path
  (`workbench.engine.losses.divergence`), times T² when t2_scale is set.

At T = 1 this equals the divergence between the two models merged into k + 1 buckets (the k tokens and the tail),
value and gradient, and the only error is the models' disagreement inside the tail, which the cache cannot see.
At T > 1 the tail carries more of the tempered mass; the student-shaped estimate keeps the gradient's direction
close to the full-vocabulary one where tempering the tail as a single token would not (docs/teacher-cache.md has the measured
errors). `mse` needs raw teacher logits, which the cache does not keep, so it is refused.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from workbench.engine.closed_form import closed_kind, closed_rows, topk_forward_kl_rows
from workbench.engine.losses import DivergenceSpec, logit_losses
from workbench.errors import UserError

# Smallest tail mass used in logs: a teacher that put (numerically) everything on its top k still gets finite
# reverse divergences.
MIN_TAIL = 1e-12


def teacher_estimate_log_probs(student: torch.Tensor, topk_ids: torch.Tensor, topk_log_probs: torch.Tensor,
                               tail_mass: torch.Tensor) -> torch.Tensor:
    """Teacher log-probabilities at T = 1 over the vocabulary, rebuilt from its cache: [n, V], [n, k], [n, k], [n].

    Exact at the k cached ids; elsewhere the tail mass spread in the shape of the (detached) student's distribution.
    """
    rest = torch.log_softmax(student.detach().scatter(-1, topk_ids, float("-inf")), dim=-1)
    log_tail = torch.log(tail_mass.clamp(min=MIN_TAIL)).unsqueeze(-1)
    return (rest + log_tail).scatter(-1, topk_ids, topk_log_probs.to(rest.dtype))


def _closed_topk(kind: str, beta: float, alpha: float, temperature: float, *, ce_weight: float, kd_weight: float,
                 with_targets: bool = True):
    """The closed-form rows of the top-k loss: forward KL at T = 1 without a dense teacher estimate, other kinds
    with closed forms on the dense estimate, None for the rest (autograd)."""
    if closed_kind(kind, beta, alpha) != "forward_kl" or temperature != 1.0:
        return closed_rows(kind, beta, alpha, temperature, ce_weight=ce_weight, kd_weight=kd_weight,
                           with_targets=with_targets, teacher_rows=_estimate)

    def rows(student, *extras, row_scale, need_grad):
        targets, cache = (extras[0].long(), extras[1:]) if with_targets else (None, extras)
        safe = targets if targets is not None else torch.zeros(student.shape[0], dtype=torch.long,
                                                                device=student.device)
        ce, kd, grad = topk_forward_kl_rows(student, safe, cache[0].long(), cache[1], cache[2], row_scale,
                                            ce_weight=ce_weight if with_targets else 0.0, kd_weight=kd_weight,
                                            min_tail=MIN_TAIL, need_grad=need_grad)
        return ce_weight * ce + kd_weight * kd, {"ce": ce, "kd": kd}, grad

    return rows


def _estimate(student: torch.Tensor, topk_ids: torch.Tensor, topk_log_probs: torch.Tensor,
              tail_mass: torch.Tensor) -> torch.Tensor:
    return teacher_estimate_log_probs(student, topk_ids.long(), topk_log_probs, tail_mass)


def tail_mass_from_log_probs(topk_log_probs: torch.Tensor) -> torch.Tensor:
    """Remaining probability 1 − Σ exp(top-k log-probs), clamped to [0, 1]: [..., k] -> [...]."""
    return (1.0 - topk_log_probs.float().exp().sum(-1)).clamp(0.0, 1.0)


class TopKTeacher(NamedTuple):
    """A cached teacher: its k most likely ids [*positions, k] (argmax first), their log-probs at T = 1 and the
    probability left outside them [*positions] (None: 1 − Σ exp(log-probs)). One of the forms `logit_losses`
    (workbench.engine.losses) takes, beside dense logits."""

    ids: torch.Tensor
    log_probs: torch.Tensor
    tail_mass: torch.Tensor | None = None

    def rows(self, student_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _cache_rows(student_logits, self.ids, self.log_probs, self.tail_mass)

    teacher_rows = staticmethod(_estimate)  # the cached rows -> the teacher's dense estimate

    def closed(self, spec: DivergenceSpec, *, ce_weight: float, kd_weight: float, with_targets: bool):
        _refuse_mse(spec.kind)
        if not spec.closed_form:
            return None
        return _closed_topk(spec.kind, spec.beta, spec.alpha, spec.temperature, ce_weight=ce_weight,
                            kd_weight=kd_weight, with_targets=with_targets)


def topk_divergence(
    student_logits: torch.Tensor,
    topk_ids: torch.Tensor,
    topk_log_probs: torch.Tensor,
    tail_mass: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    **spec,
) -> torch.Tensor:
    """Divergence of the student from a cached top-k teacher, averaged over positions whose label != ignore_index.

    student_logits: [B, T, V]; topk_ids: [B, T, k] (any integer dtype); topk_log_probs: [B, T, k] teacher
    log-probabilities at temperature 1; tail_mass: [B, T] probability outside the top k (None: 1 − Σ exp(top-k)).
    labels, `spec` (DivergenceSpec's fields) and reduction mean what they mean in `workbench.engine.losses.divergence`.
    """
    _refuse_mse(spec.get("kind", "forward_kl"))
    return logit_losses(student_logits, None, TopKTeacher(topk_ids, topk_log_probs, tail_mass), ce_weight=0.0,
                        kd_weight=1.0, spec=DivergenceSpec(**spec), labels=labels, ignore_index=ignore_index,
                        reduction=reduction).total


def _refuse_mse(kind: str) -> None:
    if kind == "mse":
        raise UserError(
            "loss.divergence=mse needs the teacher's raw logits, which the teacher cache does not keep; "
            "use a divergence kind (forward_kl, reverse_kl, jsd, kl_mix, skew_forward_kl, skew_reverse_kl, tvd, soft_ce)"
        )


def _cache_rows(
    student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_log_probs: torch.Tensor, tail_mass: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate the cache tensors against the student logits and flatten them to rows: [N, k], [N, k], [N]."""
    positions, vocab, k = student_logits.shape[:-1], student_logits.shape[-1], topk_ids.shape[-1]
    if topk_ids.shape[:-1] != positions or topk_log_probs.shape != topk_ids.shape:
        raise ValueError(
            f"top-k ids {tuple(topk_ids.shape)} and log-probs {tuple(topk_log_probs.shape)} must be "
            f"[*positions, k] with positions {tuple(positions)}"
        )
    if not 1 <= k < vocab:
        raise ValueError(f"k must be in [1, vocab - 1] = [1, {vocab - 1}], got {k}")
    if tail_mass is None:
        tail_mass = tail_mass_from_log_probs(topk_log_probs)
    if tail_mass.shape != positions:
        raise ValueError(f"tail_mass shape {tuple(tail_mass.shape)} does not match positions {tuple(positions)}")
    device = student_logits.device
    return (
        topk_ids.reshape(-1, k).to(device),
        topk_log_probs.reshape(-1, k).to(device),
        tail_mass.reshape(-1).to(device),
    )
