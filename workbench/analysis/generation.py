"""Streaming text generation for the side-by-side chat: one model per column, all columns at once.

    settings = SamplingSettings(temperature=0.7, top_p=0.9, max_new_tokens=128, seed=0)
    for text, stats in stream_generate(model, tokenizer, "Hello!", settings):
        ...                                   # text so far; stats.ttft_s, stats.tokens_per_s, stats.tokens
    for columns in compare_stream("Hello!", [teacher_spec, student_spec], settings, pool=pool):
        ...                                   # one ColumnState per spec, refreshed as any column advances

Each generation runs `model.generate` in its own thread and reads text from a `TextIteratorStreamer`. Sampling
uses a per-column `torch.Generator` seeded with `settings.seed` (not the process-wide RNG), so a column's answer
depends only on its model, prompt and settings, whatever runs beside it. Temperature 0 is greedy decoding. The chat
template is applied when the tokenizer has one (`workbench.data.chat_format`, as in training). A `threading.Event` stops every column at the next token.

Stats: time to first token counts from the call to the first generated token (tokenisation and prefill included);
tokens/s is decoding speed after the first token, (tokens - 1) / (last token time - first token time).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from transformers import GenerationConfig, StoppingCriteria, TextIteratorStreamer

from workbench.data.chat_format import prompt_text
from workbench.engine.sampling import SeededSampler
from workbench.errors import UserError
from workbench.timing import rate


@dataclass
class SamplingSettings:
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.temperature) <= 5.0:
            raise UserError(f"temperature must be in [0, 5] (0 = greedy), got {self.temperature!r}")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not 1 <= int(self.max_new_tokens) <= 4096:
            raise UserError(f"max_new_tokens must be an integer in [1, 4096], got {self.max_new_tokens!r}")
        if int(self.seed) < 0:
            raise UserError(f"seed must be an integer >= 0, got {self.seed!r}")
        self.temperature, self.top_p = float(self.temperature), float(self.top_p)
        self.max_new_tokens, self.seed = int(self.max_new_tokens), int(self.seed)


@dataclass
class GenerationStats:
    tokens: int = 0
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    elapsed_s: float = 0.0
    finished: bool = False
    stopped: bool = False

    def line(self, text: Callable[[str], str] = str) -> str:
        """One line for under an answer: 'TTFT 0.21 s · 34.5 tok/s · 64 tokens'; `text` translates its words."""
        over = self.finished or self.stopped  # no more tokens coming: a missing number will not arrive
        ttft = f"{self.ttft_s:.2f} s" if self.ttft_s is not None else ("–" if over else "…")
        speed = f"{self.tokens_per_s:.1f} tok/s" if self.tokens_per_s is not None else (
            "– tok/s" if over else "… tok/s")  # one token, or an interval too short to time
        state = f" · {text('stopped')}" if self.stopped else ("" if self.finished else f" · {text('generating')}")
        count = text("{count} token" if self.tokens == 1 else "{count} tokens").format(count=self.tokens)
        return f"TTFT {ttft} · {speed} · {count}{state}"


class _StopOnEvent(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class _TimedStreamer(TextIteratorStreamer):
    """A TextIteratorStreamer that also records when tokens arrive."""

    def __init__(self, tokenizer, **kwargs):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True, **kwargs)
        self.token_times: list[float] = []

    def put(self, value):
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            self.token_times.extend([time.perf_counter()] * int(value.numel()))
        super().put(value)


def _stats(streamer: _TimedStreamer, started: float, finished: bool, stopped: bool) -> GenerationStats:
    times = streamer.token_times
    stats = GenerationStats(tokens=len(times), elapsed_s=time.perf_counter() - started, finished=finished)
    stats.stopped = stopped
    if times:
        stats.ttft_s = times[0] - started
        span = times[-1] - times[0]
        stats.tokens_per_s = rate(len(times) - 1, span)
    return stats


def stream_generate(
    model,
    tokenizer,
    prompt: str,
    settings: SamplingSettings | None = None,
    *,
    history: list[dict] | None = None,
    stop_event: threading.Event | None = None,
) -> Iterator[tuple[str, GenerationStats]]:
    """Yield (answer so far, stats) as text arrives; the last item has stats.finished set."""
    if not prompt or not prompt.strip():
        raise UserError("prompt is empty; type a message")
    settings = settings or SamplingSettings()
    stop_event = stop_event or threading.Event()
    started = time.perf_counter()
    device = next(model.parameters()).device
    encoded = tokenizer(prompt_text(tokenizer, prompt, history), return_tensors="pt", add_special_tokens=False)
    if encoded["input_ids"].shape[1] == 0:
        encoded = tokenizer(prompt, return_tensors="pt")
    generator = torch.Generator(device="cpu").manual_seed(settings.seed)
    streamer = _TimedStreamer(tokenizer)
    eos = model.generation_config.eos_token_id if model.generation_config else None
    config = GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=False,
        eos_token_id=eos if eos is not None else tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                model.generate(
                    input_ids=encoded["input_ids"].to(device),
                    attention_mask=encoded["attention_mask"].to(device),
                    generation_config=config,
                    logits_processor=[SeededSampler(settings.temperature, settings.top_p, generator)],
                    stopping_criteria=[_StopOnEvent(stop_event)],
                    streamer=streamer,
                )
        except BaseException as exc:  # surfaced to the caller below, after the streamer is released
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=run, daemon=True, name="workbench-generate")
    thread.start()
    text = ""
    for piece in streamer:
        text += piece
        yield text, _stats(streamer, started, False, stop_event.is_set())
    thread.join()
    if failure:
        raise failure[0]
    yield text, _stats(streamer, started, True, stop_event.is_set())


@dataclass
class ColumnState:
    """One chat column: which model, the answer so far, its stats, and an error message if it failed."""

    label: str
    spec: str
    text: str = ""
    stats: GenerationStats = field(default_factory=GenerationStats)
    error: str | None = None
    done: bool = False


def _column_worker(index, spec, prompt, settings, history, pool, stop_event, events: queue.Queue) -> None:
    try:
        model, tokenizer = pool.get(spec)
        for text, stats in stream_generate(model, tokenizer, prompt, settings, history=history, stop_event=stop_event):
            events.put((index, text, stats, None))
    except Exception as exc:  # one failing column must not stop the others
        events.put((index, "", GenerationStats(finished=True), str(exc).splitlines()[0] if str(exc) else repr(exc)))
    finally:
        events.put((index, None, None, None))


def compare_stream(
    prompt: str,
    specs: list[str],
    settings: SamplingSettings | None = None,
    *,
    pool,
    labels: list[str] | None = None,
    histories: list[list[dict]] | None = None,
    stop_event: threading.Event | None = None,
) -> Iterator[list[ColumnState]]:
    """Generate for every spec at once, yielding all columns each time any column has new text."""
    if not prompt or not prompt.strip():
        raise UserError("prompt is empty; type a message")
    if not specs:
        raise UserError("chat needs at least one model column")
    settings = settings or SamplingSettings()
    stop_event = stop_event or threading.Event()
    columns = [ColumnState(label=(labels or specs)[i], spec=spec) for i, spec in enumerate(specs)]
    events: queue.Queue = queue.Queue()
    for i, spec in enumerate(specs):
        history = histories[i] if histories and i < len(histories) else None
        args = (i, spec, prompt, settings, history, pool, stop_event, events)
        threading.Thread(target=_column_worker, args=args, daemon=True, name=f"workbench-chat-{i}").start()
    running = len(specs)
    try:
        while running:
            index, text, stats, error = events.get()
            column = columns[index]
            if text is None and stats is None and error is None:
                column.done = True
                running -= 1
            else:
                column.text, column.stats, column.error = text, stats, error
            yield columns
    finally:
        stop_event.set()  # a closed or cancelled stream stops the threads that are still generating
