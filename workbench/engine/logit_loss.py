"""The one entry point of the logit terms: hard-label CE and the divergence to the teacher, whether the teacher is
dense logits from a live model or a top-k cache read from disk.

    losses = logit_losses(student_logits, targets, teacher_logits, ce_weight=0.5, kd_weight=1.0, kind="jsd")
    losses = logit_losses(student_logits, targets, TopKTeacher(ids, log_probs, tail), ce_weight=0.5, kd_weight=1.0)
    losses.total.backward()       # ce_weight·ce + kd_weight·kd; losses.ce and losses.kd are detached, for logging

The dense branch is `workbench.engine.losses.ce_and_divergence`, the cached one `workbench.engine.topk_losses
.ce_and_topk_divergence`; both run over the same chunked autograd (`workbench.engine.chunked`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from workbench.engine.losses import LogitLosses, ce_and_divergence
from workbench.engine.topk_losses import ce_and_topk_divergence


class TopKTeacher(NamedTuple):
    """A cached teacher: its k most likely ids [B, T, k] (argmax first), their log-probs [B, T, k] and the
    probability left outside them [B, T] (None: 1 − Σ exp(log-probs))."""

    ids: torch.Tensor
    log_probs: torch.Tensor
    tail_mass: torch.Tensor | None = None


def logit_losses(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    teacher: torch.Tensor | TopKTeacher | None,
    *,
    ce_weight: float,
    kd_weight: float,
    **divergence_args,
) -> LogitLosses:
    """CE on `targets` [B, T] (ignore_index positions excluded) and the divergence of `student_logits` [B, T, V]
    to `teacher`: dense logits [B, T, V], a `TopKTeacher`, or None when kd_weight is 0. `divergence_args` are
    those of `workbench.engine.losses.divergence` (kind, temperature, beta, alpha, t2_scale, chunk_size, reduction...)."""
    if isinstance(teacher, TopKTeacher):
        return ce_and_topk_divergence(student_logits, *teacher, targets, ce_weight=ce_weight, kd_weight=kd_weight,
                                      **divergence_args)
    return ce_and_divergence(student_logits, teacher, targets, ce_weight=ce_weight, kd_weight=kd_weight,
                             **divergence_args)
