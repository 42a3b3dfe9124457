"""The multi-task parts of a step: which rows a micro-batch reads, and each task's loss weights on its rows only.

    indices, row_tasks = mixture_batch(cfg, tasks, step, micro, rank, world)
    for targets_k, ce_k, kd_k in task_groups(cfg, tasks, row_tasks, targets):
        ...  # the logit losses of task k: other tasks' positions are -100 in targets_k

A per-row weight is applied by masking: each task's rows are scored with that task's (ce_weight, kd_weight) and the
other rows' targets set to the ignore index, so the sums add up to Σ_rows w_task(row)·loss(row) with the same
global token normalisation as a single-task step. The hidden-state and attention terms keep the run's loss weights
on every row (per-task layer weights are not routed yet).
"""

from __future__ import annotations

import torch

from workbench.config import DistillConfig
from workbench.data.tasks import TaskSet

IGNORE_INDEX = -100


def mixture_batch(cfg: DistillConfig, tasks: TaskSet, step: int, micro: int, rank: int, world: int,
                  prompts: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, task id per row) of one process's micro-batch: position micro·(B·P) + rank·B of the step's draw,
    from the packed rows, or from the prompt tasks' examples with `prompts` (on-policy steps)."""
    b = cfg.train.batch_size
    mixture = tasks.prompts if prompts else tasks.rows
    return mixture.indices(step, micro * b * world + rank * b, b, b * cfg.train.grad_accum * world)


def task_loss_weights(cfg: DistillConfig, tasks: TaskSet) -> list[tuple[float, float]]:
    """(ce_weight, kd_weight) of each task, the run's loss weights filling in what a task leaves empty."""
    return [t.config.weights(cfg.loss) for t in tasks.tasks]


def position_tasks(row_tasks: torch.Tensor, shape: torch.Size, keep: torch.Tensor | None) -> torch.Tensor:
    """Task id of every position of a [B, T] = `shape` batch from its rows' ids [B], or [1, N] at `keep`'s
    positions (when the heads ran on those only)."""
    per_position = row_tasks.view(-1, 1).expand(*shape)
    return per_position[keep.cpu()].unsqueeze(0) if keep is not None else per_position


def task_groups(cfg: DistillConfig, tasks: TaskSet, row_tasks: torch.Tensor, targets: torch.Tensor,
                shape: torch.Size | None = None, keep: torch.Tensor | None = None, ce: bool = True) -> list[tuple[torch.Tensor, float, float]]:
    """(targets with only task k's positions kept, ce_weight_k, kd_weight_k) for each task in the micro-batch;
    `shape` is the batch's [B, T] when `targets` holds `keep`'s positions only ([1, N]); `ce=False` zeroes the CE weights (on-policy steps take CE on a separate batch)."""
    where = position_tasks(row_tasks, shape or targets.shape, keep).to(targets.device)
    weights = task_loss_weights(cfg, tasks)
    return [(targets.masked_fill(where != task, IGNORE_INDEX), weights[task][0] if ce else 0.0, weights[task][1])
            for task in row_tasks.unique().tolist()]
