"""Report tab: the report card (teacher vs students: size, speed, quality) and the export of a run's student.

Evaluate is the API endpoint `/evaluate`; with no arguments it reports the latest finished run (teacher, its
distilled student and its undistilled start) or, with no finished run, the app's default pair. A run's card is
written to its `eval.json` and reused while it is newer than the student's weights; exported GGUF / ONNX folders
picked under "Exported artefacts" add a row each, measured in their own runtime, with a one-line summary. Export
writes the merged student in the chosen format (safetensors with tokenizer and model card; GGUF f16 / q8_0 / q4_0;
ONNX float32 / int8) into a folder under the exports folder and offers the zip for download.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr

from workbench.analysis.artefacts import artefact_folders, artefact_lines, export_labels
from workbench.analysis.export_formats import EXPORT_FORMATS
from workbench.analysis.inspect_plots import report_figure
from workbench.analysis.report_card import (
    EvalSettings,
    cached_report,
    evaluate_models,
    evaluate_run,
    report_rows,
    report_table,
)
from workbench.app.context import user_error
from workbench.app.i18n import lang_of, student_picker, t, tr, translator
from workbench.errors import UserError
from workbench.models.pool import LATEST, latest_finished_run, limit_app_threads
from workbench.runs.folder import run_of


def card_for(ctx, choice: str, recompute: bool, settings: EvalSettings, lang: str = "en",
             exports: list[str] | tuple[str, ...] = ()) -> tuple[dict, str]:
    """(report card, where it came from in `lang`) for a picker value: latest run, a run folder, a checkpoint or a
    spec; `exports` (GGUF / ONNX folders) add a row each."""
    from workbench.config import DistillConfig

    choice = (choice or "").strip() or LATEST
    artefacts = export_labels(exports)
    if choice == LATEST:
        run = latest_finished_run(ctx.runs_dir)
        if run is None:
            card = evaluate_models(ctx.teacher, {"undistilled student": ctx.student, **artefacts}, settings)
            return card, tr("no finished run yet: the default pair", lang)
        choice = str(run.path)
    path = Path(choice)
    run = run_of(path) if path.is_dir() else None
    if run is None:
        return (evaluate_models(ctx.teacher, {"student": choice, **artefacts}, settings),
                tr("teacher vs `{spec}`", lang, spec=choice))
    if path.resolve() == run.path.resolve():
        cached = None if recompute or exports else cached_report(run)
        if cached is not None:
            return cached, tr("run {run} (from eval.json)", lang, run=run.run_id)
        run_settings = EvalSettings(**{**settings.__dict__, "dataset": DistillConfig.load(run.config_path).data.dataset})
        return evaluate_run(run.path, run_settings, exports=exports), tr("run {run} (evaluated now; eval.json written)",
                                                                         lang, run=run.run_id)
    cfg = DistillConfig.load(run.config_path)
    students = {f"student ({path.name})": str(path), "undistilled student": cfg.models.student, **artefacts}
    return evaluate_models(cfg.models.teacher, students, settings, data_cfg=cfg.data), f"{run.run_id} · {path.name}"


def measured_on(card: dict, lang: str) -> str:
    """What the card's numbers were measured on: the validation rows, and the prompts of the generation numbers."""
    settings = card.get("settings", {})
    entries = report_rows(card)
    rows = settings.get("val_rows") or settings.get("dataset", "?")
    lines = [tr("Teacher-forced numbers (perplexity, KL, agreement): {rows}, {tokens} tokens.", lang, rows=rows,
                tokens=entries[0].get("val_tokens", "?") if entries else "?")]
    if settings.get("generation_on"):
        lines.append(tr("Generated numbers (reverse KL on own answers, repeated 4-grams, ...): {what}.", lang,
                        what=settings["generation_on"]))
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
    header, rows = report_table(card)
    columns = list(zip(*rows, strict=True))
    return {"headers": [tr("metric", lang), *columns[0]],
            "data": [[tr(header[i], lang), *columns[i]] for i in range(1, len(header))]}


