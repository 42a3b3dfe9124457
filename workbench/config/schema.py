"""`DistillConfig`: one section a concern, the checks that span sections, and its YAML form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from workbench.config.fields import ConfigError, Section, require
from workbench.config.sections import DataConfig, LossConfig, MappingConfig, ModelsConfig
from workbench.config.training import LoraConfig, OnPolicyConfig, RunConfig, TrainConfig
from workbench.config.yaml_form import parse_yaml
from workbench.errors import Message


class DistillConfig(Section):
    """The whole run. Sections validate themselves; the checks here span two of them."""

    models: ModelsConfig = Field(default_factory=ModelsConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    onpolicy: OnPolicyConfig = Field(default_factory=OnPolicyConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="after")
    def _sections_agree(self) -> DistillConfig:
        require(not (self.train.teacher_cache and self.onpolicy.lmbda > 0), "onpolicy.lmbda",
                Message("0 when train.teacher_cache is set (a cache holds the teacher's logits on the data, not on "
                        "samples)"), self.onpolicy.lmbda)
        require(self.onpolicy.teacher_prompts == 0 or (self.onpolicy.lmbda > 0 and not self.data.tasks),
                "onpolicy.teacher_prompts",
                Message("0 unless on-policy steps run on one dataset (onpolicy.lmbda > 0 and no data.tasks): only "
                        "on-policy steps use prompts without answers"), self.onpolicy.teacher_prompts)
        for task in self.data.tasks:
            ce, kd = task.weights(self.loss)
            require(ce + kd + self.loss.hidden_weight + self.loss.attn_weight > 0,
                    f"data.tasks[{task.name}].kd_weight",
                    Message("> 0 where ce_weight is 0 (the task would teach nothing)"), kd)
        require(not (self.data.tasks and self.train.teacher_cache), "train.teacher_cache",
                Message("empty with data.tasks (a cache holds the teacher's logits on data.dataset only)"),
                self.train.teacher_cache)
        uses_layers = self.loss.hidden_weight > 0 or self.loss.attn_weight > 0
        require(not (uses_layers and self.mapping.strategy == "custom" and not self.mapping.pairs), "mapping.pairs",
                Message("at least one pair when a hidden or attention weight is set"), self.mapping.pairs)
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DistillConfig:
        return cls.build(data)

    @classmethod
    def from_yaml(cls, text: str) -> DistillConfig:
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = Message(" at line {line}, column {column}", line=mark.line + 1, column=mark.column + 1) if mark else ""
            raise ConfigError(Message("config YAML could not be parsed{where}: {problem}", where=where,
                                      problem=getattr(exc, "problem", exc))) from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(Message("config YAML must be a mapping of sections, got {kind}",
                                      kind=type(data).__name__))
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> DistillConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        return cls.from_yaml(path.read_text(encoding="utf-8"))
