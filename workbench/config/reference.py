"""The schema read back as the app's controls, `train --help` and the README's table show it."""

from __future__ import annotations

import functools
from typing import Any

from workbench.config.fields import Declared, declared
from workbench.config.schema import DistillConfig
from workbench.config.sections import TaskConfig


@functools.cache
def fields() -> tuple[Declared, ...]:
    """Every config field ("section.key"), in schema order (read once: the app asks for each control's)."""
    return tuple(field for section, info in DistillConfig.model_fields.items()
                 for field in declared(info.annotation, prefix=f"{section}."))


def field_spec(name: str) -> Declared:
    """The declaration of "section.key": its help, default, choices and bounds."""
    for field in fields():
        if field.name == name:
            return field
    raise KeyError(name)


def field_help(section: str, key: str) -> str:
    """The help text of `section.key`, for UI tooltips and CLI help."""
    return field_spec(f"{section}.{key}").help


def field_choices(name: str) -> list[str]:
    """The choices a "section.key" field declares (what the app's dropdown or radio offers)."""
    return list(field_spec(name).choices)


def field_slider(name: str) -> dict[str, float]:
    """minimum, maximum and step of the app's slider for "section.key"."""
    low, high, step = field_spec(name).bounds.slider
    return {"minimum": low, "maximum": high, "step": step}


def task_fields() -> list[Declared]:
    """Every field of a task (`data.tasks[]`), in schema order."""
    return declared(TaskConfig)


def task_defaults() -> dict[str, Any]:
    """Each TaskConfig field's default, in schema order."""
    return {field.name: field.default for field in task_fields()}


def _shown(default: Any) -> str:
    return "(none)" if default in (None, [], "") else f"`{default}`"


def config_table() -> str:
    """The README's table of every config field: default, accepted values and meaning, from the schema."""
    lines = ["| field | default | accepts | meaning |", "|---|---|---|---|"]
    for field in fields():
        lines.append(f"| `{field.name}` | {_shown(field.default)} | {field.accepted()} | {field.help} |")
        if field.name == "data.tasks":
            lines += [f"| `data.tasks[].{task.name}` | {_shown(task.default)} | {task.accepted()} | {task.help} |"
                      for task in task_fields()]
    return "\n".join(lines)


def field_reference() -> str:
    """Every config key with its default and accepted values, for `workbench train --help`."""
    rows = []
    for field in fields():
        accepts = field.accepted()
        default = field.default if field.default not in (None, []) else ""
        rows.append(f"  {field.name}={default}" + (f"  ({accepts})" if accepts else ""))
    return "config keys (section.key=value) with their defaults:\n" + "\n".join(rows)
