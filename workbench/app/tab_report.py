"""Report tab: the report card (teacher vs students: size, speed, quality) and the export of a run's student.

Evaluate is the API endpoint `/evaluate`; with no arguments it reports the latest finished run (teacher, its
distilled student and its undistilled start) or, with no finished run, the app's default pair. A run's card is
written to its `eval.json` and reused while it is newer than the student's weights; exported GGUF / ONNX folders
picked under "Exported artefacts" add a row each, measured in their own runtime, with a one-line summary. Export
writes the merged student in the chosen format (safetensors with tokenizer and model card; GGUF f16 / q8_0 / q4_0;
ONNX float32 / int8) into a folder under the exports folder and offers the zip for download; by default it exports
the student picked for the report, and its message names the run (and checkpoint) it exported.
"""

from __future__ import annotations

import copy
import html
import queue
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from workbench.analysis.artefacts import artefact_folders, artefact_lines, export_labels
from workbench.analysis.comparison_plots import report_figure
from workbench.analysis.eval_estimate import run_timings
from workbench.analysis.export_formats import EXPORT_FORMATS
from workbench.analysis.report_card import (
    EvalSettings,
    cached_report,
    evaluate_models,
    evaluate_run,
    report_rows,
    report_table,
)
from workbench.app.context import user_error
from workbench.app.i18n import lang_of, localize, localize_measured, shown_time, student_picker, t, tr, translator
from workbench.errors import UserError
from workbench.runs.folder import run_of
from workbench.runs.pool import LATEST, latest_finished_run, limit_app_threads


def card_for(ctx, choice: str, recompute: bool, settings: EvalSettings, lang: str = "en",
             exports: list[str] | tuple[str, ...] = (), **hooks) -> tuple[dict, str]:
    """(report card, where it came from in `lang`) for a picker value: latest run, a run folder, a checkpoint or a
    spec; `exports` (GGUF / ONNX folders) add a row each; `hooks` (progress, partial) hear each stage of an
    evaluation and the card so far (`evaluate_models`)."""
    from workbench.config import DistillConfig

    choice = (choice or "").strip() or LATEST
    artefacts = export_labels(exports)
    if choice == LATEST:
        run = latest_finished_run(ctx.runs_dir)
        if run is None:
            card = evaluate_models(ctx.teacher, {"undistilled student": ctx.student, **artefacts}, settings, **hooks)
            return card, tr("no finished run yet: the default pair", lang)
        choice = str(run.path)
    path = Path(choice)
    run = run_of(path) if path.is_dir() else None
    if run is None:
        return (evaluate_models(ctx.teacher, {"student": choice, **artefacts}, settings, **hooks),
                tr("teacher vs `{spec}`", lang, spec=choice))
    if path.resolve() == run.path.resolve():
        cached = None if recompute or exports else cached_report(run)
        if cached is not None:
            return cached, tr("run {run} (from eval.json)", lang, run=run.run_id)
        run_settings = EvalSettings(**{**settings.__dict__, "dataset": DistillConfig.load(run.config_path).data.dataset})
        return evaluate_run(run.path, run_settings, exports=exports, **hooks), tr(
            "run {run} (evaluated now; eval.json written)", lang, run=run.run_id)
    cfg = DistillConfig.load(run.config_path)
    students = {f"student ({path.name})": str(path), "undistilled student": cfg.models.student, **artefacts}
    return (evaluate_models(cfg.models.teacher, students, settings, data_cfg=cfg.data, timings=run_timings(run),
                            **hooks),
            f"{run.run_id} · {path.name}")


def measured_on(card: dict, lang: str) -> str:
    """What the card's numbers were measured on: the validation rows, and the prompts of the generation numbers."""
    settings = card.get("settings", {})
    if not settings.get("val_rows") and not settings.get("dataset"):
        return ""  # a card still filling: nothing scored yet
    entries = report_rows(card)
    rows = localize_measured(settings.get("val_rows"), lang) or settings.get("dataset", "?")
    lines = [tr("Teacher-forced numbers (perplexity, KL, agreement): {rows}, {tokens} tokens.", lang, rows=rows,
                tokens=entries[0].get("val_tokens", "?") if entries else "?")]
    if settings.get("generation_on"):
        lines.append(tr("Generated numbers (reverse KL on own answers, repeated 4-grams, ...): {what}.", lang,
                        what=localize_measured(settings["generation_on"], lang)))
    if card.get("tasks"):
        lines.append(tr("Per-task scores: the run's evaluation at step {step}, on each task's held-out items "
                        "(the undistilled student is not scored on them).", lang, step=card["tasks"]["step"]))
    return "  \n".join(lines + artefact_lines(card))


