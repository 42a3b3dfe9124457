"""LoRA student: per-architecture default targets, only adapter + projector weights train, adapter and merged
student saved."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import changed, snapshot, tiny_config
from safetensors.torch import load_file
from tiny import tiny_model_dir

import workbench.engine.trainer
from workbench.config import LoraConfig
from workbench.engine.mapping import Projectors
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.models.loading import load_model
from workbench.models.lora import default_target_modules, wrap_lora

EXPECTED = {
    "llama": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "qwen2": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "gpt2": {"c_attn", "c_proj", "c_fc"},
    "gpt_neox": {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"},
}


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_default_targets_per_architecture(tmp_path, arch):
    model = load_model(str(tiny_model_dir(tmp_path, arch)))
    assert set(default_target_modules(model)) == EXPECTED[arch]
    wrapped = wrap_lora(model, LoraConfig(r=4))
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_unknown_target_module_names_field(tiny_student):
    with pytest.raises(UserError, match="lora.target_modules: nope_proj"):
        wrap_lora(load_model(str(tiny_student)), LoraConfig(target_modules=["nope_proj"]))


def test_lora_trains_only_adapter_and_projectors(tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch):
    wrapped, projectors = [], []
    original_wrap = workbench.engine.trainer.wrap_lora

    def recording_wrap(model, cfg):
        peft_model = original_wrap(model, cfg)
        wrapped.append((peft_model, snapshot(peft_model)))
        return peft_model

    class RecordingProjectors(Projectors):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            projectors.append((self, snapshot(self)))

    final = {}
    original_save = workbench.engine.trainer.save_outputs

    def recording_save(cfg, setup, run):
        final.update(snapshot(wrapped[0][0]))  # before merge_and_unload folds the adapter into the base weights
        return original_save(cfg, setup, run)

    monkeypatch.setattr(workbench.engine.trainer, "save_outputs", recording_save)
    monkeypatch.setattr(workbench.engine.trainer, "wrap_lora", recording_wrap)
    monkeypatch.setattr(workbench.engine.trainer, "Projectors", RecordingProjectors)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, lora={"enabled": True, "r": 4, "dropout": 0.0},
                      loss={"hidden_weight": 1.0}, train={"steps": 3})
    train(cfg, tmp_path / "run")
    (_, before), (proj, proj_before) = wrapped[0], projectors[0]
    moved = changed(before, final)
    assert moved and all("lora_" in name for name in moved)
    assert any("lora_B" in name for name in moved)
    assert changed(proj_before, snapshot(proj)) == set(proj_before)
    run = tmp_path / "run"
    assert (run / "adapter" / "adapter_config.json").exists() and (run / "adapter" / "adapter_model.safetensors").exists()
    merged = load_file(str(run / "student" / "model.safetensors"))
    base = load_file(str(tiny_student / "model.safetensors"))
    assert not any("lora" in name for name in merged)
    assert set(merged) == set(base)
    differs = [n for n in base if not torch.equal(base[n], merged[n])]
    assert differs and all("proj" in n for n in differs)


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_app_offers_the_library_defaults(tmp_path, arch):
    from workbench.app.setup_logic import lora_targets

    folder = tiny_model_dir(tmp_path, arch)
    names, defaults = lora_targets(str(folder))
    assert defaults == default_target_modules(load_model(str(folder)))
    assert set(defaults) <= set(names) and "lm_head" not in names
