"""Comparison (d): does distillation help at equal budget? Validation perplexity of the teacher, the undistilled
pruned student, a CE-only student and the KD student, and the share of the CE-only student's gap to the teacher
that KD closes: (ppl_ce − ppl_kd) / (ppl_ce − ppl_teacher).

Both students start from the same pruned weights and train with the `default` preset's settings (loss, lr,
schedule) for the same steps, batch and sequence length; only what uses the teacher differs: the CE-only student
has ce_weight=1, every teacher term 0 and no `train.heal_init` (the closed-form fit needs the teacher). Where the
preset heals, two more students (KD without healing, CE-only from the healed student) and the healed student before
training show how much of the result each part brings. Perplexity is measured here, the same way for every model,
on the same validation sequences.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.common import BenchSettings, isolated, target, torch_dtype
from workbench.config import load_preset
from workbench.errors import UserError
from workbench.models.heal import pruned_student_spec


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
    if data["train"]["heal_init"]:  # the preset heals its pruned student; another pair may not be one
        try:
            pruned_student_spec(cfg.student, cfg.teacher)
        except UserError:
            data["train"]["heal_init"] = False
    return data


def train_student(settings: dict[str, Any], precision: str, ce_only: bool, heal: bool) -> dict[str, Any]:
    """Train one student with the workbench trainer (`heal`: keep the preset's train.heal_init); returns its
    folder."""
    from workbench.config import DistillConfig
    from workbench.engine.trainer import train
    from workbench.runs.folder import read_metrics

    cfg = BenchSettings.from_dict(settings)
    runs_dir = Path(cfg.work_dir) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = _base_config(cfg, precision, str(runs_dir))
    if ce_only:
        data["loss"].update(ce_weight=1.0, kd_weight=0.0, hidden_weight=0.0, attn_weight=0.0)
    data["train"]["heal_init"] = data["train"]["heal_init"] and heal
    prefix = ("ce-only" if ce_only else "kd") + ("-healed-" if data["train"]["heal_init"] else "-")
    run_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=runs_dir))
    summary = train(DistillConfig.from_dict(data), run_dir)
    heal = [row for row in read_metrics(run_dir / "metrics.jsonl") if row.get("kind") == "heal"]
    return {"run_dir": str(run_dir), "student_dir": str(run_dir / "student"), "loss": data["loss"],
            "heal_init": data["train"]["heal_init"],
            "heal": {"seconds": round(heal[0]["seconds"], 1), "fits": [
                {k: row[k] for k in ("student_layer", "teacher_layer", "mse_before", "mse_after")} for row in heal]}
            if heal else None,
            "summary": {k: v for k, v in (summary or {}).items() if isinstance(v, (int, float, str))}}


def perplexities(settings: dict[str, Any], models: dict[str, str], precision: str, sequences: int) -> dict[str, Any]:
    """Validation perplexity (exp of mean next-token CE) of each model on the first validation sequences of the
    split the students trained with (the same data settings, so the same held-out rows). The spec `healed` is the
    pruned student after the preset's closed-form healing, before any training."""
    from workbench.config import DistillConfig
    from workbench.data.splits import build_splits
    from workbench.models.heal import heal_for_config
    from workbench.models.loading import load_model, load_tokenizer

    cfg = BenchSettings.from_dict(settings)
    tokenizer = load_tokenizer(cfg.teacher)
    distill_cfg = DistillConfig.from_dict(_base_config(cfg, precision, cfg.work_dir))
    splits = build_splits(distill_cfg.data, tokenizer)
    val = splits.val[:sequences]
    result = {"val_sequences": int(len(val)), "val_tokens": int(val.numel())}
    load = dict(dtype=torch_dtype(precision), device=cfg.device, attn_implementation="sdpa")
    for name, spec in models.items():
        model = load_model(cfg.student if spec == "healed" else spec, **load)
        if spec == "healed":
            heal_for_config(distill_cfg, model, load_model(cfg.teacher, **load), splits.train)
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


def _gap_closed(ppl: dict[str, Any], student: str, baseline: str = "ce_student") -> float | None:
    """(ppl_baseline − ppl_student) / (ppl_baseline − ppl_teacher), or None when the baseline is not behind the
    teacher."""
    if "error" in ppl or student not in ppl or baseline not in ppl or ppl[baseline] <= ppl["teacher"]:
        return None
    return (ppl[baseline] - ppl[student]) / (ppl[baseline] - ppl["teacher"])


def run(settings: BenchSettings) -> dict[str, Any]:
    precision = "bf16" if settings.precision == "bf16" else "fp32"
    budget = _base_config(settings, precision, settings.work_dir)
    heals = bool(budget["train"]["heal_init"])

    def student(ce_only: bool, heal: bool) -> dict[str, Any]:
        return isolated(settings, __name__, "train_student", settings=settings.to_dict(), precision=precision,
                        ce_only=ce_only, heal=heal)

    kd, ce = student(ce_only=False, heal=True), student(ce_only=True, heal=False)
    plain_kd, healed_ce = (student(ce_only=False, heal=False), student(ce_only=True, heal=True)) if heals else (None, None)
    result: dict[str, Any] = {
        "preset": "default", "dataset": budget["data"]["dataset"], "steps": budget["train"]["steps"],
        "preset_steps": load_preset("default").train.steps, "seq_len": budget["data"]["seq_len"],
        "batch_size": budget["train"]["batch_size"], "precision": precision, "heal_init": heals,
        "heal_sequences": budget["train"]["heal_sequences"] if heals else None, "kd_run": kd, "ce_run": ce,
    }
    if heals:
        result.update(kd_unhealed_run=plain_kd, ce_healed_run=healed_ce)
    if "error" in kd or "error" in ce:
        result["targets"] = [target("(d) share of the CE-only gap closed by KD", None, 0.5,
                                    why=kd.get("error") or ce.get("error"))]
        return result
    models = {"teacher": settings.teacher, "pruned_student": settings.student, "ce_student": ce["student_dir"],
              "kd_student": kd["student_dir"]}
    if heals:
        models["healed_student"] = "healed"
        for name, extra in (("kd_unhealed_student", plain_kd), ("ce_healed_student", healed_ce)):
            if "error" not in extra:
                models[name] = extra["student_dir"]
    ppl = isolated(settings, __name__, "perplexities", settings=settings.to_dict(), models=models,
                   precision=precision, sequences=32 if settings.quick else 64)
    result["perplexity"] = ppl
    share = _gap_closed(ppl, "kd_student")
    result["gap_closed"] = None if share is None else round(share, 3)
    if "kd_unhealed_student" in ppl:  # logit KD alone, both students unhealed
        unhealed = _gap_closed(ppl, "kd_unhealed_student")
        result["gap_closed_without_heal"] = None if unhealed is None else round(unhealed, 3)
    if "ce_healed_student" in ppl:  # logit KD alone, both students healed
        healed = _gap_closed(ppl, "kd_student", baseline="ce_healed_student")
        result["gap_closed_vs_healed_ce"] = None if healed is None else round(healed, 3)
    result["targets"] = [target(
        "(d) share of the CE-only student's perplexity gap to the teacher closed by KD", share, 0.5,
        why=(f"budget cut to {result['steps']} of the default preset's {result['preset_steps']} steps at seq_len "
             f"{result['seq_len']}" if result["steps"] < result["preset_steps"] else
             f"KD beat CE-only, but {result['steps']} steps close only part of the gap" if share and share > 0 else
             "KD's soft targets did not beat hard labels at this budget"),
    )]
    return result
