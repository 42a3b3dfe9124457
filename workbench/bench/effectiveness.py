"""Comparison (d): does distillation help at equal budget? Validation perplexity of the teacher, the undistilled
pruned student, a CE-only student and the KD student, and the share of the CE-only student's gap to the teacher
that KD closes: (ppl_ce − ppl_kd) / (ppl_ce − ppl_teacher).

Both students start from the same pruned weights and train with the `default` preset's settings (loss, lr,
schedule) for the same steps, batch and sequence length; only the loss weights differ (CE-only: ce_weight=1,
every teacher term 0). Perplexity is measured here, the same way for all four models, on the same validation
sequences.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from workbench.bench.common import BenchSettings, isolated, target, torch_dtype
from workbench.config import load_preset


def _base_config(cfg: BenchSettings, precision: str, runs_dir: str) -> dict[str, Any]:
    """The `default` preset (its loss, lr, schedule, batch and budget) on the bench's pair, on
    `effectiveness_dataset` (the CLI fills in the preset's) or else the bench's dataset; the step count and sequence
    length are the preset's unless the bench settings override them."""
    data = load_preset("default").to_dict()
    data["models"].update(teacher=cfg.teacher, student=cfg.student)
    data["data"].update(dataset=cfg.effectiveness_dataset or cfg.dataset,
                        seq_len=cfg.effectiveness_seq_len or data["data"]["seq_len"])
    steps = cfg.effectiveness_steps or data["train"]["steps"]
    data["train"].update(
        steps=steps, warmup_steps=min(data["train"]["warmup_steps"], steps // 5), eval_every=steps,
        save_every=10**6, device=cfg.device, precision=precision, teacher_cache=None,
    )
    data["run"].update(runs_dir=runs_dir, name=None)
    return data


def train_student(settings: dict[str, Any], precision: str, ce_only: bool) -> dict[str, Any]:
    """Train one student with the workbench trainer; returns its folder."""
    from workbench.config import DistillConfig
    from workbench.trainer import train

    cfg = BenchSettings.from_dict(settings)
    runs_dir = Path(cfg.work_dir) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = _base_config(cfg, precision, str(runs_dir))
    if ce_only:
        data["loss"].update(ce_weight=1.0, kd_weight=0.0, hidden_weight=0.0, attn_weight=0.0)
    run_dir = Path(tempfile.mkdtemp(prefix="ce-only-" if ce_only else "kd-", dir=runs_dir))
    summary = train(DistillConfig.from_dict(data), run_dir)
    return {"run_dir": str(run_dir), "student_dir": str(run_dir / "student"), "loss": data["loss"],
            "summary": {k: v for k, v in (summary or {}).items() if isinstance(v, (int, float, str))}}


def perplexities(settings: dict[str, Any], models: dict[str, str], precision: str, sequences: int) -> dict[str, Any]:
    """Validation perplexity (exp of mean next-token CE) of each model on the first validation sequences of the
    split the students trained with (the same data settings, so the same held-out rows)."""
    from workbench.config import DataConfig
    from workbench.data import build_splits
    from workbench.models import load_model, load_tokenizer

    cfg = BenchSettings.from_dict(settings)
    tokenizer = load_tokenizer(cfg.teacher)
    data_cfg = DataConfig(**_base_config(cfg, precision, cfg.work_dir)["data"])
    val = build_splits(data_cfg, tokenizer).val[:sequences]
    result = {"val_sequences": int(len(val)), "val_tokens": int(val.numel())}
    for name, spec in models.items():
        model = load_model(spec, dtype=torch_dtype(precision), device=cfg.device, attn_implementation="sdpa")
        total, count = 0.0, 0
        with torch.inference_mode():
            for start in range(0, len(val), cfg.batch_size):
                ids = val[start : start + cfg.batch_size].to(cfg.device)
                logits = model(input_ids=ids).logits[:, :-1].float()
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum"
                ).item()
                count += ids[:, 1:].numel()
        result[name] = round(math.exp(total / max(count, 1)), 3)
        del model
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    precision = "bf16" if settings.precision == "bf16" else "fp32"
    kd = isolated(settings, __name__, "train_student", settings=settings.to_dict(), precision=precision, ce_only=False)
    ce = isolated(settings, __name__, "train_student", settings=settings.to_dict(), precision=precision, ce_only=True)
    budget = _base_config(settings, precision, settings.work_dir)
    result: dict[str, Any] = {
        "preset": "default", "dataset": budget["data"]["dataset"], "steps": budget["train"]["steps"],
        "preset_steps": load_preset("default").train.steps, "seq_len": budget["data"]["seq_len"],
        "batch_size": budget["train"]["batch_size"], "precision": precision, "kd_run": kd, "ce_run": ce,
    }
    if "error" in kd or "error" in ce:
        result["targets"] = [target("(d) share of the CE-only gap closed by KD", None, 0.5,
                                    why=kd.get("error") or ce.get("error"))]
        return result
    models = {"teacher": settings.teacher, "pruned_student": settings.student, "ce_student": ce["student_dir"],
              "kd_student": kd["student_dir"]}
    ppl = isolated(settings, __name__, "perplexities", settings=settings.to_dict(), models=models,
                   precision=precision, sequences=32 if settings.quick else 64)
    result["perplexity"] = ppl
    share = None
    if "error" not in ppl and ppl["ce_student"] > ppl["teacher"]:
        share = (ppl["ce_student"] - ppl["kd_student"]) / (ppl["ce_student"] - ppl["teacher"])
    result["gap_closed"] = None if share is None else round(share, 3)
    result["targets"] = [target(
        "(d) share of the CE-only student's perplexity gap to the teacher closed by KD", share, 0.5,
        why=(f"budget cut to {result['steps']} of the default preset's {result['preset_steps']} steps at seq_len "
             f"{result['seq_len']}" if result["steps"] < result["preset_steps"] else
             f"KD beat CE-only, but {result['steps']} steps close only part of the gap" if share and share > 0 else
             "KD's soft targets did not beat hard labels at this budget"),
    )]
    return result
