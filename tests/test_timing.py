"""Rates never come from an interval the clock cannot resolve (workbench.timing)."""

from __future__ import annotations

import time

from workbench.timing import MIN_RESOLVABLE_S, rate, resolvable, time_calls


def test_rate_is_none_below_the_clock_resolution():
    assert rate(4, 0.5) == 8.0
    assert rate(4, MIN_RESOLVABLE_S / 10) is None and rate(4, 0.0) is None and rate(4, -1e-3) is None
    assert rate(4, None) is None and rate(0, 1.0) is None
    assert resolvable(0.01) and not resolvable(1e-12)


def test_time_calls_repeats_until_the_interval_is_long_enough():
    calls = []
    seconds, count = time_calls(lambda: calls.append(time.sleep(0.001)), min_seconds=0.01)
    assert seconds >= 0.01 and count == len(calls) and count > 1
    slow, once = time_calls(lambda: time.sleep(0.02), min_seconds=0.01)
    assert once == 1 and slow >= 0.02


def test_time_calls_stops_at_max_calls_on_a_clock_that_does_not_move(monkeypatch):
    monkeypatch.setattr(time, "perf_counter", lambda: 5.0)
    seconds, count = time_calls(lambda: None, max_calls=7)
    assert count == 7 and seconds == 0.0 and rate(count, seconds) is None
