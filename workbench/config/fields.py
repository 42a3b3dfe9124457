"""How the schema declares a field, and how pydantic's findings become one field-named error.

A field is `name: TYPE = setting(default, help, bounds=Range(...))`: pydantic checks the type (a `Literal` for
choices) and the bounds; `declared()` reads the same declaration back for the app's controls, `train --help` and the
README's table. Every validation failure leaves as a `ConfigError` naming the field in the user's words
(`loss.temperature must be > 0 and <= 100, got 0`), translatable in the app.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import Message, UserError

BUILTIN_TEACHER = "builtin:smollm2-135m-instruct"
# Chosen by measurement (docs/choosing-the-student.md): the 19 of the teacher's 30 layers that
# `prune=importance&layers=19` selects, spelled out so loading needs no calibration pass. 19, not 20: 20 blocks
# plus the final norm come to 0.6666685 of the teacher's non-embedding parameters, just over two thirds.
DEFAULT_STUDENT = "builtin:smollm2-135m-instruct?prune=keep&layers=0-2,6-11,18-24,27-29"

DIVERGENCE_KINDS = (
    "forward_kl",
    "reverse_kl",
    "jsd",
    "kl_mix",
    "skew_forward_kl",
    "skew_reverse_kl",
    "tvd",
    "soft_ce",
    "mse",
)
LOSS_ON_CHOICES = ("all", "answer")
REPORTERS = ("tensorboard", "wandb", "trackio", "mlflow")
CROSS_TOKENIZER_METHODS = ("aligned", "uld")
HIDDEN_KINDS = ("mse", "cosine", "ln_mse")
TASK_KINDS = ("lm", "chat", "qa", "classify")
MAPPING_STRATEGIES = ("uniform", "last", "source", "custom")
TASK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NONE_WORDS = ("", "none", "null")


class ConfigError(UserError):
    """A config value or key the schema does not accept; the message names the field."""


@dataclass(frozen=True)
class Range:
    """The numbers a field accepts, [low, high] with either end open or absent; `slider` is (min, max, step) of the
    app's slider where the field has one (a narrower, comfortable range; typed values may go beyond it)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    slider: tuple[float, float, float] | None = None

    def constraints(self) -> dict[str, float]:
        """The range as pydantic's gt/ge/lt/le."""
        ends = {}
        if self.low is not None:
            ends["gt" if self.low_open else "ge"] = self.low
        if self.high is not None:
            ends["lt" if self.high_open else "le"] = self.high
        return ends

    def describe(self, integer: bool) -> Message:
        """'an integer in [1, 1024]', '> 0 and <= 100', '>= 0': the accepted values in words."""
        low, high = (None if x is None else f"{x:g}" if x != int(x) else str(int(x)) for x in (self.low, self.high))
        if integer and low is not None and high is not None and not (self.low_open or self.high_open):
            return Message("an integer in [{low}, {high}]", low=low, high=high)
        ends = [f"{'>' if self.low_open else '>='} {low}"] * (low is not None)
        ends += [f"{'<' if self.high_open else '<='} {high}"] * (high is not None)
        bounds = Message("{low} and {high}", low=ends[0], high=ends[1]) if len(ends) == 2 else ends[0]
        return Message("an integer {bounds}", bounds=bounds) if integer else Message("{bounds}", bounds=bounds)


WEIGHT = Range(0.0, 1000.0)


def setting(default: Any, help: str, *, bounds: Range | None = None, also: str | None = None) -> Any:
    """A field: its default, its help text (the app's tooltip, CLI help, the README table) and its range (checked
    by pydantic); `also` names in words the values a pattern accepts beside the choices (train.device: cuda:N)."""
    extra = {"slider": list(bounds.slider)} if bounds and bounds.slider else {}
    extra |= {"also": also} if also else {}
    return Field(default, description=help, json_schema_extra=extra or None, **(bounds.constraints() if bounds else {}))


@dataclass(frozen=True)
class Declared:
    """One field as the schema declares it, read back from pydantic for the app, CLI help and the README."""

    name: str
    help: str
    default: Any
    integer: bool
    is_list: bool
    choices: tuple[str, ...] | None
    also: str | None
    bounds: Range | None

    def accepted(self) -> Message | str:
        """The values the field accepts, in words ('' when its type says it all)."""
        if self.choices:
            words = ", ".join([*self.choices, *([self.also] if self.also else [])])
            return Message("any of {choices}" if self.is_list else "one of {choices}", choices=words)
        return self.bounds.describe(self.integer) if self.bounds else ""


def _scalar(annotation: Any) -> tuple[Any, bool]:
    """(the field's scalar type with None and list taken off, whether it is a list)."""
    is_list = False
    while True:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
        elif origin is list:
            annotation, is_list = args[0], True
        else:
            return annotation, is_list


def _choices(annotation: Any) -> tuple[str, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):  # train.device: a Literal or a pattern
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return None


_ENDS = {"gt": annotated_types.Gt, "ge": annotated_types.Ge, "lt": annotated_types.Lt, "le": annotated_types.Le}


def declared(cls: type[BaseModel], prefix: str = "") -> list[Declared]:
    """Every field of a section, in schema order."""
    fields = []
    for key, info in cls.model_fields.items():
        scalar, is_list = _scalar(info.annotation)
        ends = {key: getattr(m, key) for m in info.metadata for key in ("gt", "ge", "lt", "le")
                if isinstance(m, _ENDS[key])}
        extra = info.json_schema_extra or {}
        slider = tuple(extra["slider"]) if "slider" in extra else None
        bounds = Range(ends.get("gt", ends.get("ge")), ends.get("lt", ends.get("le")), "gt" in ends, "lt" in ends,
                       slider) if ends else None
        default = info.get_default(call_default_factory=True)
        fields.append(Declared(prefix + key, info.description or "", default, scalar is int, is_list,
                               _choices(scalar), extra.get("also"), bounds))
    return fields


