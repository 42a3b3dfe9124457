"""How a training step pairs the teacher's vocabulary with the student's: one tokenizer, padded logits, or two
tokenizers (distilled with `workbench.engine.cross_tokenizer`).

    pairing = tokenizer_pairing(cfg, teacher_tokenizer, student_tokenizer)   # refuses what cannot apply, early
    pairing.finish(teacher_model, student_model)                               # logits widths, once loaded
    losses = pairing.cross.logit_losses(cfg.loss, teacher, logits, input_ids, targets)

With two tokenizers the teacher reads its own tokenization of the same text: each packed student row is spelled out
as bytes (its tokens' bytes, a character cut at either end dropped), decoded to text and tokenized by the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from workbench.config import DistillConfig, LossConfig
from workbench.engine.cross_tokenizer import align_row, aligned_divergence, batch_alignment, exact_spans, uld_distance
from workbench.engine.losses import DivergenceSpec, LogitLosses, logit_losses
from workbench.errors import Message, UserError
from workbench.models.vocab import bytes_per_token, logits_width, padded_width, shared_vocab, token_bytes


class CrossTokenizer:
    """The two vocabularies as byte strings, their exact id map, and the alignment of student rows."""

    def __init__(self, teacher_tokenizer, student_tokenizer):
        self.teacher_tokenizer = teacher_tokenizer
        self.student_table, self.teacher_table = token_bytes(student_tokenizer), token_bytes(teacher_tokenizer)
        self.student_lengths = np.array([len(t) for t in self.student_table], dtype=np.int64)
        self.teacher_lengths = np.array([len(t) for t in self.teacher_table], dtype=np.int64)
        self.shared = shared_vocab(self.student_table, self.teacher_table)
        pad = teacher_tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else teacher_tokenizer.eos_token_id or 0)
        self.student_to_teacher = torch.full((len(self.student_table),), -1, dtype=torch.long)
        self.student_to_teacher[self.shared[0]] = self.shared[1]

    @property
    def vocab_share(self) -> float:
        """Share of the student's vocabulary that the teacher's holds as the same string."""
        return self.shared[0].numel() / max(len(self.student_table), 1)

    def align(self, student_rows: torch.Tensor):
        """BatchAlignment of student rows [B, T] with the teacher's tokenization of their text."""
        rows = [row.tolist() for row in student_rows.cpu()]
        aligned = [align_row(row, self.student_lengths, self.student_table, self.teacher_tokenizer,
                             self.teacher_lengths) for row in rows]
        return batch_alignment(aligned, self.pad_id)

    def teacher_logits(self, teacher, batch) -> torch.Tensor:
        device = next(teacher.parameters()).device
        with torch.inference_mode():
            return teacher(input_ids=batch.teacher_ids.to(device), use_cache=False).logits

    def logit_losses(self, loss_cfg: LossConfig, teacher, logits, input_ids, targets, ce_weight: float
                     ) -> LogitLosses:
        """CE on the student's own targets plus the cross-tokenizer divergence, both summed (the caller scales).

        A span is scored when the position predicting its first student token is (targets != -100 there)."""
        ce = logit_losses(logits, targets, None, ce_weight=ce_weight, kd_weight=0.0,
                          spec=DivergenceSpec(chunk_size=loss_cfg.chunk_size), reduction="sum")
        if loss_cfg.kd_weight == 0:
            return ce
        batch = self.align(input_ids)
        keep = targets.flatten()[batch.student_pos.to(targets.device)].cpu() != -100
        if not keep.all():
            batch = replace(batch, scored=batch.scored[keep], student_pos=batch.student_pos[keep],
                            teacher_pos=batch.teacher_pos[keep], exact=batch.exact[keep])
        teacher_logits = self.teacher_logits(teacher, batch)
        if loss_cfg.cross_tokenizer == "uld":
            kd, _ = uld_distance(logits, teacher_logits, batch, temperature=loss_cfg.temperature,
                                 t2_scale=loss_cfg.t2_scale)
        else:
            kd, _ = aligned_divergence(logits, teacher_logits, input_ids, batch, self.shared, DivergenceSpec.of(loss_cfg))
        return LogitLosses(ce.total + loss_cfg.kd_weight * kd, ce.ce, kd.detach())

    @torch.no_grad()
    def eval_batch(self, loss_cfg: LossConfig, teacher, logits, input_ids) -> tuple[float, float, float]:
        """(aligned forward KL summed at T=1, exact positions where both argmaxes spell the same string, exact count)."""
        batch = self.align(input_ids)
        teacher_logits = self.teacher_logits(teacher, batch)
        kl, _ = aligned_divergence(logits, teacher_logits, input_ids, batch, self.shared, kind="forward_kl",
                                   temperature=1.0, t2_scale=False)
        exact = batch.exact
        s_top = logits.flatten(0, 1)[batch.student_pos[exact].to(logits.device)].argmax(-1).cpu()
        t_top = teacher_logits.flatten(0, 1)[batch.teacher_pos[exact].to(teacher_logits.device)].argmax(-1).cpu()
        hits = (self.student_to_teacher[s_top] == t_top).sum()
        return float(kl), float(hits), float(exact.sum())


