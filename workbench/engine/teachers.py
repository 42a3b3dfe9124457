"""The teacher as a training step sees it: one interface, whatever the teacher is.

    signal = teacher_signal(cfg, teacher_model, cache, pairing)      # once, when the run is set up
    losses, teacher_logits = signal.logit_losses(logits, input_ids, indices, groups, keep, need_logits)
    part, compared, teacher_ce = signal.eval_sums(logits, input_ids, indices, targets)

- `LiveTeacher`: a model run beside the student on the same tokens (the teacher's logits come back too, for the
  layer terms and the live disagreement view; its output head can run on the scored positions only);
- `CachedTeacher`: the top-k log-probabilities that `workbench cache-teacher` stored (no model at all);
- `OtherTokenizerTeacher`: a model with a tokenizer of its own, compared over aligned spans
  (`workbench.engine.tokenizer_pairing`).

`groups` are (targets, CE weight, KD weight) triples: one for a single dataset, one per task with `data.tasks`.
Each teacher sums CE and its divergence over them (reduction "sum": the step divides by its token count).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.engine.capture import scored_head
from workbench.engine.losses import DivergenceSpec, LogitLosses, logit_losses
from workbench.engine.scores import agreement_sums, ce_sum
from workbench.engine.topk_losses import TopKTeacher
from workbench.errors import UserError

Groups = list[tuple[torch.Tensor, float, float]]


class LiveTeacher:
    """A teacher model sharing the student's tokenizer (its logits trimmed to the student's width by `pairing`)."""

    restricts_heads = True  # the output heads may run on the scored positions only
    scores_answers = True  # it can score sampled answers (the generation eval)
    aligns_spans = False  # KL and top-1 agreement are taken on every scored position

    def __init__(self, model, spec: DivergenceSpec, pairing=None):
        self.model, self.spec, self.pairing = model, spec, pairing

    def logit_losses(self, logits, input_ids, indices, groups: Groups, keep=None, need_logits: bool = False):
        teacher_logits = None
        if need_logits or any(kd > 0 for *_, kd in groups):
            with torch.inference_mode(), scored_head(self.model, keep):
                teacher_logits = self.model(input_ids=input_ids, use_cache=False).logits
        if self.pairing is not None:
            logits, teacher_logits = self.pairing.trim(logits, teacher_logits)
        total = None
        for targets, ce_weight, kd_weight in groups:  # a loop, not a comprehension: one call less to the formula
            part = logit_losses(logits, targets, teacher_logits, ce_weight=ce_weight, kd_weight=kd_weight,
                                spec=self.spec, reduction="sum")
            total = part if total is None else LogitLosses(*(a + b for a, b in zip(total, part, strict=True)))
        return total, teacher_logits

    @torch.no_grad()
    def eval_sums(self, logits, input_ids, indices, targets):
        teacher_logits = self.model(input_ids=input_ids, use_cache=False).logits
        if self.pairing is not None:
            logits, teacher_logits = self.pairing.trim(logits, teacher_logits)
        part = agreement_sums(logits, targets, teacher_logits=teacher_logits, chunk_size=self.spec.chunk_size)
        return part, float(part[3]), ce_sum(teacher_logits, targets, self.spec.chunk_size)


class CachedTeacher:
    """The teacher's top-k log-probabilities and tail mass read from a `workbench cache-teacher` cache."""

    restricts_heads = False
    scores_answers = False
    aligns_spans = False

    def __init__(self, cache, spec: DivergenceSpec):
        self.cache, self.spec = cache, spec

    def _rows(self, split: str, indices, device) -> TopKTeacher:
        return TopKTeacher(*(t.to(device) for t in self.cache.batch(split, indices)))

    def logit_losses(self, logits, input_ids, indices, groups: Groups, keep=None, need_logits: bool = False):
        cached = self._rows("train", indices, logits.device)
        (targets, ce_weight, kd_weight), = groups  # one: the config refuses data.tasks with a teacher cache
        return logit_losses(logits, targets, cached, ce_weight=ce_weight, kd_weight=kd_weight, spec=self.spec,
                            reduction="sum"), None

    @torch.no_grad()
    def eval_sums(self, logits, input_ids, indices, targets):
        part = agreement_sums(logits, targets, teacher_topk=tuple(self._rows("val", indices, logits.device)),
                              chunk_size=self.spec.chunk_size)
        return part, float(part[3]), 0.0


class OtherTokenizerTeacher:
    """A teacher with its own tokenizer: CE on the student's targets, the divergence over aligned spans."""

    restricts_heads = False
    scores_answers = False  # it would score answers in the student's token ids
    aligns_spans = True  # KL and top-1 agreement are taken on the exactly matched positions

    def __init__(self, model, cross, loss_cfg, tasks: bool = False):
        if tasks:
            raise UserError("data.tasks: per-task loss weights need teacher and student to share one tokenizer; "
                            "train the tasks with a student of the teacher's tokenizer, or use data.dataset")
        self.model, self.cross, self.loss_cfg = model, cross, loss_cfg

    def logit_losses(self, logits, input_ids, indices, groups: Groups, keep=None, need_logits: bool = False):
        (targets, ce_weight, _), = groups  # one group: data.tasks are refused above
        return self.cross.logit_losses(self.loss_cfg, self.model, logits, input_ids, targets, ce_weight), None

    @torch.no_grad()
    def eval_sums(self, logits, input_ids, indices, targets):
        mask = targets != -100
        ce = F.cross_entropy(logits.float()[mask], targets[mask], reduction="sum")
        kl, hits, compared = self.cross.eval_batch(self.loss_cfg, self.model, logits, input_ids)
        return torch.tensor([float(ce), kl, hits, float(mask.sum())], dtype=torch.float64), compared, 0.0


def teacher_signal(cfg, model, cache, pairing):
    """The run's teacher behind the one interface: a cache when there is one, else the model, through span
    alignment when its tokenizer is not the student's."""
    spec = DivergenceSpec.of(cfg.loss)
    if cache is not None:
        return CachedTeacher(cache, spec)
    if pairing is not None and pairing.cross is not None:
        return OtherTokenizerTeacher(model, pairing.cross, cfg.loss, tasks=bool(cfg.data.tasks))
    return LiveTeacher(model, spec, pairing)
