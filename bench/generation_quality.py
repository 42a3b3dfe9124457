"""Comparison (h): what the student generates after equal wall-clock training, on-policy against off-policy.

Three students start from the `chat` preset's student and train for the same number of minutes
(`train.max_minutes`, the preset's own budget unless `BenchSettings.extra["minutes"]` says otherwise):
* on-policy: the `chat` preset as it is;
* off-policy: the same recipe with `onpolicy.lmbda = 0` (the divergence on the data's teacher answers);
* sequence-level KD: CE on the teacher's answers only (`kd_weight 0`, `ce_weight 1`, lmbda 0), which on
  builtin:chat, whose answers the teacher wrote, is distillation through the teacher's samples.
Each run's last `gen_eval` row gives the numbers on the preset's held-out prompts: sequence-level
reverse KL to the teacher on the student's own samples, the teacher's NLL, repeated 4-grams, empty answers and
mean length. The students differ in steps (their steps cost differently), not in minutes.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import BenchSettings, isolated, target

RECIPES = {
    "on-policy (chat preset)": [],
    "off-policy (lmbda 0)": ["onpolicy.lmbda=0"],
    "sequence-level KD (CE on teacher answers)": ["onpolicy.lmbda=0", "loss.kd_weight=0", "loss.ce_weight=1"],
}
NUMBERS = ("gen_rkl", "gen_teacher_nll", "gen_rep4", "gen_empty", "gen_len")


def train_recipe(settings: dict[str, Any], overrides: list[str], minutes: float) -> dict[str, Any]:
    from workbench.config import apply_overrides, load_preset
    from workbench.engine.trainer import train

    cfg = BenchSettings.from_dict(settings)
    runs_dir = Path(cfg.work_dir) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="generation-", dir=runs_dir))
    config = apply_overrides(load_preset("chat"), [*overrides, f"train.max_minutes={minutes}",
                                                   "train.steps=100000", f"train.device={cfg.device}"])
    started = time.perf_counter()
    train(config, run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = [r for r in rows if r.get("kind") == "gen_eval"][-1]
    evals = [r for r in rows if r.get("kind") == "eval"]
    return {"steps": last["step"], "wall_seconds": round(time.perf_counter() - started, 1),
            **{k: last[k] for k in NUMBERS}, "measured_on": last["measured_on"],
            "eval_ppl": evals[-1]["eval_ppl"] if evals else None, "samples": last["samples"]}


def run(settings: BenchSettings) -> dict[str, Any]:
    from workbench.config import load_preset

    minutes = float(settings.extra.get("minutes") or load_preset("chat").train.max_minutes or 8.0)
    if settings.quick:
        minutes = min(minutes, 2.0)
    results = {name: isolated(settings, __name__, "train_recipe", settings=settings.to_dict(), overrides=overrides,
                              minutes=minutes) for name, overrides in RECIPES.items()}
    on, off = results["on-policy (chat preset)"], results["off-policy (lmbda 0)"]
    better = off.get("gen_rkl") / on["gen_rkl"] if on.get("gen_rkl") and off.get("gen_rkl") else None
    return {
        "minutes": minutes, "recipes": results,
        "targets": [
            target("(h) off-policy / on-policy sequence reverse KL at equal minutes", better, 1.0,
                   why="on-policy steps cost more (sampling), so fewer of them fit in the same minutes"),
            target("(h) on-policy repeated 4-grams", on.get("gen_rep4"), 0.05, at_most=True,
                   why="the student still loops; see the samples"),
        ],
    }