def shown_card(card: dict, lang: str) -> dict:
    """A copy of the card with its model labels in `lang` ("teacher", "student (checkpoint-20)": names in
    parentheses stay), for the table, the bars and the samples; eval.json keeps the English."""
    def label(entry: dict) -> dict:
        word, _, rest = entry["label"].partition(" (")
        return {**entry, "label": tr(word, lang) + (f" ({rest}" if rest else "")}

    return {**card, "teacher": label(card["teacher"]), "students": [label(entry) for entry in card["students"]]}


def samples_html(card: dict, lang: str) -> str:
    """The first held-out prompts with every model's answer side by side (`card` as `shown_card` gives it)."""
    samples = card.get("settings", {}).get("samples") or []
    if not samples:
        return ""
    labels = [entry["label"] for entry in report_rows(card)]
    head = "".join(f"<th>{html.escape(text)}</th>" for text in [tr("Prompt", lang), *labels])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in [s["prompt"], *s["answers"]])
                   + "</tr>" for s in samples)
    return f'<table class="kd-samples"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _table(card: dict, lang: str) -> dict:
    """Models as columns, metrics as rows, the metric names in `lang` (`card` as `shown_card` gives it)."""
    header, rows = report_table(card, translator(lang))
    columns = list(zip(*rows, strict=True))
    return {"headers": [tr("metric", lang), *columns[0]],
            "data": [[tr(header[i], lang), *columns[i]] for i in range(1, len(header))]}


def _outputs(card: dict, note: str, lang: str) -> tuple:
    """(table, bars, eval.json, status, samples) of a card, finished or so far."""
    shown = shown_card(card, lang)
    return (_table(shown, lang), report_figure(shown, text=translator(lang)), card,
            note + "\n\n" + measured_on(card, lang), samples_html(shown, lang))


def evaluate_fn(ctx):
    def evaluate(run: str = LATEST, recompute: bool = False, sequences: int = 0, gen_tokens: int = 32,
                 exports: list[str] | None = None, request: gr.Request = None, progress=gr.Progress()):  # noqa: B008 - gradio fills it
        """Streams the card as it fills: sizes of each model, then quality, then speed, then generation; the
        evaluation runs in a thread and hands its stages and partial cards over a queue."""
        lang = lang_of(request)
        limit_app_threads(ctx.runs_dir)
        # 0 sequences: a run is scored on the rows its train-time eval reads (the Train tab's numbers)
        settings = EvalSettings(max_sequences=int(sequences) or None, gen_tokens=int(gen_tokens),
                                device=ctx.pool.device)
        events: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                events.put(("done", card_for(ctx, run, bool(recompute), settings, lang, exports=tuple(exports or ()),
                                             progress=lambda fraction, message: events.put(("stage", fraction,
                                                                                            message)),
                                             partial=lambda card: events.put(("partial", copy.deepcopy(card))))))
            except BaseException as exc:  # noqa: BLE001 - shown to the user below, in this thread
                events.put(("error", exc))

        threading.Thread(target=work, daemon=True, name="workbench-evaluate").start()
        so_far = None  # the card as far as it is filled, shown again with each new stage
        while True:
            kind, *value = events.get()
            if kind == "stage":
                under_way = localize(value[1], lang)
                progress(value[0], desc=under_way)
                if so_far is not None:
                    yield _outputs(so_far, "⏳ " + tr("Results so far; under way: {stage}", lang, stage=under_way),
                                   lang)
            elif kind == "partial":
                so_far = value[0]
            elif kind == "error":
                if isinstance(value[0], UserError):
                    raise user_error(value[0], lang) from None
                raise value[0]
            else:
                card, source = value[0]
                note = tr("**{source}** · evaluated {created} in {seconds} s", lang, source=source,
                          created=shown_time(card.get("created"), lang), seconds=card.get("elapsed_s", "?"))
                yield _outputs(card, note, lang)
                return

    return evaluate


