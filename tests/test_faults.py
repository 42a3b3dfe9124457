"""Faults lose nothing: a SIGKILLed run is reported failed (stale) from its pid, metrics readers skip the torn last
line, and --resume continues from the last checkpoint; a checkpoint write that fails leaves the previous checkpoint
whole; an app killed while a run trains leaves the run training, and a new app finds it and can stop it.
A hub token in the environment of these processes never lands in a run folder.

Covered elsewhere: SIGTERM -> graceful stop with a checkpoint, then resume (test_cli_train.py); NaN loss -> failed
with the last good checkpoint kept (test_trainer.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import torch
from app_helpers import free_port, launched_app
from app_helpers import tiny_config as app_tiny_config
from conftest import wait_for
from engine_helpers import tiny_config

from workbench.config import DistillConfig
from workbench.engine.checkpoint import load_checkpoint
from workbench.engine.trainer import train
from workbench.runs.folder import MetricsReader, RunFolder, pid_alive, read_metrics
from workbench.runs.sinks import ListSink

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hf_faultTestSecretToken0123456789"


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_TOKEN": SECRET, "HUGGING_FACE_HUB_TOKEN": SECRET}


def _assert_no_secret(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"hub token written to {path}"


def _train_steps(run: RunFolder) -> list[int]:
    return [row["step"] for row in read_metrics(run.metrics_path) if row.get("kind") == "train"]


def test_sigkill_is_reported_stale_then_resume_continues(tiny_teacher, tiny_student, tiny_text, tmp_path):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, run={"runs_dir": str(tmp_path / "runs"), "name": "killed"},
                      train={"steps": 2000, "save_every": 3, "eval_every": 10000})
    cfg.save(tmp_path / "run.yaml")
    run = RunFolder(tmp_path / "runs" / "killed")
    with open(tmp_path / "out.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", "--config", str(tmp_path / "run.yaml")],
                                cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (c := run.latest_checkpoint()) and len(_train_steps(run)) > int(c.name[5:]), 90, 0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    status = run.read_status()
    assert status["state"] == "failed" and status["stale"], status
    assert str(status["pid"]) in status["error"]
    with open(run.metrics_path, "ab") as metrics:  # the kind of line a kill in the middle of a write leaves
        metrics.write(b'{"kind": "train", "step": 99999, "total": 1.')
    reader = MetricsReader(run.metrics_path)
    rows = reader.read_new()
    steps = [row["step"] for row in rows if row["kind"] == "train"]
    assert steps == list(range(1, len(steps) + 1)) and 99999 not in steps
    assert reader.read_new() == []  # still waiting for the end of the torn line, not failing on it

    checkpoint = int(run.latest_checkpoint().name[5:])
    resumed_cfg = DistillConfig.load(run.config_path)
    resumed_cfg.train.steps = checkpoint + 3
    result = train(resumed_cfg, run.path, ListSink(), resume=True)
    assert result["state"] == "finished" and run.read_status()["state"] == "finished"
    assert _train_steps(run) == list(range(1, checkpoint + 4))
    assert all(json.loads(line) for line in run.metrics_path.read_text().splitlines())  # the torn line is gone
    _assert_no_secret(run.path)


def test_failed_checkpoint_write_keeps_the_previous_checkpoint(tiny_teacher, tiny_student, tiny_text, tmp_path,
                                                                monkeypatch):
    real_save = torch.save

    def disk_full_at_step_4(obj, target, *args, **kwargs):
        if ".tmp-step-4" in str(target):
            Path(target).write_bytes(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, target, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_step_4)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 6, "save_every": 2, "eval_every": 100})
    run = RunFolder(tmp_path / "run")
    with pytest.raises(OSError, match="No space left"):
        train(cfg, run.path, ListSink())
    status = run.read_status()
    assert status["state"] == "failed" and "No space left" in status["error"] and "step-2" in status["error"]
    assert [p.name for p in run.checkpoints()] == ["step-2"]
    assert load_checkpoint(run.latest_checkpoint())["step"] == 2
    monkeypatch.undo()
    assert train(cfg, run.path, ListSink(), resume=True)["state"] == "finished"
    assert _train_steps(run) == [1, 2, 3, 4, 5, 6]
    assert [p.name for p in run.checkpoints()] == ["step-2", "step-4"]


def _serve_app_process(root: Path, teacher: Path, student: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "workbench", "app", "--port", str(port), "--runs-dir", str(root / "runs"),
               "--exports-dir", str(root / "exports"), "--teacher", str(teacher), "--student", str(student)]
    with open(root / "app.log", "wb") as log:
        app = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}/"

    def answers() -> bool:
        assert app.poll() is None, (root / "app.log").read_text()
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    wait_for(answers, 120, 0.3)
    return app, url


def test_app_killed_while_a_run_trains_then_a_new_app_finds_it(tiny_teacher, tiny_student, tiny_text, tmp_path):
    from gradio_client import Client

    app, url = _serve_app_process(tmp_path, tiny_teacher, tiny_student)
    try:
        cfg = app_tiny_config(tiny_teacher, tiny_student, tiny_text, steps=100000, eval_every=100000, save_every=100000)
        run_id = Client(url, verbose=False).predict(cfg.to_yaml(), api_name="/start_run")
        run = RunFolder(tmp_path / "runs" / run_id)
        wait_for(lambda: len(_train_steps(run)) >= 2, 90, 0.1)
    finally:
        os.killpg(app.pid, signal.SIGKILL)
        app.wait(timeout=30)
    at_kill = len(_train_steps(run))
    pid = run.read_status()["pid"]
    assert pid_alive(pid) and run.read_status()["state"] == "running"
    wait_for(lambda: len(_train_steps(run)) > at_kill + 2, 60, 0.1)  # still training with no app at all

    with launched_app(tmp_path, tiny_teacher, tiny_student) as demo:
        client = Client(demo.local_url, verbose=False)
        listed = {row["run"]: row for row in client.predict(api_name="/list_runs")}
        assert listed[run_id]["status"] == "running"
        status = client.predict(run_id, api_name="/run_status")
        assert status["state"] == "running" and status["step"] > at_kill
        client.predict(run_id, api_name="/stop_run")
        final = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status"))["state"] != "running"
                         and s["state"] != "stopping" and s, 90)
    assert final["state"] == "stopped", final
    assert run.latest_checkpoint() is not None
    wait_for(lambda: not pid_alive(pid), 30, 0.1)  # exits right after writing its final status
    assert _train_steps(run) == list(range(1, len(_train_steps(run)) + 1))
    _assert_no_secret(run.path)
