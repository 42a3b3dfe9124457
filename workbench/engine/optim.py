"""AdamW with linear warmup then cosine decay to zero, over the parameters that train (student + projectors)."""

from __future__ import annotations

import math

import torch
from torch import nn


def build_optimizer(module: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; biases and norm weights (1-D tensors) get no weight decay."""
    params = [p for p in module.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel over all tensors instead of a Python loop per tensor (~10x faster step on CPU)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=fused or None)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier at `step` (0-based count of finished optimizer steps)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def clamped_warmup(warmup_steps: int, total_steps: int) -> int:
    """The warmup a run of `total_steps` uses: a warmup longer than the run is cut to the run."""
    return min(warmup_steps, total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    warmup = clamped_warmup(warmup_steps, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup, total_steps))
