"""Plotly figures for inspecting a run: attention heatmaps, the per-head summary grid, report-card bars.

Pure functions from data to `plotly.graph_objects.Figure`, shared by the app and notebooks:

    attention_figure(comparison, pair_index=0, head=None)   # teacher | student | |difference| for one pair
    attention_figure(comparison, pair_index=None)           # every mapped pair as a compact grid of |difference|
    summary_figure(comparison)                              # JS divergence and entropy over pairs x heads
    report_figure(card)                                     # report-card metrics as grouped bars

In the heatmaps row i is the query token and column j the key token. Cells above the diagonal (j > i) are masked by
causal attention: they are left empty and show the grey plot background, so the mask stays visible.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.analysis.attention import AttentionComparison

MASK_COLOR = "#d9d9d9"
PANEL_TITLES = ("teacher", "student", "|teacher − student|")


def _masked(values: torch.Tensor) -> list[list[float | None]]:
    """[T, T] -> nested lists with the causally masked cells (column > row) set to None."""
    rows = values.tolist()
    return [[v if j <= i else None for j, v in enumerate(row)] for i, row in enumerate(rows)]


def _heatmap(values: torch.Tensor, tokens: list[str], *, colorscale: str, zmax: float, colorbar_x: float | None,
             name: str, showscale: bool) -> go.Heatmap:
    return go.Heatmap(
        z=_masked(values),
        x=tokens,
        y=tokens,
        zmin=0.0,
        zmax=zmax,
        colorscale=colorscale,
        showscale=showscale,
        colorbar=dict(x=colorbar_x, len=0.9, thickness=12) if colorbar_x is not None else None,
        hoverongaps=False,
        name=name,
        hovertemplate="query %{y}<br>key %{x}<br>" + name + " %{z:.3f}<extra></extra>",
    )


def _right_edge(fig: go.Figure, col: int) -> float:
    """The right end (paper coordinates) of the first-row subplot in column `col`."""
    return float(fig.get_subplot(1, col).xaxis.domain[1])


GRID_COLUMNS = 6
GRID_CELL_PX = 190


def _head_text(head: int | None, text: Callable[[str], str]) -> str:
    return text("head-averaged") if head is None else text("head {head}").format(head=head)


def _shown_maps(comparison: AttentionComparison, index: int, head: int | None, hide_first: bool):
    """(tokens, (teacher, student, |difference|)) of one pair; without the first position (query row and key column)
    when `hide_first`: many models send most attention to the first token, which then takes the whole colour scale."""
    maps = comparison.pair_maps(index, head)
    if not hide_first:
        return comparison.tokens, maps
    return comparison.tokens[1:], tuple(m[1:, 1:] for m in maps)


def pairs_grid_figure(comparison: AttentionComparison, head: int | None = None,
                      text: Callable[[str], str] = str, hide_first: bool = False) -> go.Figure:
    """Every mapped pair at a glance: one small |teacher − student| heatmap per pair, six to a row, one colour scale,
    titled with the pair and its mean JS divergence; pick a pair to see it full size with token labels. `text`
    translates the titles."""
    count = len(comparison.pairs)
    cols = min(GRID_COLUMNS, count)
    rows = -(-count // cols)
    js = comparison.js.mean(dim=1).tolist()
    titles = [f"S{s}↔T{t} · JS {js[i]:.3f}" for i, (s, t) in enumerate(comparison.pairs)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=min(0.08, 0.3 / rows))
    shown = [_shown_maps(comparison, index, head, hide_first) for index in range(count)]
    tokens, diffs = shown[0][0], [maps[2] for _, maps in shown]
    peak = max(max(float(d.max()) for d in diffs), 1e-6)
    for index, diff in enumerate(diffs):
        fig.add_trace(_heatmap(diff, tokens, colorscale="Reds", zmax=peak, colorbar_x=1.01,
                               name="|diff|", showscale=index == 0), row=index // cols + 1, col=index % cols + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, type="category")
    fig.update_yaxes(showticklabels=False, showgrid=False, type="category", autorange="reversed")
    fig.update_annotations(font_size=10)
    fig.update_layout(title=text("|teacher − student| attention of every mapped pair ({head})").format(
                          head=_head_text(head, text)),
                      plot_bgcolor=MASK_COLOR, height=GRID_CELL_PX * rows + 90, margin=dict(l=20, r=60, t=80, b=20))
    return fig


def attention_figure(comparison: AttentionComparison, pair_index: int | None = 0, head: int | None = None,
                     text: Callable[[str], str] = str, hide_first: bool = False) -> go.Figure:
    """Teacher, student and |difference| heatmaps for one mapped pair; every pair as a compact grid when
    `pair_index` is None (`pairs_grid_figure`); without the first position when `hide_first`. `text` translates
    the titles."""
    if pair_index is None:
        return pairs_grid_figure(comparison, head, text, hide_first)
    indices = [pair_index]
    rows = len(indices)
    titles = [f"{text(panel)} · S{comparison.pairs[i][0]}↔T{comparison.pairs[i][1]}" for i in indices
              for panel in PANEL_TITLES]
    fig = make_subplots(rows=rows, cols=3, subplot_titles=titles, horizontal_spacing=0.09,
                        vertical_spacing=min(0.12, 0.5 / rows))
    weight_bar_x, diff_bar_x = _right_edge(fig, 2) + 0.005, _right_edge(fig, 3) + 0.005
    shown = [_shown_maps(comparison, index, head, hide_first) for index in indices]
    tokens, maps = shown[0][0], [m for _, m in shown]  # (teacher, student, diff) per pair
    peak = max(float(max(t.max(), s.max())) for t, s, _ in maps)  # one scale for every row, so rows compare
    diff_peak = max(max(float(d.max()) for _, _, d in maps), 1e-6)
    for row, (teacher_map, student_map, diff) in enumerate(maps, start=1):
        first = row == 1
        fig.add_trace(_heatmap(teacher_map, tokens, colorscale="Blues", zmax=peak, colorbar_x=None,
                               name="weight", showscale=False), row=row, col=1)
        fig.add_trace(_heatmap(student_map, tokens, colorscale="Blues", zmax=peak, colorbar_x=weight_bar_x,
                               name="weight", showscale=first), row=row, col=2)
        fig.add_trace(_heatmap(diff, tokens, colorscale="Reds", zmax=diff_peak, colorbar_x=diff_bar_x,
                               name="|diff|", showscale=first), row=row, col=3)
    axis_font = dict(size=11 if len(tokens) <= 32 else 9)
    ticks = dict(tickmode="array", tickvals=tokens, ticktext=tokens)  # every token labelled, none skipped
    fig.update_xaxes(tickangle=-60, tickfont=axis_font, showgrid=False, type="category", **ticks)
    fig.update_yaxes(autorange="reversed", tickfont=axis_font, showgrid=False, type="category", **ticks)
    row_height = max(380, 9 * len(tokens) + 160)
    fig.update_layout(
        title=text("Attention ({head}); grey cells are masked by causal attention").format(head=_head_text(head, text)),
        plot_bgcolor=MASK_COLOR,
        height=row_height * rows,
        margin=dict(l=40, r=40, t=80, b=40),
    )
    return fig


def summary_figure(comparison: AttentionComparison, text: Callable[[str], str] = str) -> go.Figure:
    """Grids over mapped pairs × heads: JS divergence (bits) and the teacher's and student's attention entropy;
    `text` translates the titles."""
    labels = [f"S{s}↔T{t}" for s, t in comparison.pairs]
    panels = (
        (text("JS divergence (bits)"), comparison.js, "Reds"),
        (text("teacher entropy (bits)"), comparison.teacher_entropy, "Viridis"),
        (text("student entropy (bits)"), comparison.student_entropy, "Viridis"),
    )
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.12)
    entropy_max = float(max(comparison.teacher_entropy.max(), comparison.student_entropy.max(), 1e-6))
    for col, (title, values, scale) in enumerate(panels, start=1):
        is_js = col == 1
        fig.add_trace(
            go.Heatmap(
                z=values.tolist(),
                x=[f"h{h}" for h in range(values.shape[1])],
                y=labels,
                colorscale=scale,
                zmin=0.0,
                zmax=max(float(values.max()), 1e-6) if is_js else entropy_max,
                showscale=col in (1, 3),
                colorbar=dict(x=_right_edge(fig, 1 if is_js else 3) + 0.005, len=0.9, thickness=12),
                hovertemplate="%{y} %{x}<br>" + title + " %{z:.4f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    notes = "; ".join(comparison.notes)
    fig.update_layout(
        title=text("Per pair and head") + (f" ({notes})" if notes else ""),
        height=max(320, 70 + 26 * len(labels)),
        margin=dict(l=40, r=40, t=80, b=40),
    )
    return fig


REPORT_BARS = (
    ("params_total", "parameters (M)", 1e-6),
    ("size_on_disk_mb", "size on disk (MB)", 1.0),
    ("val_ppl", "validation perplexity", 1.0),
    ("kl_teacher_student", "KL(teacher‖student)", 1.0),
    ("top1_agreement", "top-1 agreement", 1.0),
    ("top5_agreement", "top-5 agreement", 1.0),
    ("gen_tokens_per_s", "tokens/s (batch 1)", 1.0),
    ("ttft_s", "time to first token (s)", 1.0),
    ("peak_memory_mb", "peak memory (MB)", 1.0),
)
BAR_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")


def report_figure(card: dict, text: Callable[[str], str] = str) -> go.Figure:
    """One small bar chart per report-card metric, with a bar per model (teacher first); `text` translates the
    titles."""
    entries = [card["teacher"], *card["students"]]
    cols = 3
    rows = -(-len(REPORT_BARS) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[text(title) for _, title, _ in REPORT_BARS],
                        vertical_spacing=0.12, horizontal_spacing=0.08)
    for index, (key, title, scale) in enumerate(REPORT_BARS):
        row, col = index // cols + 1, index % cols + 1
        for model_index, entry in enumerate(entries):
            value = entry.get(key)
            fig.add_trace(
                go.Bar(
                    x=[entry["label"]],
                    y=[None if value is None else value * scale],
                    name=entry["label"],
                    marker_color=BAR_COLORS[model_index % len(BAR_COLORS)],
                    showlegend=index == 0,
                    legendgroup=entry["label"],
                    hovertemplate=entry["label"] + "<br>" + text(title) + " %{y:.4g}<extra></extra>",
                ),
                row=row,
                col=col,
            )
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=text("Report card"), height=260 * rows, barmode="group", margin=dict(l=40, r=20, t=80, b=30))
    return fig
