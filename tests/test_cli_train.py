"""`workbench train` from the command line: new run folder, bad input -> one line + exit 2, SIGTERM -> stopped with a
checkpoint, --resume finishes it, a second run on the same device waits queued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import wait_for
from engine_helpers import tiny_config

from workbench.cli import main
from workbench.runs.folder import RunFolder, read_metrics

ROOT = Path(__file__).resolve().parent.parent


def _write_config(tmp_path, tiny_teacher, tiny_student, tiny_text, **train) -> Path:
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train=train, run={"runs_dir": str(tmp_path / "runs")})
    path = tmp_path / "run.yaml"
    cfg.save(path)
    return path


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "workbench", "train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_new_run_folder_is_complete(tiny_teacher, tiny_student, tiny_text, tmp_path, capsys):
    config = _write_config(tmp_path, tiny_teacher, tiny_student, tiny_text)
    assert main(["train", "--config", str(config), "train.steps=3", "run.name=cli-run"]) == 0
    run = RunFolder(tmp_path / "runs" / "cli-run")
    assert str(run.path) in capsys.readouterr().out
    status = run.read_status()
    assert status["state"] == "finished" and status["step"] == 3 and status["total_steps"] == 3
    assert all(status.get(k) for k in ("pid", "created", "started", "ended")) and status["exit_code"] == 0
    assert [r["step"] for r in read_metrics(run.metrics_path) if r["kind"] == "train"] == [1, 2, 3]
    assert "finished" in run.log_path.read_text()
    assert (run.student_dir / "model.safetensors").exists()
    assert "steps: 3" in run.config_path.read_text()


def test_cli_bad_input_is_one_line_exit_2(tiny_teacher, tiny_student, tiny_text, tmp_path, capsys):
    config = _write_config(tmp_path, tiny_teacher, tiny_student, tiny_text)
    assert main(["train", "--config", str(config), "loss.temprature=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss.temprature" in err[0]
    assert main(["train", "--preset", "nope"]) == 2
    assert "preset 'nope' does not exist" in capsys.readouterr().err


def test_sigterm_stops_with_checkpoint_then_resume_finishes(tiny_teacher, tiny_student, tiny_text, tmp_path):
    config = _write_config(tmp_path, tiny_teacher, tiny_student, tiny_text, steps=60, save_every=1000,
                           eval_every=1000)
    run = RunFolder(tmp_path / "runs" / "sig")
    proc = _start(["--config", str(config), "run.name=sig"])
    wait_for(lambda: run.metrics_path.exists() and len(read_metrics(run.metrics_path)) >= 3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    status = run.read_status()
    assert status["state"] == "stopped", status
    checkpoint = run.latest_checkpoint()
    assert checkpoint is not None and int(checkpoint.name[5:]) == status["step"] < 60
    resumed = _start(["--resume", str(run.path), "train.steps=60"])
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert run.read_status()["state"] == "finished"
    steps = [r["step"] for r in read_metrics(run.metrics_path) if r["kind"] == "train"]
    assert steps == list(range(1, 61))


def test_second_run_waits_queued_for_the_device(tiny_teacher, tiny_student, tiny_text, tmp_path):
    from filelock import FileLock

    from workbench.runs.lifecycle import lock_name

    config = _write_config(tmp_path, tiny_teacher, tiny_student, tiny_text, steps=2)
    (tmp_path / "runs").mkdir()
    with FileLock(tmp_path / "runs" / lock_name("cpu")):
        proc = _start(["--config", str(config), "run.name=waiting"])
        run = RunFolder(tmp_path / "runs" / "waiting")
        wait_for(lambda: run.status_path.exists() and run.read_status().get("pid") == proc.pid)
        time.sleep(2.0)
        assert run.read_status()["state"] == "queued"
    proc.communicate(timeout=60)
    assert proc.returncode == 0 and json.loads(run.status_path.read_text())["state"] == "finished"
