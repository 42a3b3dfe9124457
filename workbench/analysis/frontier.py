"""The compression frontier of a sweep: every student and the teacher scored alike, the Pareto-optimal students
marked, and one computed sentence per student.

    frontier = score_sweep("runs/width")       # writes runs/width/frontier.json
    frontier_figure(frontier).show()
    print(format_frontier(frontier))

Every model of the sweep (the teacher, each distilled student and each student's undistilled starting point) goes
through the report card (`workbench.analysis.report_card.evaluate_models`) on the same held-out prompts and rows:
reverse KL on its own sampled answers, repeated 4-grams, empty answers, bits per byte, parameters, size on disk
and greedy decode speed at batch 1; `decode_rate` adds the decode speed at batch 8. The numbers of one sentence:

    fewer parameters     1 − student / teacher parameters (all parameters, tied ones once)
    faster decoding      student / teacher greedy tokens per second at batch 1, on the machine named
    reverse KL           the student's mean log q(y) − log p(y) over the tokens of its own answers (teacher: 0)
    gap closed           1 − reverse KL of the distilled student / reverse KL of its undistilled start
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.analysis.report_card import EvalSettings, evaluate_models
from workbench.errors import Message, UserError
from workbench.runs.folder import RunFolder, atomic_write_text
from workbench.runs.pool import load_resolved, resolve_spec
from workbench.runs.sweep import SweepPlan, load_sweep
from workbench.timing import rate, time_calls

FRONTIER_FILE = "frontier.json"
UNDISTILLED = "undistilled "
SPEED_BATCH = 8
MIN_TIMED_S = 0.5  # each decode timing repeats until this long (workbench.timing's default is for short calls)
TIMING_ROUNDS = 3  # and is taken three times, keeping the fastest (as timeit advises: the others measure the load)


@torch.inference_mode()
def decode_rate(model, tokenizer, prompt: str, batch: int, new_tokens: int = 32) -> float | None:
    """Greedy decode tokens per second at `batch`, after the first token: the time of `new_tokens` steps minus
    that of one, each the mean of calls repeated (`workbench.timing.time_calls`) for MIN_TIMED_S, and each the
    fastest of TIMING_ROUNDS rounds (the two lengths alternate), so that other work on the machine during one round
    does not set the number. None when the difference cannot be resolved ("too fast to time")."""
    from workbench.data.chat_format import prompt_text

    device = next(model.parameters()).device
    encoded = tokenizer([prompt_text(tokenizer, prompt)] * batch, return_tensors="pt", add_special_tokens=False)
    encoded = {k: v.to(device) for k, v in encoded.items()}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    common = dict(do_sample=False, pad_token_id=pad, temperature=None, top_p=None, top_k=None)

    def mean_seconds(tokens: int) -> float:
        seconds, calls = time_calls(lambda: model.generate(**encoded, max_new_tokens=tokens, min_new_tokens=tokens,
                                                           **common), min_seconds=MIN_TIMED_S)
        return seconds / calls

    mean_seconds(2)  # warm-up
    rounds = [(mean_seconds(new_tokens), mean_seconds(1)) for _ in range(TIMING_ROUNDS)]
    return rate(batch * (new_tokens - 1), min(long for long, _ in rounds) - min(short for _, short in rounds))


def _sweep_settings(plan: SweepPlan) -> EvalSettings:
    cfg = plan.recipe
    return EvalSettings(dataset=cfg.data.dataset, text_column=cfg.data.text_column, seq_len=cfg.data.seq_len,
                        batch_size=cfg.train.batch_size, max_sequences=cfg.train.eval_batches * cfg.train.batch_size)


def score_sweep(path: str | Path, settings: EvalSettings | None = None, *, log=print) -> dict[str, Any]:
    """Score the teacher, every finished student of the sweep and its undistilled start; writes frontier.json."""
    plan = load_sweep(path)
    finished = [s for s in plan.students if RunFolder(plan.run_dir(s)).read_status().get("state") == "finished"]
    if not finished:
        raise UserError(Message("sweep {name}: no student has finished training yet; run `workbench sweep` first",
                                name=plan.name))
    models = {s.slug: str(plan.run_dir(s)) for s in finished}
    models.update({UNDISTILLED + s.slug: s.spec for s in finished})
    log(f"sweep {plan.name}: scoring the teacher, {len(finished)} students and their undistilled starts on the same "
        "held-out prompts and rows ...")
    card = evaluate_models(plan.recipe.models.teacher, models, settings or _sweep_settings(plan),
                           data_cfg=plan.recipe.data,
                           progress=lambda fraction, message: log(f"sweep {plan.name}: {fraction:.0%} · {message}"))
    entries = {e["label"]: e for e in card["students"]}
    prompt = card["settings"]["prompt"]
    for label, entry in [("teacher", card["teacher"]), *entries.items()]:
        model, tokenizer = load_resolved(resolve_spec(entry["spec"]), device=card["settings"]["device"],
                                         dtype=torch.float32, attn_implementation=None)
        entry[f"tokens_per_s_batch{SPEED_BATCH}"] = decode_rate(model, tokenizer, prompt, SPEED_BATCH)
        log(f"sweep {plan.name}: decode speed of {label} measured")
    teacher = card["teacher"]
    students = []
    for student in finished:
        entry = dict(entries[student.slug], slug=student.slug, student_spec=student.spec)
        entry["undistilled"] = entries[UNDISTILLED + student.slug]
        students.append(entry)
    mark_pareto(teacher, students)
    for entry in students:
        entry["line"] = summary_line(entry, teacher)
    frontier = {
        "sweep": plan.name,
        "teacher": teacher,
        "students": students,
        "settings": card["settings"],
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "created": card["created"],
        "elapsed_s": card["elapsed_s"],
    }
    atomic_write_text(plan.path / FRONTIER_FILE, json.dumps(frontier, indent=1))
    return frontier


def load_frontier(path: str | Path) -> dict[str, Any] | None:
    file = Path(path) / FRONTIER_FILE
    return json.loads(file.read_text()) if file.is_file() else None


def _dominated(point: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """Whether another point is at least as good on both axes (smaller is better) and better on one."""
    return any(o[0] <= point[0] and o[1] <= point[1] and o != point for o in others)


def mark_pareto(teacher: dict, students: list[dict]) -> None:
    """Set `pareto_params` (no model is smaller and closer to the teacher) and `pareto_speed` (none is faster and
    closer) on each student; the teacher (reverse KL 0) takes part in both."""
    for axis, key, sign in (("pareto_params", "params_total", 1), ("pareto_speed", "gen_tokens_per_s", -1)):
        points = [(sign * (e.get(key) or 0), e.get("gen_rkl") if e.get("gen_rkl") is not None else float("inf"))
                  for e in [teacher, *students]]
        for entry, point in zip(students, points[1:], strict=True):
            entry[axis] = entry.get("gen_rkl") is not None and not _dominated(point, points)


def summary_line(entry: dict, teacher: dict, text=str) -> str:
    """The DistilBERT-style sentence of one student (see the module doc for each number's definition); `text`
    translates its templates (the app's Korean)."""
    fewer = 1 - entry["params_total"] / teacher["params_total"]
    parts = [text("{share} fewer parameters").format(share=f"{fewer:.0%}")]
    if entry.get("gen_tokens_per_s") and teacher.get("gen_tokens_per_s"):
        parts.append(text("{ratio}× the teacher's decode speed").format(
            ratio=f"{entry['gen_tokens_per_s'] / teacher['gen_tokens_per_s']:.2f}"))
    if entry.get("gen_rkl") is not None:
        parts.append(text("reverse KL {rkl} nats/token").format(rkl=f"{entry['gen_rkl']:.3f}"))
        start = (entry.get("undistilled") or {}).get("gen_rkl")
        if start:
            parts.append(text("{closed} of the undistilled student's gap to the teacher closed (from {start})").format(
                closed=f"{1 - entry['gen_rkl'] / start:.0%}", start=f"{start:.3f}"))
    return ", ".join(parts)


LABEL_POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left")


def label_positions(points: list[tuple[float, float | None]], near: float = 0.06) -> list[str]:
    """A text position per point, so that points close to each other (within `near` of each axis' span) put their
    labels on different sides instead of on top of each other: students of one size sit at one x."""
    xs = [x for x, y in points if y is not None] or [0.0]
    ys = [y for _, y in points if y is not None] or [0.0]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    positions: list[str] = []
    for index, (x, y) in enumerate(points):
        taken = {positions[j] for j, (x0, y0) in enumerate(points[:index]) if y is not None and y0 is not None
                 and abs(x - x0) <= near * span_x and abs(y - y0) <= near * span_y * 4}
        positions.append(next((p for p in LABEL_POSITIONS if p not in taken), LABEL_POSITIONS[0]))
    return positions


def y_top(students: list[dict], headroom: float = 1.6) -> float | None:
    """The top of the reverse-KL axis when some undistilled start lies above `headroom` × the highest distilled
    student (None: every point fits)."""
    distilled = [e["gen_rkl"] for e in students if e.get("gen_rkl") is not None]
    starts = [e["undistilled"].get("gen_rkl") for e in students if e.get("undistilled")]
    starts = [value for value in starts if value is not None]
    if not distilled or not starts or max(starts) <= headroom * max(distilled):
        return None
    return headroom * max(distilled)


def frontier_figure(frontier: dict, text=str) -> go.Figure:
    """Reverse KL on own answers against parameters (left) and against decode speed at batch 1 (right); the teacher
    is a star at 0, distilled students are filled (a ring around the Pareto-optimal ones), their undistilled starts
    hollow grey, and an arrow-free dotted line joins each start to its student."""
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        text("quality against size"), text("quality against speed")))
    teacher, students = frontier["teacher"], frontier["students"]
    axes = (("params_total", 1e-6, "pareto_params"), ("gen_tokens_per_s", 1.0, "pareto_speed"))
    for col, (key, scale, pareto) in enumerate(axes, start=1):
        first = col == 1
        for entry in students:
            start = entry["undistilled"]
            if start.get(key) is not None and start.get("gen_rkl") is not None and entry.get(key) is not None:
                figure.add_trace(go.Scatter(
                    x=[start[key] * scale, entry[key] * scale], y=[start["gen_rkl"], entry["gen_rkl"]],
                    mode="lines", line=dict(color="#9ca3af", dash="dot", width=1), showlegend=False,
                    hoverinfo="skip"), row=1, col=col)
        starts = [e["undistilled"] for e in students]
        figure.add_trace(go.Scatter(
            x=[e.get(key, 0) * scale for e in starts], y=[e.get("gen_rkl") for e in starts], mode="markers",
            name=text("undistilled start"), legendgroup="start", showlegend=first,
            marker=dict(symbol="circle-open", size=10, color="#9ca3af"),
            text=[s["slug"] for s in students], hovertemplate="%{text}<br>%{x:.1f}, %{y:.3f}<extra></extra>"),
            row=1, col=col)
        figure.add_trace(go.Scatter(
            x=[e.get(key, 0) * scale for e in students], y=[e.get("gen_rkl") for e in students],
            mode="markers+text", name=text("distilled student"), legendgroup="student", showlegend=first,
            text=[e["slug"] for e in students], textfont=dict(size=10),
            textposition=label_positions([(e.get(key, 0) * scale, e.get("gen_rkl")) for e in students]),
            marker=dict(size=11, color="#2563eb", line=dict(
                width=[3 if e.get(pareto) else 0 for e in students], color="#f59e0b"))),
            row=1, col=col)
        figure.add_trace(go.Scatter(
            x=[teacher.get(key, 0) * scale], y=[0.0], mode="markers", name=text("teacher"), legendgroup="teacher",
            showlegend=first, marker=dict(symbol="star", size=16, color="#111827")), row=1, col=col)
    figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=text("Pareto-optimal (ring)"),
                                marker=dict(size=11, color="#2563eb", line=dict(width=3, color="#f59e0b"))))
    figure.update_xaxes(title_text=text("parameters (millions)"), row=1, col=1)
    figure.update_xaxes(title_text=text("decode tokens/s at batch 1"), row=1, col=2)
    figure.update_yaxes(title_text=text("reverse KL on own answers (nats/token)"), rangemode="tozero", row=1, col=1)
    figure.update_yaxes(rangemode="tozero", row=1, col=2)
    top = y_top(students)
    if top is not None:  # starts far above the students would squash them: the starts' lines run off the top
        figure.update_yaxes(range=[0, top])
        figure.add_annotation(text=text("undistilled starts above {top} run off the top").format(top=f"{top:.1f}"),
                              xref="paper", yref="paper", x=1.0, y=-0.25, xanchor="right", yanchor="middle",
                              showarrow=False, font=dict(size=11, color="#6b7280"))
    figure.update_layout(template="plotly_white", height=430, margin=dict(l=60, r=20, t=60, b=90),
                         legend=dict(orientation="h", y=-0.25), title=dict(
                             text=text("sweep {name}: lower is closer to the teacher").format(name=frontier["sweep"]),
                             font=dict(size=14)))
    return figure


