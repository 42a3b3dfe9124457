"""How long each stage of a run's evaluation should take, estimated from the run's own timings (metrics.jsonl).

    timings = run_timings(RunFolder(Path("runs/run-1")))   # what the run measured while it trained
    stage_seconds(timings, students=2, gen_tokens=32, val_tokens=255, prompts=8)   # [load teacher, each student, ...]

The report card (`workbench.analysis.report_card.evaluate_models`) loads each model (a stage each), scores every
model teacher-forced on the validation rows, times `gen_tokens` greedy tokens of each model (a stage each), then
samples every model's answers to the held-out prompts. The run did the same work while it trained, for two models
(teacher and student):
- loading: from the session's start (status.json `started`) to its first step (the first train row's wall time less
  its `elapsed`), healing excluded (heal rows' `seconds`); half of it per model;
- teacher-forced scores: a train-time eval (the eval row's wall time less the row just before it, of the same step)
  scores teacher and student on the run's eval rows; scaled by the models and tokens evaluated here;
- timing: one batch-1 decoding step per token, bounded by one step of the held-out sampling (a gen_eval row's
  `seconds` over its 64 new tokens, half of it spent sampling, the rest scoring);
- generation: a gen_eval row's `seconds` is one model's answers to the held-out prompts, scored by the teacher (the
  first row also samples the teacher's answers shown beside them, about as long again: half of it counts when it is
  the run's only one); scaled by the models (teacher and each student answer here) and prompts.
Each is a median over the run's rows; a stage the run has no timing for has no estimate (None).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from workbench.errors import Message
from workbench.runs.folder import RunFolder, read_metrics

SAMPLED_TOKENS = 64  # new tokens per held-out answer (workbench.engine.genquality.EVAL_SAMPLING)
FIRST_GEN_EVAL_SHARE = 0.5  # of a run's first gen_eval: the student's pass, without the teacher's shown answers


@dataclass(frozen=True)
class RunTimings:
    """What a run's own rows say about the cost of evaluating its models (seconds; None: not measured)."""

    load_s: float | None = None  # one session's setup before its first step: data and both models
    eval_s: float | None = None  # one teacher-forced eval: teacher and student on `eval_tokens` tokens
    eval_tokens: int | None = None
    gen_eval_s: float | None = None  # the student's answers to `gen_prompts` held-out prompts, scored
    gen_prompts: int | None = None


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return statistics.median(values) if values else None


def _load_seconds(rows: list[dict], status: dict) -> float | None:
    """The latest session's time from its start to its first step, less healing."""
    started = status.get("started")
    trains = [r for r in rows if r.get("kind") == "train" and r.get("time") and r.get("elapsed") is not None]
    if not started or not trains:
        return None
    before = [r["elapsed"] for r in trains if r["time"] < started]  # a resumed run: the earlier sessions' time
    first = next((r for r in trains if r["time"] >= started), None)
    if first is None:
        return None
    loop_started = first["time"] - (first["elapsed"] - (before[-1] if before else 0.0))
    healing = sum(r.get("seconds") or 0.0 for r in rows if r.get("kind") == "heal" and r.get("time", 0) >= started)
    seconds = loop_started - started - healing
    return seconds if seconds > 0 else None


def _eval_seconds(rows: list[dict]) -> list[float]:
    """Each train-time eval's duration: its wall time less that of the row just before it, of the same step."""
    return [row["time"] - previous["time"] for previous, row in pairwise(rows)
            if row.get("kind") == "eval" and previous.get("step") == row.get("step")
            and row.get("time") and previous.get("time")]


def run_timings(run: RunFolder) -> RunTimings:
    """The timings of `run`'s metrics.jsonl and status.json (empty when the run has neither)."""
    rows = read_metrics(run.metrics_path) if run.metrics_path.is_file() else []
    status = run.read_status() if run.status_path.is_file() else {}
    evals = [r for r in rows if r.get("kind") == "eval" and r.get("eval_tokens")]
    gen_evals = [r for r in rows if r.get("kind") == "gen_eval" and r.get("seconds")]
    # the first gen_eval also samples the teacher's answers shown beside the student's: a second sampling pass
    first_share = 1.0 if len(gen_evals) > 1 else FIRST_GEN_EVAL_SHARE
    gen_evals = gen_evals[1:] or gen_evals
    return RunTimings(
        load_s=_load_seconds(rows, status),
        eval_s=_median(_eval_seconds(rows)),
        eval_tokens=int(statistics.median(r["eval_tokens"] for r in evals)) if evals else None,
        gen_eval_s=_median([r["seconds"] * first_share for r in gen_evals]),
        gen_prompts=int(statistics.median(r.get("gen_prompts") or 0 for r in gen_evals)) if gen_evals else None,
    )


