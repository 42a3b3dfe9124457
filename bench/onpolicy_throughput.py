"""Comparison (g): on-policy distillation step throughput against TRL's `DistillationTrainer`, at equal settings.

Both sides train the same student from the same teacher on the same prompts of builtin:chat (the chat template
applied), generating up to `max_new_tokens` tokens at T 1 / top-p 1 for each of `batch_size` prompts per step,
scoring with reverse KL (TRL's beta = 1), at the same precision, lr, schedule and gradient clipping, without
gradient checkpointing. Steps/s is counted after the first `warmup_steps` steps; each side runs in its own process
so peak memory (RSS growth on the CPU) belongs to it alone. Completions end at EOS on both sides, so their mean
length is reported next to each rate. Each side's step is also put against the device's measured matmul peak at
the run's precision (the roofline: matmul FLOPs counted from the configs, `onpolicy_flops_per_step`).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import (
    BenchSettings,
    best_precisions,
    bf16_matmul_probe,
    isolated,
    peak_memory_mb,
    ratio,
    reset_peak_memory,
    target,
    training_flops_per_token,
)

MAX_NEW_TOKENS = 64
BATCH = 8  # prompts per step on both sides


def prompt_dataset(cfg: BenchSettings) -> str:
    """The bench's dataset when it holds prompts, else builtin:chat."""
    from workbench.data.sources import read_pairs

    return cfg.dataset if read_pairs(cfg.dataset) is not None else "builtin:chat"


def _prompts(cfg: BenchSettings, tokenizer, count: int) -> list:
    """TRL's prompt column: chat messages when the tokenizer has a chat template, else the formatted text."""
    from workbench.data.chat_format import has_template, prompt_text
    from workbench.data.sources import read_pairs

    users = [p["messages"][-1]["content"] for p in read_pairs(prompt_dataset(cfg))[:count]]
    if has_template(tokenizer):
        return [[{"role": "user", "content": u}] for u in users]
    return [prompt_text(tokenizer, u) for u in users]


def prompt_tokens(cfg: BenchSettings, count: int) -> float:
    """Mean length in tokens of the first `count` prompts as the student reads them (chat template applied)."""
    from workbench.data.chat_format import prompt_text
    from workbench.models.loading import load_tokenizer

    tokenizer = load_tokenizer(cfg.student)
    texts = [p if isinstance(p, str) else prompt_text(tokenizer, p) for p in _prompts(cfg, tokenizer, count)]
    return sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts) / max(len(texts), 1)


def onpolicy_flops_per_step(flops: dict[str, float], prompt_len: float, completion_len: float) -> float:
    """Matmul FLOPs of one on-policy step of BATCH prompts, from the parameter counts of `training_flops_per_token`:
    sampling (2 · student per prompt token at prefill and per generated token at decode, with the KV cache), then
    the teacher's forward (2 · teacher) and the student's forward and backward (6 · student) over prompt and answer.
    Attention's T² terms and the elementwise work are left out: a lower bound, like (a)'s."""
    student, teacher = flops["student_matmul_params"], flops["teacher_matmul_params"]
    sequence = prompt_len + completion_len
    return BATCH * (2 * student * sequence + (6 * student + 2 * teacher) * sequence)


