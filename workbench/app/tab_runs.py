"""Runs tab: every run in a table, several runs' curves overlaid, a diff of their configs, delete with confirmation.

`runs_table(runs_dir)` and `run_summary(run)` are plain functions, also used by the `/list_runs` endpoint.
"""

from __future__ import annotations

import html
import math
import shutil
import time
from pathlib import Path
from typing import Any

import gradio as gr

from workbench.analysis.plots import METRICS, overlay_figure
from workbench.analysis.task_report import last_task_scores, task_cell, task_metrics, with_task_fields
from workbench.app.context import user_error
from workbench.app.i18n import lang_of, localize_measured, t, tr, translator
from workbench.app.train_view import duration
from workbench.config import DistillConfig
from workbench.engine.genquality import GEN_KEYS
from workbench.errors import Message, UserError
from workbench.forms import config_diff
from workbench.runs.folder import ACTIVE_STATES, RunFolder, list_runs, read_metrics
from workbench.runs.process import find_run

TABLE_COLUMNS = ["run", "steps", "best eval loss", "student ppl", "bits per byte", "generation (rKL · rep4)",
                 "task scores", "status", "started", "duration", "teacher", "student", "KD settings"]
TABLE_TYPES = ["str", "str", "number", "number", "number", "str", "str", "str", "str", "str", "html", "html", "str"]
SPEC_WIDTH = 30


def _finite(values: list) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def run_summary(run: RunFolder) -> dict[str, Any]:
    """One row of facts about a run: status, models, steps, best eval loss, last student ppl, KD settings."""
    status = run.read_status()
    try:
        cfg = DistillConfig.load(run.config_path)
    except (ValueError, OSError):
        cfg = None
    rows = read_metrics(run.metrics_path)
    evals = [row for row in rows if row.get("kind") == "eval"]
    gen = next((row for row in reversed(rows) if row.get("kind") == "gen_eval"), None)
    train = [row for row in rows if row.get("kind", "train") == "train"]
    losses, ppls = _finite([r.get("eval_loss") for r in evals]), _finite([r.get("eval_ppl") for r in evals])
    bpbs = _finite([r.get("eval_bpb") for r in evals])  # comparable across tokenizers, unlike perplexity
    step = max(int(status.get("step") or 0), int(train[-1].get("step") or 0) if train else 0)
    kd = ""
    if cfg:
        loss = cfg.loss
        kd = f"{loss.divergence} T={loss.temperature:g} · ce {loss.ce_weight:g} kd {loss.kd_weight:g}"
        kd += f" hid {loss.hidden_weight:g} att {loss.attn_weight:g}" if loss.hidden_weight or loss.attn_weight else ""
        kd += " · LoRA" if cfg.lora.enabled else ""
    task_step, tasks = last_task_scores(rows)
    started = status.get("started") or status.get("created")
    ended = status.get("ended") if status.get("state") not in ACTIVE_STATES else None
    return {
        "run": run.run_id,
        "status": status.get("state", "?"),
        "started": started,
        "duration_s": ((ended or time.time()) - started) if started else None,
        "teacher": cfg.models.teacher if cfg else "?",
        "student": cfg.models.student if cfg else "?",
        "step": step,
        "total_steps": int(status.get("total_steps") or (cfg.train.steps if cfg else 0)),
        "best_eval_loss": min(losses) if losses else None,
        "student_ppl": ppls[-1] if ppls else None,
        "student_bpb": bpbs[-1] if bpbs else None,
        "kd": kd,
        "exit_code": status.get("exit_code"),
        **{key: (gen or {}).get(key) for key in GEN_KEYS},
        "gen_measured_on": (gen or {}).get("measured_on"),
        "tasks": tasks,
        "tasks_step": task_step,
    }


def short_spec(spec: str, width: int = SPEC_WIDTH) -> str:
    """A model spec for a table cell: local folders by their name, "builtin:" dropped, the model's name cut to
    `width` characters; the derivation after "?" is kept whole, since it is what tells two students apart."""
    base, sep, query = str(spec).partition("?")
    base = Path(base).name if base.startswith(("/", "./", "~")) else base.removeprefix("builtin:")
    base = base if len(base) <= width else base[: width - 1] + "…"
    return base + sep + query.replace("&", "&\u200b").replace(",", ",\u200b")  # break points in a narrow cell


def _spec_cell(spec: str) -> str:
    """The short spec, with the full one on hover."""
    return f'<span title="{html.escape(str(spec))}">{html.escape(short_spec(spec))}</span>'


def _generation_cell(summary: dict) -> str:
    if summary.get("gen_rkl") is None:
        return ""
    rep4 = summary.get("gen_rep4")
    return f"{summary['gen_rkl']:.3f}" + (f" · {rep4:.0%}" if isinstance(rep4, (int, float)) else "")


