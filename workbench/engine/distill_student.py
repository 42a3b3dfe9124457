"""The module a run trains: the student with its hidden-state projectors, capturing the mapped layers as it runs
(`workbench.engine.capture`), so that one wrapper (DDP under accelerate) syncs both."""

from __future__ import annotations

import torch
from torch import nn

from workbench.engine.capture import LayerCapture, scored_head
from workbench.engine.mapping import LayerPair, Projectors


class DistillStudent(nn.Module):
    """The trained module: the student plus its projectors, so one wrapper (DDP) syncs both.

    forward(input_ids) -> (logits [B, T, V], {pair: projected hidden [B, T, Dt]}, {pair: attention [B, H, T, T]});
    forward(input_ids, keep) gives the logits of the positions where keep [B, T] is True only, [1, N, V].
    """

    def __init__(self, student: nn.Module, projectors: Projectors, hidden_pairs: list[LayerPair], attn_pairs: list[LayerPair]):
        super().__init__()
        self.student, self.projectors = student, projectors
        self.hidden_pairs, self.attn_pairs = list(hidden_pairs), list(attn_pairs)
        self.capture = LayerCapture(student, [s for s, _ in hidden_pairs], [int(s) for s, _ in attn_pairs])

    def forward(self, input_ids: torch.Tensor, keep: torch.Tensor | None = None):
        self.capture.clear()
        with scored_head(self.student, keep):
            logits = self.student(input_ids=input_ids, use_cache=False).logits
        hidden = {pair: self.projectors(pair, self.capture.hidden[pair[0]]) for pair in self.hidden_pairs}
        attn = {pair: self.capture.attn[int(pair[0])] for pair in self.attn_pairs}
        self.capture.clear()
        return logits, hidden, attn
