"""`train.report_to`: TensorBoard gets the same numbers as metrics.jsonl, read back with TensorBoard's own reader."""

from __future__ import annotations

import json

import pytest
from engine_helpers import tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from workbench.config import ConfigError, DistillConfig, apply_overrides
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.runs.reporters import check_reporters, scalars


def test_tensorboard_gets_every_metric_of_metrics_jsonl(tiny_teacher, tiny_student, tiny_text, tmp_path):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"report_to": ["tensorboard"]})
    train(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/kd", "train/ce", "train/lr", "eval/eval_kl", "eval/eval_top1"} <= tags
    for kind, field in (("train", "kd"), ("train", "lr"), ("eval", "eval_kl")):
        expected = [(row["step"], row[field]) for row in rows if row["kind"] == kind]
        logged = [(event.step, event.value) for event in events.Scalars(f"{kind}/{field}")]
        assert [step for step, _ in logged] == [step for step, _ in expected]
        assert [value for _, value in logged] == pytest.approx([value for _, value in expected], rel=1e-6)


def test_report_to_is_a_list_of_known_trackers():
    assert apply_overrides(DistillConfig(), ["train.report_to=tensorboard"]).train.report_to == ["tensorboard"]
    assert DistillConfig().train.report_to == []
    with pytest.raises(ConfigError, match="train.report_to must be any of tensorboard"):
        apply_overrides(DistillConfig(), ["train.report_to=tensorboard,comet"])


def test_a_tracker_that_is_not_installed_is_refused_naming_the_field(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    check_reporters(["tensorboard"])
    with pytest.raises(UserError, match="train.report_to: wandb is not installed; pip install wandb"):
        check_reporters(["tensorboard", "wandb"])


def test_scalars_keep_numbers_only():
    row = {"kind": "eval", "step": 4, "time": 1.0, "eval_kl": 0.5, "note": "x", "flag": True}
    assert scalars(row) == {"eval/eval_kl": 0.5}


def test_wandb_gets_the_config_and_every_row_through_accelerates_tracker(tiny_teacher, tiny_student, tiny_text,
                                                                          tmp_path, monkeypatch):
    """wandb is not installed here: a stand-in module records what accelerate's WandBTracker hands it."""
    import importlib.machinery
    import sys
    import types

    calls = {"init": [], "config": {}, "log": [], "finish": 0}

    class Run:
        def log(self, values, step=None):
            calls["log"].append((step, dict(values)))

        def finish(self):
            calls["finish"] += 1

    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.init = lambda **kwargs: calls["init"].append(kwargs) or Run()
    fake.config = types.SimpleNamespace(update=lambda values, **_: calls["config"].update(values))
    monkeypatch.setitem(sys.modules, "wandb", fake)

    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"report_to": ["wandb"]})
    train(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert calls["init"] == [{"project": "kd-workbench", "name": "run", "dir": str(tmp_path / "run")}]
    assert calls["config"]["loss.divergence"] == cfg.loss.divergence and calls["config"]["train.report_to"] == "['wandb']"
    train_rows = [row for row in rows if row["kind"] == "train"]
    logged = [(step, values["train/kd"]) for step, values in calls["log"] if "train/kd" in values]
    assert logged == [(row["step"], pytest.approx(row["kd"], rel=1e-6)) for row in train_rows]
    assert calls["finish"] == 1