def phase_seconds(stage: str, rows: list[dict]) -> float | None:
    """How long a training phase between steps took the last time the run went through it (metrics rows), which is
    about how long the one under way takes: the teacher-forced evaluation, or the held-out answers' scoring (a run's
    first scoring also samples the teacher's answers shown beside them: half of it counts). None: not yet measured."""
    if stage in ("evaluating", "final evaluation"):
        durations = _eval_seconds(rows)
        return durations[-1] if durations else None
    if stage == "scoring held-out answers":
        seconds = [r["seconds"] for r in rows if r.get("kind") == "gen_eval" and r.get("seconds")]
        if not seconds:
            return None
        return seconds[-1] * (FIRST_GEN_EVAL_SHARE if len(seconds) == 1 else 1.0)
    return None


def stage_seconds(timings: RunTimings, *, students: int, gen_tokens: int, val_tokens: int,
                  prompts: int | None, generation: bool = True) -> list[float | None]:
    """Estimated seconds of each evaluation stage, in the order evaluate_models runs them: loading the teacher and
    each of `students`, scoring `val_tokens` validation tokens per model, timing `gen_tokens` greedy tokens of each
    model, and (with `generation`) sampling and scoring every model's answers to `prompts` held-out prompts (None: as
    many as the run had)."""
    models = 1 + students
    decode_step = timings.gen_eval_s / 2 / SAMPLED_TOKENS if timings.gen_eval_s else None
    load = timings.load_s / 2 if timings.load_s else None
    timing = (gen_tokens + 2) * decode_step if decode_step else None
    scoring = (timings.eval_s * models / 2 * val_tokens / timings.eval_tokens
               if timings.eval_s and timings.eval_tokens else None)
    stages = [load] * models + [scoring] + [timing] * models
    if generation:
        share = (prompts or timings.gen_prompts or 0) / timings.gen_prompts if timings.gen_prompts else 1.0
        stages.append(timings.gen_eval_s * models * share if timings.gen_eval_s else None)
    return stages


def about(seconds: float) -> int:
    """A duration as a reader wants it estimated: whole seconds under 10, else to the nearest 5 (10 above 100)."""
    if seconds < 10:
        return max(1, round(seconds))
    step = 5 if seconds < 100 else 10
    return int(round(seconds / step) * step)


def stage_reporter(progress: Callable[[float, Message], None], timings: RunTimings | None, *, students: int,
                   gen_tokens: int, val_tokens: int, prompts: int | None,
                   generation: bool = True) -> Callable[[Message], None]:
    """evaluate_models' `stage(message)`: calls `progress(fraction done, message)` before each stage; with the
    run's `timings` the message says about how long the stage takes (the first one also the whole evaluation) and
    the fraction counts estimated seconds, else it counts stages."""
    count = 2 * (students + 1) + 1 + generation  # each model loaded, the teacher-forced scores, each timed, generation
    estimates = stage_seconds(timings, students=students, gen_tokens=gen_tokens, val_tokens=val_tokens,
                              prompts=prompts, generation=generation) if timings else [None] * count
    total = sum(estimates) if all(seconds is not None for seconds in estimates) else None
    done = iter(range(count + 1))

    def stage(message: Message) -> None:
        index = next(done)
        fraction = sum(estimates[:index]) / total if total else index / count
        seconds = estimates[index] if index < count else None
        if seconds is not None and index == 0 and total:
            message = Message("{stage} · about {seconds} s (about {total} s in all)", stage=message,
                              seconds=about(seconds), total=about(total))
        elif seconds is not None:
            message = Message("{stage} · about {seconds} s", stage=message, seconds=about(seconds))
        progress(fraction, message)

    return stage
