"""Start, stop, resume and queue training runs as separate OS processes.

    run_id = start_run(cfg, "runs")          # runs/<id>/config.yaml + status queued, then `python -m workbench train`
    queue_position(Path("runs") / run_id)    # 0 while it trains, n while n-1 runs wait ahead of it, None when done
    stop_run(Path("runs") / run_id)          # SIGTERM to its process group (graceful, checkpoint saved), SIGKILL later
    resume_run(Path("runs") / run_id)        # `python -m workbench train --resume runs/<id>`

Each run is its own process in its own session (so a crash or a stop never touches the app), with stdout and stderr
appended to the run's `run.log` rather than a pipe nobody reads. The train process takes the device lock itself;
while it waits, its status stays "queued". A thread here reaps the child and records its exit code if the process
died without writing a final state.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from workbench.config import DistillConfig
from workbench.errors import Message, UserError
from workbench.runs.folder import ACTIVE_STATES, RunFolder, list_runs, new_run_id, pid_alive

STOP_TIMEOUT_S = 60.0
FINAL_STATES = ("stopped", "failed", "finished")


def _unique_run_id(cfg: DistillConfig, runs_dir: Path) -> str:
    if cfg.run.name:
        if (runs_dir / cfg.run.name).exists():
            raise UserError(Message("run.name {name!r} is taken in {runs_dir!r}; choose another name or leave it empty",
                                    name=cfg.run.name, runs_dir=str(runs_dir)))
        return cfg.run.name
    base = new_run_id(None)
    run_id, counter = base, 1
    while (runs_dir / run_id).exists():
        counter += 1
        run_id = f"{base}-{counter}"
    return run_id


def prepare_run(cfg: DistillConfig, runs_dir: str | Path) -> RunFolder:
    """Create runs/<id>/ with the resolved config.yaml and a queued status; no process yet."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(Message("run.runs_dir {runs_dir!r} cannot be created: {problem}", runs_dir=str(runs_dir),
                                problem=exc.strerror)) from None
    if not os.access(runs_dir, os.W_OK):
        raise UserError(Message("run.runs_dir {runs_dir!r} is not writable; choose a folder you can write to",
                                runs_dir=str(runs_dir)))
    run_id = _unique_run_id(cfg, runs_dir)
    data = cfg.to_dict()
    data["run"]["name"] = run_id
    data["run"]["runs_dir"] = str(runs_dir)
    resolved = DistillConfig.from_dict(data)
    run = RunFolder(runs_dir / run_id)
    run.path.mkdir()
    resolved.save(run.config_path)
    run.update_status(state="queued", pid=None, created=time.time(), step=0, total_steps=resolved.train.steps)
    return run


def _reap(process: subprocess.Popen, run: RunFolder) -> None:
    """Wait for the child (no zombie left) and record its exit code; a silent death becomes 'failed'."""
    code = process.wait()
    status = run.read_status()
    changes: dict = {"exit_code": code}
    # a stop asked for before the trainer installed its signal handler (while importing) ends the process by the
    # signal itself: that is still a stop, not a failure
    stopped = not code or (status.get("stop_requested") and -code in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL))
    if status.get("state") in ACTIVE_STATES or status.get("stale"):
        changes.update(state="stopped" if stopped else "failed", ended=time.time())
        if not stopped and not status.get("error"):
            changes["error"] = f"the train process exited with code {code}; see run.log"
    if status.get("pid") in (None, process.pid):
        with contextlib.suppress(FileNotFoundError):  # a run folder deleted meanwhile has nothing left to record
            run.update_status(**changes)


