"""Form values <-> DistillConfig, field-named errors, the command preview reproducing the config, config diffs."""

from __future__ import annotations

import shlex

import pytest

from workbench.config import DistillConfig, apply_overrides, load_preset
from workbench.errors import UserError
from workbench.forms import (
    FORM_FIELDS,
    command_preview,
    config_diff,
    config_to_form,
    form_to_config,
    overrides_for,
    rows_to_pairs,
)


def test_round_trip_keeps_every_field():
    cfg = DistillConfig()
    cfg.loss.temperature, cfg.loss.divergence, cfg.lora.target_modules = 3.5, "jsd", ["q_proj", "v_proj"]
    cfg.mapping.strategy, cfg.mapping.pairs = "custom", ["0:1", "emb:emb"]
    values = config_to_form(cfg)
    assert set(values) == set(FORM_FIELDS)
    assert values["mapping.pairs"] == [["0", "1"], ["emb", "emb"]]
    assert form_to_config(values).to_dict() == cfg.to_dict()


def test_numbers_from_widgets_are_coerced_and_zero_max_sequences_is_none():
    values = config_to_form(DistillConfig())
    values.update({"train.steps": 12.0, "data.max_sequences": 0, "run.name": "  "})
    cfg = form_to_config(values)
    assert cfg.train.steps == 12 and isinstance(cfg.train.steps, int)
    assert cfg.data.max_sequences is None and cfg.run.name is None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("loss.temperature", 0.0, "loss.temperature"), ("train.steps", 0, "train.steps"),
     ("train.lr", -1.0, "train.lr"), ("loss.kd_weight", -2.0, "loss.kd_weight"),
     ("run.name", "../evil", "run.name"), ("train.batch_size", None, "train.batch_size"),
     ("mapping.pairs", [["x", "1"]], "mapping.pairs")],
)
def test_invalid_values_name_the_field(field, value, named):
    values = config_to_form(DistillConfig())
    values[field] = value
    if field == "mapping.pairs":
        values["mapping.strategy"] = "custom"
    with pytest.raises(UserError, match=named.replace(".", r"\.")):
        form_to_config(values)


def test_rows_to_pairs_skips_blank_rows_and_float_cells():
    assert rows_to_pairs([["1", "3"], ["", ""], [2.0, 5.0], ["emb", "emb"]]) == ["1:3", "2:5", "emb:emb"]
    assert rows_to_pairs(None) == []


def test_command_preview_overrides_rebuild_the_same_config():
    base = DistillConfig()
    cfg = form_to_config({"loss.temperature": 4.0, "lora.enabled": True, "lora.target_modules": ["q_proj"],
                          "mapping.strategy": "custom", "mapping.pairs": [["0", "2"]], "run.name": "my-run"})
    overrides = overrides_for(cfg, base)
    assert "loss.temperature=4.0" in overrides and "run.name=my-run" in overrides
    assert apply_overrides(base, overrides).to_dict() == cfg.to_dict()
    text = command_preview(cfg)
    parts = shlex.split(text.replace("\\\n", " "))
    assert parts[:2] == ["workbench", "train"]
    assert apply_overrides(base, parts[2:]).to_dict() == cfg.to_dict()


def test_config_diff_lists_only_differences():
    a, b = DistillConfig(), DistillConfig()
    b.loss.temperature, b.train.steps = 7.0, 33
    assert config_diff(a, b) == {"loss.temperature": (2.0, 7.0), "train.steps": (200, 33)}
    assert config_diff(a, a) == {}


PREVIEW_CASES = [
    {"mapping.strategy": "custom", "mapping.pairs": [["3", "11"]], "loss.hidden_weight": 1.0},
    {"mapping.strategy": "custom", "mapping.pairs": [["3", "11"], ["18", "29"], ["emb", "emb"]], "loss.attn_weight": 0.5},
    {"data.max_sequences": 0, "train.steps": 2, "train.lr": 3e-4, "data.text_column": "12", "run.name": "1.5"},
    {"data.dataset": "my data/a file.txt", "lora.enabled": True, "lora.target_modules": ["q_proj", "v_proj"],
     "train.device": "cpu", "train.precision": "bf16", "loss.divergence": "jsd", "loss.temperature": 1.0,
     "train.report_to": ["tensorboard", "mlflow"]},
    {"data.tasks": [["chat", "builtin:chat", "chat", 2.0, None, None, "text", "label", "", "{text}", 64],
                    ["kind", "builtin:chat-kind", "classify", 1.0, 1.0, 0.5, "text", "label",
                     "story, steps, definition, comparison", "Is it \"{text}\"? It's a", 24.0]]},
]


