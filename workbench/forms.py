"""The setup form's values <-> `DistillConfig`, and the command line that reproduces a form.

The form is a flat dict keyed "section.key" (the same names as the YAML and the CLI overrides). Typed widgets give
typed values; `form_to_config` merges them into a base config (fields the form does not show keep their values) and
validation errors come back as `UserError`s naming the field.

    values = config_to_form(load_preset("quick"))
    values["loss.temperature"] = 3.0
    cfg = form_to_config(values)
    command_preview(cfg, preset="quick")   # workbench train --preset quick loss.temperature=3.0
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from workbench.config import DistillConfig, TaskConfig, load_preset, parse_yaml, task_defaults, task_fields
from workbench.errors import Message, UserError

FORM_FIELDS: tuple[str, ...] = (
    "models.teacher", "models.student", "models.trust_remote_code",
    "data.dataset", "data.text_column", "data.seq_len", "data.val_fraction", "data.max_sequences", "data.tasks",
    "loss.divergence", "loss.temperature", "loss.beta", "loss.alpha", "loss.t2_scale",
    "loss.ce_weight", "loss.kd_weight", "loss.hidden_weight", "loss.hidden_loss", "loss.hidden_skip_first",
    "loss.attn_weight", "loss.attn_loss", "loss.cross_tokenizer",
    "mapping.strategy", "mapping.pairs",
    "lora.enabled", "lora.r", "lora.alpha", "lora.dropout", "lora.target_modules",
    "train.steps", "train.batch_size", "train.grad_accum", "train.lr", "train.warmup_steps", "train.eval_every",
    "train.save_every", "train.seed", "train.device", "train.precision", "train.heal_init", "train.report_to",
    "data.loss_on", "data.holdout_prompts", "train.gen_eval",
    "onpolicy.lmbda", "onpolicy.seq_kd", "onpolicy.max_new_tokens", "onpolicy.temperature", "onpolicy.top_p",
    "onpolicy.teacher_prompts", "run.name",
)
OPTIONAL_ZERO_IS_NONE = ("data.max_sequences",)
PAIR_COLUMNS = ["student layer", "teacher layer"]
# the task editor's table: one column per TaskConfig field, in schema order; numbers where the field is a number
TASK_COLUMNS: list[str] = [f.name for f in task_fields()]
TASK_DATATYPES: list[str] = ["number" if TaskConfig.model_fields[name].annotation in (int, float, float | None)
                             else "str" for name in TASK_COLUMNS]
_TASK_DEFAULTS = task_defaults()


def pairs_to_rows(pairs: list[str]) -> list[list[str]]:
    """["3:11", "emb:emb"] -> [["3", "11"], ["emb", "emb"]] for the mapping table."""
    rows = []
    for pair in pairs:
        student, _, teacher = str(pair).partition(":")
        rows.append([student.strip(), teacher.strip()])
    return rows


def rows_to_pairs(rows: Any) -> list[str]:
    """Mapping-table rows (a list of lists or a DataFrame) -> ["s:t", ...]; blank rows are skipped."""
    if rows is None:
        return []
    if hasattr(rows, "values") and hasattr(rows, "columns"):
        rows = rows.values.tolist()
    pairs = []
    for row in rows:
        cells = ["" if cell is None else str(cell).strip() for cell in list(row)[:2]]
        cells = [cell[:-2] if cell.endswith(".0") else cell for cell in cells]
        if len(cells) < 2 or not (cells[0] or cells[1]):
            continue
        if cells[0] == "nan" and cells[1] == "nan":
            continue
        pairs.append(f"{cells[0]}:{cells[1]}")
    return pairs


def tasks_to_rows(tasks: list[dict]) -> list[list[Any]]:
    """data.tasks entries -> rows of the task table (labels as "a, b, c"; an empty weight as an empty cell)."""
    rows = []
    for task in tasks:
        entry = {**_TASK_DEFAULTS, **(task.model_dump() if isinstance(task, TaskConfig) else task)}
        rows.append([", ".join(entry[name]) if name == "labels" else entry[name] for name in TASK_COLUMNS])
    return rows


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() in ("", "nan", "None")


def rows_to_tasks(rows: Any) -> list[dict]:
    """Task-table rows (a list of lists or a DataFrame) -> data.tasks entries; blank rows are skipped and a blank
    cell leaves its field at the schema default (ce_weight and kd_weight: the run's loss weights)."""
    if rows is None:
        return []
    if hasattr(rows, "values") and hasattr(rows, "columns"):
        rows = rows.values.tolist()
    tasks = []
    for row in rows:
        cells = dict(zip(TASK_COLUMNS, list(row), strict=False))
        if all(_blank(cell) for cell in cells.values()):
            continue
        task = {}
        for name, cell in cells.items():
            if _blank(cell):
                continue
            if name == "labels":
                cell = [word.strip() for word in str(cell).split(",") if word.strip()]
            elif isinstance(cell, str):
                cell = cell.strip()
            task[name] = cell
        tasks.append(task)
    return tasks


def compact_task(task: dict) -> dict:
    """A data.tasks entry without the fields at their defaults (what a command line or a README shows)."""
    return {key: value for key, value in task.items() if key == "name" or value != _TASK_DEFAULTS.get(key)}


def config_to_form(cfg: DistillConfig) -> dict[str, Any]:
    """The form values of a config, keyed "section.key"."""
    data = cfg.to_dict()
    values: dict[str, Any] = {}
    for name in FORM_FIELDS:
        section, key = name.split(".")
        value = data[section][key]
        if name in OPTIONAL_ZERO_IS_NONE and value is None:
            value = 0
        if name == "lora.target_modules":
            value = list(value)
        if name == "mapping.pairs":
            value = pairs_to_rows(value)
        if name == "data.tasks":
            value = tasks_to_rows(value)
        if name == "run.name" and value is None:
            value = ""
        values[name] = value
    return values


def form_to_config(values: dict[str, Any], base: DistillConfig | None = None) -> DistillConfig:
    """Merge form values into `base` (default: the schema defaults) and validate; errors name the field."""
    data = (base or DistillConfig()).to_dict()
    for name, value in values.items():
        if name not in FORM_FIELDS:
            raise UserError(f"unknown form field {name!r}; accepted: {', '.join(FORM_FIELDS)}")
        section, key = name.split(".")
        if name in OPTIONAL_ZERO_IS_NONE and (value is None or value == 0):
            value = None
        elif name == "mapping.pairs":
            value = rows_to_pairs(value) if not isinstance(value, str) else value
        elif name == "data.tasks":
            value = value if isinstance(value, list) and all(isinstance(v, dict) for v in value) else rows_to_tasks(value)
        elif name == "run.name":
            value = (value or "").strip() or None
        elif isinstance(value, str):
            value = value.strip()
        if value is None and name not in OPTIONAL_ZERO_IS_NONE and name != "run.name":
            raise UserError(Message("{name} is empty; give a value ({help})", name=name,
                                    help=Message(field_label(name))))
        data[section][key] = value
    return DistillConfig.from_dict(data)


def field_label(name: str) -> str:
    from workbench.config import field_help

    section, key = name.split(".")
    return field_help(section, key)


def config_from_yaml_file(path: str | Path) -> DistillConfig:
    """Load an uploaded YAML config (errors name the field or the YAML line)."""
    return DistillConfig.load(path)


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, fields in data.items() for key, value in fields.items()}


