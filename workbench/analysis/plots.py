"""Plotly figures built from plain data: metric rows of a run, several runs overlaid, a layer mapping, and the
temperature preview. Pure functions (rows in, `plotly.graph_objects.Figure` out), shared by the app and notebooks.

    rows = read_metrics("runs/run-1/metrics.jsonl")
    training_figure(rows).show()
    overlay_figure({"run-1": rows1, "run-2": rows2}, metric="kd").show()
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.models.vocab import visible_token

MAX_POINTS = 1000
LOSS_TERMS = (("total", "total"), ("ce", "CE"), ("kd", "KD"), ("hidden", "hidden"), ("attn", "attention"))
EVAL_TERMS = (("eval_kl", "eval KL (T = 1)"),)  # eval CE is the perplexity of the eval panel, on its own axis
TOTAL_STYLE = dict(color="#111827", width=5)
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
# the legend sits at the foot of the figure, below the x axis title (not over it)
LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=100),
              legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.0))
NO_DATA = "No data yet"


def mark_empty(figure: go.Figure, text: Callable[[str], str] = str) -> go.Figure:
    """A figure with no points says so in its middle, instead of showing bare axes."""
    if any(len(trace.x or ()) for trace in figure.data):
        return figure
    figure.add_annotation(text=text(NO_DATA), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                          font=dict(size=16, color="#64748b"))
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    return figure


def downsample(rows: list[dict[str, Any]], max_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """At most `max_points` rows, evenly strided, always keeping the first and the last."""
    if len(rows) <= max_points:
        return rows
    stride = len(rows) / (max_points - 1)
    picked = [rows[min(len(rows) - 1, int(i * stride))] for i in range(max_points - 1)]
    return picked + [rows[-1]]


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            xs.append(row.get("step"))
            ys.append(value)
    return xs, ys


def split_rows(rows: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(train rows, eval rows), each downsampled."""
    train = [row for row in rows if row.get("kind", "train") == "train"]
    evals = [row for row in rows if row.get("kind") == "eval"]
    return downsample(train), downsample(evals)


def _active_terms(train: list[dict], weights: dict[str, float] | None) -> list[tuple[str, str]]:
    """Loss terms to draw: the total always; another term when its weight is not 0 (when `weights` are known) and
    it is not zero at every step."""
    terms = []
    for key, label in LOSS_TERMS:
        _, ys = _series(train, key)
        if key != "total" and (not ys or (weights is not None and not weights.get(key)) or all(y == 0 for y in ys)):
            continue
        if ys:
            terms.append((key, label))
    return terms


def _kd_label(loss: dict | None) -> str:
    """Where the train KD curve is measured: at the run's temperature, times T² when t2_scale is on."""
    if not loss:
        return "KD"
    scale = " · ×T²" if loss.get("t2_scale", True) else ""
    return f"KD ({loss.get('divergence', 'kd')}, T = {float(loss.get('temperature', 1.0)):g}{scale})"


