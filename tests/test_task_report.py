"""Per-task scores of a multi-task run where a person reads them: one curve per task in the Train tab, a cell in the
Runs table, rows in the report card (from a tiny multi-task run trained here, and from hand-written rows)."""

from __future__ import annotations

import json

import pytest
from engine_helpers import tiny_config

from workbench.analysis.task_report import card_task_rows, task_cell, task_figure, task_lines, with_task_columns
from workbench.engine.trainer import train
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import ListSink

ROWS = [{"kind": "train", "step": 1, "total": 2.0},
        {"kind": "eval", "step": 2, "tasks": {
            "kind": {"kind": "classify", "ppl": 5.0, "acc": 0.25, "teacher_acc": 0.75, "chance": 0.25},
            "book": {"kind": "qa", "ppl": 3.0, "em": 0.1, "f1": 0.2, "teacher_em": 0.4, "teacher_f1": 0.5},
            "chat": {"kind": "chat", "ppl": 9.0}}},
        {"kind": "eval", "step": 4, "tasks": {
            "kind": {"kind": "classify", "ppl": 4.0, "acc": 0.5, "teacher_acc": 0.75, "chance": 0.25},
            "book": {"kind": "qa", "ppl": 2.5, "em": 0.2, "f1": 0.3, "teacher_em": 0.4, "teacher_f1": 0.5},
            "chat": {"kind": "chat", "ppl": 8.0}}}]


def test_task_figure_draws_one_curve_per_task_with_the_teachers_line():
    figure = task_figure(ROWS)
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces["kind · acc"].y) == [0.25, 0.5] and list(traces["kind · acc"].x) == [2, 4]
    assert list(traces["book · F1"].y) == [0.2, 0.3] and set(traces["book · teacher"].y) == {0.5}
    assert set(traces["kind · teacher"].y) == {0.75}
    assert list(traces["chat · ppl"].y) == [9.0, 8.0]
    assert traces["kind · ppl"].xaxis == "x2" and traces["kind · acc"].xaxis == "x"
    assert not task_figure([{"kind": "eval", "step": 1, "eval_loss": 2.0}]).data  # a run without tasks: empty


def test_task_cell_and_report_rows_name_each_task_with_the_teachers_score():
    tasks = ROWS[-1]["tasks"]
    assert task_cell(tasks) == "kind acc 50% (teacher 75%) · book F1 30% (teacher 50%) · chat ppl 8.00"
    card = {"teacher": {"label": "teacher"}, "students": [{"label": "distilled student"},
                                                          {"label": "undistilled student"}],
            "tasks": {"step": 4, "tasks": tasks}}
    rows = dict(card_task_rows(card))
    assert rows["kind: accuracy"] == {"teacher": "75%", "distilled student": "50%", "undistilled student": "–"}
    assert rows["book: exact match"]["distilled student"] == "20%" and rows["chat: perplexity"]["teacher"] == "–"
    header, table = with_task_columns(card, ["model"], [["teacher"], ["distilled student"], ["undistilled student"]])
    assert header[1:] == list(rows) and table[1][header.index("book: token F1")] == "30%"
    assert "| kind: accuracy | 75% | 50% | – |" in task_lines(card) and "step 4" in task_lines(card)[-1]
    assert with_task_columns({**card, "tasks": None}, ["model"], [["teacher"]]) == (["model"], [["teacher"]])


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory, tiny_teacher, tiny_student, tiny_text, tiny_pairs):
    root = tmp_path_factory.mktemp("task-report")
    classify = root / "cls.jsonl"
    classify.write_text("".join(json.dumps({"text": f"the king {i} said", "label": ["king", "lord"][i % 2]}) + "\n"
                                for i in range(60)))
    tasks = [{"name": "text", "source": str(tiny_text), "kind": "lm"},
             {"name": "pairs", "source": str(tiny_pairs), "kind": "qa", "holdout": 6},
             {"name": "cls", "source": str(classify), "kind": "classify", "labels": ["king", "lord"],
              "prompt": "king or lord : {text}", "holdout": 6, "ce_weight": 1.0}]
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, data={"tasks": tasks, "max_sequences": 40},
                      train={"steps": 4, "eval_every": 2, "gen_eval": False})
    train(cfg, root / "runs" / "mix", ListSink())
    return root / "runs", RunFolder(root / "runs" / "mix")


def test_a_multitask_run_shows_its_task_scores_in_the_train_tab_and_the_runs_table(multitask_run):
    from workbench.app.tab_runs import TABLE_COLUMNS, run_summary, runs_table
    from workbench.app.tab_train import new_watch, render

    runs_dir, run = multitask_run
    last = [row for row in read_metrics(run.metrics_path) if row.get("kind") == "eval"][-1]["tasks"]
    summary = run_summary(run)
    assert summary["tasks"] == last and summary["tasks_step"] == 4
    cell = dict(zip(TABLE_COLUMNS, runs_table(runs_dir, "ko")[0], strict=True))["task scores"]
    assert cell.startswith(f"text ppl {last['text']['ppl']:.2f} · pairs F1 ") and "cls acc" in cell
    assert f"(교사 모델 {last['cls']['teacher_acc']:.0%})" in cell
    update = render(str(runs_dir), new_watch(str(runs_dir), "mix"), True, "en")[-1]
    assert update["visible"] is True
    names = {trace.name for trace in update["value"].data}
    assert {"cls · acc", "cls · teacher", "pairs · F1", "pairs · teacher", "text · ppl"} <= names


def test_a_run_without_tasks_hides_the_task_plot(tmp_path):
    from workbench.app.tab_train import new_watch, render

    run = tmp_path / "plain"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 2, "total_steps": 2}))
    (run / "metrics.jsonl").write_text(json.dumps({"kind": "eval", "step": 2, "eval_loss": 2.0}) + "\n")
    assert render(str(tmp_path), new_watch(str(tmp_path), "plain"), True, "en")[-1]["visible"] is False


def test_the_overlay_compares_task_scores_across_runs_with_different_mixes(tmp_path):
    from workbench.analysis.plots import overlay_figure
    from workbench.analysis.task_report import with_task_fields
    from workbench.app.tab_runs import metric_choices
    from workbench.config import DistillConfig

    other = [{**row, "tasks": {"kind": {**row["tasks"]["kind"], "acc": row["tasks"]["kind"]["acc"] + 0.25}}}
             if "tasks" in row else row for row in ROWS]
    for name, rows in (("mix-a", ROWS), ("mix-b", other)):
        (tmp_path / name).mkdir()
        DistillConfig().save(tmp_path / name / "config.yaml")
        (tmp_path / name / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    choices = dict(metric_choices("ko", tmp_path))
    assert choices["kind: 정확도"] == "tasks/kind/acc" and choices["book: 토큰 F1"] == "tasks/book/f1"
    assert dict(metric_choices("en"))["KD term (nats/token × T²)"] == "kd" and "tasks/kind/acc" not in \
        dict(metric_choices("en")).values()
    figure = overlay_figure({"mix-a": with_task_fields(ROWS), "mix-b": with_task_fields(other)}, "tasks/kind/acc")
    assert [list(trace.y) for trace in figure.data] == [[0.25, 0.5], [0.5, 0.75]]
    assert [list(trace.x) for trace in figure.data] == [[2, 4], [2, 4]]
