"""Comparison (e): generation speed of the student vs the teacher at batch 1 and 8, time to first token, and the
speedup that the ratio of per-token compute predicts (2 × (non-embedding weights + head) per token).

Greedy decoding with the KV cache, a fixed prompt, `generate_tokens` new tokens; teacher and student alternate
(teacher, student, teacher, student) so a change in machine load hits both, and the faster of the two rounds
counts. Each timing repeats the generation until `workbench.timing.MIN_TIMED_S` of wall time has passed; a rate
whose interval the clock cannot resolve is None with the note "too fast to time", and so is any ratio built on it.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers.generation.streamers import BaseStreamer

from bench.common import BenchSettings, _sync, isolated, ratio, target, torch_dtype
from bench.workload import flops_per_token
from workbench.timing import TOO_FAST_TO_TIME, rate, resolvable, time_calls

PROMPT = (
    "The student model learns from the teacher by matching its next-token distribution over the vocabulary. "
    "Explain in two sentences why a smaller model can generate text faster than a larger one."
)
# a bound on the repeats of one timing (a tiny model on a coarse clock would otherwise repeat for long)
MAX_CALLS = 200


class _StepClock(BaseStreamer):
    """When each decoding step's tokens reach the host (one `put` per step for the whole batch; the first `put`
    is the prompt). Decode time is then read inside one call, not as a difference of two separate timings."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value) -> None:
        if self._prompt_seen:
            self.times.append(time.perf_counter())
        self._prompt_seen = True

    def end(self) -> None:
        pass


def _time_generation(model, input_ids: torch.Tensor, new_tokens: int, device: str) -> dict[str, Any]:
    """Greedy generation of `new_tokens` tokens, repeated until MIN_TIMED_S of wall time has passed.

    Time to first token = start of the call to the first step's tokens; decode = first step to last step, summed
    over the calls. A quantity whose summed interval the clock cannot resolve is None, with a note.
    """
    attention_mask = torch.ones_like(input_ids)
    batch = int(input_ids.shape[0])
    sums = {"ttft": 0.0, "decode": 0.0, "decode_steps": 0, "tokens": 0}

    def generate_once() -> None:
        clock = _StepClock()
        _sync(device)
        start = time.perf_counter()
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, streamer=clock)
        sums["tokens"] += (out.shape[1] - input_ids.shape[1]) * batch
        if clock.times:
            sums["ttft"] += clock.times[0] - start
            sums["decode"] += clock.times[-1] - clock.times[0]
            sums["decode_steps"] += len(clock.times) - 1

    with torch.inference_mode():
        total, calls = time_calls(generate_once, max_calls=MAX_CALLS, sync=lambda: _sync(device))
    ttft = sums["ttft"] / calls if resolvable(sums["ttft"]) else None
    decode_rate = rate(sums["decode_steps"] * batch, sums["decode"])
    timed = {"calls": calls, "ttft_s": round(ttft, 6) if ttft is not None else None,
             "generate_s": round(total / calls, 6) if resolvable(total) else None, "tokens_per_s": _rounded(rate(sums["tokens"], total)),
             "decode_tokens_per_s": _rounded(decode_rate)}
    if ttft is None or decode_rate is None:
        timed["note"] = TOO_FAST_TO_TIME
    return timed


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def measure(settings: dict[str, Any], batch_sizes: list[int]) -> dict[str, Any]:
    """Load both models once and time them alternately at each batch size."""
    from workbench.models.loading import load_model, load_tokenizer

    cfg = BenchSettings.from_dict(settings)
    dtype = torch_dtype("bf16" if cfg.precision == "bf16" else "fp32")
    models = {
        name: load_model(spec, dtype=dtype, device=cfg.device, attn_implementation="sdpa")
        for name, spec in (("teacher", cfg.teacher), ("student", cfg.student))
    }
    tokenizer = load_tokenizer(cfg.teacher)
    prompt_ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"].to(cfg.device)
    result: dict[str, Any] = {"prompt_tokens": int(prompt_ids.shape[1]), "new_tokens": cfg.generate_tokens,
                              "flops_per_token": {n: flops_per_token(m) for n, m in models.items()}}
    for model in models.values():
        _time_generation(model, prompt_ids, 2, cfg.device)  # warm-up: first-call allocations
    for batch in batch_sizes:
        input_ids = prompt_ids.repeat(batch, 1)
        rounds: dict[str, list[dict[str, Any]]] = {"teacher": [], "student": []}
        for _ in range(2):
            for name, model in models.items():
                rounds[name].append(_time_generation(model, input_ids, cfg.generate_tokens, cfg.device))
        result[f"batch_{batch}"] = {name: max(timings, key=lambda x: x["decode_tokens_per_s"] or 0.0)
                                    for name, timings in rounds.items()}
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    batch_sizes = [1, 8]
    result = isolated(settings, __name__, "measure", settings=settings.to_dict(), batch_sizes=batch_sizes)
    if "error" in result:
        return result
    flops = result["flops_per_token"]
    predicted = ratio(flops["teacher"]["flops"], flops["student"]["flops"])
    result["predicted_speedup"] = predicted
    result["targets"] = []
    for batch in batch_sizes:
        row = result[f"batch_{batch}"]
        speedup = ratio(row["student"]["decode_tokens_per_s"], row["teacher"]["decode_tokens_per_s"])
        row["speedup"] = speedup
        row["ttft_speedup"] = ratio(row["teacher"]["ttft_s"], row["student"]["ttft_s"])
        row["share_of_prediction"] = ratio(speedup, predicted)
        result["targets"].append(target(
            f"(e) batch {batch}: student/teacher decode speedup as share of the per-token-compute prediction",
            row["share_of_prediction"], 0.9,
            why="per-token time is not all matmul: the head, sampling and Python overhead per step do not "
                "shrink with fewer layers",
        ))
    return result
