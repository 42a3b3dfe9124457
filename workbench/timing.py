"""Rates from measured intervals, and never from an interval the clock cannot resolve.

A tiny model can finish a call faster than a Python-level timing can tell apart from zero (timer overhead,
scheduler jitter), and `count / seconds` then turns noise into a number such as 24,000,000,000 tokens/s. So:

    seconds, calls = time_calls(lambda: model(x))   # repeats the call until MIN_TIMED_S of wall time has passed
    rate(tokens, seconds)                           # None ("too fast to time") below MIN_RESOLVABLE_S

Every rate that leaves the program (bench JSON, report card, chat stats) goes through `rate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TOO_FAST_TO_TIME = "too fast to time"
# below about a microsecond Python's own timer calls dominate; 1000 ticks also covers a coarse clock
MIN_RESOLVABLE_S = max(1e-6, 1000 * time.get_clock_info("perf_counter").resolution)
# a timed quantity is repeated until this much wall time has passed, so its average is far above the resolution
MIN_TIMED_S = 0.05


def resolvable(seconds: float | None) -> bool:
    """Whether an interval is long enough for a rate or a ratio to mean something."""
    return seconds is not None and seconds >= MIN_RESOLVABLE_S


def rate(count: float, seconds: float | None) -> float | None:
    """`count / seconds`, or None when the interval is below what the clock resolves (report "too fast to time")."""
    if not resolvable(seconds) or count <= 0:
        return None
    return count / seconds


def time_calls(call: Callable[[], object], *, min_seconds: float = MIN_TIMED_S, max_calls: int = 10_000,
               sync: Callable[[], None] = lambda: None) -> tuple[float, int]:
    """Call `call` until `min_seconds` of wall time have passed (at least once, at most `max_calls` times).

    Returns (total seconds, number of calls); `sync` waits for an accelerator before each reading.
    """
    calls, started = 0, time.perf_counter()
    while True:
        call()
        sync()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds or calls >= max_calls:
            return elapsed, calls
