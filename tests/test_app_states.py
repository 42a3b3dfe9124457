"""Run states the app reports truthfully, through gradio_client against a served app: the loading stages of a
run (in /run_status and its log), and a run stopped while it is still loading ends `stopped`, not failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_helpers import launched_app, tiny_config
from conftest import wait_for
from gradio_client import Client

from workbench.runs.folder import STAGES, TRAINING_STAGES, RunFolder


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_teacher, tiny_student):
    root = tmp_path_factory.mktemp("app-states")
    with launched_app(root, tiny_teacher, tiny_student) as demo:
        yield demo


def _status(client: Client, run_id: str) -> dict:
    return client.predict(run_id, api_name="/run_status")


def _final(client: Client, run_id: str) -> dict:
    return wait_for(lambda: (s := _status(client, run_id))["state"] in ("stopped", "failed", "finished") and s,
                    timeout=120, every=0.3)


def test_a_run_reports_its_loading_stages_then_training(served, tiny_teacher, tiny_student, tiny_text):
    client = Client(served.local_url, verbose=False)
    run_id = client.predict(tiny_config(tiny_teacher, tiny_student, tiny_text, steps=4).to_yaml(),
                            api_name="/start_run")
    seen = []

    def ended() -> dict | None:  # records every stage it passes through
        status = _status(client, run_id)
        if not seen or seen[-1] != status["stage"]:
            seen.append(status["stage"])
        return status if status["state"] in ("finished", "failed") else None

    status = wait_for(ended, every=0.05)
    assert status["state"] == "finished", status
    assert seen[-1] == "finished" and len(seen) >= 2, seen
    log = RunFolder(Path(served.ctx.runs_dir) / run_id).log_path.read_text()
    logged = [line.split("stage: ", 1)[1].strip() for line in log.splitlines() if "stage: " in line]
    assert logged[:4] == ["loading data", "loading student", "loading teacher", "first step"], logged
    assert set(logged[4:]) <= set(TRAINING_STAGES) and logged[-1] == "saving the student", logged
    assert all(stage in (*STAGES, *TRAINING_STAGES, "queued", "starting", "training", "finished") for stage in seen), \
        seen


def test_stop_while_loading_ends_stopped(served, tiny_teacher, tiny_student, tiny_text):
    client = Client(served.local_url, verbose=False)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, steps=100000, eval_every=1000, save_every=100000)
    # stopped at once: the process is still starting Python and importing torch (no signal handler yet)
    early = client.predict(cfg.to_yaml(), api_name="/start_run")
    client.predict(early, api_name="/stop_run")
    status = _final(client, early)
    assert status["state"] == "stopped" and status["stage"] == "stopped", status
    assert not status["error"] and status["step"] == 0
    # stopped while a loading stage is reported
    loading = client.predict(cfg.to_yaml(), api_name="/start_run")
    caught = wait_for(lambda: (s := _status(client, loading))["stage"] in STAGES and s, timeout=120, every=0.05)
    client.predict(loading, api_name="/stop_run")
    status = _final(client, loading)
    assert status["state"] == "stopped", (caught, status)
    assert status["exit_code"] in (0, -15) and not status["error"], status
    assert status["step"] < 100000
    listed = {row["run"]: row["status"] for row in client.predict(api_name="/list_runs")}
    assert listed[early] == listed[loading] == "stopped"


def test_progress_names_the_phase_between_steps():
    """Generation scoring and the final evaluation show as stages on the bar (it used to sit at a step, or at
    "100% · ETA 0:00", for minutes with no word of what was happening)."""
    import time as clock

    from workbench.app.train_view import progress_html

    latest = {"step": 10, "eta": 113.0, "tokens_per_s": 11.3}
    status = {"state": "running", "stage": "scoring held-out answers", "stage_progress": "(24)",
              "stage_started": clock.time() - 65, "step": 10, "total_steps": 20}
    bar = progress_html(status, latest, "en")
    assert 'data-stage="scoring held-out answers"' in bar and "scoring held-out answers (24) · 1:0" in bar
    assert "held-out 답변 채점 중" in progress_html(status, latest, "ko")
    final = progress_html({**status, "stage": "final evaluation", "step": 20}, {**latest, "step": 20, "eta": 0.0})
    assert "final evaluation" in final and "ETA" not in final
    assert 'data-stage="training"' in progress_html({**status, "stage": "training"}, latest)


def test_a_phase_the_run_went_through_before_says_about_how_long_it_has_left():
    """The held-out scoring and the evaluations had a clock but no estimate: a phase the run went through before now
    says about how long it has left (the last time it ran, less the time spent), in both languages; a first
    scoring counts half of the previous row's seconds (that one also sampled the teacher's answers)."""
    import time as clock

    from workbench.app.train_view import progress_html

    rows = [{"kind": "train", "step": 5, "time": 1000.0}, {"kind": "eval", "step": 5, "time": 1030.0},
            {"kind": "gen_eval", "step": 5, "seconds": 180.0, "time": 1210.0}]
    latest = {"step": 10, "eta": 113.0, "tokens_per_s": 11.3}
    status = {"state": "running", "stage": "scoring held-out answers", "stage_progress": "(24)",
              "stage_started": clock.time() - 25, "step": 10, "total_steps": 20}
    bar = progress_html(status, latest, "en", rows)
    assert "scoring held-out answers (24) · 0:2" in bar and "about 1:0" in bar and "left" in bar, bar
    assert "약 1:0" in progress_html(status, latest, "ko", rows) and "left" not in progress_html(status, latest, "ko", rows)
    rows.append({"kind": "gen_eval", "step": 10, "seconds": 100.0, "time": 1400.0})
    assert "about 1:1" in progress_html(status, latest, "en", rows)  # 100 s, 25 of them spent
    evaluating = {**status, "stage": "evaluating", "stage_progress": None, "stage_started": clock.time() - 12}
    assert "about 0:1" in progress_html(evaluating, latest, "en", rows)  # the last eval took 30 s
    overdue = {**evaluating, "stage_started": clock.time() - 45}
    assert "left" not in progress_html(overdue, latest, "en", rows)  # past its estimate: the clock alone
    assert "left" not in progress_html(status, latest, "en")  # nothing measured yet


def test_the_stage_clock_goes_on_between_steps_and_no_eta_0_after_the_last_step(tmp_path, monkeypatch):
    """In a browser walk a quick run sat at "scoring held-out answers (8) · 0:01 · ... · ETA 0:00" for two minutes:
    nothing new was written, so the Train tab skipped the redraw. The progress line is now redrawn every 5 s while
    a phase between steps runs, and a run past its last step shows no ETA of 0:00."""
    import json

    import workbench.app.tab_train as tab_train
    from workbench.app.tab_train import new_watch, render

    run = RunFolder(tmp_path / "run-scoring")
    run.path.mkdir()
    now = 1_000_000.0
    run.status_path.write_text(json.dumps({"state": "running", "stage": "scoring held-out answers",
                                           "stage_progress": "(8)", "stage_started": now - 1, "step": 20,
                                           "total_steps": 20, "pid": 1}))
    run.metrics_path.write_text(json.dumps({"kind": "train", "step": 20, "eta": 0.0, "tokens_per_s": 31.0}) + "\n")
    monkeypatch.setattr(tab_train.time, "time", lambda: now)  # the time module: train_view's clock too
    watch = new_watch(str(tmp_path), "run-scoring")
    first = render(str(tmp_path), watch, False, "en")
    assert "scoring held-out answers (8) · 0:01" in first[2] and "ETA" not in first[2]
    now += 2
    assert not isinstance(render(str(tmp_path), watch, False, "en")[2], str)  # the same 5-s tick: skipped
    now += 60
    later = render(str(tmp_path), watch, False, "en")
    assert "scoring held-out answers (8) · 1:03" in later[2]  # the clock went on
