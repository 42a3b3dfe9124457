"""The schema is the one place choices and bounds are declared: validation, the app's controls, CLI help and the
README's table all follow it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from workbench.config import (
    ConfigError,
    Declared,
    DistillConfig,
    apply_overrides,
    config_table,
    field_choices,
    field_reference,
    field_spec,
)
from workbench.config.reference import fields

ROOT = Path(__file__).resolve().parent.parent


def _declared(key: str) -> list[tuple[str, Declared]]:
    return [(f.name, f) for f in fields() if getattr(f, key)]


def test_readme_table_is_the_schema():
    readme = (ROOT / "README.md").read_text()
    assert config_table() in readme, "README config table is stale: paste workbench.config.config_table()"


def test_cli_help_lists_every_key_with_what_it_accepts():
    from workbench.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert field_reference().splitlines()[1] in help_text
    assert "loss.divergence=forward_kl  (one of forward_kl, reverse_kl" in help_text
    assert "data.val_fraction=0.05  (> 0 and < 0.5)" in help_text


@pytest.mark.parametrize(("name", "spec"), _declared("bounds"))
def test_declared_bounds_are_what_validation_accepts(name, spec):
    bounds, integer = spec.bounds, spec.integer
    step = 1 if integer else 1e-6
    for edge, is_open, outside in ((bounds.low, bounds.low_open, -step), (bounds.high, bounds.high_open, step)):
        if edge is None:
            continue
        inside = edge - outside if is_open else edge
        extra = ["loss.ce_weight=1"] if name.startswith("loss.") and name.endswith("_weight") else []
        extra += ["onpolicy.lmbda=1", "data.dataset=builtin:chat"] if name == "onpolicy.teacher_prompts" else []
        assert apply_overrides(DistillConfig(), [*extra, f"{name}={int(inside) if integer else inside}"])
        bad = edge if is_open else edge + outside
        with pytest.raises(ConfigError, match=f"^{name} must be"):
            apply_overrides(DistillConfig(), [f"{name}={int(bad) if integer else bad}"])


@pytest.mark.parametrize(("name", "spec"), _declared("choices"))
def test_declared_choices_are_what_validation_accepts(name, spec):
    for choice in spec.choices:
        extra = ["mapping.pairs=0:0"] if choice == "custom" else []
        assert apply_overrides(DistillConfig(), [*extra, f"{name}={choice}"])
    with pytest.raises(ConfigError, match=f"^{name} must be (one|any) of"):
        apply_overrides(DistillConfig(), [f"{name}=not-a-choice"])


def test_app_offers_exactly_the_schema_choices_and_slider_ranges():
    from workbench.app.context import AppContext
    from workbench.app.tab_setup import build_setup_tab

    with gr.Blocks():
        controls = build_setup_tab(AppContext(pool=None))
    from workbench.forms import FORM_FIELDS

    shown = [name for name, _ in _declared("choices") if name in FORM_FIELDS]
    assert {"loss.divergence", "mapping.strategy", "train.precision", "train.report_to"} <= set(shown)
    for name in shown:
        offered = [choice[1] if isinstance(choice, tuple) else choice for choice in controls[name].choices]
        assert offered == field_choices(name), name
    sliders = [name for name in controls if isinstance(controls[name], gr.Slider)]
    assert set(sliders) == {name for name, spec in _declared("bounds") if spec.bounds.slider}
    for name in sliders:
        low, high, step = field_spec(name).bounds.slider
        assert (controls[name].minimum, controls[name].maximum, controls[name].step) == (low, high, step), name


def test_earlier_field_names_still_load_under_their_names_now():
    """mapping.preset became mapping.strategy and loss.kind became loss.divergence: a run folder's config.yaml and
    an override written before still mean the same, and giving both names at once is refused by the old one."""
    old = DistillConfig.from_yaml("loss:\n  kind: jsd\nmapping:\n  preset: last\n")
    assert (old.loss.divergence, old.mapping.strategy) == ("jsd", "last")
    assert "kind" not in old.to_dict()["loss"] and "preset" not in old.to_dict()["mapping"]
    overridden = apply_overrides(DistillConfig(), ["mapping.preset=custom", "mapping.pairs=[0:1]", "loss.kind=tvd"])
    assert (overridden.mapping.strategy, overridden.loss.divergence) == ("custom", "tvd")
    with pytest.raises(ConfigError, match=r"mapping\.preset must be left out where strategy is given"):
        DistillConfig.from_dict({"mapping": {"preset": "last", "strategy": "uniform"}})
    with pytest.raises(ConfigError, match=r"mapping\.strategy must be one of uniform, last, source, custom"):
        apply_overrides(DistillConfig(), ["mapping.preset=middle"])
