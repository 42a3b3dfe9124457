"""Decoding speed and memory of one model: greedy tokens/s at batch 1 after the first token, time to first token
(`measure_generation`), and the memory a block of work takes (`PeakMemory`). The report card
(`workbench.analysis.report_card`) and benchmark (j) time every model with them.

    speed = measure_generation(model, tokenizer, "Write a short note.", new_tokens=32)
    with PeakMemory("cpu") as memory:
        model = load()
    memory.peak_mb, memory.end_mb      # the growth at its highest, and still held at the end
"""

from __future__ import annotations

import threading
import time

import psutil
import torch
from transformers.generation.streamers import BaseStreamer

from workbench.timing import rate


class _TokenClock(BaseStreamer):
    """Records the time of each generated token (the first `put` is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.times.extend([time.perf_counter()] * int(value.numel()))

    def end(self) -> None:
        pass


class PeakMemory:
    """Peak memory growth (MB) inside a `with` block: CUDA allocator peak on a GPU, sampled process RSS on the CPU;
    `end_mb` is the growth still held when the block ends (a model just loaded)."""

    def __init__(self, device: str, interval_s: float = 0.002):
        self.cuda = str(device).startswith("cuda")
        self.interval_s = interval_s
        self.peak_mb = self.end_mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        self._process = psutil.Process()
        self._base = self._peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(self.interval_s):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_mb = (torch.cuda.max_memory_allocated() - self._base) / 2**20
            self.end_mb = (torch.cuda.memory_allocated() - self._base) / 2**20
            return
        self._done.set()
        self._thread.join()
        end = self._process.memory_info().rss
        self._peak = max(self._peak, end)
        self.peak_mb = (self._peak - self._base) / 2**20
        self.end_mb = (end - self._base) / 2**20


def _prompt_ids(tokenizer, prompt: str) -> dict:
    from workbench.data.chat_format import prompt_text

    return tokenizer(prompt_text(tokenizer, prompt), return_tensors="pt", add_special_tokens=False)


@torch.inference_mode()
def measure_generation(model, tokenizer, prompt: str, new_tokens: int) -> dict[str, float | None]:
    """Greedy decoding of exactly `new_tokens` tokens at batch 1: time to first token and tokens/s after it."""
    device = next(model.parameters()).device
    encoded = {k: v.to(device) for k, v in _prompt_ids(tokenizer, prompt).items()}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    common = dict(do_sample=False, pad_token_id=pad, temperature=None, top_p=None, top_k=None)
    model.generate(**encoded, max_new_tokens=2, min_new_tokens=2, **common)  # warm-up: kernels, caches
    clock = _TokenClock()
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    model.generate(**encoded, max_new_tokens=new_tokens, min_new_tokens=new_tokens, streamer=clock, **common)
    times = clock.times
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "ttft_s": times[0] - started if times else None,
        "gen_tokens_per_s": rate(len(times) - 1, span),
        "gen_tokens": len(times),
    }
