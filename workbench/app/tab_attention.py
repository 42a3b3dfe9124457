"""Attention tab: teacher vs student attention maps on one text, for one mapped layer pair or all of them.

Pick the student (the undistilled start, a run's final student or any checkpoint, so before/after is one click),
the layer mapping (the run's own, or a strategy), and press Compare. Heatmaps show teacher, student and |difference|
with token labels on both axes; grey cells are masked by causal attention. The grid below gives Jensen-Shannon
divergence and entropy per mapped pair and head. Changing pair or head redraws from the captured maps.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from workbench.analysis.attention import DEFAULT_MAX_TOKENS, DEFAULT_TEXT, MAX_TOKENS_LIMIT, compare_attention
from workbench.analysis.comparison_plots import attention_figure, summary_figure
from workbench.app.context import user_error
from workbench.app.i18n import lang_of, student_picker, t, tr, translator
from workbench.errors import UserError
from workbench.runs.folder import run_of
from workbench.runs.pool import LATEST, limit_app_threads, resolve_choice

ALL_PAIRS = "all"
AVERAGE = "average"
FROM_RUN = "from run"


def _run_config(student_spec: str):
    """The config of the run a student spec belongs to (run folder or checkpoint), if any."""
    from workbench.config import DistillConfig

    run = run_of(student_spec)
    return DistillConfig.load(run.config_path) if run is not None else None


def _mapping(strategy: str, pairs_text: str, student_spec: str, teacher_spec: str,
             teacher_layers: int) -> tuple[str, list[str], list[int] | None]:
    """(strategy, custom pairs, source layers). "from run" takes the run's mapping; for a student made by dropping
    teacher layers (the run's, or the spec itself) it compares each layer with the one it was copied from."""
    from workbench.engine.mapping import is_pruned_from, source_layers

    pruned_spec = student_spec
    if strategy == FROM_RUN:
        cfg = _run_config(student_spec)
        strategy, pairs = (cfg.mapping.strategy, list(cfg.mapping.pairs)) if cfg else ("uniform", [])
        pruned_spec = cfg.models.student if cfg else student_spec
        if is_pruned_from(pruned_spec, teacher_spec) and strategy == "uniform":
            strategy = "source"
    else:
        pairs = [p.strip() for p in (pairs_text or "").split(",") if p.strip()]
    source = source_layers(pruned_spec, teacher_spec, teacher_layers) if strategy == "source" else None
    return strategy, pairs, source


def _choices(comparison, lang: str) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    pairs = [(t("All pairs"), ALL_PAIRS)] + [(tr("student {student} ↔ teacher {teacher}", lang, student=s, teacher=t_),
                                               str(i)) for i, (s, t_) in enumerate(comparison.pairs)]
    heads = [(t("Head-averaged"), AVERAGE)] + [(tr("Head {head}", lang, head=h), str(h))
                                              for h in range(comparison.aligned_heads)]
    return pairs, heads


def _figure(comparison, pair: str, head: str, lang: str, hide_first: bool = False):
    pair_index = None if pair in (None, ALL_PAIRS) else int(pair)
    head_index = None if head in (None, AVERAGE) else int(head)
    return attention_figure(comparison, pair_index=pair_index, head=head_index, text=translator(lang),
                            hide_first=bool(hide_first))


def compare_fn(ctx):
    def compare(text: str, max_tokens: int, teacher: str, student: str, strategy: str, pairs_text: str,
                request: gr.Request = None):
        lang = lang_of(request)
        try:
            limit_app_threads(ctx.runs_dir)
            teacher_spec = (teacher or "").strip() or ctx.teacher
            student_spec = resolve_choice(student, ctx.runs_dir, ctx.student)
            teacher_model, teacher_tok = ctx.pool.get(teacher_spec, attn_implementation="eager")
            student_model, student_tok = ctx.pool.get(student_spec, attn_implementation="eager")
            mapping_strategy, pairs, source = _mapping(strategy, pairs_text, student_spec, teacher_spec,
                                                     teacher_model.config.num_hidden_layers)
            comparison = compare_attention(
                teacher_model, teacher_tok, student_model, student_tok, text or DEFAULT_TEXT,
                strategy=mapping_strategy, custom_pairs=pairs, max_tokens=int(max_tokens), source=source,
            )
        except UserError as exc:
            raise user_error(exc, lang) from None
        pair_choices, head_choices = _choices(comparison, lang)
        first_pair = pair_choices[-1][1]  # the last mapped pair: closest to the logits
        notes = [tr("Teacher `{teacher}` · student `{student}` · mapping {strategy} ({pairs} pairs) · {tokens} tokens",
                    lang, teacher=teacher_spec, student=student_spec, strategy=mapping_strategy,
                    pairs=len(comparison.pairs), tokens=len(comparison.tokens)), *comparison.notes]
        return (
            comparison,
            _figure(comparison, first_pair, AVERAGE, lang),
            summary_figure(comparison, text=translator(lang)),
            "  \n".join(notes),
            gr.update(choices=pair_choices, value=first_pair),
            gr.update(choices=head_choices, value=AVERAGE),
        )

    return compare


def build_attention_tab(ctx) -> dict[str, Any]:
    """Build the attention tab inside the current `gr.Tab`; returns its components by name."""
    state = gr.State(None)
    with gr.Row():
        text = gr.Textbox(value=DEFAULT_TEXT, lines=3, label=t("Text"), scale=4)
        max_tokens = gr.Slider(4, MAX_TOKENS_LIMIT, value=DEFAULT_MAX_TOKENS, step=1, label=t("Token cap"),
                               info=t("Longer texts are cut (a note says so)."), scale=1)
    with gr.Row():
        teacher = gr.Dropdown(choices=[ctx.teacher], value=ctx.teacher, allow_custom_value=True, label=t("Teacher"))
        student = gr.Dropdown(choices=student_picker(ctx.runs_dir, ctx.student),
                              value=LATEST,
                              allow_custom_value=True, label=t("Student"),
                              info=t("Undistilled, a run's final student or any checkpoint: before/after in one "
                                     "click."))
        strategy = gr.Dropdown(choices=[(t("from run"), FROM_RUN), "uniform", "last", "source", "custom"], value=FROM_RUN,
                             label=t("Layer mapping"),
                             info=t("'from run' uses the run's own mapping; a student made by dropping teacher "
                                    "layers is compared with the layers it was copied from (source)."))
        pairs_text = gr.Textbox(value="", label=t("Custom pairs"), placeholder=t("student:teacher, e.g. 0:1, 3:11"),
                                info=t("Only for the custom mapping."))
    with gr.Row():
        compare = gr.Button(t("Compare attention"), variant="primary", scale=2)
        refresh = gr.Button(t("↻ Runs"), size="sm", scale=0)
        pair = gr.Dropdown(choices=[(t("All pairs"), ALL_PAIRS)], value=ALL_PAIRS, label=t("Layer pair"), scale=2)
        head = gr.Dropdown(choices=[(t("Head-averaged"), AVERAGE)], value=AVERAGE, label=t("Head"), scale=1)
        hide_first = gr.Checkbox(value=False, label=t("Hide the first position"), scale=1, elem_id="attn-hide-first",
                                 info=t("Many models send most of their attention to the first token; hiding it "
                                        "gives the colour scale to the other positions."))
    notes = gr.Markdown(t("Press **Compare attention** to capture both models' maps (eager attention)."))
    heatmaps = gr.Plot(label=t("Teacher · student · |difference|"))
    summary = gr.Plot(label=t("JS divergence and entropy per pair and head"))
    def redraw(comparison, pair_value, head_value, hide_first_value=False, request: gr.Request = None):
        if comparison is None:
            return gr.update()
        return _figure(comparison, pair_value, head_value, lang_of(request), hide_first_value)

    def redraw_if_hidden(comparison, pair_value, head_value, hide_first_value, request: gr.Request = None):
        """After a new comparison: drawn again only when the first position is to be hidden."""
        return redraw(comparison, pair_value, head_value, hide_first_value, request) if hide_first_value else \
            gr.update()

    compare.click(
        compare_fn(ctx),
        [text, max_tokens, teacher, student, strategy, pairs_text],
        [state, heatmaps, summary, notes, pair, head],
        api_name="attention",
    ).then(redraw_if_hidden, [state, pair, head, hide_first], heatmaps, api_visibility="private")

    for control in (pair, head, hide_first):
        control.input(redraw, [state, pair, head, hide_first], heatmaps, api_visibility="private")
    def refresh_students():
        return gr.update(choices=student_picker(ctx.runs_dir, ctx.student))

    refresh.click(refresh_students, None, student, api_visibility="private")
    return {"refresh_pickers": (refresh_students, [student]),
            "text": text, "max_tokens": max_tokens, "teacher": teacher, "student": student, "strategy": strategy,
            "pairs": pairs_text, "compare": compare, "pair": pair, "head": head, "heatmaps": heatmaps,
            "summary": summary, "notes": notes, "state": state, "hide_first": hide_first}