REPORTED = "reported"  # the export picker's default: whatever the report's picker holds


def export_source(ctx, source: str, reported: str, lang: str) -> tuple[Path, str]:
    """(folder to export, how it was chosen in `lang`): the export picker's run or checkpoint, or by default the
    student picked for the report, with "latest" resolved to the latest finished run by name."""
    choice = (source or "").strip() or REPORTED
    how = ""
    if choice == REPORTED:
        choice, how = (reported or "").strip() or LATEST, tr("the student picked for the report", lang)
    if choice == LATEST:
        run = latest_finished_run(ctx.runs_dir)
        if run is None:
            raise UserError(tr("export needs a run: no finished run yet; pick a run or checkpoint", lang))
        choice, how = str(run.path), tr("the latest finished run", lang)
    return Path(choice), how


def export_fn(ctx):
    def export(source: str = REPORTED, folder: str = "", make_zip: bool = True, overwrite: bool = False,
               fmt: str = "safetensors", reported: str = LATEST, request: gr.Request = None):
        from workbench.analysis.export import export_run

        lang = lang_of(request)
        try:
            path, how = export_source(ctx, source, reported, lang)
            run = run_of(path)
            if run is None:
                raise UserError(tr("Run or checkpoint to export: {spec!r} is not a run folder or a checkpoint inside "
                                   "one", lang, spec=str(path)))
            fmt = fmt or "safetensors"
            whole_run = path.resolve() == run.path.resolve()
            default_name = run.run_id if whole_run else f"{run.run_id}-{path.name}"
            default_name += "" if fmt == "safetensors" else f"-{fmt}"
            target = Path(folder.strip()) if folder and folder.strip() else Path(ctx.exports_dir) / default_name
            result = export_run(path, target, fmt=fmt, make_zip=bool(make_zip), overwrite=bool(overwrite))
        except UserError as exc:
            raise user_error(exc, lang) from None
        what = tr("run **{run}**", lang, run=run.run_id) if whole_run else tr(
            "run **{run}**, checkpoint **{checkpoint}**", lang, run=run.run_id, checkpoint=path.name)
        text = tr("Exported {what}{how} from `{source}` to `{folder}`  \nReload check: max |logit diff| {diff}  \n"
                  "Files: {files}", lang, what=what, how=f" ({how})" if how else "", source=result["source"],
                  folder=result["folder"], diff=f"{result['max_abs_logit_diff']:.2e}", files=", ".join(result["files"]))
        if "size_bytes" in result:
            text += "  \n" + tr("{fmt}: {file}, {size} MB on disk; relative logit error {error} (tiny-model test "
                                "bound {bound}), read back with {loader}", lang, fmt=fmt, file=result["file"],
                                size=f"{result['size_bytes'] / 2**20:.2f}", error=f"{result['relative_logit_error']:.2e}",
                                bound=f"{result['tolerance']:g}", loader=result["loader"])
        return text, result["zip"]

    return export


def _export_choices(ctx) -> list[tuple]:
    return [(t("The student picked for the report above"), REPORTED), *student_picker(ctx.runs_dir)]


def empty_table(current: Any, request: gr.Request = None) -> Any:
    """The report table before any evaluation, in the reader's language: one column saying what to press (it used
    to show bare headers "1 2 3"); a table that holds a card is left as it is."""
    if current is not None and len(current) > 0 and len(current.columns) > 1:
        return gr.skip()
    lang = lang_of(request)
    return {"headers": [tr("metric", lang)], "data": [[tr("(press Evaluate: the report card appears here)", lang)]]}