def _spawn(run: RunFolder, train_args: list[str]) -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    command = [sys.executable, "-m", "workbench", "train", *train_args]
    with open(run.log_path, "ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
    run.update_status(pid=process.pid, exit_code=None)
    threading.Thread(target=_reap, args=(process, run), daemon=True, name=f"reap-{run.run_id}").start()
    return process.pid


def start_run(cfg: DistillConfig, runs_dir: str | Path) -> str:
    """Prepare the run folder and launch `python -m workbench train --run-dir <dir>`; returns the run id."""
    run = prepare_run(cfg, runs_dir)
    _spawn(run, ["--run-dir", str(run.path.resolve())])
    return run.run_id


def find_run(runs_dir: str | Path, run_id: str) -> RunFolder:
    """The run folder of `run_id`, refusing ids that are not plain folder names."""
    run_id = (run_id or "").strip()
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", "..") or run_id.startswith("."):
        raise UserError(Message("run id must be the name of a run folder, got {run_id!r}", run_id=run_id))
    run = RunFolder(Path(runs_dir) / run_id)
    if not run.config_path.is_file():
        raise UserError(Message("run {run_id!r} does not exist in {runs_dir!r}", run_id=run_id, runs_dir=str(runs_dir)))
    return run


def _signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(pid, sig)
        return True


def _escalate(run: RunFolder, pid: int, timeout: float) -> None:
    # Polled, not psutil.wait_procs: for a run this process started, psutil would reap the child with waitpid and
    # take its exit code from the reaper thread (_reap), which records it in status.json.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    if _signal_group(pid, signal.SIGKILL):
        run.update_status(state="stopped", ended=time.time(), error=f"did not stop within {timeout:.0f} s; killed")


def stop_run(run_dir: str | Path, *, timeout: float = STOP_TIMEOUT_S, wait: bool = False) -> dict:
    """Ask a run to stop: SIGTERM to its process group (the trainer saves a checkpoint and exits), SIGKILL after
    `timeout` seconds. With `wait`, block until it has ended; otherwise escalate in a background thread."""
    run = RunFolder(Path(run_dir))
    status = run.read_status()
    pid = status.get("pid")
    if status.get("state") not in ACTIVE_STATES or not pid_alive(pid):
        if status.get("state") in ACTIVE_STATES:
            return run.update_status(state="stopped", ended=time.time())
        return status
    if status.get("state") != "stopping":
        run.update_status(stop_requested=time.time())
    _signal_group(pid, signal.SIGTERM)
    if wait:
        _escalate(run, pid, timeout)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and run.read_status().get("state") in ACTIVE_STATES:
            time.sleep(0.1)
    else:
        threading.Thread(target=_escalate, args=(run, pid, timeout), daemon=True).start()
    return run.read_status()


def resume_run(run_dir: str | Path) -> int:
    """Continue a stopped or failed run from its last complete checkpoint in a new process; returns its pid."""
    run = RunFolder(Path(run_dir))
    status = run.read_status()
    if status.get("state") in ACTIVE_STATES:
        raise UserError(Message("run {run_id!r} is {state}; stop it before resuming", run_id=run.run_id,
                                state=Message(status["state"])))
    if status.get("state") == "finished":
        raise UserError(Message("run {run_id!r} has finished; start a new run to train further", run_id=run.run_id))
    run.update_status(state="queued", error=None, ended=None, stale=None, stop_requested=None, resumed=time.time())
    return _spawn(run, ["--resume", str(run.path.resolve())])


def active_runs(runs_dir: str | Path) -> list[RunFolder]:
    """Runs whose process is alive and queued, running or stopping, oldest first."""
    found = [run for run in list_runs(runs_dir) if run.read_status().get("state") in ACTIVE_STATES]
    return sorted(found, key=lambda run: run.read_status().get("created") or 0)


def queue_position(run_dir: str | Path) -> int | None:
    """0 while the run trains, n >= 1 while it waits with n-1 queued runs ahead of it, None once it has ended."""
    run = RunFolder(Path(run_dir))
    state = run.read_status().get("state")
    if state in ("running", "stopping"):
        return 0
    if state != "queued":
        return None
    waiting = [
        other
        for other in active_runs(run.path.parent)
        if other.read_status().get("state") == "queued"
    ]
    ids = [other.run_id for other in waiting]
    return ids.index(run.run_id) + 1 if run.run_id in ids else 1


def latest_run(runs_dir: str | Path) -> RunFolder | None:
    """The run to show after a page reload: the oldest active one, else the newest run."""
    active = [run for run in active_runs(runs_dir) if run.read_status().get("state") != "queued"]
    if active:
        return active[0]
    runs = list_runs(runs_dir)
    return runs[0] if runs else None