FRONTIER_COLUMNS = (
    ("params_total", "parameters (M)", lambda v: f"{v / 1e6:.1f}"),
    ("params_non_embedding", "non-embedding (M)", lambda v: f"{v / 1e6:.1f}"),
    ("size_on_disk_mb", "size (MB)", lambda v: f"{v:.0f}"),
    ("val_bpb", "bits per byte", lambda v: f"{v:.3f}"),
    ("gen_rkl", "reverse KL (nats/token)", lambda v: f"{v:.3f}"),
    ("gen_rep4", "repeated 4-grams", lambda v: f"{v:.1%}"),
    ("gen_empty", "empty answers", lambda v: f"{v:.0%}"),
    ("gen_tokens_per_s", "tokens/s batch 1", lambda v: f"{v:.1f}"),
    (f"tokens_per_s_batch{SPEED_BATCH}", f"tokens/s batch {SPEED_BATCH}", lambda v: f"{v:.1f}"),
)


def frontier_table(frontier: dict, text=str) -> tuple[list[str], list[list[str]]]:
    """(header, rows): the teacher, then each student and its undistilled start; `text` translates the words."""
    header = [text("model"), text("Pareto"), *[text(title) for _, title, _ in FRONTIER_COLUMNS]]

    def row(label: str, entry: dict, pareto: str) -> list[str]:
        return [label, pareto, *["–" if entry.get(k) is None else f(entry[k]) for k, _, f in FRONTIER_COLUMNS]]

    rows = [row(text("teacher"), frontier["teacher"], "")]
    for entry in frontier["students"]:
        marks = [text(name) for name, key in (("size", "pareto_params"), ("speed", "pareto_speed")) if entry.get(key)]
        rows.append(row(entry["slug"], entry, ", ".join(marks)))
        rows.append(row(text("undistilled {student}").format(student=entry["slug"]), entry["undistilled"], ""))
    return header, rows


def format_frontier(frontier: dict) -> str:
    header, rows = frontier_table(frontier)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", *[f"- {e['slug']}: {e['line']}" for e in frontier["students"]], ""]
    s = frontier["settings"]
    lines.append(f"Teacher-forced: {s.get('val_rows')}. Generation: {s.get('generation_on')}. Speed: greedy decoding "
                 f"on {s.get('device')} ({frontier.get('machine')}).")
    return "\n".join(lines)