def runs_table(runs_dir: str | Path, lang: str = "en") -> list[list[Any]]:
    table = []
    for run in list_runs(runs_dir):
        s = run_summary(run)
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["started"])) if s["started"] else ""
        table.append([
            s["run"], f"{s['step']} / {s['total_steps']}",
            None if s["best_eval_loss"] is None else round(s["best_eval_loss"], 4),
            None if s["student_ppl"] is None else round(s["student_ppl"], 2),
            None if s["student_bpb"] is None else round(s["student_bpb"], 3), _generation_cell(s),
            task_cell(s["tasks"], translator(lang)), tr(s["status"], lang),
            started, duration(s["duration_s"]), _spec_cell(s["teacher"]), _spec_cell(s["student"]), s["kd"],
        ])
    return table


def diff_table(runs_dir: str | Path, run_ids: list[str]) -> list[list[Any]]:
    """Rows [field, value in run 1, value in run 2, ...] for the config fields that differ between the runs."""
    if len(run_ids) < 2:
        return []
    configs = [DistillConfig.load(find_run(runs_dir, run_id).config_path).to_dict() for run_id in run_ids]
    fields: dict[str, None] = {}
    for other in configs[1:]:
        fields.update(dict.fromkeys(config_diff(configs[0], other)))
    flat = [{f"{s}.{k}": v for s, section in cfg.items() for k, v in section.items()} for cfg in configs]
    lora_off = not any(cfg.get("lora.enabled") for cfg in flat)  # then the other lora.* settings change nothing
    return [[name, *[str(cfg.get(name)) for cfg in flat]] for name in fields
            if name != "run.name" and not (lora_off and name.startswith("lora.") and name != "lora.enabled")]


def diff_widths(columns: int) -> list[str]:
    """The diff table's column widths: the field names a fifth, the runs' values share the rest, so a model spec
    (no spaces to break at) wraps inside its column instead of widening the table past its box."""
    if columns < 2:
        return ["100%"] * columns
    return ["20%"] + [f"{80 / (columns - 1):.2f}%"] * (columns - 1)


def diff_view(runs_dir: str | Path, run_ids: list[str], lang: str) -> tuple[list[list[Any]], list[str]]:
    """(rows, headers) of the config diff table in `lang`; a line saying why it is empty when it is."""
    rows = diff_table(runs_dir, run_ids)
    if rows:
        return rows, [tr("field", lang), *run_ids]
    empty = "(select two or more runs)" if len(run_ids) < 2 else "(no config field differs, besides the run's name)"
    return [[tr(empty, lang)]], [tr("field", lang)]


def _with_unit(name: str, unit: str) -> str:
    """A metric's name with its unit, unless the name already says it ("learning rate", not "learning rate
    (learning rate)")."""
    return name if unit.lower() in name.lower() else f"{name} ({unit})"


