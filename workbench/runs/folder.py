"""The run folder: the contract between the trainer, the CLI and the app.

    runs/<run-id>/
        config.yaml      resolved DistillConfig
        status.json      {"state", "pid", "created", "started", "ended", "step", "total_steps", "error", "stage",
                         "stage_started", ...}; stage says what a running run is doing before its first step
        metrics.jsonl    one JSON object per line: {"kind": "train"|"eval", "step", <loss terms>, ...}, and with
                         train.heal_init one {"kind": "heal", "step": 0, "student_layer", "teacher_layer", ...} per fit
        run.log          stdout and stderr of the run process
        checkpoints/     step-N/ folders, written to a temporary name then renamed
        student/         the final student (merged when LoRA was used)
        teacher_prompts.jsonl  with onpolicy.teacher_prompts: {"prompt"} per line, the requests the teacher wrote

Writers replace `status.json` atomically; readers of `metrics.jsonl` keep a byte offset and skip a torn last line.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

STATES = ("queued", "running", "stopping", "stopped", "failed", "finished")
ACTIVE_STATES = ("queued", "running", "stopping")


STAGES = ("loading data", "loading student", "loading teacher", "healing", "first step")
# the long phases between steps and after the last one; "training" again when a step starts
TRAINING_STAGES = ("evaluating", "scoring held-out answers", "saving a checkpoint", "final evaluation",
                   "saving the student")


def run_stage(status: dict[str, Any], trained: bool) -> str:
    """What a run is doing: a loading stage (STAGES) until its first logged step, then "training" or one of the
    phases between steps (TRAINING_STAGES); otherwise its state ("queued", "stopping", "stopped", ...)."""
    state = status.get("state") or "idle"
    if state == "running":
        stage = status.get("stage")
        if trained:
            return stage if stage in TRAINING_STAGES else "training"
        return stage or "starting"
    return state


def atomic_write_text(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, then rename it over `path`. Each write has its own temporary name: a
    signal handler that updates the status in the middle of another update (Stop during a step) cannot take the
    other write's file away."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pid_alive(pid: int | None) -> bool:
    """True when `pid` names a live, non-zombie process on this machine."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint after `step` optimizer steps."""
    return f"step-{step}"


def checkpoint_step(path: str | Path) -> int | None:
    """The step of a checkpoint folder named step-N; None for any other name."""
    number = Path(path).name.removeprefix("step-")
    return int(number) if Path(path).name.startswith("step-") and number.isdigit() else None


def complete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete checkpoints (step-N folders with a COMPLETE marker), oldest first; temporary ones are ignored."""
    if not checkpoints_dir.is_dir():
        return []
    found = [p for p in checkpoints_dir.iterdir()
             if p.is_dir() and checkpoint_step(p) is not None and (p / "COMPLETE").exists()]
    return sorted(found, key=checkpoint_step)


@dataclass
class RunFolder:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "run.log"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def student_dir(self) -> Path:
        return self.path / "student"

    @property
    def teacher_prompts_path(self) -> Path:
        return self.path / "teacher_prompts.jsonl"

    def read_status(self) -> dict[str, Any]:
        """The status, with a process that died without saying so reported as failed (state 'failed', stale)."""
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"state": "failed", "error": "status.json is missing or unreadable", "stale": True}
        if status.get("state") in ACTIVE_STATES and status.get("pid") and not pid_alive(status["pid"]):
            status = {
                **status,
                "state": "failed",
                "stale": True,
                "error": status.get("error") or f"process {status['pid']} ended without updating its status",
            }
        return status

    def update_status(self, **changes: Any) -> dict[str, Any]:
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            status = {}
        status.update(changes)
        status["updated"] = time.time()
        atomic_write_text(self.status_path, json.dumps(status, indent=1))
        return status

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        return complete_checkpoints(self.checkpoints_dir)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 64 * 1024))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(terminal_lines(text)[-lines:])


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal_lines(text: str) -> list[str]:
    """Log text as a terminal shows it: a carriage return redraws its line (progress bars), escape codes vanish,
    blank lines are dropped."""
    shown = []
    for line in _ANSI_ESCAPE.sub("", text).split("\n"):
        redraws = [part for part in line.split("\r") if part.strip()]
        if redraws:
            shown.append(redraws[-1].rstrip())
    return shown


@dataclass
class MetricsReader:
    """Reads new rows of a metrics.jsonl since the last call; a torn (unterminated) last line waits for its end."""

    path: Path
    offset: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        new_rows = []
        for line in chunk[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                new_rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        self.offset += end + 1
        self.rows.extend(new_rows)
        return new_rows


def read_metrics(path: Path) -> list[dict[str, Any]]:
    reader = MetricsReader(Path(path))
    reader.read_new()
    return reader.rows


def new_run_id(name: str | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{name}" if name else f"run-{stamp}-{os.getpid() % 10000:04d}"


def run_of(path: str | Path) -> RunFolder | None:
    """The run folder `path` is, or the run a checkpoint folder inside it (<run>/checkpoints/step-N) belongs to."""
    path = Path(path)
    for candidate in (path, path.parent.parent) if path.parent.name == "checkpoints" else (path,):
        if (candidate / "config.yaml").is_file() and not (candidate / "config.json").is_file():  # not a model folder
            return RunFolder(candidate)
    return None


def list_runs(runs_dir: str | Path) -> list[RunFolder]:
    """Run folders under `runs_dir`, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = [RunFolder(p) for p in root.iterdir() if p.is_dir() and (p / "config.yaml").exists()]
    return sorted(found, key=lambda r: r.config_path.stat().st_mtime, reverse=True)
