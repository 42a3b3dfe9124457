"""Attention tab: teacher vs student attention maps on one text, for one mapped layer pair or all of them.

Pick the student (the undistilled start, a run's final student or any checkpoint, so before/after is one click),
the layer mapping (the run's own, or a preset), and press Compare. Heatmaps show teacher, student and |difference|
with token labels on both axes; grey cells are masked by causal attention. The grid below gives Jensen-Shannon
divergence and entropy per mapped pair and head. Changing pair or head redraws from the captured maps.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from workbench.app.context import user_error
from workbench.attention import DEFAULT_MAX_TOKENS, DEFAULT_TEXT, MAX_TOKENS_LIMIT, compare_attention
from workbench.errors import UserError
from workbench.inspect_plots import attention_figure, summary_figure
from workbench.model_pool import LATEST, limit_app_threads, resolve_choice, student_choices
from workbench.runs import run_of

ALL_PAIRS = "all"
AVERAGE = "average"
FROM_RUN = "from run"


def _run_mapping(student_spec: str) -> tuple[str, list[str]] | None:
    """The mapping of the run a student spec belongs to (run folder or checkpoint), if any."""
    from workbench.config import DistillConfig

    run = run_of(student_spec)
    if run is None:
        return None
    cfg = DistillConfig.load(run.config_path)
    return cfg.mapping.preset, list(cfg.mapping.pairs)


def _mapping(preset: str, pairs_text: str, student_spec: str) -> tuple[str, list[str]]:
    if preset == FROM_RUN:
        return _run_mapping(student_spec) or ("uniform", [])
    pairs = [p.strip() for p in (pairs_text or "").split(",") if p.strip()]
    return preset, pairs


def _choices(comparison) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    pairs = [("All pairs", ALL_PAIRS)] + [(label, str(i)) for i, label in enumerate(comparison.pair_labels)]
    heads = [("Head-averaged", AVERAGE)] + [(f"Head {h}", str(h)) for h in range(comparison.aligned_heads)]
    return pairs, heads


def _figure(comparison, pair: str, head: str):
    pair_index = None if pair in (None, ALL_PAIRS) else int(pair)
    head_index = None if head in (None, AVERAGE) else int(head)
    return attention_figure(comparison, pair_index=pair_index, head=head_index)


def compare_fn(ctx):
    def compare(text: str, max_tokens: int, teacher: str, student: str, preset: str, pairs_text: str):
        try:
            limit_app_threads(ctx.runs_dir)
            teacher_spec = (teacher or "").strip() or ctx.teacher
            student_spec = resolve_choice(student, ctx.runs_dir, ctx.student)
            mapping_preset, pairs = _mapping(preset, pairs_text, student_spec)
            teacher_model, teacher_tok = ctx.pool.get(teacher_spec, attn_implementation="eager")
            student_model, student_tok = ctx.pool.get(student_spec, attn_implementation="eager")
            comparison = compare_attention(
                teacher_model, teacher_tok, student_model, student_tok, text or DEFAULT_TEXT,
                preset=mapping_preset, custom_pairs=pairs, max_tokens=int(max_tokens),
            )
        except UserError as exc:
            raise user_error(str(exc)) from None
        pair_choices, head_choices = _choices(comparison)
        first_pair = pair_choices[-1][1]  # the last mapped pair: closest to the logits
        notes = [f"Teacher `{teacher_spec}` · student `{student_spec}` · mapping {mapping_preset} "
                 f"({len(comparison.pairs)} pairs) · {len(comparison.tokens)} tokens", *comparison.notes]
        return (
            comparison,
            _figure(comparison, first_pair, AVERAGE),
            summary_figure(comparison),
            "  \n".join(notes),
            gr.update(choices=pair_choices, value=first_pair),
            gr.update(choices=head_choices, value=AVERAGE),
        )

    return compare


def build_attention_tab(ctx) -> dict[str, Any]:
    """Build the attention tab inside the current `gr.Tab`; returns its components by name."""
    state = gr.State(None)
    with gr.Row():
        text = gr.Textbox(value=DEFAULT_TEXT, lines=3, label="Text", scale=4)
        max_tokens = gr.Slider(4, MAX_TOKENS_LIMIT, value=DEFAULT_MAX_TOKENS, step=1, label="Token cap",
                               info="Longer texts are cut (a note says so).", scale=1)
    with gr.Row():
        teacher = gr.Dropdown(choices=[ctx.teacher], value=ctx.teacher, allow_custom_value=True, label="Teacher")
        student = gr.Dropdown(choices=student_choices(ctx.runs_dir, ctx.student), value=LATEST,
                              allow_custom_value=True, label="Student",
                              info="Undistilled, a run's final student or any checkpoint: before/after in one click.")
        preset = gr.Dropdown(choices=[FROM_RUN, "uniform", "last", "custom"], value=FROM_RUN, label="Layer mapping",
                             info="'from run' uses the run's own mapping (uniform for a plain model).")
        pairs_text = gr.Textbox(value="", label="Custom pairs", placeholder="student:teacher, e.g. 0:1, 3:11",
                                info="Only for the custom mapping.")
    with gr.Row():
        compare = gr.Button("Compare attention", variant="primary", scale=2)
        refresh = gr.Button("↻ Runs", size="sm", scale=0)
        pair = gr.Dropdown(choices=[("All pairs", ALL_PAIRS)], value=ALL_PAIRS, label="Layer pair", scale=2)
        head = gr.Dropdown(choices=[("Head-averaged", AVERAGE)], value=AVERAGE, label="Head", scale=1)
    notes = gr.Markdown("Press **Compare attention** to capture both models' maps (eager attention).")
    heatmaps = gr.Plot(label="Teacher · student · |difference|")
    summary = gr.Plot(label="JS divergence and entropy per pair and head")
    compare.click(
        compare_fn(ctx),
        [text, max_tokens, teacher, student, preset, pairs_text],
        [state, heatmaps, summary, notes, pair, head],
        api_name="attention",
    )

    def redraw(comparison, pair_value, head_value):
        if comparison is None:
            return gr.update()
        return _figure(comparison, pair_value, head_value)

    for control in (pair, head):
        control.input(redraw, [state, pair, head], heatmaps, api_visibility="private")
    refresh.click(lambda: gr.update(choices=student_choices(ctx.runs_dir, ctx.student)), None, student,
                  api_visibility="private")
    return {"text": text, "max_tokens": max_tokens, "teacher": teacher, "student": student, "preset": preset,
            "pairs": pairs_text, "compare": compare, "pair": pair, "head": head, "heatmaps": heatmaps,
            "summary": summary, "notes": notes, "state": state}
