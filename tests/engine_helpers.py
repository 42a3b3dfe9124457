"""Shared pieces of the engine tests: a tiny distillation config and recorders for what the trainer loads."""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.config import DistillConfig


def tiny_config(teacher: Path, student: Path, text: Path, **sections) -> DistillConfig:
    """A config that trains the tiny pair on the tiny text in about a second; `sections` override per section."""
    data = {
        "models": {"teacher": str(teacher), "student": str(student)},
        "data": {"dataset": str(text), "seq_len": 16, "max_sequences": 64},
        "loss": {"divergence": "forward_kl", "temperature": 2.0, "ce_weight": 0.5, "kd_weight": 1.0},
        "train": {"steps": 4, "batch_size": 2, "lr": 3e-3, "warmup_steps": 1, "eval_every": 2, "eval_batches": 2,
                  "save_every": 2, "seed": 0},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return DistillConfig.from_dict(data)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


class LoadRecorder:
    """Wraps workbench.models.loading.load_model to keep every model the trainer loads, by spec, with its initial weights."""

    def __init__(self, monkeypatch) -> None:
        import workbench.models.loading

        self.loaded: dict[str, torch.nn.Module] = {}
        self.initial: dict[str, dict[str, torch.Tensor]] = {}
        original = workbench.models.loading.load_model

        def recording(spec, **kwargs):
            model = original(spec, **kwargs)
            self.loaded[str(spec)] = model
            self.initial[str(spec)] = snapshot(model)
            return model

        monkeypatch.setattr(workbench.models.loading, "load_model", recording)


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, value in before.items() if not torch.equal(value, after[name])}
