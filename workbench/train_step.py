"""One optimizer step and one evaluation: the loss math of a distillation step, separate from the run lifecycle.

A step's loss is w_ce·CE + w_kd·divergence + w_hidden·Σ hidden + w_attn·Σ attention. CE and the divergence are
summed over valid tokens and divided by the global count of valid tokens of the whole step (every micro-batch on
every process), and the per-position-mean terms are weighted by each micro-batch's share of those tokens, so
batch 1 × accumulation 8 and batch 8 × accumulation 1 give the same gradient, and so do 1 and 2 processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from workbench.capture import LayerCapture
from workbench.config import DistillConfig
from workbench.losses import attention_loss, ce_and_divergence, divergence, hidden_state_loss
from workbench.sparse_losses import ce_and_topk_divergence, topk_divergence
from workbench.teacher_cache import TeacherCache

TERMS = ("ce", "kd", "hidden", "attn")


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class Setup:
    """Everything the loop needs, built once by `setup()`."""

    accelerator: Any
    module: Any  # DistillStudent, possibly wrapped by accelerate
    teacher: Any
    teacher_capture: LayerCapture | None
    cache: TeacherCache | None
    tokenizer: Any
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    optimizer: Any
    scheduler: Any
    precision: str


def step_indices(cfg: DistillConfig, num_train: int, step: int, micro: int, rank: int, world: int) -> torch.Tensor:
    """Row indices of one process's micro-batch: position step·G + micro·(B·P) + rank·B in the seeded order."""
    b = cfg.train.batch_size
    global_batch = b * cfg.train.grad_accum * world
    start = step * global_batch + micro * b * world + rank * b
    positions = torch.arange(start, start + b)
    epochs = positions // num_train
    out = torch.empty_like(positions)
    for epoch in epochs.unique().tolist():
        order = torch.randperm(num_train, generator=torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch))
        chosen = epochs == epoch
        out[chosen] = order[positions[chosen] % num_train]
    return out


