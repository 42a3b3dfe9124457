"""Figure builders: downsampling, one trace per active loss term, overlays, mapping diagram, temperature preview."""

from __future__ import annotations

import math

import pytest

from workbench.analysis.plots import (
    downsample,
    entropy,
    generation_figure,
    mapping_figure,
    overlay_figure,
    softened_distribution,
    temperature_figure,
    temperature_preview,
    training_figure,
)


def _rows(steps: int, hidden: float = 0.0) -> list[dict]:
    rows = []
    for step in range(1, steps + 1):
        rows.append({"kind": "train", "step": step, "total": 5.0 / step, "ce": 3.0 / step, "kd": 2.0 / step,
                     "hidden": hidden, "attn": 0.0, "lr": 1e-4, "tokens_per_s": 1000.0 + step})
        if step % 10 == 0:
            rows.append({"kind": "eval", "step": step, "eval_loss": 2.5 / step, "eval_ppl": 46.0 - step / 10,
                         "eval_kl": 0.5, "eval_top1": 0.3, "eval_teacher_ppl": 10.0})
    return rows


def test_downsample_caps_points_and_keeps_both_ends():
    rows = [{"step": i} for i in range(5000)]
    picked = downsample(rows, 1000)
    assert len(picked) == 1000
    assert picked[0]["step"] == 0 and picked[-1]["step"] == 4999
    assert [r["step"] for r in picked] == sorted(r["step"] for r in picked)
    assert downsample(rows[:10], 1000) == rows[:10]


def test_training_figure_draws_active_terms_and_eval():
    figure = training_figure(_rows(50))
    names = [trace.name for trace in figure.data]
    assert "train total" in names and "train CE" in names and "train KD" in names
    assert "train hidden" not in names and "train attention" not in names  # weight-0 terms stay out
    eval_trace = next(t for t in figure.data if t.name == "eval KL (T = 1)")
    assert eval_trace.line.dash == "dash" and list(eval_trace.x) == [10, 20, 30, 40, 50]
    total = next(t for t in figure.data if t.name == "train total")
    assert figure.data[0] is total and total.line.width > 2  # drawn under the terms, wide enough to show
    assert any(t.name == "learning rate" for t in figure.data) and any(t.name == "training tokens/s" for t in figure.data)
    assert "train hidden" in [t.name for t in training_figure(_rows(20, hidden=0.4)).data]


def test_training_figure_downsamples_long_runs_and_skips_non_finite():
    rows = _rows(3000)
    rows[5]["kd"] = float("nan")
    kd = next(t for t in training_figure(rows).data if t.name == "train KD")
    assert len(kd.x) <= 1000
    assert all(math.isfinite(y) for y in kd.y)


def test_eval_panel_gives_perplexity_a_log_axis_and_agreement_its_own():
    loss = {"divergence": "forward_kl", "temperature": 2.0, "t2_scale": True, "ce_weight": 0.0, "kd_weight": 1.0,
            "hidden_weight": 0.4, "attn_weight": 0.0}
    figure = training_figure(_rows(50, hidden=0.4), loss=loss)
    by_name = {trace.name: trace for trace in figure.data}
    ppl, top1 = by_name["student perplexity"], by_name["top-1 agreement"]
    assert figure.layout[ppl.yaxis.replace("y", "yaxis")].type == "log"
    assert ppl.yaxis != top1.yaxis  # agreement (0-1) does not share the perplexity axis
    agreement_axis = figure.layout[top1.yaxis.replace("y", "yaxis")]
    assert tuple(agreement_axis.range) == (0, 1) and agreement_axis.overlaying
    teacher = by_name["teacher perplexity"]
    assert teacher.line.dash == "dot" and set(teacher.y) == {10.0} and teacher.yaxis == ppl.yaxis
    assert "train KD (forward_kl, T = 2 · ×T²)" in by_name and "eval KL (T = 1)" in by_name
    assert "train CE" not in by_name  # weight 0 in the config: hidden although the rows carry a value
    assert "train total" in by_name and "train hidden" in by_name
    labelled = training_figure(_rows(20), text=lambda label: label.upper())
    assert "STUDENT PERPLEXITY" in [t.name for t in labelled.data]