def evaluate_fn(ctx):
    def evaluate(run: str = LATEST, recompute: bool = False, sequences: int = 0, gen_tokens: int = 32,
                 exports: list[str] | None = None, request: gr.Request = None):
        lang = lang_of(request)
        limit_app_threads(ctx.runs_dir)
        try:
            # 0 sequences: a run is scored on the rows its train-time eval reads (the Train tab's numbers)
            settings = EvalSettings(max_sequences=int(sequences) or None, gen_tokens=int(gen_tokens),
                                    device=ctx.pool.device)
            card, source = card_for(ctx, run, bool(recompute), settings, lang, exports=tuple(exports or ()))
        except UserError as exc:
            raise user_error(exc, lang) from None
        note = tr("**{source}** · evaluated {created} in {seconds} s", lang, source=source,
                  created=card.get("created", "?"), seconds=card.get("elapsed_s", "?"))
        shown = shown_card(card, lang)
        return (_table(shown, lang), report_figure(shown, text=translator(lang)), card,
                note + "\n\n" + measured_on(card, lang), samples_html(shown, lang))

    return evaluate


def export_fn(ctx):
    def export(source: str, folder: str, make_zip: bool, overwrite: bool, fmt: str = "safetensors",
               request: gr.Request = None):
        from workbench.analysis.export import export_run

        lang = lang_of(request)
        try:
            spec = source if source and source != LATEST else None
            if spec is None:
                run = latest_finished_run(ctx.runs_dir)
                if run is None:
                    raise UserError(tr("export needs a run: no finished run yet; pick a run or checkpoint", lang))
                spec = str(run.path)
            path = Path(spec)
            run = run_of(path)
            if run is None:
                raise UserError(tr("export source must be a run folder or checkpoint, got {spec!r}", lang, spec=spec))
            fmt = fmt or "safetensors"
            default_name = run.run_id if path.resolve() == run.path.resolve() else f"{run.run_id}-{path.name}"
            default_name += "" if fmt == "safetensors" else f"-{fmt}"
            target = Path(folder.strip()) if folder and folder.strip() else Path(ctx.exports_dir) / default_name
            result = export_run(path, target, fmt=fmt, make_zip=bool(make_zip), overwrite=bool(overwrite))
        except UserError as exc:
            raise user_error(exc, lang) from None
        text = tr("Exported `{source}` to `{folder}`  \nReload check: max |logit diff| {diff}  \nFiles: {files}",
                  lang, source=result["source"], folder=result["folder"],
                  diff=f"{result['max_abs_logit_diff']:.2e}", files=", ".join(result["files"]))
        if "size_bytes" in result:
            text += "  \n" + tr("{fmt}: {file}, {size} MB on disk; relative logit error {error} (tiny-model test "
                                "bound {bound}), read back with {loader}", lang, fmt=fmt, file=result["file"],
                                size=f"{result['size_bytes'] / 2**20:.2f}", error=f"{result['relative_logit_error']:.2e}",
                                bound=f"{result['tolerance']:g}", loader=result["loader"])
        return text, result["zip"]

    return export


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
    status = gr.Markdown(t("Press **Evaluate** for the report card (a few seconds to a minute on a CPU)."))
    table = gr.Dataframe(label=t("Report card"), interactive=False, wrap=True, elem_id="report-table")
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
        source = gr.Dropdown(choices=student_picker(ctx.runs_dir), value=LATEST, allow_custom_value=True,
                             label=t("Run or checkpoint to export"), scale=3)
        folder = gr.Textbox(value="", label=t("Folder"), placeholder=f"{ctx.exports_dir}/<run id>", scale=3)
        make_zip = gr.Checkbox(value=True, label=t("Zip for download"), scale=1)
        overwrite = gr.Checkbox(value=False, label=t("Overwrite"), scale=1)
        fmt = gr.Dropdown(choices=list(EXPORT_FORMATS), value="safetensors", label=t("Format"), scale=1)
    export = gr.Button(t("Export"))
    export_status = gr.Markdown("")
    download = gr.File(label=t("Download"), interactive=False)
    export.click(export_fn(ctx), [source, folder, make_zip, overwrite, fmt], [export_status, download],
                 api_name="export")

    def refresh_choices():
        choices = student_picker(ctx.runs_dir)
        return gr.update(choices=choices), gr.update(choices=choices), gr.update(choices=artefact_folders(
            ctx.exports_dir))

    refresh.click(refresh_choices, None, [run, source, exports], api_visibility="private")
    return {"refresh_pickers": (refresh_choices, [run, source, exports]), "run": run, "exports": exports,
            "format": fmt, "evaluate": evaluate, "table": table,
            "bars": bars, "json": card_json, "status": status,
            "source": source, "folder": folder, "zip": make_zip, "export": export, "export_status": export_status,
            "download": download}
