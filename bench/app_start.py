"""Comparison (f): seconds from Start to the first metric point on the `quick` preset.

Start is what the app's Start button calls: `workbench.runs.process.start_run(cfg, runs_dir)`, which prepares the run
folder and spawns `python -m workbench train --run-dir ...`. The clock stops when the first `train` row appears
in `metrics.jsonl` (what the app's timer would plot). The run is then stopped: only the start-up is measured.
Stages (process start, model load, data, first step) are read from `run.log` / `status.json` when present.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import BenchSettings, target


def measure(settings: BenchSettings, timeout: float = 300.0) -> dict[str, Any]:
    from workbench.config import apply_overrides, load_preset
    from workbench.runs.folder import MetricsReader, RunFolder
    from workbench.runs.process import start_run, stop_run

    runs_dir = Path(settings.work_dir) / "app-runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    cfg = apply_overrides(load_preset(settings.app_preset), [
        f"train.device={settings.device}", f"models.teacher={settings.teacher}",
        f"models.student={settings.student}", f"data.dataset={settings.dataset}",
    ])
    started = time.perf_counter()
    run_id = start_run(cfg, runs_dir)
    folder = RunFolder(runs_dir / run_id)
    reader = None
    first = None
    marks: dict[str, float] = {}
    while time.perf_counter() - started < timeout:
        status = folder.read_status() or {}
        marks.setdefault(f"state_{status.get('state')}", round(time.perf_counter() - started, 2))
        if folder.metrics_path.exists():
            reader = reader or MetricsReader(folder.metrics_path)
            first = next((row for row in reader.read_new() if row.get("kind") == "train"), None)
            if first is not None:
                break
        if status.get("state") in ("failed", "finished", "stopped"):
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    stop_run(folder.path, wait=True)  # the stopped run must not take CPU from the next comparison
    result = {"preset": settings.app_preset, "run_dir": str(folder.path), "state_first_seen_s": marks,
              "first_metric": first, "log_tail": folder.log_tail()[-1500:] if first is None else None}
    result["seconds_to_first_metric"] = round(seconds, 2) if first is not None else None
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    try:
        result = measure(settings)
    except Exception as exc:  # noqa: BLE001 - reported in the JSON
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:400], "seconds_to_first_metric": None}
    result["targets"] = [target(
        "(f) seconds from Start to the first metric point (quick preset)", result.get("seconds_to_first_metric"),
        20.0, at_most=True,
        why=result.get("error") or "process start + imports + model load + data + first step exceed 20 s",
    )]
    return result
