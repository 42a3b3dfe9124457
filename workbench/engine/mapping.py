"""Which teacher layer each student layer learns from, and the projectors that bridge different widths.

A mapping is a list of (student, teacher) pairs. Each side is a 0-based decoder-layer index or "emb", the
embedding output. In Hugging Face terms layer i's output is `hidden_states[i + 1]` and "emb" is
`hidden_states[0]`; `hidden_state_index` does that conversion.

Presets (README, "Losses"):
- uniform: student layer i <-> teacher layer floor((i + 1)·Lt/Ls + 1/2) − 1, for every student layer. The rounding
  is half-up on exact integers, not Python's round() (half-to-even: round(4.5) == 4), so 20 -> 30 layers gives
  0->1, 1->2, 2->4, 3->5, ... and the last student layer always meets the last teacher layer. When the student is
  deeper than the teacher the index is floored at 0, so several student layers may share a teacher layer.
- last: the last student layer <-> the last teacher layer.
- source: for a student made by dropping teacher layers, each student layer <-> the teacher layer it was copied
  from (`source_layers`); with gaps, uniform pairs a kept layer with a neighbour of its original instead.
- custom: "s:t" strings such as "3:11" or "emb:emb", validated against both layer counts.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from workbench.config import MAPPING_STRATEGIES
from workbench.errors import Message, UserError
from workbench.models.derive import ModelSpec, as_spec

Layer = int | str
LayerPair = tuple[Layer, Layer]
_PAIR_PATTERN = re.compile(r"^\s*(emb|\d+)\s*:\s*(emb|\d+)\s*$")


def uniform_teacher_layer(student_layer: int, student_layers: int, teacher_layers: int) -> int:
    """floor((i + 1)·Lt/Ls + 1/2) − 1 in exact integer arithmetic, floored at 0."""
    half_up = (2 * (student_layer + 1) * teacher_layers + student_layers) // (2 * student_layers)
    return max(half_up - 1, 0)


def _parse_side(text: str) -> Layer:
    return "emb" if text == "emb" else int(text)


def _allowed(student_layers: int, teacher_layers: int) -> Message:
    return Message("'student:teacher' with student in emb or 0..{student_last} and teacher in emb or "
                   "0..{teacher_last}, emb only paired with emb, each student layer at most once",
                   student_last=student_layers - 1, teacher_last=teacher_layers - 1)


def parse_pairs(pairs: list[str] | str, student_layers: int, teacher_layers: int) -> list[LayerPair]:
    """Parse and validate custom "s:t" pairs; raises UserError naming mapping.pairs and the allowed ranges."""
    if isinstance(pairs, str):
        pairs = [item for item in pairs.split(",") if item.strip()]
    allowed = _allowed(student_layers, teacher_layers)
    if not pairs:
        raise UserError(Message("mapping.pairs must list at least one pair {allowed}, got none", allowed=allowed))
    resolved: list[LayerPair] = []
    seen: set[Layer] = set()
    for raw in pairs:
        match = _PAIR_PATTERN.match(str(raw))
        if not match:
            raise UserError(Message("mapping.pairs items must be {allowed}, got {raw!r}", allowed=allowed, raw=raw))
        student, teacher = _parse_side(match.group(1)), _parse_side(match.group(2))
        if (student == "emb") != (teacher == "emb"):
            raise UserError(Message("mapping.pairs: emb can only be paired with emb ({allowed}), got {raw!r}",
                                    allowed=allowed, raw=raw))
        if student != "emb" and not 0 <= student < student_layers:
            raise UserError(Message("mapping.pairs: student layer {layer} is out of range ({allowed}), got {raw!r}",
                                    layer=student, allowed=allowed, raw=raw))
        if teacher != "emb" and not 0 <= teacher < teacher_layers:
            raise UserError(Message("mapping.pairs: teacher layer {layer} is out of range ({allowed}), got {raw!r}",
                                    layer=teacher, allowed=allowed, raw=raw))
        if student in seen:
            raise UserError(Message("mapping.pairs: student layer {layer} appears twice ({allowed}), got {raw!r}",
                                    layer=student, allowed=allowed, raw=raw))
        seen.add(student)
        resolved.append((student, teacher))
    return resolved


def resolve_mapping(
    strategy: str, pairs: list[str] | str | None, student_layers: int, teacher_layers: int,
    source: list[int] | None = None,
) -> list[LayerPair]:
    """The (student, teacher) layer pairs of a mapping strategy; `pairs` is only read for `custom`, `source` (the
    teacher layer each student layer was copied from) only for `source`."""
    for name, count in (("student", student_layers), ("teacher", teacher_layers)):
        if int(count) < 1:
            raise UserError(Message("mapping needs at least one {role} layer, got {count}", role=Message(name),
                                    count=count))
    if strategy == "uniform":
        return [(i, uniform_teacher_layer(i, student_layers, teacher_layers)) for i in range(student_layers)]
    if strategy == "last":
        return [(student_layers - 1, teacher_layers - 1)]
    if strategy == "custom":
        return parse_pairs(pairs or [], student_layers, teacher_layers)
    if strategy == "source":
        if source is None or len(source) != student_layers or not all(0 <= t < teacher_layers for t in source):
            raise UserError(Message("mapping.strategy source needs the teacher layer each of the {layers} student "
                                    "layers was copied from, got {source}", layers=student_layers, source=source))
        return list(enumerate(source))
    raise UserError(Message("mapping.strategy must be one of {choices}, got {strategy!r}",
                            choices=", ".join(MAPPING_STRATEGIES), strategy=strategy))


def source_layers(student: str | ModelSpec, teacher: str | ModelSpec, teacher_layers: int,
                  trust_remote_code: bool = False) -> list[int]:
    """The teacher layer each layer of `student` was copied from, when the student is `teacher?prune=...`;
    a UserError naming mapping.strategy otherwise."""
    from workbench.models.loading import resolve_layers

    student_spec, teacher_spec = as_spec(student), as_spec(teacher)
    if student_spec.derivation != "prune" or teacher_spec.derivation is not None or student_spec.base != teacher_spec.base:
        raise UserError(Message("mapping.strategy source needs a student made by dropping teacher layers "
                                "('{base}?prune=...'), got models.student={student!r}; use uniform or custom",
                                base=teacher_spec.base, student=student_spec.text))
    return resolve_layers(student_spec, base_layers=teacher_layers, trust_remote_code=trust_remote_code)


def is_pruned_from(student: str, teacher: str) -> bool:
    """True when `student` is `teacher` with layers dropped (so the source strategy applies)."""
    try:
        student_spec, teacher_spec = as_spec(student), as_spec(teacher)
    except (UserError, ValueError):
        return False
    return (student_spec.derivation == "prune" and teacher_spec.derivation is None
            and student_spec.base == teacher_spec.base)


def config_mapping(cfg, student_layers: int, teacher_layers: int, student: ModelSpec | None = None,
                   teacher: ModelSpec | None = None) -> list[LayerPair]:
    """The pairs of a DistillConfig's `mapping` section for models of these depths (`student` and `teacher`: the
    run's parsed specs, where it has them)."""
    source = None
    if cfg.mapping.strategy == "source":
        source = source_layers(student or cfg.models.student, teacher or cfg.models.teacher, teacher_layers,
                               cfg.models.trust_remote_code)
    return resolve_mapping(cfg.mapping.strategy, cfg.mapping.pairs, student_layers, teacher_layers, source)


