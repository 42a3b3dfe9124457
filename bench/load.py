"""Comparison (8) load: does the app stay responsive, and the run undisturbed, while five clients poll and chat?

    workbench bench --only load            # the quick preset on the settings' pair (the built-in pair by default)
    workbench bench --only load --quick    # a tiny freshly initialised pair from the built-in config, seconds

The app is served the way `workbench app` serves it, in its own process on a loopback port. The same config is
trained twice through `/start_run`: once with one client polling (the reference), once while five `gradio_client`
sessions, each in its own process, poll `/run_status` about four times a second and call `/chat_compare` every
fourth poll. Reported:
`/run_status` latency (p50, p95, max) under load and with one client, `/chat_compare` latency, both runs' tokens/s,
and the largest difference between the two runs' per-step losses (the run is a separate process with its own seed,
so they should be equal). Latency is a measurement, not a pass/fail test: it moves with the machine's load.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import BenchSettings, target
from workbench.config import BUILTIN_TEACHER

CLIENTS = 5
POLL_INTERVAL_S = 0.25
CHAT_EVERY = 4
CHAT_TOKENS = 16
LOSS_KEYS = ("total", "ce", "kd")
TINY = f"{BUILTIN_TEACHER}?fresh&layers=2&hidden=64&heads=4&kv_heads=2"


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bench_config(settings: BenchSettings):
    """The run both passes train: the quick preset on the settings' pair, or a tiny fresh pair with --quick."""
    from workbench.config import apply_overrides, load_preset

    teacher, student = (f"{TINY}&seed=1", f"{TINY}&seed=2") if settings.quick else (settings.teacher, settings.student)
    overrides = [f"models.teacher={teacher}", f"models.student={student}", f"data.dataset={settings.dataset}",
                 f"train.device={settings.device}"]
    if settings.quick:
        overrides += ["train.steps=60", "train.batch_size=2", "train.eval_every=20", "train.save_every=1000"]
    return apply_overrides(load_preset("quick"), overrides)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_app(root: Path, teacher: str, student: str, timeout: float = 180.0) -> tuple[subprocess.Popen, str]:
    """`workbench app` in its own process on a free loopback port; returns (process, url) once it answers."""
    port = _free_port()
    command = [sys.executable, "-m", "workbench", "app", "--port", str(port), "--runs-dir", str(root / "runs"),
               "--exports-dir", str(root / "exports"), "--teacher", teacher, "--student", student]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(root / "app.log", "ab") as log:
        app = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise RuntimeError(f"the app exited with code {app.returncode}; see {root / 'app.log'}")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return app, url
        except OSError:
            time.sleep(0.3)
    app.kill()
    raise RuntimeError(f"the app did not answer within {timeout:.0f} s; see {root / 'app.log'}")


def _reference_run(client, cfg, timeout: float) -> tuple[str, dict, list[float]]:
    """Train `cfg` with one client polling `/run_status` (the unloaded case); returns (run id, status, latencies)."""
    run_id = client.predict(cfg.to_yaml(), api_name="/start_run")
    latencies: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.perf_counter()
        status = client.predict(run_id, api_name="/run_status")
        latencies.append(time.perf_counter() - started)
        if status["state"] in ("finished", "failed", "stopped"):
            return run_id, status, latencies
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"run {run_id} did not end within {timeout:.0f} s")