def _steps_per_s(times: list[float], skip: int) -> float | None:
    steady = times[skip:]
    return (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 and steady[-1] > steady[0] else None


def trl_run(settings: dict[str, Any], precision: str) -> dict[str, Any]:
    """TRL's on-policy DistillationTrainer, reverse KL (beta 1), the same prompts in order."""
    import transformers
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from trl import DistillationConfig, DistillationTrainer

    from bench.workload import load_pair

    cfg = BenchSettings.from_dict(settings)
    torch.manual_seed(0)
    teacher, student, tokenizer = load_pair(cfg, torch.float32)
    times: list[float] = []
    lengths: list[float] = []

    class Clock(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            reset_peak_memory(cfg.device)
            times.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                lengths.append(float(logs["completions/mean_length"]))

    class Sequential(DistillationTrainer):
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    prompts = _prompts(cfg, tokenizer, BATCH * cfg.steps)
    with tempfile.TemporaryDirectory() as out:
        args = DistillationConfig(
            output_dir=out, max_steps=cfg.steps, per_device_train_batch_size=BATCH, learning_rate=cfg.lr,
            lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=1.0,
            temperature=1.0, top_p=1.0, max_completion_length=MAX_NEW_TOKENS, logging_steps=1, report_to=[],
            save_strategy="no", bf16=precision == "bf16", gradient_checkpointing=False, use_cpu=cfg.device == "cpu",
            dataloader_num_workers=0, seed=0, disable_tqdm=True, shuffle_dataset=False,
        )
        trainer = Sequential(model=student, teacher_model=teacher, args=args, processing_class=tokenizer,
                             train_dataset=Dataset.from_dict({"prompt": prompts}), callbacks=[Clock()])
        trainer.train()
    return {"tool": "trl", "precision": precision, "steps_per_s": _steps_per_s(times, cfg.warmup_steps),
            "step_seconds": [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)],
            "completion_len": sum(lengths) / len(lengths) if lengths else None,
            "peak_mem_mb": round(peak_memory_mb(cfg.device), 1)}


def workbench_run(settings: dict[str, Any], precision: str) -> dict[str, Any]:
    """`workbench.engine.trainer.train` with onpolicy.lmbda = 1 on the same prompts, batch, length and precision."""
    from workbench.config import DistillConfig
    from workbench.engine.trainer import train

    cfg = BenchSettings.from_dict(settings)
    runs_dir = Path(cfg.work_dir) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="onpolicy-", dir=runs_dir))
    config = DistillConfig.from_dict({
        "models": {"teacher": cfg.teacher, "student": cfg.student},
        "data": {"dataset": prompt_dataset(cfg), "seq_len": 256, "holdout_prompts": 0},
        "loss": {"divergence": "reverse_kl", "temperature": 1.0, "ce_weight": 0.0, "kd_weight": 1.0},
        "onpolicy": {"lmbda": 1.0, "max_new_tokens": MAX_NEW_TOKENS, "temperature": 1.0, "top_p": 1.0},
        "train": {"steps": cfg.steps, "batch_size": BATCH, "lr": cfg.lr, "warmup_steps": 0, "weight_decay": 0.0,
                  "max_grad_norm": 1.0, "eval_every": 10**6, "eval_batches": 1, "save_every": 10**6,
                  "device": cfg.device, "precision": precision, "seed": 0, "gen_eval": False},
    })
    reset_peak_memory(cfg.device)
    train(config, run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in rows if r.get("kind") == "train"]
    times = [0.0] + [float(r["elapsed"]) for r in steps]
    return {"tool": "workbench", "precision": precision, "steps_per_s": _steps_per_s(times, cfg.warmup_steps),
            "step_seconds": [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)],
            "completion_len": sum(r["completion_len"] for r in steps) / len(steps),
            "gen_share": sum(r["gen_share"] for r in steps) / len(steps),
            "peak_mem_mb": round(peak_memory_mb(cfg.device), 1)}


def run(settings: BenchSettings) -> dict[str, Any]:
    probe = bf16_matmul_probe(settings.device)
    precision = best_precisions(settings, probe)[-1]  # the fastest precision this device runs well, for both
    results = {}
    for label, function in (("trl", "trl_run"), ("workbench", "workbench_run")):
        started = time.perf_counter()
        results[label] = isolated(settings, __name__, function, settings=settings.to_dict(), precision=precision)
        results[label]["wall_seconds"] = round(time.perf_counter() - started, 1)
    wb, trl = results["workbench"], results["trl"]
    speedup = ratio(wb.get("steps_per_s"), trl.get("steps_per_s"))
    flops = training_flops_per_token(settings.teacher, settings.student)
    prompt_len = prompt_tokens(settings, BATCH * settings.steps)
    peak = probe.get(f"{precision}_gflops")
    roofline = {}
    for label, variant in results.items():
        if variant.get("steps_per_s") and variant.get("completion_len") and peak:
            step_flops = onpolicy_flops_per_step(flops, prompt_len, variant["completion_len"])
            roofline[label] = float(f"{variant['steps_per_s'] * step_flops / 1e9 / peak:.4g}")
    memory = ratio(wb.get("peak_mem_mb"), trl.get("peak_mem_mb"))
    why = "both sample with transformers' generate and score with one teacher and one student forward per step"
    return {
        "precision": precision, "batch": BATCH, "max_new_tokens": MAX_NEW_TOKENS, "variants": results,
        "bf16_probe": probe, "flops": flops, "prompt_len": round(prompt_len, 1), "roofline": roofline,
        "speedup": speedup, "memory_ratio_vs_trl": memory,
        "targets": [
            target("(g) on-policy steps/s, workbench / TRL DistillationTrainer", speedup, 1.3, why=why),
            target("(g) on-policy peak memory, workbench / TRL", memory, 1.0, at_most=True, why=why),
        ],
    }
