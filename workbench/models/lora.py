"""LoRA on the student through peft, with target modules found from the model's own linear layers.

`default_target_modules(model)` lists the distinct names of the linear layers inside the decoder blocks
(q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj for Llama/Qwen2; c_attn, c_proj, c_fc for GPT-2;
query_key_value, dense, dense_h_to_4h, dense_4h_to_h for GPT-NeoX), so a new architecture needs no table entry.
"""

from __future__ import annotations

from torch import nn

from workbench.config import LoraConfig
from workbench.errors import Message, UserError
from workbench.models.loading import decoder_layers


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def linear_names(module: nn.Module) -> list[str]:
    """The distinct short names of the linear layers inside `module` (what LoRA can adapt)."""
    return sorted({name.split(".")[-1] for name, child in module.named_modules() if _is_linear(child)})


def default_target_modules(model: nn.Module) -> list[str]:
    """What an empty lora.target_modules adapts, in the library and the app alike: every linear of the decoder."""
    names = linear_names(decoder_layers(model))
    if not names:
        raise UserError(Message("lora.target_modules: found no linear layers in the decoder of {kind}",
                                kind=type(model).__name__))
    return names


def resolve_targets(model: nn.Module, cfg: LoraConfig) -> list[str]:
    """The module names LoRA adapts: the configured ones, checked against the model's linear layers, or defaults.

    Works on a weightless ("meta") model too, which is how the preflight checks them before a run starts."""
    available = linear_names(model)
    targets = list(cfg.target_modules) or default_target_modules(model)
    missing = sorted(set(targets) - set(available))
    if missing:
        raise UserError(Message("lora.target_modules: {missing} not found in the student; accepted: {available}",
                                missing=", ".join(missing), available=", ".join(available)))
    return targets


def wrap_lora(model: nn.Module, cfg: LoraConfig) -> nn.Module:
    """A peft model whose only trainable weights are the LoRA matrices."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    targets = resolve_targets(model, cfg)
    fan_in_fan_out = any(type(m).__name__ == "Conv1D" for m in model.modules())
    peft_cfg = PeftLoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
        fan_in_fan_out=fan_in_fan_out, bias="none", task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_cfg)


def is_lora(model: nn.Module) -> bool:
    return hasattr(model, "peft_config")