def metric_choices(lang: str, runs_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """The overlay's metric picker: each metric's name and unit in `lang`, its metrics.jsonl key as the value; then
    the per-task numbers of the multi-task runs in `runs_dir` (so runs with different task mixes compare)."""
    choices = [(_with_unit(tr(name, lang), tr(unit, lang)), key) for key, (name, unit) in METRICS.items()]
    for run in list_runs(runs_dir) if runs_dir else []:
        choices += task_metrics(last_task_scores(read_metrics(run.metrics_path))[1], translator(lang))
    return list(dict.fromkeys(choices))


def measured_note(runs: dict[str, list[dict]], metric: str, lang: str) -> str:
    """A warning when the runs' `metric` was measured on different rows (another dataset, sequence length or number
    of held-out rows): their curves are then not directly comparable. Empty when they agree."""
    kind = "gen_eval" if metric.startswith("gen_") else "eval" if metric.startswith("eval_") else None
    if kind is None:
        return ""
    lines = {}
    for run_id, rows in runs.items():
        line = next((r.get("measured_on") for r in reversed(rows) if r.get("kind") == kind and r.get("measured_on")),
                    None)
        if line:
            lines[run_id] = line
    if len(set(lines.values())) < 2:
        return ""
    listed = "\n".join(f"- **{run_id}**: {localize_measured(line, lang)}" for run_id, line in lines.items())
    return "⚠️ " + tr("These runs were measured on different rows, so their curves are not directly comparable:",
                      lang) + "\n" + listed


def delete_run(runs_dir: str | Path, run_id: str) -> None:
    run = find_run(runs_dir, run_id)
    if run.read_status().get("state") in ACTIVE_STATES:
        raise UserError(Message("run {run!r} is still active; stop it before deleting", run=run_id))
    shutil.rmtree(run.path)


def build_runs_tab(ctx) -> dict[str, Any]:
    """Build the runs tab inside the current `gr.Tab`; returns its components by name."""
    with gr.Row():
        refresh = gr.Button(t("↻ Refresh"), size="sm", scale=0)
        gr.Markdown(t("All runs in the runs folder, newest first. Select several to compare. Generation: reverse KL "
                      "to the teacher on the student's own answers (nats per token) · share of repeated 4-grams, "
                      "from the latest generation eval. Hover a model to see its full spec."))
    table = gr.Dataframe(headers=TABLE_COLUMNS, datatype=TABLE_TYPES, value=[], interactive=False, wrap=True,
                         label=t("Runs"), elem_id="runs-table")
    with gr.Row():
        selected = gr.Dropdown([], multiselect=True, label=t("Compare runs"), scale=3)
        metric = gr.Dropdown(metric_choices("en"), value="kd", label=t("Metric"), scale=1)
        log_y = gr.Checkbox(False, label=t("Log scale"), scale=0)
    compare_note = gr.Markdown("", elem_id="runs-compare-note")
    overlay = gr.Plot(label=t("Overlay"))
    # a model spec has no spaces to wrap at: its cells break anywhere (CSS) within widths that fit the box
    diff = gr.Dataframe(value=[], label=t("Config fields that differ"), interactive=False, wrap=True, elem_id="runs-diff")
    with gr.Row():
        to_delete = gr.Dropdown([], label=t("Run to delete"), scale=2)
        delete = gr.Button(t("Delete…"), variant="stop", size="sm", scale=0)
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown("")
        confirm = gr.Button(t("Yes, delete it"), variant="stop", size="sm", scale=0)
        cancel = gr.Button(t("Cancel"), size="sm", scale=0)

    def table_update(lang: str):
        return gr.update(value=runs_table(ctx.runs_dir, lang), headers=[tr(name, lang) for name in TABLE_COLUMNS])

    def refresh_all(current: list[str] | None = None, request: gr.Request = None):
        ids = [run.run_id for run in list_runs(ctx.runs_dir)]
        keep = [run_id for run_id in (current or []) if run_id in ids]
        lang = lang_of(request)
        return (table_update(lang), gr.update(choices=ids, value=keep), gr.update(choices=ids, value=None),
                gr.update(choices=metric_choices(lang, ctx.runs_dir)))

    def refresh_after_run(request: gr.Request = None):
        ids = [run.run_id for run in list_runs(ctx.runs_dir)]
        return table_update(lang_of(request)), gr.update(choices=ids), gr.update(choices=ids)

    def on_load(request: gr.Request = None):
        return refresh_all([], request)

    refresh.click(refresh_all, selected, [table, selected, to_delete, metric], api_name="runs_refresh")

    def compare(run_ids: list[str], metric_name: str, log_scale: bool, request: gr.Request = None):
        run_ids = run_ids or []
        try:
            rows = {run_id: with_task_fields(read_metrics(find_run(ctx.runs_dir, run_id).metrics_path))
                    for run_id in run_ids}
            lang = lang_of(request)
            diff_rows, headers = diff_view(ctx.runs_dir, run_ids, lang)
            return (overlay_figure(rows, metric=metric_name, log_y=log_scale, text=translator(lang)),
                    gr.update(value=diff_rows, headers=headers, column_widths=diff_widths(len(headers))),
                    measured_note(rows, metric_name, lang))
        except UserError as exc:
            raise user_error(exc, lang_of(request)) from None

    gr.on([selected.change, metric.change, log_y.change], compare, [selected, metric, log_y],
          [overlay, diff, compare_note], api_name="runs_compare")

    def ask(run_id, request: gr.Request = None):
        lang = lang_of(request)
        if not run_id:
            raise user_error(tr("Choose a run to delete first", lang))
        return gr.update(visible=True), tr("Delete run **{run}** and everything in its folder? This cannot be undone.",
                                           lang, run=run_id)

    delete.click(ask, to_delete, [confirm_row, confirm_text], api_name="runs_delete_ask")

    def do_delete(run_id, current, request: gr.Request = None):
        try:
            delete_run(ctx.runs_dir, run_id)
        except UserError as exc:
            raise user_error(exc, lang_of(request)) from None
        return (gr.update(visible=False), *refresh_all(current, request))

    confirm.click(do_delete, [to_delete, selected], [confirm_row, table, selected, to_delete, metric],
                  api_name="runs_delete")
    cancel.click(lambda: gr.update(visible=False), None, confirm_row, api_name="runs_delete_cancel")
    return {"table": table, "selected": selected, "metric": metric, "overlay": overlay, "diff": diff,
            "to_delete": to_delete, "delete": delete, "confirm": confirm, "refresh": refresh,
            "compare_note": compare_note, "on_load": (on_load, [table, selected, to_delete, metric]),
            "relabel": (refresh_all, [selected], [table, selected, to_delete, metric]),
            "refresh_pickers": (refresh_after_run, [table, selected, to_delete])}