def build_report_tab(ctx) -> dict[str, Any]:
    """Build the report-card and export tab inside the current `gr.Tab`; returns its components by name."""
    with gr.Row():
        run = gr.Dropdown(choices=student_picker(ctx.runs_dir), value=LATEST, allow_custom_value=True,
                          label=t("Student to report"),
                          info=t("A run (with its undistilled start), a checkpoint or a spec."), scale=3)
        sequences = gr.Slider(0, 256, value=0, step=1, label=t("Validation sequences"),
                              info=t("0: a run's own eval rows, the same as its Train tab (else 16)."), scale=1)
        gen_tokens = gr.Slider(2, 256, value=32, step=1, label=t("Generated tokens (speed)"), scale=1)
        recompute = gr.Checkbox(value=False, label=t("Recompute"), info=t("Ignore a saved eval.json."), scale=1)
    exports = gr.Dropdown(choices=artefact_folders(ctx.exports_dir), value=[], multiselect=True,
                          allow_custom_value=True, label=t("Exported artefacts"),
                          info=t("GGUF / ONNX exports to score beside the student, each in its own runtime."))
    with gr.Row():
        evaluate = gr.Button(t("Evaluate"), variant="primary")
        refresh = gr.Button(t("↻ Runs"), size="sm", scale=0)
    status = gr.Markdown(t("Press **Evaluate** for the report card: sizes first (each model loaded), then quality on "
                           "validation rows, then speed, then answers to held-out prompts, each shown as it finishes; "
                           "the bar names each stage and, for a run, about how long "
                           "it takes (estimated from the run's own timings; minutes on a CPU for the built-in pair)."), elem_id="report-status")
    # tall enough for every row: the size and speed rows used to hide in the table's own scroll area
    table = gr.Dataframe(label=t("Report card"), interactive=False, wrap=True, elem_id="report-table",
                         max_height=2000)
    samples = gr.HTML("", elem_id="report-samples")
    bars = gr.Plot(label=t("Report card"))
    with gr.Accordion("eval.json", open=False):
        card_json = gr.JSON(label="eval.json")
    evaluate.click(evaluate_fn(ctx), [run, recompute, sequences, gen_tokens, exports],
                   [table, bars, card_json, status, samples], api_name="evaluate")
    gr.Markdown(t("### Export\nThe merged student as safetensors + tokenizer + model card (README.md), checked by "
                  "reloading it with `AutoModelForCausalLM.from_pretrained`."))
    gr.Markdown(t("Or as a file for another runtime: GGUF (f16, q8_0, q4_0) for llama.cpp / Ollama, ONNX (float32, "
                  "int8) for ONNX Runtime; Llama and Qwen2 students. The size on disk and the reload check are shown "
                  "after the export."))
    with gr.Row():
        source = gr.Dropdown(choices=_export_choices(ctx), value=REPORTED, allow_custom_value=True,
                             label=t("Run or checkpoint to export"),
                             info=t("By default the student picked for the report above."), scale=3)
        folder = gr.Textbox(value="", label=t("Folder"), placeholder=f"{ctx.exports_dir}/<run id>", scale=3)
        make_zip = gr.Checkbox(value=True, label=t("Zip for download"), scale=1)
        overwrite = gr.Checkbox(value=False, label=t("Overwrite"), scale=1)
        fmt = gr.Dropdown(choices=list(EXPORT_FORMATS), value="safetensors", label=t("Format"), scale=1)
    export = gr.Button(t("Export"))
    export_status = gr.Markdown("")
    download = gr.File(label=t("Download"), interactive=False)
    export.click(export_fn(ctx), [source, folder, make_zip, overwrite, fmt, run], [export_status, download],
                 api_name="export")

    def refresh_choices():
        return (gr.update(choices=student_picker(ctx.runs_dir)), gr.update(choices=_export_choices(ctx)),
                gr.update(choices=artefact_folders(ctx.exports_dir)))

    refresh.click(refresh_choices, None, [run, source, exports], api_visibility="private")
    return {"refresh_pickers": (refresh_choices, [run, source, exports]), "on_load": (empty_table, [table], [table]),
            "run": run, "exports": exports,
            "format": fmt, "evaluate": evaluate, "table": table,
            "bars": bars, "json": card_json, "status": status,
            "source": source, "folder": folder, "zip": make_zip, "export": export, "export_status": export_status,
            "download": download}
