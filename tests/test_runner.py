"""Run processes: folder preparation, queue positions, a failing run's exit code, SIGTERM then SIGKILL on stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for

from workbench.config import DistillConfig
from workbench.errors import UserError
from workbench.runs import process as runner
from workbench.runs.folder import RunFolder, pid_alive, terminal_lines


def _tiny_cfg(teacher: Path, student: Path, data: Path, **train) -> DistillConfig:
    cfg = DistillConfig()
    cfg.models.teacher, cfg.models.student, cfg.data.dataset = str(teacher), str(student), str(data)
    cfg.data.seq_len, cfg.train.batch_size, cfg.train.device = 16, 2, "cpu"
    for key, value in {"steps": 4, "eval_every": 2, "save_every": 2, "warmup_steps": 0, **train}.items():
        setattr(cfg.train, key, value)
    return cfg


def test_prepare_run_writes_config_and_queued_status(tmp_path, tiny_teacher, tiny_student, tiny_text):
    cfg = _tiny_cfg(tiny_teacher, tiny_student, tiny_text)
    run = runner.prepare_run(cfg, tmp_path / "runs")
    status = run.read_status()
    assert status["state"] == "queued" and status["total_steps"] == 4
    saved = DistillConfig.load(run.config_path)
    assert saved.run.name == run.run_id and saved.run.runs_dir == str(tmp_path / "runs")
    assert saved.models.teacher == str(tiny_teacher)
    second = runner.prepare_run(cfg, tmp_path / "runs")
    assert second.run_id != run.run_id


def test_named_run_is_not_overwritten_and_ids_are_checked(tmp_path, tiny_teacher, tiny_student, tiny_text):
    cfg = _tiny_cfg(tiny_teacher, tiny_student, tiny_text)
    cfg.run.name = "mine"
    runner.prepare_run(cfg, tmp_path)
    with pytest.raises(UserError, match="run.name"):
        runner.prepare_run(cfg, tmp_path)
    for bad in ("../mine", "a/b", "..", ".hidden", ""):
        with pytest.raises(UserError, match="run id"):
            runner.find_run(tmp_path, bad)
    with pytest.raises(UserError, match="does not exist"):
        runner.find_run(tmp_path, "other")
    assert runner.find_run(tmp_path, "mine").run_id == "mine"


def _fake_run(root: Path, name: str, state: str, pid: int, created: float) -> RunFolder:
    run = RunFolder(root / name)
    run.path.mkdir(parents=True)
    DistillConfig().save(run.config_path)
    run.update_status(state=state, pid=pid, created=created)
    return run


def test_queue_positions_follow_creation_order(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running = _fake_run(tmp_path, "a", "running", sleeper.pid, 1.0)
        second = _fake_run(tmp_path, "b", "queued", sleeper.pid, 3.0)
        first = _fake_run(tmp_path, "c", "queued", sleeper.pid, 2.0)
        done = _fake_run(tmp_path, "d", "finished", None, 0.5)
        assert runner.queue_position(running.path) == 0
        assert runner.queue_position(first.path) == 1
        assert runner.queue_position(second.path) == 2
        assert runner.queue_position(done.path) is None
        assert runner.latest_run(tmp_path).run_id == "a"
        with pytest.raises(UserError, match="stop it before resuming"):
            runner.resume_run(running.path)
        with pytest.raises(UserError, match="finished"):
            runner.resume_run(done.path)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert runner.queue_position(second.path) is None  # its process is gone: failed (stale), not queued


def test_stop_escalates_to_sigkill_for_a_process_that_ignores_sigterm(tmp_path):
    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
        start_new_session=True, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert stubborn.stdout.readline().strip() == "ready"  # SIGTERM is ignored from here on
        run = _fake_run(tmp_path, "stubborn", "running", stubborn.pid, 1.0)
        status = runner.stop_run(run.path, timeout=1.0, wait=True)
        assert stubborn.wait(timeout=10) == -9
        assert status["state"] == "stopped" and "killed" in status["error"]
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
        stubborn.stdout.close()


def test_failing_run_records_exit_code_and_log(tmp_path, tiny_teacher, tiny_student):
    cfg = _tiny_cfg(tiny_teacher, tiny_student, tmp_path / "missing.txt")
    run_id = runner.start_run(cfg, tmp_path / "runs")
    run = RunFolder(tmp_path / "runs" / run_id)
    wait_for(lambda: run.read_status().get("exit_code") is not None and not pid_alive(run.read_status().get("pid")))
    status = run.read_status()
    assert status["state"] == "failed" and status["exit_code"] != 0
    assert not pid_alive(status["pid"])
    assert "workbench" in run.log_tail() and "train" in run.log_tail()


def test_log_tail_shows_progress_bars_as_a_terminal_does(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.log_path.write_text("start\n  0%| 0/4\r 50%| 2/4\r100%| 4/4\n\x1b[Aeval step 4: loss 1.0\n\n")
    assert terminal_lines(run.log_path.read_bytes().decode()) == ["start", "100%| 4/4", "eval step 4: loss 1.0"]
    assert run.log_tail(2) == "100%| 4/4\neval step 4: loss 1.0"


def test_a_status_update_inside_another_keeps_both_writes_whole(tmp_path, monkeypatch):
    """Stop's SIGTERM handler marks the run stopping while the trainer may be halfway through its own status update
    (between writing its temporary file and renaming it): the outer update must still land, not fail with the inner
    one having renamed its temporary file away."""
    import os

    from workbench.runs import folder

    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.update_status(state="running", step=1)
    real_replace, nested = os.replace, []

    def replace(src, dst):
        if not nested:  # the signal arrives here, once
            nested.append(True)
            run.update_status(state="stopping")
        real_replace(src, dst)

    monkeypatch.setattr(folder.os, "replace", replace)
    run.update_status(step=2)
    status = run.read_status()
    assert status["step"] == 2 and nested
    assert not [p.name for p in run.path.iterdir() if ".tmp-" in p.name], "no temporary file is left behind"