@pytest.mark.parametrize("preset", [None, "quick"])
@pytest.mark.parametrize("values", PREVIEW_CASES)
def test_every_previewed_command_parses_to_the_same_config(preset, values):
    from workbench.cli import build_parser
    from workbench.commands.train import resolve_config

    base = load_preset(preset) if preset else DistillConfig()
    cfg = form_to_config(values, base)
    argv = shlex.split(command_preview(cfg, preset=preset, runs_dir="runs").replace("\\\n", " "))
    assert argv[:2] == ["workbench", "train"]
    args = build_parser().parse_args(argv[1:])
    assert resolve_config(args.config, args.preset, args.overrides).to_dict() == cfg.to_dict()


def test_pairs_typed_as_the_readme_shows_stay_pairs():
    """YAML 1.1 reads 3:11 as the base-60 number 191; in overrides and config files pairs stay text."""
    cfg = apply_overrides(DistillConfig(), ["mapping.strategy=custom", "mapping.pairs=[3:11]", "loss.hidden_weight=1"])
    assert cfg.mapping.pairs == ["3:11"]
    assert apply_overrides(cfg, ["mapping.pairs=18:29"]).mapping.pairs == ["18:29"]
    assert apply_overrides(cfg, ["mapping.pairs=3:11,18:29"]).mapping.pairs == ["3:11", "18:29"]
    loaded = DistillConfig.from_yaml("mapping:\n  preset: custom\n  pairs: [3:11, 18:29]\nloss:\n  hidden_weight: 1\n")
    assert loaded.mapping.pairs == ["3:11", "18:29"]
    assert apply_overrides(cfg, ["train.lr=3e-4", "train.steps=0x10"]).train.steps == 16


def test_zero_max_sequences_means_all_in_the_cli_too():
    assert apply_overrides(DistillConfig(), ["data.max_sequences=0"]).data.max_sequences is None
    with pytest.raises(UserError, match="data.max_sequences"):
        apply_overrides(DistillConfig(), ["data.max_sequences=1"])


def test_warmup_longer_than_the_run_is_accepted_and_clamped():
    from workbench.engine.optim import clamped_warmup, warmup_cosine

    cfg = apply_overrides(DistillConfig(), ["train.steps=2"])
    assert cfg.train.warmup_steps == 10
    warmup = clamped_warmup(cfg.train.warmup_steps, cfg.train.steps)
    assert warmup == 2
    assert [warmup_cosine(step, warmup, 2) for step in range(2)] == pytest.approx([1 / 3, 2 / 3])


def test_task_rows_round_trip_and_blank_cells_take_the_defaults():
    from workbench.forms import TASK_COLUMNS, rows_to_tasks, tasks_to_rows

    tasks = [{"name": "kind", "source": "builtin:chat-kind", "kind": "classify", "weight": 0.5, "ce_weight": 1.0,
              "labels": ["story", "steps"], "holdout": 8}]
    cfg = form_to_config({"data.tasks": tasks})
    rows = config_to_form(cfg)["data.tasks"]
    assert len(rows[0]) == len(TASK_COLUMNS) and rows[0][TASK_COLUMNS.index("labels")] == "story, steps"
    assert form_to_config({"data.tasks": rows}).to_dict() == cfg.to_dict()
    blank = [["book", "builtin:kjv-book", "qa", float("nan"), None, "", "", None, "", None, None], [None] * 11]
    assert rows_to_tasks(blank) == [{"name": "book", "source": "builtin:kjv-book", "kind": "qa"}]
    book = form_to_config({"data.tasks": blank}).data.tasks[0]
    assert (book.weight, book.ce_weight, book.holdout) == (1.0, None, 64)
    assert tasks_to_rows([]) == []
    with pytest.raises(UserError, match=r"data\.tasks\[book\]\.weight"):
        form_to_config({"data.tasks": [["book", "builtin:kjv-book", "qa", 0.0]]})
