"""The stable scripting API of the app (README, "API endpoints"), served by gradio and called with gradio_client:

    /start_run   config YAML text -> run id            (the run trains in its own process, as with the Train button)
    /run_status  run id -> {"run_id", "state", "stage", "stage_progress", "step", "total_steps", "latest",
                            "latest_eval", "latest_generation", "latest_sample", "measured_on", "queue_position",
                            "exit_code", "error", "log_tail"}
                 stage: what the run is doing ("loading data", "loading student", "loading teacher",
                 "teacher writing prompts", "healing", "first step", then "training"; otherwise its state);
                 stage_progress: e.g. "2/5" layer fits while healing, "256/800" prompts while the teacher writes.
                 latest_generation: the latest generation eval (reverse KL to the teacher on the student's own
                 answers, repeated 4-grams, ...); measured_on: {"eval": ..., "generation": ...}, what each kind
                 of number was measured on.
    /stop_run    run id -> the status after asking the run to stop (graceful: a checkpoint is saved)
    /list_runs   -> [{"run", "status", "started", "duration_s", "teacher", "student", "step", "total_steps",
                      "best_eval_loss", "student_ppl", "kd", "exit_code", "gen_rkl", "gen_teacher_nll", "gen_rep4",
                      "gen_empty", "gen_len", "gen_measured_on"}, ...] newest first

Errors (bad YAML, unknown run) come back to the client as a one-line gradio error naming the field.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr

from workbench.app.context import user_error
from workbench.app.tab_runs import run_summary
from workbench.config import DistillConfig
from workbench.engine.preflight import preflight
from workbench.errors import UserError
from workbench.runs import process as runner
from workbench.runs.folder import MetricsReader, RunFolder, list_runs, run_stage


class StatusReaders:
    """Incremental metrics readers per run, shared by all API callers, so polling reads only new lines."""

    def __init__(self) -> None:
        self._readers: dict[str, MetricsReader] = {}
        self._lock = threading.Lock()

    def latest(self, run_dir: Path) -> dict[str, dict | None]:
        """The newest row of each kind ("train", "eval", "gen_eval", "sample") in the run's metrics."""
        with self._lock:
            reader = self._readers.get(str(run_dir))
            if reader is None or not reader.path.exists() or reader.path.stat().st_size < reader.offset:
                reader = self._readers[str(run_dir)] = MetricsReader(run_dir / "metrics.jsonl")
            reader.read_new()
            return {kind: next((r for r in reversed(reader.rows) if r.get("kind", "train") == kind), None)
                    for kind in ("train", "eval", "gen_eval", "sample")}


def measured_on(run: RunFolder, generation: dict | None) -> dict[str, str | None]:
    """What a run's eval and generation numbers were measured on, in words."""
    try:
        cfg = DistillConfig.load(run.config_path)
        sequences = cfg.train.eval_batches * cfg.train.batch_size
        evals = (f"up to {sequences} held-out validation sequences of {cfg.data.dataset} × {cfg.data.seq_len} "
                 "tokens, teacher-forced (the student reads the real text); KL at T = 1")
    except (UserError, ValueError, OSError):
        evals = None
    return {"eval": evals, "generation": (generation or {}).get("measured_on")}


def start_run_from_yaml(runs_dir: str, config_yaml: str) -> str:
    cfg = DistillConfig.from_yaml(config_yaml or "")
    preflight(cfg, runs_dir)
    return runner.start_run(cfg, runs_dir)


def run_status(runs_dir: str, run_id: str, readers: StatusReaders) -> dict[str, Any]:
    run = runner.find_run(runs_dir, run_id)
    status = run.read_status()
    rows = readers.latest(run.path)
    latest = rows["train"]
    state = status.get("state", "?")
    stage = run_stage(status, latest is not None)
    return {
        "run_id": run.run_id,
        "state": state,
        "stage": stage,
        "stage_progress": status.get("stage_progress") if stage == status.get("stage") else None,
        "step": max(int(status.get("step") or 0), int((latest or {}).get("step") or 0)),
        "total_steps": status.get("total_steps"),
        "latest": latest,
        "latest_eval": rows["eval"],
        "latest_generation": rows["gen_eval"],
        "latest_sample": rows["sample"],
        "measured_on": measured_on(run, rows["gen_eval"]),
        "queue_position": runner.queue_position(run.path),
        "exit_code": status.get("exit_code"),
        "error": status.get("error"),
        "log_tail": run.log_tail(20) if state == "failed" else "",
    }


def register_api(ctx) -> None:
    """Add the four stable endpoints to the Blocks being built."""
    readers = StatusReaders()

    def _guard(fn, *args):
        try:
            return fn(*args)
        except UserError as exc:
            raise user_error(str(exc)) from None

    def start_run(config_yaml: str) -> str:
        """Start a run from a config given as YAML text; returns the run id."""
        return _guard(start_run_from_yaml, ctx.runs_dir, config_yaml)

    def get_run_status(run_id: str) -> dict:
        """State, step, total steps and the latest train and eval metrics of a run."""
        return _guard(run_status, ctx.runs_dir, run_id, readers)

    def stop_run(run_id: str) -> dict:
        """Ask a run to stop gracefully (checkpoint saved); returns its status."""
        run = _guard(runner.find_run, ctx.runs_dir, run_id)
        runner.stop_run(run.path)
        return run_status(ctx.runs_dir, run_id, readers)

    def list_all_runs() -> list:
        """Every run, newest first, with its status, models, steps and best eval loss."""
        return [run_summary(run) for run in list_runs(ctx.runs_dir)]

    gr.api(start_run, api_name="start_run", concurrency_limit=1)
    gr.api(get_run_status, api_name="run_status", concurrency_limit=None)
    gr.api(stop_run, api_name="stop_run")
    gr.api(list_all_runs, api_name="list_runs", concurrency_limit=None)