def hidden_state_index(layer: Layer) -> int:
    """Index into a model's `hidden_states` tuple: "emb" -> 0, layer i -> i + 1."""
    return 0 if layer == "emb" else int(layer) + 1


def pair_key(pair: LayerPair) -> str:
    """Stable module name of a pair, e.g. (3, 11) -> "s3_t11", ("emb", "emb") -> "semb_temb"."""
    return f"s{pair[0]}_t{pair[1]}"


def describe_mapping(pairs: list[LayerPair], student_layers: int, teacher_layers: int) -> dict[str, Any]:
    """Plain data for drawing a mapping: layer counts and the pairs with their hidden_states indices."""
    return {
        "student_layers": student_layers,
        "teacher_layers": teacher_layers,
        "pairs": [
            {
                "student": student,
                "teacher": teacher,
                "student_hidden_index": hidden_state_index(student),
                "teacher_hidden_index": hidden_state_index(teacher),
            }
            for student, teacher in pairs
        ],
    }


class Projectors(nn.Module):
    """One projector per mapped pair: Linear(student_width -> teacher_width) when widths differ, else identity.

    They are trained with the student and saved with the run (their state_dict), never in the exported student.
    Call `projectors(pair, student_hidden)` to map [B, T, student_width] to [B, T, teacher_width].
    """

    def __init__(self, pairs: list[LayerPair], student_width: int, teacher_width: int, bias: bool = True) -> None:
        super().__init__()
        self.pairs = [tuple(pair) for pair in pairs]
        self.student_width, self.teacher_width = int(student_width), int(teacher_width)
        make = (lambda: nn.Identity()) if student_width == teacher_width else (
            lambda: nn.Linear(student_width, teacher_width, bias=bias)
        )
        self.projections = nn.ModuleDict({pair_key(pair): make() for pair in self.pairs})

    @property
    def is_identity(self) -> bool:
        return self.student_width == self.teacher_width

    def forward(self, pair: LayerPair, student_hidden: torch.Tensor) -> torch.Tensor:
        projection = self.projections[pair_key(pair)]
        if isinstance(projection, nn.Linear):
            return projection(student_hidden.to(projection.weight.dtype))
        return student_hidden
