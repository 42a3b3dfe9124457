"""Train tab: start the configured run as its own process, watch it live, stop it, resume it.

A `gr.Timer` reads the watched run folder every two seconds through a per-session `MetricsReader` (kept in a
`gr.State`, so each tick reads only the new lines) and redraws the plotly curves only when something changed. On page
load the running run (else the newest) is found again, so a reload or a second browser continues where it was.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import gradio as gr

from workbench import runner
from workbench.app.context import user_error
from workbench.app.setup_events import config_from_args
from workbench.config import DistillConfig
from workbench.errors import UserError
from workbench.plots import training_figure
from workbench.preflight import preflight
from workbench.runs import ACTIVE_STATES, MetricsReader, RunFolder, list_runs

TICK_SECONDS = 2.0


def new_watch(runs_dir: str, run_id: str | None) -> dict[str, Any]:
    reader = MetricsReader(RunFolder(Path(runs_dir) / run_id).metrics_path) if run_id else None
    return {"run_id": run_id, "reader": reader, "shown": None}


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "–"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def progress_html(status: dict, latest: dict | None) -> str:
    step, total = int(status.get("step") or 0), int(status.get("total_steps") or 0)
    if latest:
        step = max(step, int(latest.get("step") or 0))
    fraction = min(1.0, step / total) if total else 0.0
    eta = latest.get("eta") if latest else None
    speed = latest.get("tokens_per_s") if latest else None
    state = status.get("state", "?")
    color = {"failed": "#dc2626", "finished": "#16a34a", "stopped": "#ca8a04"}.get(state, "#2563eb")
    details = f"step {step} / {total or '?'} · {fraction:.0%}"
    if state in ACTIVE_STATES and eta is not None:
        details += f" · ETA {_duration(eta)}"
    if speed:
        details += f" · {speed:,.0f} tokens/s"
    return (
        f'<div class="kd-progress" data-state="{html.escape(state)}" data-step="{step}">'
        f'<div class="kd-progress-bar" style="width:{fraction * 100:.1f}%;background:{color}"></div></div>'
        f'<div class="kd-progress-text">{html.escape(details)}</div>'
    )


def trusts_remote_code(run: RunFolder) -> bool:
    try:
        return bool(DistillConfig.load(run.config_path).models.trust_remote_code)
    except UserError:
        return False


def status_markdown(run: RunFolder, status: dict) -> str:
    state = status.get("state", "?")
    badge = {"failed": "kd-bad", "finished": "kd-ok", "stopped": "kd-wait"}.get(state, "kd-wait")
    text = f'<span class="kd-badge {badge}">{html.escape(state)}</span> Run **{run.run_id}**'
    if trusts_remote_code(run):
        text += '\n\n<span class="kd-badge kd-bad">trust_remote_code on</span> this run executes code shipped with its models.'
    if status.get("stop_requested") and state in ("running", "stopping"):
        text += " · stopping (saving a checkpoint)…"
    if state == "queued":
        position = runner.queue_position(run.path)
        text += f"\n\nWaiting for the device: position **{position}** in the queue." if position else ""
    if state == "failed":
        code = status.get("exit_code")
        text += f"\n\nExit code **{code if code is not None else 'unknown'}**: {status.get('error') or 'see the log'}"
    return text


def render(runs_dir: str, watch: dict, force: bool = False) -> tuple:
    """(watch, status md, progress html, figure, log update, stop btn, resume btn); unchanged parts are skipped."""
    if not watch.get("run_id"):
        message = "No run yet. Set up on the **Setup** tab, then press **Start training**."
        return (watch, message, progress_html({"state": "idle"}, None), gr.skip(), gr.update(visible=False),
                gr.update(interactive=False), gr.update(interactive=False))
    run = RunFolder(Path(runs_dir) / watch["run_id"])
    status = run.read_status()
    reader = watch["reader"]
    if reader.path.exists() and reader.path.stat().st_size < reader.offset:  # rewritten (e.g. on resume)
        watch["reader"] = MetricsReader(reader.path)
    new_rows = watch["reader"].read_new()
    rows = watch["reader"].rows
    key = (status.get("state"), status.get("step"), len(rows), status.get("exit_code"))
    if key == watch.get("shown") and not force:
        return (watch, *[gr.skip()] * 6)
    watch["shown"] = key
    train_rows = [row for row in rows if row.get("kind", "train") == "train"]
    figure = training_figure(rows, title=f"{run.run_id}", log_y=bool(watch.get("log_y"))) if (new_rows or force or rows) else gr.skip()
    state = status.get("state")
    failed = state == "failed"
    log = gr.update(value=run.log_tail(40), visible=True) if failed or state == "stopped" else gr.update(visible=False)
    return (
        watch,
        status_markdown(run, status),
        progress_html(status, train_rows[-1] if train_rows else None),
        figure,
        log,
        gr.update(interactive=state in ACTIVE_STATES),
        gr.update(interactive=state in ("stopped", "failed")),
    )


def _run_choices(runs_dir: str) -> list[str]:
    return [run.run_id for run in list_runs(runs_dir)]


def build_train_tab(ctx, setup: dict) -> dict[str, Any]:
    """Build the train tab inside the current `gr.Tab`; `setup` holds the setup tab's components."""
    watch = gr.State(new_watch(ctx.runs_dir, None))
    with gr.Row():
        start = gr.Button("▶ Start training", variant="primary", elem_id="start-btn")
        stop = gr.Button("■ Stop (saves a checkpoint)", variant="stop", interactive=False, elem_id="stop-btn")
        resume = gr.Button("⟳ Resume", interactive=False, elem_id="resume-btn")
        picker = gr.Dropdown([], label="Watching run", allow_custom_value=False, scale=2, elem_id="run-picker")
    status = gr.Markdown("", elem_id="run-status")
    progress = gr.HTML(progress_html({"state": "idle"}, None), elem_id="run-progress")
    log_y = gr.Checkbox(False, label="Log scale for the loss terms", elem_id="log-y")
    plot = gr.Plot(label="Training curves", elem_id="train-plot")
    log = gr.Code(label="run.log (tail)", language=None, visible=False, lines=14, elem_id="run-log")
    timer = gr.Timer(TICK_SECONDS)
    outputs = [watch, status, progress, plot, log, stop, resume]
    fields = setup["fields"]

    def on_start(preset, *args):
        try:
            cfg = config_from_args(fields, preset, args)
            preflight(cfg, ctx.runs_dir)
            run_id = runner.start_run(cfg, ctx.runs_dir)
        except UserError as exc:
            raise user_error(str(exc)) from None
        time.sleep(0.3)
        fresh = new_watch(ctx.runs_dir, run_id)
        return (*render(ctx.runs_dir, fresh, force=True), gr.update(choices=_run_choices(ctx.runs_dir), value=run_id))

    start.click(on_start, [setup["preset"], *[setup[name] for name in fields]], [*outputs, picker],
                api_name="train_start", concurrency_limit=1)

    def on_stop(current):
        if current.get("run_id"):
            runner.stop_run(Path(ctx.runs_dir) / current["run_id"])
        return render(ctx.runs_dir, current, force=True)

    stop.click(on_stop, watch, outputs, api_name="train_stop")

    def on_resume(current):
        try:
            runner.resume_run(Path(ctx.runs_dir) / current["run_id"])
        except UserError as exc:
            raise user_error(str(exc)) from None
        time.sleep(0.3)
        return render(ctx.runs_dir, current, force=True)

    resume.click(on_resume, watch, outputs, api_name="train_resume")
    timer.tick(lambda current: render(ctx.runs_dir, current), watch, outputs, api_name="train_tick",
               show_progress="hidden")
    def on_log_y(current, value):
        current["log_y"] = bool(value)
        return render(ctx.runs_dir, current, force=True)

    log_y.change(on_log_y, [watch, log_y], outputs, api_name="train_log_scale", show_progress="hidden")
    picker.input(lambda run_id: render(ctx.runs_dir, new_watch(ctx.runs_dir, run_id), force=True), picker, outputs,
                 api_name="train_watch")

    def on_load():
        found = runner.latest_run(ctx.runs_dir)
        fresh = new_watch(ctx.runs_dir, found.run_id if found else None)
        choices = _run_choices(ctx.runs_dir)
        return (*render(ctx.runs_dir, fresh, force=True),
                gr.update(choices=choices, value=found.run_id if found else None))

    return {"start": start, "stop": stop, "resume": resume, "picker": picker, "status": status,
            "progress": progress, "plot": plot, "log": log, "timer": timer, "watch": watch,
            "on_load": (on_load, [*outputs, picker])}