def next_token_targets(input_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] -> targets aligned with the logits: position i predicts token i + 1; the last position is ignored."""
    targets = input_ids.roll(-1, dims=1)
    targets[:, -1] = -100
    return targets


def micro_step(cfg: DistillConfig, s: Setup, indices: torch.Tensor, scale: float) -> dict[str, torch.Tensor]:
    """Forward + backward of one micro-batch; returns its detached loss sums (already divided by the step's count)."""
    loss_cfg, device = cfg.loss, s.accelerator.device
    input_ids = s.train_ids[indices].to(device)
    targets = next_token_targets(input_ids)
    with s.accelerator.autocast():
        logits, hidden, attn = s.module(input_ids)
    common = dict(ce_weight=loss_cfg.ce_weight, kd_weight=loss_cfg.kd_weight, kind=loss_cfg.kind,
                  temperature=loss_cfg.temperature, beta=loss_cfg.beta, alpha=loss_cfg.alpha,
                  t2_scale=loss_cfg.t2_scale, chunk_size=loss_cfg.chunk_size, reduction="sum")
    if s.cache is not None:
        top_ids, top_lp, tail = (t.to(device) for t in s.cache.batch("train", indices))
        logit = ce_and_topk_divergence(logits, top_ids, top_lp, tail, targets, **common)
    else:
        t_logits = None
        if loss_cfg.kd_weight > 0 or s.teacher_capture is not None:
            with torch.inference_mode():
                t_logits = s.teacher(input_ids=input_ids, use_cache=False).logits
        logit = ce_and_divergence(logits, t_logits, targets, **common)
    total = logit.total * scale
    sums = {"ce": logit.ce * scale, "kd": logit.kd * scale}
    mask = targets != -100
    share = scale * float(mask.sum())  # this micro-batch's share of the step, for the per-position mean terms
    for term, pairs, weight, fn, kind, captured in (
        ("hidden", hidden, loss_cfg.hidden_weight, hidden_state_loss, loss_cfg.hidden_loss, "hidden"),
        ("attn", attn, loss_cfg.attn_weight, attention_loss, loss_cfg.attn_loss, "attn"),
    ):
        value = torch.zeros((), device=device)
        for (_, t_layer), student_value in pairs.items():
            teacher_value = getattr(s.teacher_capture, captured)[t_layer if term == "hidden" else int(t_layer)]
            value = value + fn(student_value, teacher_value.detach().clone(), kind, mask=mask)
        total = total + weight * value * share
        sums[term] = value.detach() * share
    s.accelerator.backward(total)
    return {k: v.detach().float() for k, v in sums.items()}


def optimizer_step(cfg: DistillConfig, s: Setup, step: int) -> dict[str, float]:
    """All micro-batches of one optimizer step; returns the global loss terms (NonFiniteLoss before any update)."""
    acc, world, rank = s.accelerator, s.accelerator.num_processes, s.accelerator.process_index
    accum, tokens_per_seq = cfg.train.grad_accum, s.train_ids.shape[1] - 1
    global_valid = cfg.train.batch_size * accum * world * tokens_per_seq
    scale = world / global_valid  # DDP averages gradients over processes; undo that to keep a global token mean
    sums = {term: torch.zeros((), device=acc.device) for term in TERMS}
    for micro in range(accum):
        indices = step_indices(cfg, s.train_ids.shape[0], step, micro, rank, world)
        context = acc.no_sync(s.module) if micro < accum - 1 else _null()
        with context:
            for term, value in micro_step(cfg, s, indices, scale).items():
                sums[term] += value
    stacked = torch.stack([sums[t] for t in TERMS]) / world
    if world > 1:
        stacked = acc.reduce(stacked, reduction="sum")
    terms = dict(zip(TERMS, stacked.tolist(), strict=True))
    w = cfg.loss
    terms["total"] = (w.ce_weight * terms["ce"] + w.kd_weight * terms["kd"] + w.hidden_weight * terms["hidden"]
                      + w.attn_weight * terms["attn"])
    if not all(math.isfinite(v) for v in terms.values()):
        bad = ", ".join(f"{k}={v}" for k, v in terms.items() if not math.isfinite(v))
        raise NonFiniteLoss(f"loss is not finite at step {step + 1} ({bad}); lower train.lr or check the data")
    if cfg.train.max_grad_norm > 0:
        acc.clip_grad_norm_(s.module.parameters(), cfg.train.max_grad_norm)
    s.optimizer.step()
    s.scheduler.step()
    s.optimizer.zero_grad(set_to_none=True)
    return terms


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@torch.no_grad()
def evaluate(cfg: DistillConfig, s: Setup) -> dict[str, float]:
    """Student CE / perplexity, KL(teacher‖student) at T=1 and top-1 agreement on the validation split."""
    acc = s.accelerator
    student = acc.unwrap_model(s.module).student
    student.eval()
    sums = torch.zeros(4, device=acc.device, dtype=torch.float64)  # ce, kl, top1 hits, tokens
    b = cfg.train.batch_size
    batches = min(cfg.train.eval_batches, math.ceil(s.val_ids.shape[0] / b))
    for batch in range(acc.process_index, batches, acc.num_processes):
        indices = torch.arange(batch * b, min((batch + 1) * b, s.val_ids.shape[0]))
        input_ids = s.val_ids[indices].to(acc.device)
        targets = next_token_targets(input_ids)
        with acc.autocast():
            logits = student(input_ids=input_ids, use_cache=False).logits
        kl_args = dict(kind="forward_kl", temperature=1.0, t2_scale=False, reduction="sum",
                       chunk_size=cfg.loss.chunk_size)
        if s.cache is not None:
            top_ids, top_lp, tail = (t.to(acc.device) for t in s.cache.batch("val", indices))
            kl = topk_divergence(logits, top_ids, top_lp, tail, targets, **kl_args)
            teacher_top1 = top_ids[..., 0].long()
        else:
            t_logits = s.teacher(input_ids=input_ids, use_cache=False).logits
            kl = divergence(logits, t_logits, targets, **kl_args)
            teacher_top1 = t_logits.argmax(-1)
        mask = targets != -100
        ce = torch.nn.functional.cross_entropy(logits.float()[mask], targets[mask], reduction="sum")
        hits = ((logits.argmax(-1) == teacher_top1) & mask).sum()
        sums += torch.stack([ce.double(), kl.double(), hits.double(), mask.sum().double()])
    if acc.num_processes > 1:
        sums = acc.reduce(sums, reduction="sum")
    student.train()
    ce, kl, hits, count = sums.tolist()
    count = max(count, 1.0)
    return {"eval_loss": ce / count, "eval_ppl": math.exp(min(ce / count, 50.0)), "eval_kl": kl / count,
            "eval_top1": hits / count}
