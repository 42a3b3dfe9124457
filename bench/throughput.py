"""Comparison (a): distillation training throughput and peak memory on one pair, three tools side by side.

* plain: the reference loop (teacher forward every step, full-vocabulary float32 KL, AdamW), written here;
* trl: TRL's `GKDTrainer` (trl.experimental.gkd in TRL 1.x) off-policy with forward KL (lmbda=0, beta=0);
* workbench: `workbench.engine.trainer.train` on the same pair, data, batch, sequence length, steps and schedule.

Each variant runs in its own process (peak RSS / CUDA max allocated belong to it alone). Tokens/s are student
tokens over the steps after the first `warmup_steps` (timing warm-up; the LR schedule has none). The loss curves
of all three are compared step by step.
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
    steady_rate,
    target,
    training_flops_per_token,
)
from bench.workload import cosine_lambda, forward_kl_full, load_pair, train_rows


def _finish(settings: BenchSettings, times: list[float], losses: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "tokens_per_s": steady_rate(times, settings.tokens_per_step, settings.warmup_steps),
        "step_seconds": [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)],
        "losses": [round(float(v), 5) for v in losses],
        "peak_mem_mb": round(peak_memory_mb(settings.device), 1),
        **extra,
    }


def plain_loop(settings: dict[str, Any]) -> dict[str, Any]:
    """The reference loop, float32 only: what a person writes first."""
    cfg = BenchSettings.from_dict(settings)
    torch.manual_seed(0)
    teacher, student, tokenizer = load_pair(cfg, torch.float32)
    rows = train_rows(cfg, tokenizer, cfg.steps * cfg.batch_size).to(cfg.device)
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_lambda(cfg.steps))
    reset_peak_memory(cfg.device)
    times, losses = [time.perf_counter()], []
    for step in range(cfg.steps):
        input_ids = rows[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        with torch.no_grad():
            teacher_logits = teacher(input_ids=input_ids).logits
        loss = forward_kl_full(student(input_ids=input_ids).logits, teacher_logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        times.append(time.perf_counter())
    return _finish(cfg, times, losses, tool="plain", precision="fp32")


def trl_gkd(settings: dict[str, Any], precision: str, gradient_checkpointing: bool) -> dict[str, Any]:
    """TRL GKDTrainer, off-policy forward KL, the same rows in the same order (sequential sampler)."""
    import transformers
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    cfg = BenchSettings.from_dict(settings)
    torch.manual_seed(0)
    teacher, student, tokenizer = load_pair(cfg, torch.float32)
    rows = train_rows(cfg, tokenizer, cfg.steps * cfg.batch_size)
    times, losses = [], []

    class Clock(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            reset_peak_memory(cfg.device)
            times.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    class SequentialGKD(GKDTrainer):
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    def collate(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        input_ids = torch.tensor([e["input_ids"] for e in examples])
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids.clone()}

    with tempfile.TemporaryDirectory() as out:
        args = GKDConfig(
            output_dir=out, max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.lr,
            lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
            lmbda=0.0, beta=0.0, temperature=1.0, seq_kd=False, logging_steps=1, report_to=[], save_strategy="no",
            bf16=precision == "bf16", gradient_checkpointing=gradient_checkpointing, max_length=cfg.seq_len,
            use_cpu=cfg.device == "cpu", dataloader_num_workers=0, seed=0, disable_tqdm=True,
        )
        trainer = SequentialGKD(
            model=student, teacher_model=teacher, args=args, processing_class=tokenizer, data_collator=collate,
            train_dataset=Dataset.from_dict({"input_ids": rows.tolist()}), callbacks=[Clock()],
        )
        trainer.train()
    return _finish(cfg, times, losses, tool="trl", precision=precision, gradient_checkpointing=gradient_checkpointing,
                   optimizer=args.optim)


def workbench_config(cfg: BenchSettings, precision: str, options: dict[str, Any], runs_dir: str):
    """The DistillConfig that matches the plain loop and the TRL run (forward KL at T=1, no CE, no eval)."""
    from workbench.config import DistillConfig

    return DistillConfig.from_dict(
        {
            "models": {"teacher": cfg.teacher, "student": cfg.student},
            "data": {"dataset": cfg.dataset, "seq_len": cfg.seq_len, **options.pop("data", {})},
            "loss": {"divergence": "forward_kl", "temperature": 1.0, "ce_weight": 0.0, "kd_weight": 1.0,
                     **options.pop("loss", {})},
            "train": {
                "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "warmup_steps": 0,
                "weight_decay": 0.0, "max_grad_norm": 1.0, "eval_every": 10**6, "eval_batches": 1, "save_every": 10**6,
                "log_every": 1, "device": cfg.device, "precision": precision, "seed": 0, **options,
            },
            "run": {"runs_dir": runs_dir},
        }
    )


def workbench_run(settings: dict[str, Any], precision: str, options: dict[str, Any]) -> dict[str, Any]:
    """`workbench.engine.trainer.train` on the shared workload; step times come from the metrics rows' `elapsed`."""
    from workbench.engine.trainer import train

    cfg = BenchSettings.from_dict(settings)
    runs_dir = Path(cfg.work_dir) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="throughput-", dir=runs_dir))
    reset_peak_memory(cfg.device)
    train(workbench_config(cfg, precision, dict(options), str(runs_dir)), run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in rows if r.get("kind") == "train"]
    times = [0.0] + [float(r["elapsed"]) for r in steps]
    losses = [r.get("kd", r.get("total")) for r in steps]
    return _finish(cfg, times, losses, tool="workbench", precision=precision, options=options)