def client_session(url: str, run_id: str, done, results) -> None:
    """One client in its own process (as five browsers or scripts would be): poll, chat every CHAT_EVERY polls,
    until `done` is set; puts {"status": [s...], "chat": [s...], "error": str | None} on `results`."""
    from gradio_client import Client

    record: dict[str, Any] = {"status": [], "chat": [], "error": None}
    try:
        client = Client(url, verbose=False)
        polls = 0
        while not done.is_set():
            started = time.perf_counter()
            client.predict(run_id, api_name="/run_status")
            record["status"].append(time.perf_counter() - started)
            polls += 1
            if polls % CHAT_EVERY == 0:
                started = time.perf_counter()
                client.predict("Tell me about the sea.", max_new_tokens=CHAT_TOKENS, api_name="/chat_compare")
                record["chat"].append(time.perf_counter() - started)
            time.sleep(POLL_INTERVAL_S)
    except Exception as exc:  # noqa: BLE001 - a failing client is a finding, reported in the results
        record["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    results.put(record)


def _loaded_run(url: str, cfg, timeout: float) -> tuple[str, dict, dict[str, list]]:
    """Train `cfg` while CLIENTS client processes poll and chat; returns (run id, final status, latencies)."""
    from gradio_client import Client

    spawn = multiprocessing.get_context("spawn")
    done, results = spawn.Event(), spawn.Queue()
    run_id = Client(url, verbose=False).predict(cfg.to_yaml(), api_name="/start_run")
    clients = [spawn.Process(target=client_session, args=(url, run_id, done, results), daemon=True)
               for _ in range(CLIENTS)]
    for process in clients:
        process.start()
    watcher = Client(url, verbose=False)
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = watcher.predict(run_id, api_name="/run_status")
        if status["state"] in ("finished", "failed", "stopped"):
            break
        time.sleep(1.0)
    done.set()
    record: dict[str, list] = {"status": [], "chat": [], "errors": []}
    for _ in clients:
        one = results.get(timeout=180)
        record["status"] += one["status"]
        record["chat"] += one["chat"]
        record["errors"] += [one["error"]] if one["error"] else []
    for process in clients:
        process.join(timeout=30)
    return run_id, status, record


def curve_difference(reference: list[dict], loaded: list[dict]) -> dict[str, Any]:
    """Largest absolute difference per loss term between two runs' train rows, step by step."""
    ref = {row["step"]: row for row in reference if row.get("kind") == "train"}
    other = {row["step"]: row for row in loaded if row.get("kind") == "train"}
    steps = sorted(set(ref) & set(other))
    diffs = {key: max((abs(ref[s][key] - other[s][key]) for s in steps), default=None) for key in LOSS_KEYS}
    return {"steps_compared": len(steps), "steps_reference": len(ref), "steps_loaded": len(other),
            "max_abs_diff": diffs, "largest": max((d for d in diffs.values() if d is not None), default=None)}


def _rate(rows: list[dict]) -> float | None:
    rates = [row["tokens_per_s"] for row in rows if row.get("kind") == "train" and row.get("tokens_per_s")]
    return rates[-1] if rates else None


def measure(settings: BenchSettings) -> dict[str, Any]:
    from gradio_client import Client

    from workbench.runs.folder import RunFolder, read_metrics

    root = Path(settings.work_dir) / f"load-{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=True)
    cfg = bench_config(settings)
    timeout = 1800.0
    app, url = serve_app(root, cfg.models.teacher, cfg.models.student)
    try:
        cfg.run.name = "reference"
        reference_id, reference_status, unloaded = _reference_run(Client(url, verbose=False), cfg, timeout)
        cfg.run.name = "loaded"
        loaded_id, loaded_status, record = _loaded_run(url, cfg, timeout)
    finally:
        app.terminate()
        app.wait(timeout=30)
    reference_rows = read_metrics(RunFolder(root / "runs" / reference_id).metrics_path)
    loaded_rows = read_metrics(RunFolder(root / "runs" / loaded_id).metrics_path)
    status, chat = record["status"], record["chat"]
    return {
        "config": {"teacher": cfg.models.teacher, "student": cfg.models.student, "dataset": cfg.data.dataset,
                   "steps": cfg.train.steps, "seq_len": cfg.data.seq_len, "batch_size": cfg.train.batch_size},
        "clients": CLIENTS,
        "states": {"reference": reference_status.get("state"), "loaded": loaded_status.get("state")},
        "unloaded_status_p50_s": percentile(unloaded, 50),
        "unloaded_status_p95_s": percentile(unloaded, 95),
        "status_calls": len(status),
        "status_p50_s": percentile(status, 50),
        "status_p95_s": percentile(status, 95),
        "status_max_s": max(status) if status else None,
        "chat_calls": len(chat),
        "chat_p50_s": percentile(chat, 50),
        "chat_p95_s": percentile(chat, 95),
        "client_errors": record["errors"],
        "tokens_per_s": {"reference": _rate(reference_rows), "loaded": _rate(loaded_rows)},
        "metrics": curve_difference(reference_rows, loaded_rows),
        "work_dir": str(root),
    }


def run(settings: BenchSettings) -> dict[str, Any]:
    try:
        result = measure(settings)
    except Exception as exc:  # noqa: BLE001 - reported in the JSON
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:400]}
    unaffected = (result.get("metrics") or {}).get("largest")
    result["targets"] = [
        target("(load) /run_status p95 latency with 5 clients polling and chatting (s)", result.get("status_p95_s"),
               1.0, at_most=True, why=result.get("error") or "the app answers status calls too slowly under load"),
        target("(load) largest per-step loss difference, loaded vs unloaded run", unaffected, 1e-6, at_most=True,
               why=result.get("error") or "the run's metrics changed under load"),
    ]
    return result