def test_generation_figure_puts_nats_shares_and_length_on_their_own_panels():
    rows = [{"kind": "gen_eval", "step": step, "gen_rkl": 1.2 / step, "gen_teacher_nll": 2.0, "gen_rep4": 0.2 / step,
             "gen_empty": 0.0, "gen_len": 40.0, "measured_on": "3 prompts"} for step in (1, 2, 4)]
    figure = generation_figure(rows)
    by_name = {trace.name: trace for trace in figure.data}
    assert list(by_name["reverse KL to the teacher"].x) == [1, 2, 4]
    assert by_name["repeated 4-grams"].xaxis != by_name["reverse KL to the teacher"].xaxis
    shares_axis = figure.layout[by_name["repeated 4-grams"].yaxis.replace("y", "yaxis")]
    assert tuple(shares_axis.range) == (0, 1)
    assert by_name["mean length"].xaxis == "x3"


def test_overlay_has_one_line_per_run():
    figure = overlay_figure({"a": _rows(30), "b": _rows(20)}, metric="eval_loss")
    assert [t.name for t in figure.data] == ["a", "b"]
    assert list(figure.data[1].x) == [10, 20]


def test_mapping_figure_draws_each_pair_and_flags_invalid():
    figure = mapping_figure([(0, 1), (1, 3), ("emb", "emb")], 2, 4, invalid=[(5, 9)])
    lines = [t for t in figure.data if t.mode == "lines"]
    assert len(lines) == 4
    assert lines[-1].line.color == "#dc2626"
    assert "invalid: 5:9" in figure.layout.title.text


def test_temperature_preview_softens_with_t():
    teacher = [4.0, 2.0, 1.0, 0.0, -1.0]
    student = [1.0, 3.0, 0.0, 0.0, 0.0]
    tokens = ["a", "b", "c", "d", "e"]
    cold = temperature_preview(tokens, teacher, student, 0.5, top_k=3)
    hot = temperature_preview(tokens, teacher, student, 4.0, top_k=3)
    assert cold["tokens"] == ["a", "b", "c"]
    assert hot["teacher_entropy"] > cold["teacher_entropy"]
    assert hot["student_entropy"] > cold["student_entropy"]
    assert hot["teacher"][0] < cold["teacher"][0]
    probs = softened_distribution(teacher, 1.0)
    assert sum(probs) == pytest.approx(1.0)
    assert entropy([0.25] * 4) == pytest.approx(math.log(4))
    by_function = temperature_preview(lambda i: tokens[i], teacher, student, 1.0, top_k=2)
    assert by_function["tokens"] == ["a", "b"]
    figure = temperature_figure(hot)
    assert len(figure.data) == 2 and "entropy" in figure.data[0].name


def test_answer_length_axis_starts_at_zero_so_a_flat_line_looks_flat():
    rows = [{"kind": "gen_eval", "step": step, "gen_rkl": 0.4, "gen_len": length}
            for step, length in ((1, 59.8), (2, 59.7), (3, 59.6))]
    figure = generation_figure(rows)
    assert figure.layout.yaxis3.rangemode == "tozero"


def test_empty_figures_say_so_and_legends_sit_below_the_axis_titles():
    for figure in (generation_figure([]), overlay_figure({"a": []}, metric="eval_ppl"), training_figure([])):
        assert [a.text for a in figure.layout.annotations if a.text == "No data yet"], figure.layout.annotations
    assert not [a for a in generation_figure(
        [{"kind": "gen_eval", "step": 1, "gen_len": 3.0}]).layout.annotations if a.text == "No data yet"]
    legend = training_figure(_rows(20)).layout.legend
    assert legend.yref == "container" and legend.y == 0 and legend.yanchor == "bottom"


def test_next_token_bars_label_invisible_tokens_visibly():
    preview = {"temperature": 1.0, "tokens": ["\n", " ", "", " the", "\t"], "teacher": [0.2] * 5,
               "student": [0.2] * 5, "teacher_entropy": 1.0, "student_entropy": 1.0}
    labels = list(temperature_figure(preview).data[0].x)
    assert labels == ["↵", "␣", "∅", "␣the", "⇥"]  # a newline token used to get a blank label


def test_generation_figure_ticks_only_the_scored_steps_when_there_are_few():
    """The quick preset scores answers once, at step 20: the axis used to read 19, 19.5, 20, 20.5, 21."""
    row = {"kind": "gen_eval", "step": 20, "gen_rkl": 1.0, "gen_teacher_nll": 2.0, "gen_rep4": 0.3, "gen_empty": 0.0,
           "gen_len": 54.0}
    figure = generation_figure([row])
    assert all(tuple(axis.tickvals) == (20,) for axis in (figure.layout.xaxis, figure.layout.xaxis2, figure.layout.xaxis3))
    many = [{**row, "step": step} for step in range(10, 110, 10)]
    assert generation_figure(many).layout.xaxis.tickvals is None  # many steps: plotly's own ticks
