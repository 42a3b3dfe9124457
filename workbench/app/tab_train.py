"""Train tab: start the configured run as its own process, watch it live, stop it, resume it.

A `gr.Timer` reads the watched run folder every two seconds through a per-session `MetricsReader` (kept in a
`gr.State`, so each tick reads only the new lines) and redraws the plotly curves only when something changed. On page
load the running run (else the newest) is found again, so a reload or a second browser continues where it was.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import gradio as gr

from workbench.analysis.plots import generation_figure, training_figure
from workbench.analysis.task_report import task_figure, task_rows
from workbench.app.context import user_error
from workbench.app.i18n import lang_of, t, tr
from workbench.app.setup_events import config_from_args
from workbench.app.train_view import gen_summary_markdown, progress_html, sample_html, samples_html, status_markdown
from workbench.config import DistillConfig
from workbench.engine.preflight import preflight
from workbench.errors import UserError
from workbench.runs import process as runner
from workbench.runs.folder import ACTIVE_STATES, MetricsReader, RunFolder, list_runs

TICK_SECONDS = 2.0


def new_watch(runs_dir: str, run_id: str | None) -> dict[str, Any]:
    reader = MetricsReader(RunFolder(Path(runs_dir) / run_id).metrics_path) if run_id else None
    return {"run_id": run_id, "reader": reader, "shown": None}


def _run_config(run: RunFolder) -> DistillConfig | None:
    try:
        return DistillConfig.load(run.config_path)
    except (UserError, ValueError, OSError):
        return None


def _last(rows: list[dict], kind: str) -> dict | None:
    return next((row for row in reversed(rows) if row.get("kind", "train") == kind), None)


def render(runs_dir: str, watch: dict, force: bool = False, lang: str = "en") -> tuple:
    """(watch, status md, progress html, figure, log, stop btn, resume btn, generation summary, generation figure,
    samples html, sample html, finished marker, per-task figure); unchanged parts are skipped."""
    if not watch.get("run_id"):
        message = tr("No run yet. Set up on the **Setup** tab, then press **Start training**.", lang)
        return (watch, message, progress_html({"state": "idle"}, None, lang), gr.skip(), gr.update(visible=False),
                gr.update(interactive=False), gr.update(interactive=False), *[gr.skip()] * 5,
                gr.update(visible=False))
    run = RunFolder(Path(runs_dir) / watch["run_id"])
    status = run.read_status()
    reader = watch["reader"]
    if reader.path.exists() and reader.path.stat().st_size < reader.offset:  # rewritten (e.g. on resume)
        watch["reader"] = MetricsReader(reader.path)
    watch["reader"].read_new()
    rows = watch["reader"].rows
    latest = _last(rows, "train")
    key = (status.get("state"), status.get("step"), status.get("stage"), len(rows), status.get("exit_code"), lang)
    # while loading, or in a long phase between steps (evaluating, scoring held-out answers, saving), nothing new is
    # written, yet the stage's clock must go on: the progress line is redrawn every 5 s (it used to sit at "0:01")
    between_steps = status.get("state") in ACTIVE_STATES and status.get("stage") not in (None, "training")
    tick = int(time.time()) // 5 if latest is None or between_steps else 0
    if key == watch.get("shown") and not force:
        if tick == watch.get("tick"):
            return (watch, *[gr.skip()] * 12)
        watch["tick"] = tick
        return (watch, gr.skip(), progress_html(status, latest, lang, rows), *[gr.skip()] * 10)
    watch["shown"], watch["tick"] = key, tick
    cfg = _run_config(run)
    text = functools.partial(tr, lang=lang)
    figure = training_figure(rows, title=run.run_id, log_y=bool(watch.get("log_y")),
                             loss=cfg.to_dict()["loss"] if cfg else None, text=text)
    state = status.get("state")
    gen = _last(rows, "gen_eval")
    finished = f"{run.run_id}:{state}" if state == "finished" else gr.skip()
    return (
        watch,
        status_markdown(run, status, lang),
        progress_html(status, latest, lang, rows),
        figure,
        gr.update(value=run.log_tail(40), visible=True) if state in ("failed", "stopped") else gr.update(visible=False),
        gr.update(interactive=state in ACTIVE_STATES),
        gr.update(interactive=state in ("stopped", "failed") and run.latest_checkpoint() is not None),
        gen_summary_markdown(gen, lang),
        generation_figure(rows, text=text) if gen else None,
        samples_html(gen, lang),
        sample_html(_last(rows, "sample"), lang),
        finished,
        gr.update(value=task_figure(rows, text), visible=True) if task_rows(rows) else gr.update(visible=False),
    )


def _run_choices(runs_dir: str) -> list[str]:
    return [run.run_id for run in list_runs(runs_dir)]


def build_train_tab(ctx, setup: dict) -> dict[str, Any]:
    """Build the train tab inside the current `gr.Tab`; `setup` holds the setup tab's components."""
    watch = gr.State(new_watch(ctx.runs_dir, None))
    finished = gr.State("")
    with gr.Row():
        start = gr.Button(t("▶ Start training"), variant="primary", elem_id="start-btn")
        stop = gr.Button(t("■ Stop (saves a checkpoint)"), variant="stop", interactive=False, elem_id="stop-btn")
        resume = gr.Button(t("⟳ Resume"), interactive=False, elem_id="resume-btn")
        picker = gr.Dropdown([], label=t("Watching run"), allow_custom_value=False, scale=2, elem_id="run-picker")
    status = gr.Markdown("", elem_id="run-status")
    progress = gr.HTML(progress_html({"state": "idle"}, None), elem_id="run-progress")
    log_y = gr.Checkbox(False, label=t("Log scale for the loss terms"), elem_id="log-y")
    plot = gr.Plot(label=t("Training curves"), elem_id="train-plot")
    task_plot = gr.Plot(label=t("Per-task scores"), elem_id="task-plot", visible=False)
    gr.Markdown(t("Train KD is measured at the run's temperature T (times T² when 'Scale by T²' is on); eval KL "
                  "at T = 1 on the validation split, where perplexity and top-1 agreement are measured too. These "
                  "are teacher-forced numbers: the student reads the real text. What it writes on its own is "
                  "below."), elem_classes="kd-legend")
    with gr.Accordion(t("Generation: what the student writes"), open=True):
        gen_summary = gr.Markdown(gen_summary_markdown(None), elem_id="gen-summary")
        gen_plot = gr.Plot(label=t("Generation quality on held-out prompts"), elem_id="gen-plot")
        gen_samples = gr.HTML("", elem_id="gen-samples")
        gr.Markdown(t("**Latest sampled answer**, each token coloured by how much the teacher disagrees with it"))
        sample = gr.HTML(sample_html(None), elem_id="sample-tokens")
    log = gr.Code(label=t("run.log (tail)"), language=None, visible=False, lines=14, elem_id="run-log")
    timer = gr.Timer(TICK_SECONDS)
    outputs = [watch, status, progress, plot, log, stop, resume, gen_summary, gen_plot, gen_samples, sample, finished,
               task_plot]
    fields = setup["fields"]

    def on_start(request: gr.Request, preset, *args):  # request first: gradio fills only positional parameters
        lang = lang_of(request)
        try:
            cfg = config_from_args(fields, preset, args)
            preflight(cfg, ctx.runs_dir)
            run_id = runner.start_run(cfg, ctx.runs_dir)
        except UserError as exc:
            raise user_error(exc, lang) from None
        time.sleep(0.3)
        fresh = new_watch(ctx.runs_dir, run_id)
        return (*render(ctx.runs_dir, fresh, True, lang),
                gr.update(choices=_run_choices(ctx.runs_dir), value=run_id))

    start.click(on_start, [setup["preset"], *[setup[name] for name in fields]], [*outputs, picker],
                api_name="train_start", concurrency_limit=1)

    def on_stop(current, request: gr.Request = None):
        if current.get("run_id"):
            runner.stop_run(Path(ctx.runs_dir) / current["run_id"])
        return render(ctx.runs_dir, current, True, lang_of(request))

    stop.click(on_stop, watch, outputs, api_name="train_stop")

    def on_resume(current, request: gr.Request = None):
        try:
            runner.resume_run(Path(ctx.runs_dir) / current["run_id"])
        except UserError as exc:
            raise user_error(exc, lang_of(request)) from None
        time.sleep(0.3)
        return render(ctx.runs_dir, current, True, lang_of(request))

    resume.click(on_resume, watch, outputs, api_name="train_resume")

    def on_tick(current, request: gr.Request = None):
        return render(ctx.runs_dir, current, False, lang_of(request))

    timer.tick(on_tick, watch, outputs, api_name="train_tick", show_progress="hidden")

    def redraw(current, request: gr.Request = None):
        return render(ctx.runs_dir, current, True, lang_of(request))

    def on_log_y(current, value, request: gr.Request = None):
        current["log_y"] = bool(value)
        return redraw(current, request)

    log_y.change(on_log_y, [watch, log_y], outputs, api_name="train_log_scale", show_progress="hidden")

    def on_watch(run_id, request: gr.Request = None):
        return render(ctx.runs_dir, new_watch(ctx.runs_dir, run_id), True, lang_of(request))

    picker.input(on_watch, picker, outputs, api_name="train_watch")

    def on_load(request: gr.Request = None):
        found = runner.latest_run(ctx.runs_dir)
        fresh = new_watch(ctx.runs_dir, found.run_id if found else None)
        choices = _run_choices(ctx.runs_dir)
        return (*render(ctx.runs_dir, fresh, True, lang_of(request)),
                gr.update(choices=choices, value=found.run_id if found else None))

    return {"start": start, "stop": stop, "resume": resume, "picker": picker, "status": status,
            "progress": progress, "plot": plot, "log": log, "timer": timer, "watch": watch, "finished": finished,
            "gen_plot": gen_plot, "sample": sample, "task_plot": task_plot, "on_load": (on_load, [*outputs, picker]),
            "redraw": (redraw, outputs)}
