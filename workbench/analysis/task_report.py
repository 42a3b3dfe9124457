"""Per-task scores of a multi-task run (the `tasks` of its eval rows, `workbench.engine.task_eval`) as a figure with
one curve per task, a one-line cell for the Runs table, and rows for the report card. Pure functions of metric rows.

    task_figure(read_metrics("runs/mix/metrics.jsonl")).show()
    task_cell(last_task_scores(rows))     # "kind acc 71% (teacher 74%) · book F1 53% (teacher 60%) · chat ppl 9.8"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.analysis.plots import COLORS, LAYOUT, downsample, mark_empty
from workbench.runs.folder import read_metrics

# each kind's score on its held-out items: (key in the task's numbers, its name); chat and lm tasks have perplexity only
HELD_OUT_SCORES = {"classify": (("acc", "accuracy"),), "qa": (("em", "exact match"), ("f1", "token F1"))}
SHORT_NAMES = {"acc": "acc", "em": "EM", "f1": "F1"}


def task_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The eval rows that carry per-task numbers."""
    return [row for row in rows if row.get("kind") == "eval" and isinstance(row.get("tasks"), dict)]


def last_task_scores(rows: list[dict[str, Any]]) -> tuple[int | None, dict[str, dict]]:
    """(step, {task: numbers}) of the last eval row with per-task numbers; (None, {}) for a run without tasks."""
    found = task_rows(rows)
    return (found[-1].get("step"), found[-1]["tasks"]) if found else (None, {})


def headline(numbers: dict[str, Any]) -> tuple[str, float | None, float | None]:
    """(short name, student's value, teacher's value) of a task's main number: its last held-out score (accuracy;
    token F1 for qa), else its perplexity."""
    for key, _ in reversed(HELD_OUT_SCORES.get(numbers.get("kind"), ())):
        if isinstance(numbers.get(key), (int, float)):
            return SHORT_NAMES[key], numbers[key], numbers.get(f"teacher_{key}")
    return "ppl", numbers.get("ppl"), None


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if name == "ppl" else f"{value:.0%}"


def task_cell(tasks: dict[str, dict], text: Callable[[str], str] = str) -> str:
    """One line: each task's main number, with the teacher's where it has one."""
    parts = []
    for name, numbers in tasks.items():
        short, student, teacher = headline(numbers)
        part = f"{name} {short} {_value(short, student)}"
        parts.append(part + (f" ({text('teacher')} {_value(short, teacher)})" if teacher is not None else ""))
    return " · ".join(parts)


def task_metric(task: str, key: str) -> str:
    """The overlay's name for one task's number ("tasks/kind/acc", as the trackers get it under eval/)."""
    return f"tasks/{task}/{key}"


def task_metrics(tasks: dict[str, dict], text: Callable[[str], str] = str) -> list[tuple[str, str]]:
    """(label, metric) of every number a run's tasks are scored by: held-out scores, then perplexity."""
    return [(f"{name}: {text(title)}", task_metric(name, key)) for name, numbers in tasks.items()
            for key, title in (*HELD_OUT_SCORES.get(numbers.get("kind"), ()), ("ppl", "perplexity"))]


