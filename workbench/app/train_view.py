"""What the Train tab shows of a run, as HTML/Markdown text in the reader's language: the progress bar with the run's
stage while it loads, the status line, the generation-quality summary and samples, and a sampled answer with each
token coloured by its disagreement with the teacher. Pure functions of the run folder's data (no gradio events)."""

from __future__ import annotations

import html
import time

from workbench.analysis.eval_estimate import phase_seconds
from workbench.app.i18n import localize_measured, tr
from workbench.runs import process as runner
from workbench.runs.folder import ACTIVE_STATES, RunFolder, run_stage

STATE_COLORS = {"failed": "#dc2626", "finished": "#16a34a", "stopped": "#ca8a04"}
RKL_FULL_RED = 2.0  # nats: a token at or above this disagreement is drawn fully red


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "–"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def stage_text(status: dict, trained: bool, lang: str, rows: list[dict] | None = None) -> str:
    """The stage of a run in words ("loading teacher · 0:12"), empty once steps are being logged. With the run's
    metrics `rows`, a phase the run went through before (an evaluation, the held-out scoring) also says about how long
    it has left, from the last time it ran."""
    stage = run_stage(status, trained)
    if stage in ("training", "idle") or stage == status.get("state"):
        return ""
    since = status.get("stage_started")
    active = since and status.get("state") in ACTIVE_STATES
    elapsed = f" · {duration(time.time() - since)}" if active else ""
    done = f" {status['stage_progress']}" if status.get("stage_progress") and stage == status.get("stage") else ""
    expected = phase_seconds(stage, rows or []) if active else None
    left = expected - (time.time() - since) if expected else None
    remaining = " · " + tr("about {time} left", lang, time=duration(left)) if left and left >= 1 else ""
    return tr(stage, lang) + done + elapsed + remaining


def progress_html(status: dict, latest: dict | None, lang: str = "en", rows: list[dict] | None = None) -> str:
    """The progress bar and its line: the stage under way (with `rows`, about how long it has left), the step, the
    run's ETA while steps remain, tokens/s and the on-policy sampling share."""
    step, total = int(status.get("step") or 0), int(status.get("total_steps") or 0)
    if latest:
        step = max(step, int(latest.get("step") or 0))
    fraction = min(1.0, step / total) if total else 0.0
    eta = latest.get("eta") if latest else None
    speed = latest.get("tokens_per_s") if latest else None
    state = status.get("state", "idle")
    stage = run_stage(status, latest is not None)
    details = tr("step {step} / {total} · {fraction}", lang, step=step, total=total or "?", fraction=f"{fraction:.0%}")
    waiting = stage_text(status, latest is not None, lang, rows) if state in ACTIVE_STATES else ""
    if waiting:
        details = waiting + " · " + details
    # no "ETA 0:00" after the last step while its evaluation, scoring or saving still runs: the stage's clock shows
    steps_left = not total or step < total
    if state in ACTIVE_STATES and eta is not None and steps_left and stage not in ("final evaluation",
                                                                                  "saving the student"):
        details += f" · ETA {duration(eta)}"
    if speed:
        details += f" · {speed:,.0f} tokens/s"
    if latest and latest.get("gen_share") is not None:
        details += " · " + tr("sampling {share} of the step at {speed} tokens/s, completions of {length} tokens", lang,
                              share=f"{latest['gen_share']:.0%}", speed=f"{latest.get('gen_tokens_per_s') or 0:,.0f}",
                              length=f"{latest.get('completion_len') or 0:.0f}")
    return (
        f'<div class="kd-progress" data-state="{html.escape(state)}" data-stage="{html.escape(stage)}" '
        f'data-step="{step}"><div class="kd-progress-bar" '
        f'style="width:{fraction * 100:.1f}%;background:{STATE_COLORS.get(state, "#2563eb")}"></div></div>'
        f'<div class="kd-progress-text">{html.escape(details)}</div>'
    )


def trusts_remote_code(run: RunFolder) -> bool:
    from workbench.config import DistillConfig
    from workbench.errors import UserError

    try:
        return bool(DistillConfig.load(run.config_path).models.trust_remote_code)
    except (UserError, ValueError, OSError):
        return False


