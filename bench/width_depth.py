"""Comparison (i): width against depth at equal parameters and equal minutes.

At two parameter counts (about 0.63 and 0.5 of the teacher's non-embedding parameters) the best width-and-depth
student of the built-in sweeps and the depth-only student of the same size (the layers ShortGPT-style importance
keeps) train with the `chat` preset's recipe for the same number of minutes (`train.max_minutes`, `train.steps` left
open), side by side as a sweep of `workbench.runs.sweep` with two jobs (each on half the cores, so both see the
same machine), and are scored alike by `workbench.analysis.frontier`: reverse KL on
their own answers to the held-out prompts and bits per byte on the held-out rows. A second and third seed run where
the two differ by less than `CLOSE_NATS` in reverse KL (the noise of 24 prompts × ~60 tokens is about 0.05).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import BenchSettings, isolated, target

TEACHER = "builtin:smollm2-135m-instruct"
PAIRS = {  # size: (width-and-depth student, depth-only student of the same non-embedding size)
    "0.63": ("prune=importance&layers=24&mlp=1104", "prune=importance&layers=19"),
    "0.50": ("prune=importance&layers=24&mlp=760", "prune=importance&layers=15"),
}
SEEDS = (0, 1, 2)
CLOSE_NATS = 0.1


def train_and_score(settings: dict[str, Any], size: str, seed: int, minutes: float) -> dict[str, Any]:
    from workbench.analysis.frontier import score_sweep
    from workbench.config import apply_overrides, load_preset
    from workbench.runs.sweep import create_sweep, train_sweep

    cfg = BenchSettings.from_dict(settings)
    runs_dir = Path(cfg.work_dir) / "width-depth"
    recipe = apply_overrides(load_preset("chat"), [
        f"train.max_minutes={minutes}", "train.steps=100000", f"train.seed={seed}", f"train.device={cfg.device}",
        f"run.runs_dir={runs_dir}"])
    students = [f"{TEACHER}?{query}" for query in PAIRS[size]]
    plan = create_sweep(runs_dir, f"size{size}-seed{seed}-{minutes:g}min", recipe, students)
    train_sweep(plan.path, jobs=2)  # the two students at once, each on half the cores: the same machine for both
    frontier = score_sweep(plan.path)
    numbers = {}
    for entry, kind in zip(frontier["students"], ("width", "depth"), strict=True):
        numbers[kind] = {"spec": entry["student_spec"], "gen_rkl": entry["gen_rkl"], "val_bpb": entry["val_bpb"],
                         "gen_rep4": entry["gen_rep4"], "params_non_embedding": entry["params_non_embedding"],
                         "tokens_per_s": entry["gen_tokens_per_s"], "line": entry["line"]}
    return {"size": size, "seed": seed, "minutes": minutes, **numbers, "teacher_bpb": frontier["teacher"]["val_bpb"],
            "measured_on": frontier["settings"]["generation_on"]}


def run(settings: BenchSettings) -> dict[str, Any]:
    minutes = float(settings.extra.get("minutes") or (1.5 if settings.quick else 8.0))
    sizes = list(PAIRS)[-1:] if settings.quick else list(PAIRS)
    results: dict[str, list[dict[str, Any]]] = {}
    targets = []
    for size in sizes:
        runs = [isolated(settings, __name__, "train_and_score", settings=settings.to_dict(), size=size, seed=0,
                         minutes=minutes)]
        close = abs(runs[0]["width"]["gen_rkl"] - runs[0]["depth"]["gen_rkl"]) < CLOSE_NATS
        for seed in SEEDS[1:] if close and not settings.quick else ():
            runs.append(isolated(settings, __name__, "train_and_score", settings=settings.to_dict(), size=size,
                                 seed=seed, minutes=minutes))
        results[size] = runs
        width = sum(r["width"]["gen_rkl"] for r in runs) / len(runs)
        depth = sum(r["depth"]["gen_rkl"] for r in runs) / len(runs)
        targets.append(target(f"(i) width / depth reverse KL at {size}× non-embedding, {minutes:g} min, "
                              f"{len(runs)} seed(s)", width / depth, 1.0, at_most=True,
                              why="reported as it comes out: below 1 means the width-pruned student is closer to "
                                  "the teacher at equal size and minutes"))
    return {"minutes": minutes, "sizes": results, "targets": targets}
