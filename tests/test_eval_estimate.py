"""Evaluate's estimate of each stage, made from a run's own timings (a synthetic metrics.jsonl and status.json)."""

from __future__ import annotations

import json

import pytest

from workbench.analysis.eval_estimate import RunTimings, about, run_timings, stage_reporter, stage_seconds
from workbench.app.i18n import localize
from workbench.errors import Message
from workbench.runs.folder import RunFolder

STARTED = 1000.0
ROWS = [
    {"kind": "heal", "step": 0, "seconds": 4.0, "time": 1010.0},
    # first step at 1030 after 2 s of training: the loop started at 1028, 28 s after the session, 4 of them healing
    {"kind": "train", "step": 1, "elapsed": 2.0, "time": 1030.0},
    {"kind": "train", "step": 5, "elapsed": 12.0, "time": 1040.0},
    {"kind": "eval", "step": 5, "eval_tokens": 126, "time": 1046.0},  # 6 s
    {"kind": "train", "step": 10, "elapsed": 25.0, "time": 1060.0},
    {"kind": "sample", "step": 10, "time": 1060.0},
    {"kind": "eval", "step": 10, "eval_tokens": 126, "time": 1068.0},  # 8 s
    {"kind": "gen_eval", "step": 10, "seconds": 30.0, "gen_prompts": 8, "time": 1098.0},  # also samples the teacher
    {"kind": "train", "step": 12, "elapsed": 30.0, "time": 1105.0},
    {"kind": "eval", "step": 15, "eval_tokens": 126, "time": 1200.0},  # no row of step 15 before it: not timed
    {"kind": "gen_eval", "step": 20, "seconds": 20.0, "gen_prompts": 8, "time": 1300.0},
]


def _run(tmp_path, rows=ROWS, status=None) -> RunFolder:
    run = RunFolder(tmp_path / "run-timed")
    run.path.mkdir()
    run.metrics_path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    run.status_path.write_text(json.dumps(status or {"state": "finished", "started": STARTED}))
    return run


def test_run_timings_read_from_the_runs_rows(tmp_path):
    timings = run_timings(_run(tmp_path))
    assert timings.load_s == pytest.approx(24.0)  # 1028 - 1000, less 4 s of healing
    assert timings.eval_s == pytest.approx(7.0) and timings.eval_tokens == 126  # median of 6 and 8; step 15 skipped
    assert timings.gen_eval_s == 20.0 and timings.gen_prompts == 8  # the first gen_eval (with the teacher's) dropped


def test_a_runs_only_gen_eval_counts_half_since_it_also_samples_the_teachers_answers(tmp_path):
    timings = run_timings(_run(tmp_path, ROWS[:-1]))
    assert timings.gen_eval_s == pytest.approx(15.0) and timings.gen_prompts == 8


def test_a_resumed_session_counts_only_its_own_loading(tmp_path):
    rows = [*ROWS, {"kind": "train", "step": 11, "elapsed": 33.0, "time": 2040.0}]  # resumed at 2000: 30 s + 3 s step
    timings = run_timings(_run(tmp_path, rows, {"state": "finished", "started": 2000.0}))
    assert timings.load_s == pytest.approx(37.0)  # loop started at 2040 - (33 - 30); no healing in this session


def test_stage_seconds_scale_with_models_tokens_and_prompts():
    timings = RunTimings(load_s=24.0, eval_s=7.0, eval_tokens=126, gen_eval_s=20.0, gen_prompts=8)
    stages = stage_seconds(timings, students=2, gen_tokens=32, val_tokens=252, prompts=8)
    decode_step = 20.0 / 2 / 64  # one batch-1 token: at most one step of the held-out sampling
    timed = pytest.approx(34 * decode_step)  # warm-up + 32 tokens
    assert stages == [12.0] * 3 + [pytest.approx(7.0 * 3 / 2 * 2)] + [timed] * 3 + [pytest.approx(20.0 * 3)]
    *_, generation = stage_seconds(timings, students=2, gen_tokens=32, val_tokens=252, prompts=16)
    assert generation == pytest.approx(120.0)  # twice the prompts of the run
    assert stage_seconds(RunTimings(), students=1, gen_tokens=32, val_tokens=100, prompts=8) == [None] * 6
    assert len(stage_seconds(timings, students=1, gen_tokens=8, val_tokens=10, prompts=8, generation=False)) == 5


def test_stage_messages_say_about_how_long_in_english_and_korean(tmp_path):
    seen = []
    stage = stage_reporter(lambda fraction, message: seen.append((fraction, message)), run_timings(_run(tmp_path)),
                           students=2, gen_tokens=32, val_tokens=252, prompts=8)
    models = ("teacher", "distilled student", "undistilled student")
    for name in models:
        stage(Message("loading {model}", model=Message(name)))
    stage(Message("scoring {rows} validation rows (perplexity, KL, agreement)", rows=4))
    for name in models:
        stage(Message("timing {model}", model=Message(name)))
    stage(Message("sampling and scoring answers to the held-out prompts"))
    texts = [str(message) for _, message in seen]
    assert texts[0] == "loading teacher · about 10 s (about 130 s in all)"
    assert texts[1:] == ["loading distilled student · about 10 s",
                         "loading undistilled student · about 10 s",
                         "scoring 4 validation rows (perplexity, KL, agreement) · about 20 s",
                         "timing teacher · about 5 s",
                         "timing distilled student · about 5 s",
                         "timing undistilled student · about 5 s",
                         "sampling and scoring answers to the held-out prompts · about 60 s"]
    fractions = [fraction for fraction, _ in seen]
    assert fractions[0] == 0 and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1 - 60 / 132.9375)
    korean = localize(seen[0][1], "ko")
    assert korean.endswith("약 10초 (전체 약 130초)") and "about" not in korean
    assert localize(seen[3][1], "ko") == "검증 행 4개 채점 중 (perplexity, KL, 일치율) · 약 20초"
    assert localize(seen[4][1], "ko") == "교사 모델 속도 재는 중 · 약 5초"


def test_without_timings_the_stages_are_counted_and_say_nothing_more():
    seen = []
    stage = stage_reporter(lambda fraction, message: seen.append((fraction, str(message))), RunTimings(),
                           students=1, gen_tokens=32, val_tokens=100, prompts=8)
    for _ in range(6):
        stage(Message("sampling and scoring answers to the held-out prompts"))
    assert [fraction for fraction, _ in seen] == [i / 6 for i in range(6)] and "about" not in seen[0][1]


@pytest.mark.parametrize(("seconds", "shown"), [(0.2, 1), (7.4, 7), (17.3, 15), (132.9, 130), (441, 440)])
def test_about_rounds_as_a_reader_estimates(seconds, shown):
    assert about(seconds) == shown