def status_markdown(run: RunFolder, status: dict, lang: str = "en") -> str:
    state = status.get("state", "?")
    badge = {"failed": "kd-bad", "finished": "kd-ok", "stopped": "kd-wait"}.get(state, "kd-wait")
    text = f'<span class="kd-badge {badge}">{html.escape(tr(state, lang))}</span> ' + tr("Run **{run}**", lang,
                                                                                        run=run.run_id)
    if trusts_remote_code(run):
        text += ('\n\n<span class="kd-badge kd-bad">trust_remote_code on</span> '
                 + tr("this run executes code shipped with its models.", lang))
    if status.get("stop_requested") and state in ("running", "stopping"):
        text += " · " + tr("stopping (saving a checkpoint)…", lang)
    if state == "queued":
        position = runner.queue_position(run.path)
        if position:
            text += "\n\n" + tr("Waiting for the device: position **{position}** in the queue.", lang,
                                position=position)
    if state == "failed":
        code = status.get("exit_code")
        text += "\n\n" + tr("Exit code **{code}**: {error}", lang, code=code if code is not None else "?",
                            error=status.get("error") or tr("see the log", lang))
    if state in ("stopped", "failed") and run.latest_checkpoint() is None:
        text += "\n\n" + tr("No checkpoint was saved, so this run cannot be resumed; start it again.", lang)
    return text


def _rkl_color(value: float) -> str:
    share = max(0.0, min(1.0, float(value) / RKL_FULL_RED))
    return f"rgba(220, 38, 38, {0.08 + 0.72 * share:.2f})"


LEGEND = ("Each token is shaded by the reverse KL between the student's and the teacher's next-token predictions, "
          "both reading the same text so far (the student's own answer): pale = given that text, the teacher would "
          "predict much the same token; red = {full} nats or more. It measures agreement token by token, not whether "
          "the answer fits the question: a fluent answer on the wrong topic can be mostly pale. Hover for the value.")


def token_html(tokens: list[str], rkl: list[float], lang: str = "en") -> str:
    """Tokens as spans shaded from pale (agrees with the teacher) to red (reverse KL >= 2 nats); the value on hover.
    A newline is drawn as ↵ before its line break (a newline token used to be an empty block)."""
    spans = []
    for piece, value in zip(tokens, rkl, strict=False):
        shown = html.escape(str(piece)).replace("\n", "↵\n")
        spans.append(f'<span class="kd-token" style="background:{_rkl_color(value)}" '
                     f'title="reverse KL {float(value):.3f} nats">{shown}</span>')
    legend = tr(LEGEND, lang, full=f"{RKL_FULL_RED:g}")
    return f'<div class="kd-tokens">{"".join(spans)}</div><div class="kd-legend">{html.escape(legend)}</div>'


def sample_html(row: dict | None, lang: str = "en") -> str:
    """The latest `sample` row: where it comes from, its prompt and its coloured answer."""
    if not row:
        return html.escape(tr("No sampled answer yet: it appears with the first on-policy batch or generation eval.",
                              lang))
    source = tr("on-policy batch", lang) if row.get("source") == "onpolicy" else tr("generation eval", lang)
    rkl = [float(v) for v in row.get("rkl") or []]
    mean = sum(rkl) / len(rkl) if rkl else 0.0
    head = tr("Step {step} · {source} · mean reverse KL {mean} nats/token", lang, step=row.get("step"),
              source=source, mean=f"{mean:.3f}")
    prompt = html.escape(str(row.get("prompt", "")))
    return (f'<div class="kd-legend">{html.escape(head)}</div><div><b>{html.escape(tr("Prompt", lang))}:</b> '
            f'{prompt}</div>' + token_html(row.get("tokens") or [], rkl, lang))


GEN_SUMMARY = (("gen_rkl", "reverse KL to the teacher", "{:.3f} nats/token"),
               ("gen_teacher_nll", "teacher NLL", "{:.3f} nats/token"),
               ("gen_rep4", "repeated 4-grams", "{:.1%}"), ("gen_empty", "empty answers", "{:.1%}"),
               ("gen_len", "mean length", "{:.1f} tokens"))


def gen_summary_markdown(row: dict | None, lang: str = "en") -> str:
    """The latest `gen_eval` row as one line of numbers, with what it was measured on."""
    if not row:
        return tr("No generation eval yet. With generation eval on, the student answers held-out prompts every "
                  "eval and these numbers say how it talks (teacher-forced numbers above do not).", lang)
    parts = [f"{tr(label, lang)} **{tr(fmt, lang).format(row[key])}**" for key, label, fmt in GEN_SUMMARY
             if isinstance(row.get(key), (int, float))]
    measured = localize_measured(row.get("measured_on"), lang)
    return (tr("Step {step}", lang, step=row.get("step")) + ": " + " · ".join(parts)
            + (f"  \n{tr('Measured on', lang)}: {measured}" if measured else ""))


def samples_html(row: dict | None, lang: str = "en") -> str:
    """The three samples of the latest `gen_eval` row: prompt, the student's answer, the teacher's."""
    samples = (row or {}).get("samples") or []
    if not samples:
        return ""
    head = "".join(f"<th>{html.escape(tr(name, lang))}</th>" for name in ("Prompt", "Student", "Teacher"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(sample.get(key, '')))}</td>"
                                    for key in ("prompt", "student", "teacher")) + "</tr>" for sample in samples[:3])
    return f'<table class="kd-samples"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
