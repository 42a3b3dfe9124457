"""One schema for a distillation run: the single source of truth for the app, the CLI and the notebooks.

`DistillConfig` (schema.py) nests one pydantic model per concern (sections.py: models, data, loss, mapping;
training.py: LoRA, training, on-policy, run). Every field is declared once with `setting(default, help, bounds=...)`
and a `Literal` type where it has choices (fields.py); pydantic checks them, and every failure is raised as a
`ConfigError` naming the field (`loss.temperature must be > 0 and <= 100, got 0`). YAML round-trips through
`to_yaml` / `from_yaml`; `apply_overrides(cfg, ["loss.temperature=2", ...])` (overrides.py) is what
`workbench train --config x.yaml key=value` uses; reference.py reads the declarations back for the app's controls,
`train --help` and the README's table.
"""

from workbench.config.fields import (
    BUILTIN_TEACHER,
    CROSS_TOKENIZER_METHODS,
    DEFAULT_STUDENT,
    DIVERGENCE_KINDS,
    HIDDEN_KINDS,
    LOSS_ON_CHOICES,
    MAPPING_STRATEGIES,
    REPORTERS,
    TASK_KINDS,
    ConfigError,
    Declared,
)
from workbench.config.overrides import PRESETS_DIR, apply_overrides, load_preset, preset_names
from workbench.config.reference import (
    config_table,
    field_choices,
    field_help,
    field_reference,
    field_slider,
    field_spec,
    task_defaults,
    task_fields,
)
from workbench.config.schema import DistillConfig
from workbench.config.sections import DataConfig, LossConfig, MappingConfig, ModelsConfig, TaskConfig
from workbench.config.training import LoraConfig, OnPolicyConfig, RunConfig, TrainConfig
from workbench.config.yaml_form import parse_yaml

__all__ = [
    "BUILTIN_TEACHER", "CROSS_TOKENIZER_METHODS", "DEFAULT_STUDENT", "DIVERGENCE_KINDS", "HIDDEN_KINDS",
    "LOSS_ON_CHOICES", "MAPPING_STRATEGIES", "PRESETS_DIR", "REPORTERS", "TASK_KINDS", "ConfigError", "DataConfig", "Declared",
    "DistillConfig", "LoraConfig", "LossConfig", "MappingConfig", "ModelsConfig", "OnPolicyConfig", "RunConfig",
    "TaskConfig", "TrainConfig", "apply_overrides", "config_table", "field_choices", "field_help", "field_reference",
    "field_slider", "field_spec", "load_preset", "parse_yaml", "preset_names", "task_defaults", "task_fields",
]
