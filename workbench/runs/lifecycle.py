"""Run lifecycle around the training loop: one run per device (a file lock), graceful stop on SIGINT/SIGTERM.

While a run waits for `<runs_dir>/.lock-<device>` its status stays "queued"; a stop request while queued ends it
as "stopped" without training. A signal sets the stop flag and the status to "stopping"; the loop then writes a
checkpoint and ends as "stopped".
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from workbench.runs.folder import RunFolder


def lock_name(device: str) -> str:
    """The device lock's file name; a sweep training several students at once gives each a slot of its own
    (KD_WORKBENCH_DEVICE_SLOT), so that they share the device on purpose instead of queueing."""
    slot = os.environ.get("KD_WORKBENCH_DEVICE_SLOT", "")
    return ".lock-" + device.replace(":", "") + (f"-slot{slot}" if slot else "")


@contextlib.contextmanager
def device_lock(runs_dir: Path, device: str, stop: threading.Event, poll_s: float = 0.5) -> Iterator[bool]:
    """Hold the device lock; yields False when a stop arrived before the lock was free."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(runs_dir / lock_name(device))
    while True:
        try:
            lock.acquire(timeout=poll_s)
            break
        except Timeout:
            if stop.is_set():
                yield False
                return
    try:
        yield True
    finally:
        lock.release()


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, run: RunFolder | None) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop` (and mark the run stopping); only possible from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        if not stop.is_set() and run is not None:
            state = run.read_status().get("state")
            if state == "running":
                run.update_status(state="stopping")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
