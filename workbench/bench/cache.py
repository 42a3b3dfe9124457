"""Comparison (b): training from the teacher top-k cache vs the live teacher, same pair, data, batch and steps.

Both runs use `workbench.trainer.train` with the throughput workload (forward KL at T=1, no CE) on a data split
limited to the sequences the steps read, so the cache covers exactly what training uses. The cache is built once
by `workbench.teacher_cache.build_cache` (its cost is reported, not counted in the step rate: it is paid once per
dataset and teacher, then every run that trains on the data reads it).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from workbench.bench.common import BenchSettings, isolated, ratio, target
from workbench.bench.throughput import workbench_config

TOP_K = 64


def data_options(cfg: BenchSettings) -> dict[str, Any]:
    """Enough packed sequences for every step's batch after the validation share is held out (val_fraction 0.05)."""
    needed = cfg.steps * cfg.batch_size
    return {"max_sequences": math.ceil(needed / 0.95) + 2}


def build(settings: dict[str, Any], top_k: int) -> dict[str, Any]:
    """Write the cache for the workload's data; returns its folder, size and the seconds it took."""
    from workbench.data import build_splits
    from workbench.models import load_model, load_tokenizer
    from workbench.teacher_cache import build_cache

    cfg = BenchSettings.from_dict(settings)
    config = workbench_config(cfg, "fp32", {"data": data_options(cfg)}, str(Path(cfg.work_dir) / "runs"))
    splits = build_splits(config.data, load_tokenizer(cfg.student))
    teacher = load_model(cfg.teacher, device=cfg.device, attn_implementation="sdpa")
    started = time.perf_counter()
    out = build_cache(teacher, cfg.teacher, splits, top_k, Path(cfg.work_dir) / "teacher-cache", cfg.batch_size,
                      cfg.device)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in out.iterdir())
    tokens = int(splits.train.numel() + splits.val.numel())
    return {"path": str(out), "top_k": top_k, "build_seconds": round(seconds, 1), "tokens": tokens,
            "size_mb": round(size / 2**20, 2), "bytes_per_token": round(size / max(tokens, 1), 1),
            "full_vocab_fp32_bytes_per_token": 4 * teacher.get_output_embeddings().weight.shape[0]}


def run(settings: BenchSettings) -> dict[str, Any]:
    precision = "bf16" if settings.precision == "bf16" else "fp32"
    cache = isolated(settings, __name__, "build", settings=settings.to_dict(), top_k=TOP_K)
    result: dict[str, Any] = {"precision": precision, "cache": cache, "variants": {}}
    if "error" in cache:
        result["targets"] = [target("(b) cached / live-teacher tokens/s", None, 1.5, why=cache["error"])]
        return result
    data = data_options(settings)
    for label, options in (("live teacher", {"data": data}),
                           ("teacher cache", {"data": data, "teacher_cache": cache["path"]})):
        result["variants"][label] = isolated(settings, "workbench.bench.throughput", "workbench_run",
                                             settings=settings.to_dict(), precision=precision, options=options)
    live, cached = result["variants"]["live teacher"], result["variants"]["teacher cache"]
    result["speedup"] = ratio(cached.get("tokens_per_s"), live.get("tokens_per_s"))
    if cached.get("tokens_per_s"):
        # steps after which building the cache has paid for itself, versus training live
        saved_per_step = settings.tokens_per_step * (1 / live["tokens_per_s"] - 1 / cached["tokens_per_s"])
        result["break_even_steps"] = round(cache["build_seconds"] / saved_per_step, 1) if saved_per_step > 0 else None
    result["targets"] = [target(
        "(b) cached / live-teacher tokens/s", result["speedup"], 1.5,
        why=live.get("error") or cached.get("error") or "the student forward/backward dominates once the teacher "
        "forward is gone; the top-k divergence adds a gather per position",
    )]
    return result
