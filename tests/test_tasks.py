"""Multi-task distillation (issue 27): the task schema, the seeded mixture, per-task loss weights, label scoring."""

from __future__ import annotations

import pytest

from workbench.config import ConfigError, DistillConfig

LABELS = ["king", "lord"]


def _tasks_yaml(entry: str) -> str:
    return "data:\n  tasks:\n  - {name: chat, source: builtin:chat, kind: chat}\n  - " + entry + "\n"


def test_tasks_round_trip_through_yaml():
    cfg = DistillConfig.from_yaml(_tasks_yaml(
        "{name: testament, source: builtin:kjv-testament, kind: classify, labels: [Old, New], weight: 0.5, "
        "ce_weight: 1.0, kd_weight: 0.2}"))
    assert [t.name for t in cfg.data.tasks] == ["chat", "testament"]
    assert cfg.data.tasks[1].weights(cfg.loss) == (1.0, 0.2)
    assert cfg.data.tasks[0].weights(cfg.loss) == (cfg.loss.ce_weight, cfg.loss.kd_weight)
    assert DistillConfig.from_yaml(cfg.to_yaml()) == cfg


@pytest.mark.parametrize("entry, field, words", [
    ("{name: odd, kind: translate}", "data.tasks[odd].kind", "one of lm, chat, qa, classify"),
    ("{name: cls, kind: classify, labels: [a, b], label_column: ''}", "data.tasks[cls].label_column", "column"),
    ("{name: cls, kind: classify, labels: []}", "data.tasks[cls].labels", "non-empty list"),
    ("{name: cls, kind: classify}", "data.tasks[cls].labels", "non-empty list"),
    ("{name: light, weight: 0}", "data.tasks[light].weight", "> 0"),
    ("{name: light, weight: -1}", "data.tasks[light].weight", "> 0"),
    ("{name: idle, ce_weight: 0, kd_weight: 0}", "data.tasks[idle].kd_weight", "> 0"),
    ("{name: chat, kind: chat}", "data.tasks[chat].name", "no other task"),
    ("{name: deep, hidden_weight: 1}", "data.tasks[deep].hidden_weight", "accepted: ce_weight"),
    ("{kind: lm}", "data.tasks[?].name", "letters"),
])
def test_bad_task_entry_is_refused_naming_task_and_field(entry, field, words):
    with pytest.raises(ConfigError) as error:
        DistillConfig.from_yaml(_tasks_yaml(entry))
    assert field in str(error.value) and words in str(error.value)