def training_figure(rows: list[dict[str, Any]], title: str = "", log_y: bool = False, loss: dict | None = None,
                    text: Callable[[str], str] = str) -> go.Figure:
    """2x2 panel against step: loss terms (train lines, eval dashed), eval quality (student perplexity on a log
    axis with the teacher's as a dotted reference, top-1 agreement on its own 0-1 axis), learning rate, tokens/s.

    `loss` is the run's `loss` config section (as a dict): it names the temperature of the KD curve and hides the
    terms whose weight is 0. `text` translates the labels."""
    train, evals = split_rows(rows)
    weights = {key: loss.get(f"{key}_weight") for key in ("ce", "kd", "hidden", "attn")} if loss else None
    figure = make_subplots(
        rows=2, cols=2, specs=[[{}, {"secondary_y": True}], [{}, {}]], vertical_spacing=0.16,
        horizontal_spacing=0.1,
        subplot_titles=(text("loss terms (train; eval dashed)"), text("eval on the validation split"),
                        text("learning rate"), text("tokens / s")),
    )
    labels = {"total": text("total"), "ce": "CE", "kd": _kd_label(loss), "hidden": text("hidden"),
              "attn": text("attention")}
    for index, (key, _) in enumerate(_active_terms(train, weights)):
        xs, ys = _series(train, key)
        # the total is drawn first, wide and translucent, so it stays visible when one term equals it
        style = TOTAL_STYLE if key == "total" else dict(color=COLORS[index % len(COLORS)], width=2)
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{text('train')} {labels[key]}", legendgroup=key,
                                    line=style, opacity=0.35 if key == "total" else 1.0), row=1, col=1)
    for index, (key, label) in enumerate(EVAL_TERMS):
        xs, ys = _series(evals, key)
        if xs:
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=text(label),
                                        line=dict(color=COLORS[(index + 5) % len(COLORS)], dash="dash")), row=1, col=1)
    _eval_quality(figure, evals, text)
    xs, ys = _series(train, "lr")
    figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=text("learning rate"), line=dict(color="#64748b")),
                     row=2, col=1)
    xs, ys = _series(train, "tokens_per_s")
    figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=text("training tokens/s"),
                                line=dict(color="#0d9488")), row=2, col=2)
    figure.update_layout(height=600, title=title or None, **LAYOUT)
    figure.update_xaxes(title_text=text("step"), row=2)
    if log_y:
        figure.update_yaxes(type="log", row=1, col=1)
    return mark_empty(figure, text)


def _eval_quality(figure: go.Figure, evals: list[dict], text: Callable[[str], str]) -> None:
    """Student perplexity (log axis, left), the teacher's as a dotted line, top-1 agreement (0-1, right)."""
    xs, ys = _series(evals, "eval_ppl")
    if xs:
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=text("student perplexity"),
                                    line=dict(color=COLORS[3])), row=1, col=2, secondary_y=False)
    teacher_xs, teacher_ys = _series(evals, "eval_teacher_ppl")
    if teacher_xs:
        figure.add_trace(go.Scatter(x=teacher_xs, y=teacher_ys, mode="lines", name=text("teacher perplexity"),
                                    line=dict(color="#334155", dash="dot")), row=1, col=2, secondary_y=False)
    xs, ys = _series(evals, "eval_top1")
    if xs:
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=text("top-1 agreement"),
                                    line=dict(color=COLORS[4])), row=1, col=2, secondary_y=True)
    figure.update_yaxes(type="log", title_text=text("perplexity (log)"), row=1, col=2, secondary_y=False)
    figure.update_yaxes(range=[0, 1], title_text=text("top-1 agreement"), row=1, col=2, secondary_y=True,
                        showgrid=False)


GEN_NATS = (("gen_rkl", "reverse KL to the teacher"), ("gen_teacher_nll", "teacher NLL"))
GEN_SHARES = (("gen_rep4", "repeated 4-grams"), ("gen_empty", "empty answers"))


def generation_figure(rows: list[dict[str, Any]], text: Callable[[str], str] = str) -> go.Figure:
    """Generation quality of `gen_eval` rows against step: nats per answer token (reverse KL to the teacher on the
    student's own samples, the teacher's NLL of them), shares of answers (0-1), and mean answer length."""
    evals = downsample([row for row in rows if row.get("kind") == "gen_eval"])
    figure = make_subplots(rows=1, cols=3, horizontal_spacing=0.08,
                           subplot_titles=(text("nats per answer token"), text("share of answers"),
                                           text("answer length (tokens)")))
    for column, terms in ((1, GEN_NATS), (2, GEN_SHARES), (3, (("gen_len", "mean length"),))):
        for index, (key, label) in enumerate(terms):
            xs, ys = _series(evals, key)
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=text(label),
                                        line=dict(color=COLORS[(2 * column + index) % len(COLORS)])),
                             row=1, col=column)
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1], row=1, col=2)
    figure.update_yaxes(rangemode="tozero", row=1, col=3)  # from zero: a flat length must not look like a fall
    steps = sorted({row["step"] for row in evals if row.get("step") is not None})
    # a few scored steps (the quick preset scores only its last): a tick at each, not at step 19.5 and 20.5
    ticks = dict(tickmode="array", tickvals=steps) if 0 < len(steps) <= 6 else {}
    figure.update_xaxes(title_text=text("step"), **ticks)
    figure.update_layout(height=380, **LAYOUT)
    return mark_empty(figure, text)


