"""How well a student predicts: perplexity on the data, KL(teacher‖student) at temperature 1 and top-1 agreement
with the teacher. One implementation for the trainer's evaluation, the report card and the pruning ranking.

    sums = agreement_sums(student_logits, targets, teacher_logits=teacher_logits)  # [ce, kl, hits, positions]
    perplexity(float(sums[0] / sums[3]))                 # workbench.models.vocab
"""

from __future__ import annotations

import torch

from workbench.engine.losses import DivergenceSpec, logit_losses
from workbench.engine.topk_losses import TopKTeacher

IGNORE_INDEX = -100


def next_token_targets(input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """[B, T] -> targets aligned with the logits: position i predicts token i + 1; the last position is ignored, and
    so is every position whose next token is outside `mask` ([B, T] bool, True = scored)."""
    targets = input_ids.roll(-1, dims=1)
    targets[:, -1] = -100
    if mask is not None:
        targets[~mask.roll(-1, dims=1)] = -100
    return targets


@torch.no_grad()
def ce_sum(logits: torch.Tensor, targets: torch.Tensor, chunk_size: int | None = None) -> float:
    """Next-token CE of `logits` [B, T, V] at `targets` [B, T], summed over the positions whose target is not
    -100, in chunks of `chunk_size` positions (no float32 copy of all the logits at once)."""
    return float(logit_losses(logits, targets, None, ce_weight=1.0, kd_weight=0.0, reduction="sum",
                              spec=DivergenceSpec(chunk_size=chunk_size)).ce)


@torch.no_grad()
def agreement_sums(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    teacher_logits: torch.Tensor | None = None,
    teacher_topk: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """float64 [4]: student CE, KL(teacher‖student) at T = 1 and top-1 agreement hits summed over the positions
    whose target is not -100, then the count of those positions.

    `student_logits` [B, T, V], `targets` [B, T]; the teacher as dense logits [B, T, V] or as a top-k cache
    (ids [B, T, k], log-probs [B, T, k], tail mass [B, T]) whose first id is its argmax."""
    mask = targets != IGNORE_INDEX
    teacher = TopKTeacher(*teacher_topk) if teacher_topk is not None else teacher_logits
    sums = logit_losses(student_logits, targets, teacher, ce_weight=1.0, kd_weight=1.0, reduction="sum",
                        spec=DivergenceSpec("forward_kl", temperature=1.0, t2_scale=False, chunk_size=chunk_size))
    teacher_top1 = teacher.ids[..., 0].long() if teacher_topk is not None else teacher_logits.argmax(-1)
    hits = ((student_logits.argmax(-1) == teacher_top1) & mask).sum()
    return torch.stack([sums.ce.double(), sums.kd.double(), hits.double(), mask.sum().double()])