def invalid(name: str | Message, accepted: Message | str, value: Any) -> ConfigError:
    return ConfigError(Message("{name} must be {accepted}, got {value!r}", name=name, accepted=accepted, value=value))


def require(condition: bool, name: str | Message, accepted: Message | str, value: Any) -> None:
    if not condition:
        raise invalid(name, accepted, value)


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def _kind_words(annotation: Any) -> Message:
    scalar, _ = _scalar(annotation)
    if isinstance(scalar, type) and issubclass(scalar, BaseModel):
        return Message("a mapping of fields")
    return Message(_TYPE_WORDS.get(scalar, "text"))


def _item_name(name: str, index: int, value: Any) -> str:
    """How an error names a list item: data.tasks[chat] by its name where it has one, else data.tasks[0]."""
    label = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return f"{name}[{label if isinstance(label, str) and label else index}]"


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


_CONSTRAINTS = ("literal_error", "string_pattern_mismatch", "greater_than", "greater_than_equal", "less_than",
                "less_than_equal")


def config_error(exc: ValidationError, cls: type[BaseModel], data: Any, prefix: str) -> ConfigError:
    """Pydantic's first finding as one field-named error: the field's name, what it accepts, the value given."""
    error = exc.errors()[0]
    found = error.get("ctx", {}).get("error")
    if isinstance(found, ConfigError):  # a check of the schema's own, raised inside a validator
        return found
    name, value, model, key = prefix, data, cls, None
    loc, index = list(error["loc"]), 0
    while index < len(loc):
        part = loc[index]
        if key is None:
            if part not in model.model_fields:
                if error["type"] == "extra_forbidden":
                    return ConfigError(Message("unknown key {key} in {section}; accepted: {keys}", key=name + str(part),
                                               section=name.rstrip(".") or "config",
                                               keys=", ".join(sorted(model.model_fields))))
                break
            key, value = part, value.get(part) if isinstance(value, dict) else getattr(value, part, None)
            index += 1
            continue
        scalar, is_list = _scalar(model.model_fields[key].annotation)
        if isinstance(part, int) and isinstance(value, list):  # a list item: a task by its name, else the list
            item = value[part] if 0 <= part < len(value) else None
            if _is_section(scalar):
                name, value, model, key = _item_name(name + key, part, item) + ".", item, scalar, None
            else:
                value = item
        elif _is_section(scalar) and not is_list:  # a field of a nested section
            name, model, key = name + key + ".", scalar, None
            continue
        index += 1  # else a union's member (train.device): the field is already named
    if key is None:
        return invalid(name.rstrip(".") or "config", Message("a mapping of fields"), value)
    field = {d.name: d for d in declared(model)}[key]
    annotation = model.model_fields[key].annotation
    words = (field.accepted() if error["type"] in _CONSTRAINTS else
             Message("a list") if error["type"] == "list_type" else _kind_words(annotation))
    given = error.get("input", value)
    if error["type"].startswith(("greater", "less")) and _scalar(annotation)[0] is float:
        given = float(given)  # the number as read: 0 given for a float field shows as 0.0
    return invalid(name + key, words, given)


class Section(BaseModel):
    """A section of the config: unknown keys refused, numbers read as text where text is asked for, and every
    failure raised as a `ConfigError` naming the field (direct construction included)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    where: ClassVar[str] = ""  # how errors name the section's fields: "loss." in "loss.temperature"
    renamed: ClassVar[dict[str, str]] = {}  # an earlier name of a field -> its name now: older YAML still loads

    @classmethod
    def current_key(cls, key: str) -> str:
        """A key as the schema names it now (`preset` in `mapping` reads as `strategy`)."""
        return cls.renamed.get(key, key)

    @classmethod
    def _where(cls, data: Any) -> str:
        return cls.where

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, type(self), data, self._where(data)) from None

    @classmethod
    def build(cls, data: dict[str, Any] | None) -> Any:
        """Validate a mapping (YAML, overrides, a form) into the section."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise config_error(exc, cls, data, cls._where(data)) from None

    @model_validator(mode="before")
    @classmethod
    def _spelled_out(cls, data: Any) -> Any:
        """What people type: '', none or null for an empty optional field, 'a, b' for a list; a true or false is
        refused where a number is asked for (pydantic would read it as 1 or 0)."""
        if not isinstance(data, dict):
            return data
        read = {key: value for key, value in data.items() if key not in cls.renamed}
        for old, new in cls.renamed.items():  # a field given by its earlier name: read under the name it has now
            if old in data:
                require(new not in data, cls._where(data) + old, Message("left out where {new} is given", new=new),
                        data[old])
                read[new] = data[old]
        for key, value in read.items():
            info = cls.model_fields.get(key)
            if info is None:
                continue
            scalar, is_list = _scalar(info.annotation)
            if type(None) in typing.get_args(info.annotation) and (
                    value is None or isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
                read[key] = None
            elif is_list and isinstance(value, str):
                read[key] = [item.strip() for item in value.split(",") if item.strip()]
            elif scalar in (int, float) and isinstance(value, bool):
                raise invalid(cls._where(data) + key, _kind_words(info.annotation), value)
        return read