@dataclass
class Pairing:
    """What a step needs about the two vocabularies; `width` slices padded logits, `cross` is set for two
    tokenizers, `target_bytes` [V] counts the bytes of each student token (bits per byte)."""

    teacher_tokenizer: object
    student_tokenizer: object
    cross: CrossTokenizer | None
    target_bytes: torch.Tensor
    width: int | None = None

    def finish(self, teacher, student) -> Pairing:
        if self.cross is None and teacher is not None:
            self.width = padded_width(self.student_tokenizer, logits_width(teacher), logits_width(student))
        return self

    def trim(self, *logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The logits cut to the tokenizer's real ids when the two widths differ (padded vocabularies)."""
        if self.width is None:
            return logits
        return tuple(None if x is None else x[..., : self.width] for x in logits)


def _refuse_across_tokenizers(cfg: DistillConfig, problem: str) -> None:
    loss = cfg.loss
    for bad, message in (
        (loss.hidden_weight > 0, "loss.hidden_weight must be 0: hidden states are compared position by position"),
        (loss.attn_weight > 0, "loss.attn_weight must be 0: attention maps are compared position by position"),
        (bool(cfg.train.teacher_cache), "train.teacher_cache must be empty: the cache holds the teacher's "
         "predictions on the student's tokens"),
        (cfg.onpolicy.lmbda > 0, "onpolicy.lmbda must be 0: the teacher scores sampled answers in the student's "
         "token ids"),
        (loss.divergence == "mse" and loss.cross_tokenizer == "aligned", "loss.divergence mse compares raw logits over one "
         "vocabulary; pick a divergence of probabilities such as forward_kl"),
    ):
        if bad:
            raise UserError(Message("{message}, and the teacher and student tokenizers differ ({problem}). "
                                    "Cross-tokenizer distillation (loss.cross_tokenizer={method}) uses the logits only",
                                    message=Message(message), problem=problem, method=loss.cross_tokenizer))


def check_pairing(cfg: DistillConfig, teacher_tokenizer, student_tokenizer) -> str | None:
    """How the tokenizers differ (None when they are the same), after refusing what cannot cross two of them."""
    from workbench.models.vocab import compare_tokenizers

    problem = compare_tokenizers(teacher_tokenizer, student_tokenizer)["problem"]
    if problem:
        _refuse_across_tokenizers(cfg, problem)
    return problem


def tokenizer_pairing(cfg: DistillConfig, teacher_tokenizer, student_tokenizer) -> Pairing:
    """Pair the tokenizers; refuse, before any model is loaded, the terms that cannot cross two tokenizers."""
    cross = None
    if check_pairing(cfg, teacher_tokenizer, student_tokenizer):
        cross = CrossTokenizer(teacher_tokenizer, student_tokenizer)
    return Pairing(teacher_tokenizer, student_tokenizer, cross, bytes_per_token(student_tokenizer))


def cross_tokenizer_summary(teacher_tokenizer, student_tokenizer, texts) -> dict:
    """For the card: strings both vocabularies hold, teacher tokens per student token and the share of student
    tokens matched exactly by one teacher token, on `texts`."""
    cross = CrossTokenizer(teacher_tokenizer, student_tokenizer)
    student_tokens = teacher_tokens = exact = 0
    for text in texts:
        ids = student_tokenizer(text, add_special_tokens=False)["input_ids"]
        row = align_row(ids, cross.student_lengths, cross.student_table, teacher_tokenizer, cross.teacher_lengths)
        student_tokens += len(ids)
        teacher_tokens += len(row.teacher_ids)
        exact += int(exact_spans(row).sum())
    shared = int(cross.shared[0].numel())
    return {"shared": shared, "student_share": shared / max(len(cross.student_table), 1),
            "teacher_share": shared / max(len(cross.teacher_table), 1),
            "teacher_per_student": teacher_tokens / max(student_tokens, 1), "exact_share": exact / max(student_tokens, 1)}
