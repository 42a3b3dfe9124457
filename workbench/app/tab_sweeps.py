"""Sweeps tab: start a compression sweep, follow its students, and read its frontier (quality against size and
speed, the Pareto-optimal students marked, one computed sentence per student).

The work is `workbench.runs.sweep` (training) and `workbench.analysis.frontier` (scoring, figure, table); a sweep
started here runs as `python -m workbench sweep ...` in a process of its own, logging to `<runs_dir>/<name>.log`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gradio as gr

from workbench.analysis.frontier import frontier_figure, frontier_table, load_frontier, score_sweep, summary_line
from workbench.app.context import user_error
from workbench.app.i18n import lang_of, localize_measured, t, tr, translator
from workbench.config import apply_overrides, load_preset, preset_names
from workbench.errors import UserError
from workbench.runs.folder import RunFolder
from workbench.runs.sweep import BUILTIN_SWEEPS, builtin_students, create_sweep, list_sweeps, load_sweep, student_state

STUDENT_COLUMNS = ["student", "spec", "state", "step"]
PROGRESS = gr.Progress()  # gradio fills it per call; one default object is its documented use


def sweep_choices(runs_dir: str) -> list[tuple]:
    """(label, name) for the sweep picker, newest first. The label is the folder's path under the runs folder
    ("frontier/"): the browser translates a label that equals a UI word, so a sweep named "frontier" would
    otherwise show as a Korean word."""
    return [(f"{path.name}/", path.name) for path in list_sweeps(runs_dir)]


def _students_rows(path: Path, text) -> list[list[str]]:
    plan = load_sweep(path)
    rows = []
    for student in plan.students:
        status = RunFolder(plan.run_dir(student)).read_status()
        step = f"{status.get('step', 0)} / {status.get('total_steps', plan.recipe.train.steps)}" if status else "–"
        rows.append([student.slug, student.spec, text(student_state(plan, student)), step])
    return rows


def sweep_view(runs_dir: str, name: str | None, lang: str = "en"):
    """(students rows, frontier figure or None, frontier table, sentences and what they were measured on)."""
    text = translator(lang)
    if not name:
        return {"headers": [text(h) for h in STUDENT_COLUMNS], "data": []}, None, {"headers": ["model"], "data": []}, tr("No sweep yet: start one above or run `workbench "
                                                                 "sweep --builtin width --preset chat`.", lang)
    path = Path(runs_dir) / name
    try:
        students = {"headers": [text(h) for h in STUDENT_COLUMNS], "data": _students_rows(path, text)}
    except UserError as exc:
        raise user_error(exc, lang) from None
    frontier = load_frontier(path)
    if frontier is None:
        note = tr("Not scored yet: when students have finished, press Score (or run `workbench sweep --name {name} "
                  "--score-only`).", lang, name=name)
        return students, None, {"headers": ["model"], "data": []}, note
    header, rows = frontier_table(frontier, text)
    lines = [f"- **{e['slug']}**: {summary_line(e, frontier['teacher'], text)}" for e in frontier["students"]]
    settings = frontier["settings"]
    lines.append("\n" + tr("Measured on: {rows}; generation: {generation}; speed: greedy decoding on {device} "
                           "({machine}). Fewer parameters = 1 − student / teacher parameters; decode speed = student "
                           "/ teacher tokens per second at batch 1; gap closed = 1 − reverse KL of the student / "
                           "reverse KL of its undistilled start.", lang,
                           rows=localize_measured(settings.get("val_rows"), lang),
                           generation=localize_measured(settings.get("generation_on"), lang), device=settings.get("device"),
                           machine=frontier.get("machine")))
    return students, frontier_figure(frontier, text), {"headers": header, "data": rows}, "\n".join(lines)


def start_sweep(runs_dir: str, kind: str, preset: str, steps: int, lang: str = "en") -> str:
    """Create the sweep folder (refusing a clash at once) and train it in a process of its own; returns its name."""
    try:
        recipe = apply_overrides(load_preset(preset), [f"train.steps={int(steps)}", f"run.runs_dir={runs_dir}"])
        name = f"{kind}-{preset}-{int(steps)}"
        create_sweep(runs_dir, name, recipe, builtin_students(kind, recipe.models.teacher))
    except (UserError, ValueError) as exc:
        raise user_error(exc, lang) from None
    command = [sys.executable, "-m", "workbench", "sweep", "--builtin", kind, "--preset", preset, "--name", name,
               f"train.steps={int(steps)}", f"run.runs_dir={runs_dir}"]
    with open(Path(runs_dir) / f"{name}.log", "ab") as log:
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return name


def build_sweeps_tab(ctx) -> dict:
    gr.Markdown(t("A sweep trains several students with one recipe and one budget, then scores them and the teacher "
                  "on the same held-out prompts and rows. Read the frontier: lower is closer to the teacher, left is "
                  "smaller (or right is faster); a ring marks a student no other model beats on both axes. Each "
                  "student is an ordinary run (see Runs); a stopped sweep resumes where it stopped."))
    with gr.Row():
        kind = gr.Radio(list(BUILTIN_SWEEPS), value="width", label=t("students to compare"),
                        info=t("depth: whole layers cut; width: MLP channels and heads cut; both: some of each. Four "
                               "sizes, from 0.8 to about 0.37 of the teacher's non-embedding parameters."))
        preset = gr.Dropdown(preset_names(), value="chat", label=t("recipe (preset)"))
        steps = gr.Number(value=44, precision=0, minimum=1, label=t("steps per student"))
        start = gr.Button(t("Start sweep"), variant="primary")
    with gr.Row():
        choices = sweep_choices(ctx.runs_dir)
        chosen = gr.Dropdown(choices, value=choices[0][1] if choices else None, label=t("sweep"),
                             allow_custom_value=False)
        refresh = gr.Button(t("Refresh"))
        score = gr.Button(t("Score finished students"))
    students = gr.Dataframe(headers=STUDENT_COLUMNS, label=t("students"), interactive=False)
    plot = gr.Plot(label=t("frontier"))
    table = gr.Dataframe(label=t("scores"), interactive=False, wrap=True)
    lines = gr.Markdown()
    outputs = [students, plot, table, lines]

    def show(name, request: gr.Request):
        return sweep_view(ctx.runs_dir, name, lang_of(request))

    def launch(kind_value, preset_value, steps_value, request: gr.Request):
        name = start_sweep(ctx.runs_dir, kind_value, preset_value, steps_value, lang_of(request))
        return gr.update(choices=sweep_choices(ctx.runs_dir), value=name)

    def rescore(name, request: gr.Request, progress=PROGRESS):
        lang = lang_of(request)
        if not name:
            raise user_error(tr("Pick a sweep first.", lang), lang)
        progress(0, desc=tr("scoring: the teacher, each student and its undistilled start", lang))
        try:
            score_sweep(Path(ctx.runs_dir) / name, log=lambda line: progress(None, desc=line))
        except UserError as exc:
            raise user_error(exc, lang) from None
        return sweep_view(ctx.runs_dir, name, lang)

    def reload_choices(name):
        choices = sweep_choices(ctx.runs_dir)
        names = [value for _, value in choices]
        return gr.update(choices=choices, value=name if name in names else (names[0] if names else None))

    start.click(launch, [kind, preset, steps], chosen, api_name="start_sweep")
    chosen.change(show, chosen, outputs, api_name="sweep_view")
    refresh.click(reload_choices, chosen, chosen, api_visibility="private").then(show, chosen, outputs,
                                                                                api_visibility="private")
    score.click(rescore, chosen, outputs, api_name="score_sweep")
    return {"chosen": chosen, "on_load": (show, [chosen], outputs)}
