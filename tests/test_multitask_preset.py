"""The `multitask` preset: chat and the two built-in tasks, valid as shipped, documented in README's preset table, and
trainable end to end (on the tiny pair, with the preset's tasks, mixture and loss mix unchanged)."""

from __future__ import annotations

import math
from pathlib import Path

from workbench.config import DistillConfig, load_preset
from workbench.data.task_items import BUILTIN_TASK_FIELDS
from workbench.engine.trainer import train
from workbench.runs.sinks import ListSink

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_multitask_preset_loads_and_validates():
    cfg = load_preset("multitask")
    assert DistillConfig.from_yaml(cfg.to_yaml()).to_dict() == cfg.to_dict()
    tasks = {task.name: task for task in cfg.data.tasks}
    assert [(t.source, t.kind) for t in tasks.values()] == [("builtin:chat", "chat"), ("builtin:chat-kind", "classify"),
                                                            ("builtin:kjv-book", "qa")]
    for task in tasks.values():  # each built-in source as the task editor would fill it in
        assert {key: getattr(task, key) for key in BUILTIN_TASK_FIELDS[task.source]} == BUILTIN_TASK_FIELDS[task.source]
    assert tasks["chat"].weights(cfg.loss) == (0.0, 1.0)  # chat: KD only; the tasks: CE on their gold answers too
    assert tasks["kind"].weights(cfg.loss)[0] > 0 and tasks["book"].weights(cfg.loss)[0] > 0
    assert sum(t.weight for t in tasks.values()) == 2 * tasks["chat"].weight  # half of each batch is chat
    assert cfg.data.seq_len >= 512 and not cfg.train.teacher_cache
    assert "| `multitask` |" in README.read_text(encoding="utf-8")


def test_the_multitask_preset_trains_the_tiny_pair_and_scores_every_task(tmp_path, tiny_teacher, tiny_student):
    data = load_preset("multitask").to_dict()
    data["models"].update(teacher=str(tiny_teacher), student=str(tiny_student))
    data["data"].update(seq_len=64, max_sequences=60, holdout_prompts=4)
    for task in data["data"]["tasks"]:
        task["holdout"] = 6
    data["train"].update(steps=2, batch_size=4, eval_every=2, eval_batches=1, save_every=2, heal_init=False,
                         precision="fp32", device="cpu", gen_eval=False, max_minutes=None, warmup_steps=0)
    sink = ListSink()
    train(DistillConfig.from_dict(data), tmp_path / "run", sink)
    steps = [row for row in sink.rows if row["kind"] == "train"]
    assert len(steps) == 2 and all(math.isfinite(row["total"]) for row in steps)
    tasks = [row for row in sink.rows if row["kind"] == "eval"][-1]["tasks"]
    assert set(tasks) == {"chat", "kind", "book"}
    assert 0.0 <= tasks["kind"]["acc"] <= 1.0 and tasks["kind"]["chance"] == 0.25 and "teacher_acc" in tasks["kind"]
    assert {"em", "f1", "teacher_em", "teacher_f1"} <= set(tasks["book"])
    assert all(math.isfinite(numbers["ppl"]) for numbers in tasks.values())