def with_task_fields(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metric rows with each eval row's per-task numbers also as flat fields ("tasks/kind/acc"), so a run's task
    scores can be overlaid like any eval field."""
    return [{**row, **{task_metric(name, key): value for name, numbers in row["tasks"].items()
                       for key, value in numbers.items() if isinstance(value, (int, float))}}
            if isinstance(row.get("tasks"), dict) else row for row in rows]


def task_figure(rows: list[dict[str, Any]], text: Callable[[str], str] = str) -> go.Figure:
    """Two panels against step, one colour per task: held-out score (accuracy or token F1, 0-1; the teacher's as a
    dotted line of the same colour) and perplexity on the task's validation rows (log axis)."""
    evals = downsample(task_rows(rows))
    names = list(dict.fromkeys(name for row in evals for name in row["tasks"]))
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=(text("held-out score (accuracy; token F1 for qa)"),
                                           text("perplexity on the task's validation rows")))
    for index, name in enumerate(names):
        color = COLORS[index % len(COLORS)]
        points = [(row.get("step"), row["tasks"][name]) for row in evals if name in row["tasks"]]
        short, _, _ = headline(points[-1][1])
        if short != "ppl":
            key = {value: key for key, value in SHORT_NAMES.items()}[short]
            steps, values = zip(*[(s, n[key]) for s, n in points if isinstance(n.get(key), (int, float))], strict=True)
            figure.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=f"{name} · {short}",
                                        legendgroup=name, line=dict(color=color)), row=1, col=1)
            teacher = points[-1][1].get(f"teacher_{key}")
            if isinstance(teacher, (int, float)):
                figure.add_trace(go.Scatter(x=[steps[0], steps[-1]], y=[teacher, teacher], mode="lines",
                                            name=f"{name} · {text('teacher')}", legendgroup=name,
                                            line=dict(color=color, dash="dot")), row=1, col=1)
        ppl = [(s, n["ppl"]) for s, n in points if isinstance(n.get("ppl"), (int, float))]
        if ppl:
            figure.add_trace(go.Scatter(x=[s for s, _ in ppl], y=[v for _, v in ppl], mode="lines+markers",
                                        name=f"{name} · ppl", legendgroup=name, showlegend=short == "ppl",
                                        line=dict(color=color)), row=1, col=2)
    figure.update_yaxes(range=[-0.03, 1.03], row=1, col=1)  # a little room: a score of 0 or 1 is not cut in half
    figure.update_yaxes(type="log", row=1, col=2)
    figure.update_xaxes(title_text=text("step"))
    figure.update_layout(height=400, **LAYOUT)
    return mark_empty(figure, text)


def card_task_rows(card: dict, text: Callable[[str], str] = str) -> list[tuple[str, dict[str, str]]]:
    """Report-card rows of a run's per-task scores (card["tasks"], from the run's last evaluation): one row per task
    and number, (title, {model label: cell}); the distilled student's and the teacher's, other students '–'."""
    scores = card.get("tasks") or {}
    teacher, students = card["teacher"]["label"], [entry["label"] for entry in card["students"]]
    rows = []
    for name, numbers in scores.get("tasks", {}).items():
        for key, title in (*HELD_OUT_SCORES.get(numbers.get("kind"), ()), ("ppl", "perplexity")):
            if not isinstance(numbers.get(key), (int, float)):
                continue
            short = "ppl" if key == "ppl" else SHORT_NAMES[key]
            cells = {label: "–" for label in [teacher, *students]}
            cells[teacher] = _value(short, numbers.get(f"teacher_{key}"))
            if students:
                cells[students[0]] = _value(short, numbers[key])
            rows.append((f"{name}: {text(title)}", cells))
    return rows


def run_task_scores(metrics_path: str | Path) -> dict[str, Any]:
    """{"tasks": {"step", "tasks"}} for a report card: a run's last per-task numbers (its student's and, on the same
    held-out items, its teacher's); {} for a run without tasks."""
    step, tasks = last_task_scores(read_metrics(metrics_path))
    return {"tasks": {"step": step, "tasks": tasks}} if tasks else {}


def with_task_columns(card: dict, header: list[str], rows: list[list[str]],
                      text: Callable[[str], str] = str) -> tuple[list[str], list[list[str]]]:
    """The report table (one row per model, its label first) with a column per task and number appended."""
    tasks = card_task_rows(card, text)
    return ([*header, *[title for title, _ in tasks]],
            [[*row, *[cells.get(row[0], "–") for _, cells in tasks]] for row in rows])


def task_lines(card: dict) -> list[str]:
    """The Markdown report's per-task rows (models as columns) and what they were measured on."""
    tasks = card_task_rows(card)
    if not tasks:
        return []
    labels = [card["teacher"]["label"], *[entry["label"] for entry in card["students"]]]
    return ["", "| per-task score | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels),
            *[f"| {title} | " + " | ".join(cells[label] for label in labels) + " |" for title, cells in tasks],
            "", f"Per-task scores: the run's evaluation at step {card['tasks']['step']}, on each task's held-out items "
                "(perplexity on its validation rows); the undistilled student is not scored on them."]
