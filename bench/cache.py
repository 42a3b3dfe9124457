"""Comparison (b): training from the teacher top-k cache vs the live teacher, same pair, data, batch and steps.

Each pair of runs uses `workbench.engine.trainer.train` with the throughput workload (forward KL at T=1, no CE) on a
data split limited to the sequences the steps read, so the cache covers exactly what training uses. Two pairs: at
the trainer's default settings and at the fastest settings of (a); the target is read at whichever of the two
trains faster live, the settings a person tuning for speed would pick. The cache is built once
by `workbench.engine.teacher_cache.build_cache` (its cost is reported, not counted in the step rate: it is paid once per
dataset and teacher, then every run that trains on the data reads it).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from bench.common import BenchSettings, best_precisions, bf16_matmul_probe, isolated, ratio, target
from bench.throughput import workbench_config

TOP_K = 64


def data_options(cfg: BenchSettings) -> dict[str, Any]:
    """Enough packed sequences for every step's batch after the validation share is held out (val_fraction 0.05)."""
    needed = cfg.steps * cfg.batch_size
    return {"max_sequences": math.ceil(needed / 0.95) + 2}


def build(settings: dict[str, Any], top_k: int) -> dict[str, Any]:
    """Write the cache for the workload's data; returns its folder, size and the seconds it took."""
    from workbench.data.splits import build_splits
    from workbench.engine.teacher_cache import build_cache
    from workbench.models.loading import load_model, load_tokenizer

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


def setting_pairs(settings: BenchSettings, probe: dict[str, float]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label suffix, precision, trainer options) of each live/cached pair: the trainer's defaults (fp32 unless
    --precision bf16), and the best settings of (a) for this machine (bf16 where it pays, frozen embedding and
    head)."""
    default = "bf16" if settings.precision == "bf16" else "fp32"
    best = "bf16" if "bf16" in best_precisions(settings, probe) else "fp32"
    return [("", default, {}), (f" {best} +frozen emb", best, {"freeze_embeddings": True})]


def run(settings: BenchSettings) -> dict[str, Any]:
    probe = bf16_matmul_probe(settings.device)
    pairs = setting_pairs(settings, probe)
    cache = isolated(settings, __name__, "build", settings=settings.to_dict(), top_k=TOP_K)
    result: dict[str, Any] = {"bf16_probe": probe, "cache": cache, "variants": {}, "speedups": {}}
    if "error" in cache:
        result["targets"] = [target("(b) cached / live-teacher tokens/s", None, 1.5, why=cache["error"])]
        return result
    data = data_options(settings)
    for suffix, precision, options in pairs:
        for label, extra in ((f"live teacher{suffix}", {}), (f"teacher cache{suffix}", {"teacher_cache": cache["path"]})):
            result["variants"][label] = isolated(
                settings, "bench.throughput", "workbench_run", settings=settings.to_dict(),
                precision=precision, options={"data": data, **options, **extra})
            result["variants"][label]["precision"] = precision
        live, cached = result["variants"][f"live teacher{suffix}"], result["variants"][f"teacher cache{suffix}"]
        result["speedups"][suffix.strip() or "trainer defaults"] = ratio(cached.get("tokens_per_s"),
                                                                         live.get("tokens_per_s"))
    # the target is read at the settings that train fastest live, the ones a person tuning for speed would use
    fastest = max(pairs, key=lambda p: result["variants"][f"live teacher{p[0]}"].get("tokens_per_s") or 0.0)[0]
    live, cached = result["variants"][f"live teacher{fastest}"], result["variants"][f"teacher cache{fastest}"]
    result["settings_of_target"] = fastest.strip() or "trainer defaults"
    result["speedup"] = result["speedups"][result["settings_of_target"]]
    if cached.get("tokens_per_s"):
        # steps after which building the cache has paid for itself, versus training live
        saved_per_step = settings.tokens_per_step * (1 / live["tokens_per_s"] - 1 / cached["tokens_per_s"])
        result["break_even_steps"] = round(cache["build_seconds"] / saved_per_step, 1) if saved_per_step > 0 else None
    result["targets"] = [target(
        f"(b) cached / live-teacher tokens/s ({result['settings_of_target']})", result["speedup"], 1.5,
        why=live.get("error") or cached.get("error") or "what is left once the teacher's forward is gone is the "
        "student's forward and backward, whose full-vocabulary head is as large as the teacher's",
    )]
    return result