def _agreement(reference: list[float], other: list[float]) -> dict[str, Any] | None:
    steps = min(len(reference), len(other))
    if steps == 0:
        return None
    diffs = [abs(a - b) / max(abs(a), 1e-8) for a, b in zip(reference[:steps], other[:steps], strict=True)]
    return {"steps": steps, "max_rel_diff": round(max(diffs), 4), "mean_rel_diff": round(sum(diffs) / steps, 4)}


def variants(settings: BenchSettings, precisions: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, function, kwargs) of every variant this run measures."""
    chosen: list[tuple[str, str, dict[str, Any]]] = [("plain fp32", "plain_loop", {})]
    for precision in precisions:
        chosen.append((f"trl {precision}", "trl_gkd", {"precision": precision, "gradient_checkpointing": False}))
        if not settings.quick:
            chosen.append((f"trl {precision} +gc", "trl_gkd",
                           {"precision": precision, "gradient_checkpointing": True}))
        chosen.append((f"workbench {precision}", "workbench_run", {"precision": precision, "options": {}}))
        chosen.append((f"workbench {precision} +frozen emb", "workbench_run",
                       {"precision": precision, "options": {"freeze_embeddings": True}}))
    return chosen


def _best(results: dict[str, dict[str, Any]], tool: str, precision: str | None = None) -> tuple[str | None, dict]:
    found = [(k, v) for k, v in results.items() if v.get("tool") == tool and v.get("tokens_per_s")
             and (precision is None or v.get("precision") == precision)]
    return max(found, key=lambda kv: kv[1]["tokens_per_s"]) if found else (None, {})


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    wb_label, wb = _best(results, "workbench")
    trl_label, trl = _best(results, "trl")
    wb32_label, wb32 = _best(results, "workbench", "fp32")
    trl32_label, trl32 = _best(results, "trl", "fp32")
    plain = results.get("plain fp32", {})
    curves = {
        "trl_vs_plain": _agreement(plain.get("losses", []), results.get("trl fp32", {}).get("losses", [])),
        "workbench_vs_plain": _agreement(plain.get("losses", []), results.get("workbench fp32", {}).get("losses", [])),
    }
    agree = [c["max_rel_diff"] for c in curves.values() if c]
    summary = {
        "best_workbench": wb_label, "best_trl": trl_label, "best_fp32_workbench": wb32_label,
        "best_fp32_trl": trl32_label,
        "speedup_best": ratio(wb.get("tokens_per_s"), trl.get("tokens_per_s")),
        "speedup_equal_precision_fp32": ratio(wb32.get("tokens_per_s"), trl32.get("tokens_per_s")),
        "speedup_vs_plain": ratio(wb.get("tokens_per_s"), plain.get("tokens_per_s")),
        "memory_ratio_vs_trl": ratio(wb.get("peak_mem_mb"), trl.get("peak_mem_mb")),
        "loss_curves": curves,
    }
    why_speed = ("live teacher: the teacher forward plus student forward/backward are matmul-bound and the same "
                 "work in every tool; bf16 only pays where the CPU has native bf16 (see machine.bf16 probe)")
    summary["targets"] = [
        target("(a) workbench / TRL tokens/s, each at its best", summary["speedup_best"], 1.5, why=why_speed),
        target("(a) workbench / TRL tokens/s at equal precision (fp32)", summary["speedup_equal_precision_fp32"],
               1.15, why=why_speed),
        target("(a) workbench / TRL peak memory", summary["memory_ratio_vs_trl"], 1.0, at_most=True,
               why="see peak_mem_mb per variant"),
        target("(a) loss curves agree (max relative difference vs plain loop)", max(agree) if agree else None, 0.05,
               at_most=True, why="different data order or loss positions between tools"),
    ]
    return summary


def run(settings: BenchSettings) -> dict[str, Any]:
    probe = bf16_matmul_probe(settings.device)
    precisions = best_precisions(settings, probe)
    results: dict[str, dict[str, Any]] = {}
    for label, function, kwargs in variants(settings, precisions):
        started = time.perf_counter()
        results[label] = isolated(settings, __name__, function, settings=settings.to_dict(), **kwargs)
        results[label]["wall_seconds"] = round(time.perf_counter() - started, 1)
        results[label].setdefault("tool", label.split()[0])
    flops = training_flops_per_token(settings.teacher, settings.student)
    roofline = {}
    for label, variant in results.items():
        peak = probe.get(f"{variant.get('precision')}_gflops")
        if variant.get("tokens_per_s") and peak:  # None: not measured, or too fast to time
            roofline[label] = float(f"{variant['tokens_per_s'] * flops['flops_per_token'] / 1e9 / peak:.4g}")
    skipped = [] if "bf16" in precisions else [
        f"bf16 variants skipped: bf16 matmul runs at {probe['bf16_over_fp32']}x fp32 on this {settings.device}"
    ]
    summary = summarize(results)
    best_bf16 = max((share for label, share in roofline.items() if label.startswith("workbench bf16")), default=None)
    summary["targets"].append(target(
        "(a) workbench bf16 off-policy step / bf16 matmul peak (roofline)", best_bf16, 0.5,
        why="the step, not the matmul, is the limit: norms, softmax, the divergence and the optimizer run outside "
            "the matmuls; FLOPs counted from the configs (a lower bound)"))
    return {"bf16_probe": probe, "precisions": precisions, "skipped": skipped, "variants": results,
            "flops": flops, "roofline": roofline, **summary}
