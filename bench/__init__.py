"""`workbench bench`: the performance comparisons, run side by side in one invocation.

    workbench bench [--only throughput,cache,...] [--quick] [--out bench-results.json] [--device cpu|cuda]

One module per comparison, each exposing `run(settings) -> dict` with a `targets` list:
(a) throughput, (b) cache, (c) divergence_memory, (d) effectiveness, (e) inference, (f) app_start, and
(3) levers, each speed lever of a distillation step timed on its own, (8) load, the app's
responsiveness and the run's metrics while five clients poll and chat, (g) onpolicy_throughput, on-policy
steps against TRL's DistillationTrainer, and (h) generation_quality, what students generate after equal minutes of
on-policy, off-policy and sequence-level training, (i) width_depth, width-and-depth students against depth-only
ones of the same size after equal minutes, and (j) deployment, the `chat` preset's student exported to GGUF and
ONNX (float and quantized) and measured in their runtimes beside the teacher in float32 and bf16 PyTorch, and (k)
multitask, four students of the `multitask` preset (chat only, tasks by CE, tasks by KD + CE, the mix) at equal
budget, each scored on every task.
Only ratios measured in one invocation are meaningful; absolute numbers move with the machine's load.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

from bench.common import BenchSettings, machine_info
from workbench.errors import UserError

COMPARISONS = ("throughput", "cache", "divergence_memory", "effectiveness", "inference", "app_start", "levers",
               "load", "onpolicy_throughput", "generation_quality", "width_depth", "deployment", "multitask")
LETTERS = dict(zip(COMPARISONS, "abcdef38ghijk", strict=True))

QUICK = {"steps": 6, "warmup_steps": 2, "generate_tokens": 16}  # (d) keeps the `default` preset budget


def parse_only(only: str | None) -> list[str]:
    """`a,b` / `throughput,cache` -> comparison names; errors name the accepted values."""
    if not only:
        return list(COMPARISONS)
    by_letter = {letter: name for name, letter in LETTERS.items()}
    chosen = []
    for item in (part.strip() for part in only.split(",") if part.strip()):
        name = by_letter.get(item, item.replace("-", "_"))
        if name not in COMPARISONS:
            raise UserError(f"--only: unknown comparison {item!r}; accepted: {', '.join(COMPARISONS)} or a-k, 3, 8")
        chosen.append(name)
    return chosen


def make_settings(*, quick: bool = False, **overrides: Any) -> BenchSettings:
    values = dict(QUICK) if quick else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("precision", "auto") not in ("auto", "fp32", "bf16"):
        raise UserError(f"--precision must be auto, fp32 or bf16, got {values['precision']!r}")
    return BenchSettings(quick=quick, **values)


def run_bench(settings: BenchSettings, only: list[str] | None = None,
              progress: Callable[[str], None] = print, partial: Callable[[dict], Any] | None = None) -> dict[str, Any]:
    """Run the chosen comparisons in order; a failing comparison is recorded, not raised. `partial` gets the
    results after each comparison (the CLI writes them, so an interrupted run keeps what it measured)."""
    results: dict[str, Any] = {
        "machine": machine_info(settings.device),
        "settings": settings.to_dict(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "comparisons": {},
    }
    for name in only or COMPARISONS:
        progress(f"bench ({LETTERS[name]}) {name} ...")
        started = time.perf_counter()
        try:
            block = importlib.import_module(f"bench.{name}").run(settings)
        except Exception as exc:  # noqa: BLE001 - one failing comparison must not hide the rest
            block = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:400], "targets": []}
        block["bench_seconds"] = round(time.perf_counter() - started, 1)
        results["comparisons"][name] = block
        progress(f"bench ({LETTERS[name]}) {name} done in {block['bench_seconds']} s")
        if partial is not None:
            partial(results)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return results
