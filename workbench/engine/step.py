"""One optimizer step and one evaluation: the loss math of a distillation step, separate from the run lifecycle.

A step's loss is w_ce·CE + w_kd·divergence + w_hidden·Σ hidden + w_attn·Σ attention. CE and the divergence are
summed over valid tokens and divided by the global count of valid tokens of the whole step (every micro-batch on
every process), and the per-position-mean terms are weighted by each micro-batch's share of those tokens, so
batch 1 × accumulation 8 and batch 8 × accumulation 1 give the same gradient, and so do 1 and 2 processes.

An off-policy step reads packed rows of the data (valid tokens: all, or the answers with `data.loss_on: answer`).
An on-policy step (a share `onpolicy.lmbda` of the steps, `workbench.engine.onpolicy`) first samples a completion for each
prompt of each micro-batch (from the student, or from the teacher with `onpolicy.seq_kd`), then takes the
divergence and the layer terms on the completion tokens only; CE, when weighted, is taken on the data's answers to
the same prompts, normalised by their own token count. There the output heads of both models run on the scored
positions only (`head_positions`), so no prompt or padding position gets a row of logits.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from workbench.config import DistillConfig
from workbench.data.splits import Example
from workbench.data.tasks import TaskSet
from workbench.engine.capture import LayerCapture, scored_head
from workbench.engine.genquality import (
    common_log_probs,
    generation_quality,
    protocol_label,
    reverse_kl_rows,
    sample_answers,
    sample_row,
)
from workbench.engine.losses import DivergenceSpec, attention_loss, hidden_state_loss, logit_losses
from workbench.engine.onpolicy import (
    Sampling,
    TokenBatch,
    clip_prompt,
    completion_batch,
    eos_ids,
    is_onpolicy_step,
    pad_id,
    sample_completions,
)
from workbench.engine.scores import next_token_targets
from workbench.engine.task_eval import task_eval
from workbench.engine.task_step import mixture_batch, task_groups
from workbench.engine.teacher_cache import TeacherCache
from workbench.measured import EVAL_ROWS, measured
from workbench.models.vocab import bits_per_byte, perplexity

TERMS = ("ce", "kd", "hidden", "attn")
SHOWN_ANSWERS = 3  # held-out answers shown beside the teacher's in each generation eval


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class TrainingState:
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
    train_mask: torch.Tensor | None = None  # [N_train, L] bool, True where the loss is taken; None = everywhere
    val_mask: torch.Tensor | None = None
    train_examples: list[Example] = field(default_factory=list)  # prompts of on-policy steps
    heldout: list[Example] = field(default_factory=list)  # prompts of the generation eval
    sampler: torch.Generator | None = None  # draws on-policy samples; its state goes into checkpoints
    last_sample: dict | None = None  # latest on-policy answer with per-token reverse KL (main process)
    teacher_answers: list[list[int]] | None = None  # the teacher's answers to the first held-out prompts
    pairing: Any = None  # workbench.engine.tokenizer_pairing.Pairing: padded logits, or two tokenizers
    signal: Any = None  # workbench.engine.teachers: the teacher behind one interface (live, cached, other tokenizer)
    tasks: TaskSet | None = None  # data.tasks: the rows above are every task's, side by side
    task_cache: dict = field(default_factory=dict)  # per-task eval results that do not change (the teacher's)

    def close(self) -> None:
        """Take the layer hooks off the teacher and the student (idempotent)."""
        if self.teacher_capture is not None:
            self.teacher_capture.close()
        self.accelerator.unwrap_model(self.module).capture.close()


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


@dataclass
class MicroBatch:
    """One micro-batch: the rows the divergence and layer terms are taken on, and where CE is taken when it is not
    the same rows (on-policy steps: the data's answers to the sampled prompts)."""

    scored: TokenBatch
    indices: torch.Tensor  # rows of the train split (packed rows, or examples on on-policy steps)
    ce: TokenBatch | None = None
    prompt_lens: list[int] = field(default_factory=list)  # on-policy only: where each completion starts
    tasks: torch.Tensor | None = None  # [B] task id of each row (data.tasks); None: one task


def packed_batch(state: TrainingState, indices: torch.Tensor, tasks: torch.Tensor | None = None) -> MicroBatch:
    input_ids = state.train_ids[indices]
    mask = state.train_mask[indices] if state.train_mask is not None else None
    return MicroBatch(TokenBatch(input_ids, next_token_targets(input_ids, mask)), indices, tasks=tasks)


def head_positions(state: TrainingState, batch: MicroBatch, targets: torch.Tensor) -> torch.Tensor | None:
    """Where the output heads run: on an on-policy micro-batch with a live teacher, the completion tokens only
    ([B, T] bool; the logits then come out [1, N, V]); None (every position) otherwise."""
    if not batch.prompt_lens or not state.signal.restricts_heads:
        return None
    return targets != -100


def _answer_ce(cfg: DistillConfig, state: TrainingState, batch: TokenBatch, row_tasks: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed CE, the same weighted by loss.ce_weight or each row's task CE weight) of the student on the data's
    answers (on-policy steps with a CE weight)."""
    student = state.accelerator.unwrap_model(state.module).student
    targets = batch.targets.to(state.accelerator.device)
    keep = targets != -100  # the answer tokens: the head runs on those positions only
    with state.accelerator.autocast(), scored_head(student, keep):
        logits = student(input_ids=batch.input_ids.to(state.accelerator.device), use_cache=False).logits
    kept = targets[keep].unsqueeze(0)
    groups = [(kept, cfg.loss.ce_weight, 0.0)]
    if row_tasks is not None:
        groups = task_groups(cfg, state.tasks, row_tasks, kept, targets.shape, keep)
    spec = DivergenceSpec(chunk_size=cfg.loss.chunk_size)
    sums = [(logit_losses(logits, group_targets, None, ce_weight=1.0, kd_weight=0.0, spec=spec, reduction="sum").total,
             ce) for group_targets, ce, _ in groups]
    return sum(value for value, _ in sums), sum(ce * value for value, ce in sums)


@torch.no_grad()
def _sample_rkl(logits: torch.Tensor, t_logits: torch.Tensor, targets: torch.Tensor,
                keep: torch.Tensor | None) -> list[float]:
    """Per-token reverse KL(q‖p) at T = 1 on row 0's scored positions, for the live disagreement view. With `keep`
    the logits hold the scored positions only, row 0's first."""
    where = (targets[0] != -100).nonzero().squeeze(1)
    if keep is not None:
        where = torch.arange(where.numel(), device=where.device)
    return reverse_kl_rows(*common_log_probs(logits[0, where], t_logits[0, where])).tolist()


def micro_step(cfg: DistillConfig, state: TrainingState, batch: MicroBatch, scale: float, ce_scale: float = 0.0
               ) -> dict[str, torch.Tensor]:
    """Forward + backward of one micro-batch; returns its detached loss sums (already divided by the step's count).

    `scale` divides the scored rows' sums by the step's global count of scored tokens; `ce_scale` does the same for
    a separate CE batch (on-policy steps)."""
    loss_cfg, device = cfg.loss, state.accelerator.device
    input_ids, targets = batch.scored.input_ids.to(device), batch.scored.targets.to(device)
    keep = head_positions(state, batch, targets)
    with state.accelerator.autocast():
        logits, hidden, attn = state.module(input_ids, keep)
    fused_ce = loss_cfg.ce_weight if batch.ce is None else 0.0
    if batch.tasks is not None and batch.ce is None:
        fused_ce = 1.0  # a flag here: each task's own CE weight applies (`task_groups`)
    scored = targets[keep].unsqueeze(0) if keep is not None else targets  # the head's positions only, with `keep`
    groups = [(scored, fused_ce, loss_cfg.kd_weight)]
    if batch.tasks is not None:
        groups = task_groups(cfg, state.tasks, batch.tasks, scored, targets.shape, keep, ce=fused_ce > 0)
    logit, t_logits = state.signal.logit_losses(logits, input_ids, batch.indices, groups, keep,
                                                need_logits=state.teacher_capture is not None or bool(batch.prompt_lens))
    total = logit.total * scale
    sums = {"ce": logit.ce * scale, "kd": logit.kd * scale}
    if batch.ce is not None:
        ce, weighted_ce = (value * ce_scale for value in _answer_ce(cfg, state, batch.ce, batch.tasks))
        total = total + weighted_ce
        sums["ce"] = ce.detach()
    if batch.prompt_lens and t_logits is not None and state.accelerator.is_main_process:
        start = batch.prompt_lens[0]
        completion = batch.scored.input_ids[0, start:start + int((batch.scored.targets[0] != -100).sum())]
        state.last_sample = {"tokens": completion.tolist(), "rkl": _sample_rkl(logits, t_logits, targets, keep),
                         "index": int(batch.indices[0])}
    mask = targets != -100
    share = scale * float(mask.sum())  # this micro-batch's share of the step, for the per-position mean terms
    hidden_mask = mask.clone()
    if loss_cfg.hidden_skip_first:
        hidden_mask[:, 0] = False
    for term, pairs, weight, fn, kind, term_mask in (
        ("hidden", hidden, loss_cfg.hidden_weight, hidden_state_loss, loss_cfg.hidden_loss, hidden_mask),
        ("attn", attn, loss_cfg.attn_weight, attention_loss, loss_cfg.attn_loss, mask),
    ):
        value = torch.zeros((), device=device)
        for (_, t_layer), student_value in pairs.items():
            teacher_value = getattr(state.teacher_capture, term)[t_layer if term == "hidden" else int(t_layer)]
            value = value + fn(student_value, teacher_value.detach().clone(), kind, mask=term_mask)
        total = total + weight * value * share
        sums[term] = value.detach() * share
    state.accelerator.backward(total)
    return {k: v.detach().float() for k, v in {**sums, "total": total}.items()}


def sampled_batches(cfg: DistillConfig, state: TrainingState, step: int) -> tuple[list[MicroBatch], dict[str, float]]:
    """This process's micro-batches of an on-policy step: prompts of the step's examples with sampled completions
    (the student's, or the teacher's with seq_kd), and the data's answers for CE. Returns (batches, stats)."""
    acc, op = state.accelerator, cfg.onpolicy
    model = state.teacher if op.seq_kd else acc.unwrap_model(state.module).student
    stop, pad = eos_ids(model, state.tokenizer), pad_id(state.tokenizer)
    sampling = Sampling(op.max_new_tokens, op.temperature, op.top_p)
    batches, seconds, sampled, row_tasks = [], 0.0, 0, None
    wants_ce = cfg.loss.ce_weight > 0 if state.tasks is None else any(
        t.config.weights(cfg.loss)[0] > 0 for t in state.tasks.tasks)
    for micro in range(cfg.train.grad_accum):
        if state.tasks is None:
            indices = step_indices(cfg, len(state.train_examples), step, micro, acc.process_index, acc.num_processes)
        else:
            indices, row_tasks = mixture_batch(cfg, state.tasks, step, micro, acc.process_index, acc.num_processes,
                                               prompts=True)
        examples = [state.train_examples[i] for i in indices.tolist()]
        prompts = [clip_prompt(e.prompt_ids, op.max_prompt_tokens) for e in examples]
        started = time.perf_counter()
        with acc.autocast():
            completions = sample_completions(model, prompts, sampling, state.sampler, stop, pad)
        seconds += time.perf_counter() - started
        sampled += sum(len(c) for c in completions)
        ce = completion_batch(prompts, [e.answer_ids for e in examples], pad) if wants_ce else None
        batches.append(MicroBatch(completion_batch(prompts, completions, pad), indices, ce, [len(p) for p in prompts],
                                  row_tasks))
    count = sum(len(b.prompt_lens) for b in batches)
    step_tokens = (sum(sum(b.prompt_lens) for b in batches) + sampled) * acc.num_processes  # an estimate
    return batches, {"gen_seconds": seconds, "gen_tokens": sampled, "completion_len": sampled / max(count, 1),
                     "step_tokens": step_tokens}


def _global_counts(acc, batches: list[MicroBatch]) -> tuple[float, float]:
    """Scored and separate-CE token counts of the whole step (all micro-batches, all processes)."""
    counts = torch.tensor([sum(b.scored.tokens for b in batches), sum(b.ce.tokens if b.ce else 0 for b in batches)],
                          dtype=torch.float64, device=acc.device)
    if acc.num_processes > 1:
        counts = acc.reduce(counts, reduction="sum")
    return float(counts[0]), float(counts[1])


def optimizer_step(cfg: DistillConfig, state: TrainingState, step: int) -> dict[str, float]:
    """All micro-batches of one optimizer step; returns the global loss terms (NonFiniteLoss before any update).

    On-policy steps add `onpolicy` 1, `gen_seconds`, `gen_tokens` and `completion_len` (this process's)."""
    acc, world, rank = state.accelerator, state.accelerator.num_processes, state.accelerator.process_index
    accum, stats = cfg.train.grad_accum, {"onpolicy": 0.0}
    if is_onpolicy_step(cfg.onpolicy.lmbda, cfg.train.seed, step):
        batches, gen_stats = sampled_batches(cfg, state, step)
        stats = {"onpolicy": 1.0, **gen_stats}
    elif state.tasks is not None:
        batches = [packed_batch(state, *mixture_batch(cfg, state.tasks, step, micro, rank, world)) for micro in range(accum)]
    else:
        batches = [packed_batch(state, step_indices(cfg, state.train_ids.shape[0], step, micro, rank, world))
                   for micro in range(accum)]
    if state.train_mask is None and not stats["onpolicy"]:  # every position but the last: the count is known
        scored, ce_count = float(cfg.train.batch_size * accum * world * (state.train_ids.shape[1] - 1)), 0.0
    else:
        scored, ce_count = _global_counts(acc, batches)
    # DDP averages gradients over processes; multiplying by `world` undoes that to keep a global token mean
    scale, ce_scale = world / max(scored, 1.0), world / max(ce_count, 1.0)
    sums = {term: torch.zeros((), device=acc.device) for term in (*TERMS, "total")}
    for micro, batch in enumerate(batches):
        with acc.no_sync(state.module) if micro < accum - 1 else contextlib.nullcontext():
            for term, value in micro_step(cfg, state, batch, scale, ce_scale).items():
                sums[term] += value
    stacked = torch.stack([sums[t] for t in (*TERMS, "total")]) / world
    if world > 1:
        stacked = acc.reduce(stacked, reduction="sum")
    terms = dict(zip((*TERMS, "total"), stacked.tolist(), strict=True))
    w = cfg.loss
    if state.tasks is None:  # the same sum as the loss that was backpropagated, written as the README writes it
        terms["total"] = (w.ce_weight * terms["ce"] + w.kd_weight * terms["kd"] + w.hidden_weight * terms["hidden"]
                          + w.attn_weight * terms["attn"])
    if not all(math.isfinite(v) for v in terms.values()):
        bad = ", ".join(f"{k}={v}" for k, v in terms.items() if not math.isfinite(v))
        raise NonFiniteLoss(f"loss is not finite at step {step + 1} ({bad}); lower train.lr or check the data")
    if stats["onpolicy"] and not any(b.ce is not None for b in batches):
        terms["ce"] = None  # not measured: the sampled rows carry no reference answer to score
    if cfg.train.max_grad_norm > 0:
        acc.clip_grad_norm_(state.module.parameters(), cfg.train.max_grad_norm)
    state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    return {**terms, **stats}


@torch.no_grad()
def evaluate(cfg: DistillConfig, state: TrainingState) -> dict[str, float]:
    """Student CE / perplexity / bits per byte, KL(teacher‖student) at T=1 and top-1 agreement on the validation
    split. With two tokenizers KL is the aligned divergence per student position, top-1 counts the exactly matched
    positions whose argmaxes spell the same string, and eval_exact_share is the share of exactly matched positions."""
    acc = state.accelerator
    student = acc.unwrap_model(state.module).student
    student.eval()
    sums = torch.zeros(7, device=acc.device, dtype=torch.float64)  # ce, kl, top1 hits, tokens, bytes, top1 count,
    # and the teacher's own CE on the same tokens (live teacher, one tokenizer): the Train tab's reference line
    b = cfg.train.batch_size
    batches = min(cfg.train.eval_batches, math.ceil(state.val_ids.shape[0] / b))
    for batch in range(acc.process_index, batches, acc.num_processes):
        indices = torch.arange(batch * b, min((batch + 1) * b, state.val_ids.shape[0]))
        input_ids = state.val_ids[indices].to(acc.device)
        targets = next_token_targets(input_ids)
        with acc.autocast():
            logits = student(input_ids=input_ids, use_cache=False).logits
        mask = targets != -100
        part, compared, teacher_ce = state.signal.eval_sums(logits, input_ids, indices, targets)
        part = part.cpu()
        text_bytes = float(state.pairing.target_bytes[targets[mask].cpu()].sum()) if state.pairing is not None else 0.0
        extra = torch.tensor([text_bytes, compared, teacher_ce], dtype=torch.float64)
        sums += torch.cat([part, extra]).to(sums.device)
    if acc.num_processes > 1:
        sums = acc.reduce(sums, reduction="sum")
    student.train()
    ce, kl, hits, count, text_bytes, compared, teacher_ce = sums.tolist()
    count = max(count, 1.0)
    rows = min(batches * b, state.val_ids.shape[0])
    row = {"eval_loss": ce / count, "eval_ppl": perplexity(ce / count), "eval_kl": kl / count,
           "eval_top1": hits / max(compared, 1.0), "eval_tokens": int(count),
           "measured_on": measured(EVAL_ROWS, rows=rows, tokens=state.val_ids.shape[1],
                                  source=cfg.data.dataset if state.tasks is None else "tasks " + ", ".join(state.tasks.names))}
    if text_bytes > 0:
        row["eval_bpb"] = bits_per_byte(ce, text_bytes)
    if teacher_ce > 0:
        row["eval_teacher_ppl"] = perplexity(teacher_ce / count)
    if state.signal.aligns_spans:  # two tokenizers: KL and top-1 are taken on the exactly matched positions
        row["eval_exact_share"] = compared / count
    if state.tasks is not None and acc.is_main_process:
        row["tasks"] = task_eval(student, state.teacher, state.tokenizer, state.tasks.tasks, rows=cfg.train.eval_batches * b, batch=b,
                                 chunk_size=cfg.loss.chunk_size, teacher_cache=state.task_cache)
    return row


def generation_eval(cfg: DistillConfig, state: TrainingState, step: int) -> tuple[dict, dict] | None:
    """Sample the student's answers to the held-out prompts and score them against the teacher (main process).

    Returns (the `gen_eval` row with three answers beside the teacher's, a `sample` row), or None when there is
    nothing to do: generation eval off, no held-out prompts (plain-text data), or no live teacher."""
    if not cfg.train.gen_eval or not state.heldout or state.teacher is None or not state.accelerator.is_main_process:
        return None
    if not state.signal.scores_answers:
        return None  # the teacher scores answers in the student's token ids: it needs one tokenizer and a model
    acc = state.accelerator
    student = acc.unwrap_model(state.module).student
    prompts = [clip_prompt(e.prompt_ids, cfg.onpolicy.max_prompt_tokens) for e in state.heldout]
    label = protocol_label(len(prompts), cfg.data.dataset)
    student.eval()
    try:
        quality, answers, scores = generation_quality(student, state.teacher, state.tokenizer, prompts, label,
                                                      autocast=acc.autocast)
    finally:
        student.train()
    if state.teacher_answers is None:  # the teacher's answers to the shown prompts do not change during a run
        state.teacher_answers = sample_answers(state.teacher, state.tokenizer, prompts[:SHOWN_ANSWERS], autocast=acc.autocast)
    decode = lambda ids: state.tokenizer.decode(ids, skip_special_tokens=True).strip()  # noqa: E731
    samples = [{"prompt": e.prompt, "student": decode(a), "teacher": decode(t)}
               for e, a, t in zip(state.heldout, answers, state.teacher_answers, strict=False)]
    row = {"kind": "gen_eval", "step": step, **quality.to_dict(), "samples": samples}
    return row, sample_row(state.tokenizer, state.heldout[0].prompt, answers[0], scores[0], step, "eval")
