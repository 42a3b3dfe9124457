"""Shared pieces of the benchmarks: settings, isolation of each variant in its own process, memory and timing.

Every variant that reports peak memory runs in a fresh `spawn` subprocess (`isolated`), so the RSS high-water
mark (`ru_maxrss`) belongs to that variant alone; on CUDA the peak is `torch.cuda.max_memory_allocated`.
Only ratios measured in the same invocation are meaningful: the machine's load moves absolute numbers.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import os
import platform
import resource
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import torch

from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT
from workbench.timing import MIN_TIMED_S, rate, time_calls


@dataclass
class BenchSettings:
    """What every comparison shares: the pair, the data shape, the budget, the device and the precision."""

    teacher: str = BUILTIN_TEACHER
    student: str = DEFAULT_STUDENT
    dataset: str = "builtin:chat"
    seq_len: int = 256
    batch_size: int = 4
    steps: int = 12
    warmup_steps: int = 2
    lr: float = 1e-4
    device: str = "cpu"
    precision: str = "auto"
    quick: bool = False
    isolate: bool = True
    work_dir: str = "bench-work"
    effectiveness_steps: int | None = None  # None: the `default` preset's budget
    effectiveness_seq_len: int | None = None
    effectiveness_dataset: str | None = None  # None: `dataset`
    divergence_shape: tuple[int, int, int] = (4, 2048, 49152)
    divergence_chunk: int = 1024
    generate_tokens: int = 32
    app_preset: str = "quick"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchSettings:
        data = dict(data)
        if "divergence_shape" in data:
            data["divergence_shape"] = tuple(data["divergence_shape"])
        return cls(**data)

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.batch_size


def torch_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if precision == "bf16" else torch.float32


def machine_info(device: str) -> dict[str, Any]:
    """Name the machine the numbers came from (CPU model, cores, bf16 support, GPU name)."""
    cpu_model = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu_model in ("", "x86_64"):
                cpu_model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    info = {
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "torch": torch.__version__,
        "load_average": os.getloadavg(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def bf16_matmul_probe(device: str = "cpu", size: int = 2048, repeats: int = 5) -> dict[str, float | None]:
    """GFLOP/s of a square matmul in fp32 and bf16, each the best of `repeats` timings after two warm-up calls
    (the first bf16 call on a CPU builds its kernel): tells whether bf16 pays on this device. Each timing repeats
    the matmul until `MIN_TIMED_S / repeats` has passed, so a small `size` still gives a resolvable interval."""
    speeds: dict[str, float | None] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        for _ in range(2):
            a @ b
        _sync(device)
        timings = [time_calls(lambda a=a, b=b: a @ b, min_seconds=MIN_TIMED_S / repeats, sync=lambda: _sync(device))
                   for _ in range(repeats)]
        rates = [r for r in (rate(2 * size**3 * calls, seconds) for seconds, calls in timings) if r is not None]
        best = max(rates, default=None)
        speeds[f"{name}_gflops"] = round(best / 1e9, 2) if best is not None else None
    speeds["bf16_over_fp32"] = ratio(speeds["bf16_gflops"], speeds["fp32_gflops"])
    return speeds


def training_flops_per_token(teacher: str, student: str) -> dict[str, float]:
    """Matmul FLOPs an off-policy distillation step spends per token, from the two configs (no weights read):
    the student's forward and backward, 6 · (its non-embedding parameters + its output head), and the teacher's
    forward, 2 · (the same for the teacher). Attention's T² terms and the elementwise work are left out, so the
    share of peak computed from it is a lower bound."""
    from transformers import AutoModelForCausalLM

    from workbench.models.loading import count_parameters, load_config

    def matmul_params(spec: str) -> int:
        config = load_config(spec)
        with torch.device("meta"):
            params = count_parameters(AutoModelForCausalLM.from_config(config))
        return params["non_embedding"] + config.vocab_size * config.hidden_size

    student_params, teacher_params = matmul_params(student), matmul_params(teacher)
    return {"student_matmul_params": student_params, "teacher_matmul_params": teacher_params,
            "flops_per_token": 6 * student_params + 2 * teacher_params}


def best_precisions(settings: BenchSettings, probe: dict[str, float]) -> list[str]:
    """Precisions worth running: the one asked for, or on `auto` fp32 plus bf16 where bf16 matmuls are faster."""
    if settings.precision in ("fp32", "bf16"):
        return [settings.precision] if settings.precision == "fp32" else ["fp32", "bf16"]
    if settings.device.startswith("cuda"):
        return ["fp32", "bf16"]
    return ["fp32", "bf16"] if (probe.get("bf16_over_fp32") or 0.0) >= 1.0 else ["fp32"]


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak_memory(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str) -> float:
    """CUDA max allocated on GPU, else this process's RSS high-water mark."""
    if str(device).startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


class RssSampler:
    """Peak RSS over a block, sampled every `interval` seconds by a thread; works inside a long-lived process."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.start_mb = 0.0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, current_rss_mb())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.start_mb = self.peak_mb = current_rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())


def _call_in_child(module: str, function: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = getattr(importlib.import_module(module), function)(**kwargs)
    result.setdefault("peak_rss_mb", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    return result


def isolated(settings: BenchSettings, module: str, function: str, /, **kwargs: Any) -> dict[str, Any]:
    """Run `module.function(**kwargs)` in a fresh process (or in this one when isolation is off).

    A failure becomes `{"error": ...}` so one broken variant does not hide the others.
    """
    try:
        if not settings.isolate:
            result = getattr(importlib.import_module(module), function)(**kwargs)
            result.setdefault("peak_rss_mb", None)
            return result
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_call_in_child, (module, function, kwargs))
    except Exception as exc:  # noqa: BLE001 - reported in the JSON, the bench goes on
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:400]}


def steady_rate(times: list[float], tokens_per_step: int, skip: int) -> float | None:
    """Tokens/s over the steps after the first `skip` (compilation, allocator warm-up), from step end times; None
    when the span is below what the clock resolves."""
    if len(times) < skip + 2:
        skip = 0
    if len(times) < 2:
        return None
    steps = len(times) - 1 - skip
    tokens_per_s = rate(tokens_per_step * steps, times[-1] - times[skip])
    return round(tokens_per_s, 2) if tokens_per_s is not None else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator or math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, 3)


def target(name: str, value: float | None, goal: float, *, at_most: bool = False, why: str = "") -> dict[str, Any]:
    """A target record: the measured value, the goal, whether it is met and by how much it is missed."""
    compare = "<=" if at_most else ">="
    if value is None:
        return {"target": name, "value": None, "goal": goal, "compare": compare, "met": False,
                "why": why or "not measured"}
    met = value <= goal if at_most else value >= goal
    record = {"target": name, "value": round(value, 3), "goal": goal, "compare": compare, "met": met}
    if not met:
        record["missed_by"] = round(abs(value - goal) / abs(goal), 3)  # a share of the goal, whatever its sign
        record["why"] = why
    return record