def config_diff(before: DistillConfig | dict, after: DistillConfig | dict) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ, "section.key" -> (before, after)."""
    left = _flatten(before.to_dict() if isinstance(before, DistillConfig) else before)
    right = _flatten(after.to_dict() if isinstance(after, DistillConfig) else after)
    return {key: (left.get(key), right.get(key)) for key in dict.fromkeys([*left, *right]) if left.get(key) != right.get(key)}


def _override_value(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return _flow([compact_task(item) for item in value])
    if isinstance(value, list):
        return ",".join(str(item) for item in value) if value else "[]"
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _flow(value: Any) -> str:
    """A value as one line of flow YAML, strings plain where YAML reads them back as the same text, else
    double-quoted (so a shell's single quotes can hold the whole override)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_./:-]+", value) and parse_yaml(f"[{value}]") == [value]:
        return value
    return json.dumps(value, ensure_ascii=False)


def overrides_for(cfg: DistillConfig, base: DistillConfig) -> list[str]:
    """`section.key=value` overrides that turn `base` into `cfg` (run.runs_dir excluded)."""
    return [
        f"{key}={_override_value(new)}" for key, (_, new) in config_diff(base, cfg).items() if key != "run.runs_dir"
    ]


def command_preview(cfg: DistillConfig, preset: str | None = None, runs_dir: str = "runs") -> str:
    """The shell command that trains exactly this config: `--preset NAME` (or the defaults) plus overrides."""
    base = load_preset(preset) if preset else DistillConfig()
    head = ["workbench", "train", "--preset", preset] if preset else ["workbench", "train"]
    overrides = [f"run.runs_dir={runs_dir}"] * (runs_dir != base.run.runs_dir) + overrides_for(cfg, base)
    return " \\\n    ".join([" ".join(head), *(shlex.quote(item) for item in overrides)])
