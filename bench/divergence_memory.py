"""Comparison (c): memory of the divergence alone, chunked vs unchunked, at vocab 49152, sequence 2048, batch 4.

"Transient" memory is what the loss needs beyond its inputs (student and teacher logits) and the gradient of the
student logits, which any method must produce. Two measurements:

* exact accounting at the full shape with fake tensors (`torch.distributed._tools.mem_tracker.MemTracker` under
  `FakeTensorMode`): every storage the forward and backward create is counted, nothing is allocated, so the
  unchunked variant's ~10 GiB never touches the machine;
* a real check at a smaller shape in one subprocess per variant: RSS high-water mark (CPU) or
  `torch.cuda.max_memory_allocated` (GPU) minus what was live before the call, so the accounting is tested
  against the allocator.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from bench.common import (
    BenchSettings,
    RssSampler,
    isolated,
    peak_memory_mb,
    ratio,
    reset_peak_memory,
    target,
)

KIND = "forward_kl"


def _loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
    from workbench.engine.losses import divergence

    return divergence(student_logits, teacher_logits, kind=KIND, temperature=2.0, chunk_size=chunk_size)


def fake_accounting(shape: tuple[int, int, int], chunk_size: int | None) -> dict[str, Any]:
    """Exact peak of live storages during forward + backward at `shape`, without allocating them."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    with FakeTensorMode():
        student_logits = torch.randn(*shape, requires_grad=True)
        teacher_logits = torch.randn(*shape)
        tracker = MemTracker()
        tracker.track_external(student_logits, teacher_logits)
        with tracker:
            _loss(student_logits, teacher_logits, chunk_size).backward()
        peak = tracker.get_tracker_snapshot("peak")
    total = sum(v.get("Total", 0) for v in peak.values())
    logits_bytes = 4 * shape[0] * shape[1] * shape[2]
    return _summary(total / 2**20, inputs_mb=2 * logits_bytes / 2**20, grad_mb=logits_bytes / 2**20)


def _summary(peak_mb: float, *, inputs_mb: float, grad_mb: float) -> dict[str, Any]:
    return {
        "peak_mb": round(peak_mb, 1),
        "inputs_mb": round(inputs_mb, 1),
        "logits_grad_mb": round(grad_mb, 1),
        "transient_mb": round(max(peak_mb - inputs_mb - grad_mb, 0.0), 1),
    }


def real_measurement(shape: list[int], chunk_size: int | None, device: str = "cpu") -> dict[str, Any]:
    """Run forward + backward for real at `shape` and measure the memory it added above the two logits."""
    torch.manual_seed(0)
    student_logits = torch.randn(*shape, device=device, requires_grad=True)
    teacher_logits = torch.randn(*shape, device=device)
    logits_mb = student_logits.numel() * 4 / 2**20
    start = time.perf_counter()
    if device.startswith("cuda"):
        reset_peak_memory(device)
        before = torch.cuda.memory_allocated() / 2**20
        _loss(student_logits, teacher_logits, chunk_size).backward()
        added = peak_memory_mb(device) - before
    else:
        with RssSampler() as sampler:
            _loss(student_logits, teacher_logits, chunk_size).backward()
        added = sampler.peak_mb - sampler.start_mb
    result = _summary(added + 2 * logits_mb, inputs_mb=2 * logits_mb, grad_mb=logits_mb)
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    shape = tuple(settings.divergence_shape)
    chunk = settings.divergence_chunk
    result: dict[str, Any] = {"shape": list(shape), "kind": KIND, "chunk_size": chunk}
    try:
        result["accounting"] = {"unchunked": fake_accounting(shape, None), "chunked": fake_accounting(shape, chunk)}
    except Exception as exc:  # noqa: BLE001 - the real check below still runs
        result["accounting"] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    small = [1, max(shape[1] // 4, 8), shape[2]] if settings.device == "cpu" else list(shape)
    small_chunk = max(chunk * small[0] * small[1] // (shape[0] * shape[1]), 1)
    result["real"] = {
        "shape": small,
        "chunk_size": small_chunk,
        "unchunked": isolated(settings, __name__, "real_measurement", shape=small, chunk_size=None,
                              device=settings.device),
        "chunked": isolated(settings, __name__, "real_measurement", shape=small, chunk_size=small_chunk,
                            device=settings.device),
    }
    source = result["accounting"] if "error" not in result["accounting"] else result["real"]
    value = ratio(source["chunked"].get("transient_mb"), source["unchunked"].get("transient_mb"))
    result["transient_ratio"] = value
    result["transient_ratio_real"] = ratio(
        result["real"]["chunked"].get("transient_mb"), result["real"]["unchunked"].get("transient_mb")
    )
    result["targets"] = [
        target(
            "(c) chunked transient memory / unchunked",
            value,
            0.25,
            at_most=True,
            why="the chunked path still materialises float32 [chunk, V] temporaries per chunk",
        )
    ]
    return result