# the metrics a run's curves can be compared on: key in metrics.jsonl -> (name, unit of the y axis)
METRICS = {
    "kd": ("KD term", "nats/token × T²"),
    "ce": ("cross-entropy term", "nats/token"),
    "total": ("total loss (weighted terms)", "loss"),
    "hidden": ("hidden-state term", "distance"),
    "attn": ("attention term", "distance"),
    "eval_loss": ("eval cross-entropy", "nats/token"),
    "eval_ppl": ("student perplexity", "perplexity"),
    "eval_bpb": ("bits per byte", "bits/byte"),
    "eval_kl": ("KL(teacher‖student)", "nats/token"),
    "eval_top1": ("top-1 agreement", "share (0-1)"),
    "gen_rkl": ("reverse KL to the teacher", "nats/token"),
    "gen_teacher_nll": ("teacher NLL", "nats/token"),
    "gen_rep4": ("repeated 4-grams", "share (0-1)"),
    "gen_empty": ("empty answers", "share (0-1)"),
    "gen_len": ("mean length", "tokens"),
    "lr": ("learning rate", "learning rate"),
    "tokens_per_s": ("training tokens/s", "tokens/s"),
}


def overlay_figure(runs: dict[str, list[dict[str, Any]]], metric: str = "kd", log_y: bool = False,
                   text: Callable[[str], str] = str) -> go.Figure:
    """One line per run for `metric` (a train term like 'kd' or an eval field like 'eval_loss'), named and with its
    unit on the y axis (METRICS); `text` translates the titles."""
    figure = go.Figure()
    for index, (name, rows) in enumerate(runs.items()):
        train, evals = split_rows(rows)
        if metric.startswith("gen_"):
            evals = downsample([row for row in rows if row.get("kind") == "gen_eval"])
        per_eval = metric.startswith(("eval_", "gen_", "tasks/"))  # tasks/<task>/<field>: a multi-task run's scores
        xs, ys = _series(evals if per_eval else train, metric)
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if per_eval else "lines",
                                    name=name, line=dict(color=COLORS[index % len(COLORS)])))
    name, unit = METRICS.get(metric, (metric, ""))
    figure.update_layout(height=420, title=text("{metric} by run").format(metric=text(name)), xaxis_title=text("step"),
                         yaxis_title=text(unit) if unit else text(name), **LAYOUT)
    if log_y:
        figure.update_yaxes(type="log")
    return mark_empty(figure, text)


def _layer_y(layer: int | str, count: int) -> float:
    """Vertical position of a layer in a stack drawn bottom (embedding, -1) to top (last layer)."""
    return -1.0 if layer == "emb" else float(layer)


