"""The compression sweep on tiny models: students trained as run folders, a killed student resumed, finished ones
reused, every model scored alike, the Pareto marks and the computed sentences, and the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for
from engine_helpers import tiny_config

from workbench.analysis.frontier import (
    format_frontier,
    frontier_figure,
    label_positions,
    mark_pareto,
    score_sweep,
    summary_line,
)
from workbench.errors import UserError
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sweep import create_sweep, student_slug, student_state, train_sweep

ROOT = Path(__file__).resolve().parent.parent


def _recipe(tiny_teacher, tiny_pairs, runs_dir, steps=6):
    return tiny_config(tiny_teacher, tiny_teacher, tiny_pairs,
                       data={"seq_len": 32, "holdout_prompts": 4},
                       train={"steps": steps, "eval_every": steps, "save_every": 2, "gen_eval": False},
                       run={"runs_dir": str(runs_dir)})


def _students(teacher):
    return [f"{teacher}?prune=importance&layers=2", f"{teacher}?prune=importance&mlp=64&heads=2"]


def test_slugs_say_what_a_student_keeps():
    assert student_slug("b?prune=importance&layers=24&mlp=760") == "layers24-mlp760"
    assert student_slug("b?prune=keep&layers=0-2,6") == "keep-layers0-2_6"
    assert student_slug("b?fresh&layers=4&hidden=256&heads=4") == "fresh-layers4-hidden256-heads4"


def test_a_sweep_with_other_students_under_the_same_name_is_refused(tiny_teacher, tiny_pairs, tmp_path):
    recipe = _recipe(tiny_teacher, tiny_pairs, tmp_path)
    create_sweep(tmp_path, "s", recipe, _students(tiny_teacher))
    create_sweep(tmp_path, "s", recipe, _students(tiny_teacher))  # the same again: found, not refused
    with pytest.raises(UserError, match="exists with another recipe or other students"):
        create_sweep(tmp_path, "s", recipe, _students(tiny_teacher)[:1])


def test_sweep_resumes_a_killed_student_and_reuses_finished_ones(tiny_teacher, tiny_pairs, tmp_path):
    plan = create_sweep(tmp_path, "tiny", _recipe(tiny_teacher, tiny_pairs, tmp_path, steps=120),
                        _students(tiny_teacher)[:1])
    (student,) = plan.students
    # train in a process of its own and SIGKILL it (and its train process) after the first checkpoint
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", "from workbench.runs.sweep import train_sweep; "
                                f"train_sweep({str(plan.path)!r})"], env=env, cwd=ROOT, start_new_session=True)
    run = RunFolder(plan.run_dir(student))
    wait_for(lambda: run.latest_checkpoint() is not None)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    trainer = run.read_status().get("pid")  # the train process has a session of its own: kill it too
    if trainer:
        with contextlib.suppress(ProcessLookupError):
            os.kill(trainer, signal.SIGKILL)
    wait_for(lambda: student_state(plan, student) == "resumable")
    assert 0 < run.read_status()["step"] < 120

    lines = []
    assert train_sweep(plan.path, log=lines.append) == {student.slug: "finished"}
    assert any(f"training {student.slug}" in line and "resumed" in line for line in lines)
    steps = [row["step"] for row in read_metrics(run.metrics_path) if row["kind"] == "train"]
    assert steps[-1] == 120 and len(steps) == len(set(steps))  # resumed from the checkpoint: no step twice

    lines.clear()
    train_sweep(plan.path, log=lines.append)  # everything finished: nothing trains again
    assert lines == [f"sweep tiny: {student.slug} finished before; reused"]


@pytest.fixture(scope="module")
def scored(tiny_teacher, tiny_pairs, tmp_path_factory):
    runs = tmp_path_factory.mktemp("sweep-app") / "runs"
    plan = create_sweep(runs, "tiny", _recipe(tiny_teacher, tiny_pairs, runs, steps=4), _students(tiny_teacher))
    assert set(train_sweep(plan.path, log=lambda line: None).values()) == {"finished"}
    lines: list[str] = []
    frontier = score_sweep(plan.path, log=lines.append)
    frontier["log"] = lines
    return plan, frontier


def test_every_model_is_scored_alike_with_a_computed_sentence(scored):
    plan, frontier = scored
    assert json.loads((plan.path / "frontier.json").read_text())["sweep"] == "tiny"
    teacher = frontier["teacher"]
    for entry in frontier["students"]:
        assert entry["params_total"] < teacher["params_total"]
        assert entry["undistilled"]["spec"] == entry["student_spec"]
        for key in ("gen_rkl", "gen_rep4", "gen_empty", "val_bpb", "size_on_disk_mb", "gen_tokens_per_s",
                    "tokens_per_s_batch8"):
            assert entry[key] is not None and entry["undistilled"][key] is not None, key
        assert entry["line"].startswith(f"{1 - entry['params_total'] / teacher['params_total']:.0%} fewer parameters")
    text = format_frontier(frontier)
    assert "| teacher |" in text and f"undistilled {plan.students[0].slug}" in text
    figure = frontier_figure(frontier)
    assert {trace.name for trace in figure.data} >= {"teacher", "distilled student", "undistilled start"}
    stages = [line for line in frontier["log"] if "%" in line]  # the long scoring says where it is
    assert any("0% · loading teacher" in line for line in stages)
    assert any("sampling and scoring answers" in line for line in stages)


def test_frontier_view_through_gradio_client(scored, tiny_teacher):
    from app_helpers import launched_app
    from gradio_client import Client

    plan, frontier = scored
    with launched_app(plan.path.parent.parent, tiny_teacher, tiny_teacher) as demo:
        client = Client(demo.local_url, verbose=False)
        students, plot, table, lines = client.predict("tiny", api_name="/sweep_view")
    assert [row[0] for row in students["data"]] == [s.slug for s in plan.students]
    assert all(row[2] == "finished" for row in students["data"])
    assert [row[0] for row in table["data"]][:2] == ["teacher", plan.students[0].slug]
    assert plot is not None and "reverse KL" in json.dumps(plot)
    for entry in frontier["students"]:
        assert entry["line"] in lines
    assert "gap closed = 1 − reverse KL of the student" in lines


def _entry(params, rkl, speed):
    return {"params_total": params, "gen_rkl": rkl, "gen_tokens_per_s": speed}


def test_pareto_marks_students_no_other_model_beats_on_both_axes():
    teacher = _entry(100, 0.0, 10)
    students = [_entry(50, 0.5, 20), _entry(60, 0.6, 15), _entry(40, 0.9, 30), _entry(50, 0.4, 19)]
    mark_pareto(teacher, students)
    assert [s["pareto_params"] for s in students] == [False, False, True, True]  # (60, 0.6) loses to (50, 0.4)
    assert [s["pareto_speed"] for s in students] == [True, False, True, True]


def test_summary_line_is_computed_from_the_numbers():
    teacher = _entry(100, 0.0, 10.0)
    student = {**_entry(40, 0.3, 25.0), "undistilled": {"gen_rkl": 1.2}}
    assert summary_line(student, teacher) == ("60% fewer parameters, 2.50× the teacher's decode speed, reverse KL "
                                              "0.300 nats/token, 75% of the undistilled student's gap to the "
                                              "teacher closed (from 1.200)")


def test_cli_sweep_refuses_bad_input_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "workbench", "sweep", "--builtin", "depth", "--students", "x",
                             f"run.runs_dir={tmp_path}"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == "workbench sweep: error: sweep: give either --builtin KIND or --students SPEC ..."


def test_labels_of_students_at_one_size_go_to_different_sides():
    positions = label_positions([(53.0, 0.80), (53.1, 0.82), (53.0, 0.81), (85.0, 0.45), (85.0, 1.5)])
    assert len(set(positions[:3])) == 3  # three students of one size near one reverse KL: three sides
    assert positions[3] == positions[4] == "top center"  # far apart: the default place


def test_each_job_of_a_parallel_sweep_gets_its_slot_and_a_share_of_the_cores():
    from workbench.runs.sweep import child_env

    alone = child_env(0, 1, environ={}, cores=8)
    assert alone["KD_WORKBENCH_DEVICE_SLOT"] == "" and "OMP_NUM_THREADS" not in alone
    two = [child_env(slot, 2, environ={}, cores=8) for slot in (0, 1)]
    assert [e["KD_WORKBENCH_DEVICE_SLOT"] for e in two] == ["0", "1"]
    assert {e["OMP_NUM_THREADS"] for e in two} == {"4"}
    assert child_env(2, 3, environ={}, cores=2)["OMP_NUM_THREADS"] == "1"
    assert child_env(0, 2, environ={"OMP_NUM_THREADS": "3"}, cores=8)["OMP_NUM_THREADS"] == "3"  # the user's choice


def test_the_frontier_axis_keeps_the_students_readable_when_starts_are_far_above():
    from workbench.analysis.frontier import y_top

    students = [{"gen_rkl": 0.5, "undistilled": {"gen_rkl": 4.4}}, {"gen_rkl": 0.9, "undistilled": {"gen_rkl": 1.2}}]
    assert y_top(students) == pytest.approx(1.6 * 0.9)  # the start at 4.4 would squash 0.5 and 0.9 together
    assert y_top([{"gen_rkl": 0.9, "undistilled": {"gen_rkl": 1.2}}]) is None  # everything fits: no cut
    figure = frontier_figure({"sweep": "x", "teacher": {"params_total": 10, "gen_tokens_per_s": 5.0},
                              "students": [dict(s, slug=f"s{i}", params_total=5, gen_tokens_per_s=6.0,
                                                undistilled=dict(s["undistilled"], params_total=5, gen_tokens_per_s=6.0))
                                           for i, s in enumerate(students)]})
    assert tuple(figure.layout.yaxis.range) == pytest.approx((0, 1.44))
    assert any("run off the top" in a.text for a in figure.layout.annotations)


def test_the_sweep_picker_labels_a_sweep_by_its_folder_not_by_a_word_the_browser_translates(tmp_path):
    from workbench.app.i18n import build_i18n
    from workbench.app.tab_sweeps import sweep_choices
    from workbench.config import BUILTIN_TEACHER, load_preset
    from workbench.runs.sweep import builtin_students, create_sweep

    korean = build_i18n().translations_dict["ko"]
    assert "frontier" in korean  # a UI word: a bare "frontier" label would show as Korean
    create_sweep(tmp_path, "frontier", load_preset("chat"), builtin_students("width", BUILTIN_TEACHER))
    ((label, value),) = sweep_choices(str(tmp_path))
    assert (label, value) == ("frontier/", "frontier") and label not in korean


def test_decode_rate_keeps_the_fastest_round(tiny_teacher, monkeypatch):
    """A round slowed by other work (here: the first one, ten times slower) does not set the decode speed."""
    from workbench.analysis import frontier
    from workbench.models.loading import load_model, load_tokenizer

    model, tokenizer = load_model(str(tiny_teacher)), load_tokenizer(str(tiny_teacher))
    # seconds per call, in the order decode_rate asks: the warm-up, then (32 tokens, 1 token) per round
    timings = iter([0.5, 10.0, 0.1, 1.0, 0.1, 1.2, 0.1])
    monkeypatch.setattr(frontier, "time_calls", lambda call, **_: (next(timings), 1))
    assert frontier.decode_rate(model, tokenizer, "Hello", batch=2) == pytest.approx(2 * 31 / (1.0 - 0.1))
    assert next(timings, None) is None, "three rounds, no more"
