"""A config changed key by key (`section.key=value`), and the presets shipped with the package."""

from __future__ import annotations

import importlib.resources

import yaml

from workbench.config.fields import ConfigError
from workbench.config.schema import DistillConfig
from workbench.config.yaml_form import parse_yaml


def apply_overrides(cfg: DistillConfig, overrides: list[str]) -> DistillConfig:
    """Return a new config with `section.key=value` overrides applied (values parsed as YAML scalars)."""
    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. loss.temperature=2.0)")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if len(parts) != 2 or parts[0] not in data:
            raise ConfigError(
                f"unknown key {dotted.strip()!r}; accepted sections: {', '.join(data)} (as section.key=value)"
            )
        section, key = parts[0], DistillConfig.model_fields[parts[0]].annotation.current_key(parts[1])
        if key not in data[section]:
            raise ConfigError(f"unknown key {dotted.strip()}; accepted in {section}: {', '.join(data[section])}")
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        data[section][key] = value
    return DistillConfig.from_dict(data)


# The presets ship inside the package (workbench/presets/NAME.yaml): a new preset is one more YAML file there.
PRESETS_DIR = importlib.resources.files("workbench") / "presets"


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in PRESETS_DIR.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> DistillConfig:
    preset = PRESETS_DIR / f"{name}.yaml"
    if not preset.is_file():
        raise ConfigError(f"preset {name!r} does not exist; available: {', '.join(preset_names())}")
    return DistillConfig.from_yaml(preset.read_text(encoding="utf-8"))