def mapping_figure(
    pairs: list[tuple[int | str, int | str]], student_layers: int, teacher_layers: int,
    invalid: list[tuple[Any, Any]] | None = None, text: Callable[[str], str] = str,
) -> go.Figure:
    """Two layer stacks (student left, teacher right, embedding at the bottom) with a line per mapped pair;
    invalid pairs are drawn red and dotted where they can be placed, and listed in the title. `text` translates
    the words."""
    figure = go.Figure()
    scale_t = 1.0
    scale_s = max(teacher_layers - 1, 1) / max(student_layers - 1, 1) if student_layers > 1 else 1.0
    for x, count, scale, name in ((0, student_layers, scale_s, text("student")),
                                  (1, teacher_layers, scale_t, text("teacher"))):
        ys = [-1.0] + [i * scale for i in range(count)]
        labels = ["emb"] + [str(i) for i in range(count)]
        figure.add_trace(go.Scatter(x=[x] * len(ys), y=ys, mode="markers+text", text=labels,
                                    textposition="middle left" if x == 0 else "middle right",
                                    marker=dict(size=10, symbol="square", color="#334155"), name=name,
                                    hoverinfo="text", hovertext=[f"{name} {label}" for label in labels]))
    for student, teacher in pairs:
        y_s = _layer_y(student, student_layers) * (scale_s if student != "emb" else 1)
        y_t = _layer_y(teacher, teacher_layers) * (scale_t if teacher != "emb" else 1)
        figure.add_trace(go.Scatter(x=[0, 1], y=[y_s, y_t], mode="lines", line=dict(color="#2563eb", width=2),
                                    showlegend=False, hoverinfo="text", hovertext=text("student {student} → teacher {teacher}").format(
                                        student=student, teacher=teacher)))
    bad = []
    for student, teacher in invalid or []:
        bad.append(f"{student}:{teacher}")
        try:
            y_s = float(student) * scale_s if student != "emb" else -1.0
            y_t = float(teacher) if teacher != "emb" else -1.0
        except (TypeError, ValueError):
            continue
        figure.add_trace(go.Scatter(x=[0, 1], y=[y_s, y_t], mode="lines", line=dict(color="#dc2626", dash="dot"),
                                    showlegend=False, hoverinfo="text", hovertext=text("invalid {pair}").format(
                                        pair=f"{student}:{teacher}")))
    title = text("{count} mapped pair(s)").format(count=len(pairs))
    title += text(" · invalid: {pairs}").format(pairs=", ".join(bad)) if bad else ""
    figure.update_layout(
        height=max(260, 16 * teacher_layers + 120), title=title, showlegend=False,
        xaxis=dict(range=[-0.5, 1.5], tickvals=[0, 1], ticktext=[text("student"), text("teacher")], showgrid=False),
        yaxis=dict(showticklabels=False, showgrid=False, zeroline=False),
        template="plotly_white", margin=dict(l=20, r=20, t=50, b=30),
    )
    return figure


def softened_distribution(logits: list[float] | Any, temperature: float) -> list[float]:
    """softmax(logits / T) in float64 (pure Python, so it works on any list of numbers)."""
    values = [float(v) / temperature for v in (logits.tolist() if hasattr(logits, "tolist") else logits)]
    peak = max(values)
    exps = [math.exp(v - peak) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def entropy(probs: list[float]) -> float:
    """Shannon entropy in nats."""
    return -sum(p * math.log(p) for p in probs if p > 0)


def temperature_preview(
    tokens: list[str] | Callable[[int], str], teacher_logits: list[float], student_logits: list[float], temperature: float, top_k: int = 10
) -> dict[str, Any]:
    """Top tokens (by the teacher's probability at T) with both models' probabilities at T, and both entropies.
    `tokens` is the vocabulary as a list, or a function from token id to its text."""
    teacher_probs = softened_distribution(teacher_logits, temperature)
    student_probs = softened_distribution(student_logits, temperature)
    order = sorted(range(len(teacher_probs)), key=lambda i: -teacher_probs[i])[:top_k]
    return {
        "temperature": temperature,
        "tokens": [tokens(i) if callable(tokens) else tokens[i] for i in order],
        "teacher": [teacher_probs[i] for i in order],
        "student": [student_probs[i] for i in order],
        "teacher_entropy": entropy(teacher_probs),
        "student_entropy": entropy(student_probs),
    }


def temperature_figure(preview: dict[str, Any], text: Callable[[str], str] = str) -> go.Figure:
    """Grouped bars of teacher and student next-token probabilities at T, entropies in the legend; `text`
    translates the words."""
    figure = go.Figure()
    labels = [visible_token(token) for token in preview["tokens"]]
    figure.add_trace(go.Bar(x=labels, y=preview["teacher"], marker_color=COLORS[0],
                            name=text("teacher (entropy {entropy} nats)").format(
                                entropy=f"{preview['teacher_entropy']:.2f}")))
    figure.add_trace(go.Bar(x=labels, y=preview["student"], marker_color=COLORS[2],
                            name=text("student (entropy {entropy} nats)").format(
                                entropy=f"{preview['student_entropy']:.2f}")))
    figure.update_layout(
        barmode="group", height=320,
        title=text("next-token distribution at T = {t}").format(t=f"{preview['temperature']:g}"),
        yaxis=dict(title=text("probability"), rangemode="tozero"), **LAYOUT,
    )
    return figure
