"""Width pruning: rank MLP channels, attention heads and hidden channels by activation importance, then cut them.

The estimator is Minitron's activation-based importance (Muralidharan et al. 2024, arXiv 2407.14679, §2.2),
computed with forward passes only on the fixed calibration text of `workbench.models.derive`:

    MLP channel j of layer l   the magnitude |a_j| of the input of the MLP's down projection (for a gated MLP,
                               act(gate) · up), which is where channel j enters the residual stream
    query head h of layer l    the L2 norm over head_dim of the head's attention output, before the output projection
    hidden channel c           |n_c| summed over every RMSNorm output that reads the residual stream (each layer's
                               two norms and the final norm): the channels the model's sublayers actually read

Each is averaged over the tokens of a sequence, then aggregated over sequences by the L2 norm (the (batch: L2,
sequence: mean) aggregation Minitron found best). Under grouped-query attention heads go by whole key/value groups:
a group's score is the sum of its query heads' scores, and `heads=` must be a multiple of the group size, so the
pruned config keeps `num_attention_heads / num_key_value_heads` unchanged.

Cutting hidden channels makes every RMSNorm average over fewer channels, which changes its scale: each norm's
weight is multiplied by rms(kept channels) / rms(all channels) of its input, measured on the same calibration pass,
so that the normalised values of the kept channels stay close to the teacher's. Keeping every channel is the
identity (equal logits). The result is a plain model of its family: `save_pretrained` writes a config (with
`intermediate_size`, `num_attention_heads`, `num_key_value_heads`, `hidden_size` and an explicit `head_dim`) that
`from_pretrained` loads.

Families: Llama, Qwen2, Qwen3 and Mistral (one `self_attn` with q/k/v/o projections and a gated `mlp`); others are
refused with their architecture named.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from workbench.errors import Message, UserError

WIDTH_KEYS = ("mlp", "heads", "hidden")
WIDTH_FAMILIES = ("llama", "qwen2", "qwen3", "mistral")


@dataclass(frozen=True)
class WidthTarget:
    """The widths a spec asks for (None: keep that axis whole)."""

    mlp: int | None = None
    heads: int | None = None
    hidden: int | None = None

    @classmethod
    def from_params(cls, params: dict[str, str]) -> WidthTarget:
        return cls(**{key: int(params[key]) for key in WIDTH_KEYS if key in params})

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.mlp, self.heads, self.hidden))


def check_family(config) -> None:
    """Refuse, in one line naming the architecture, a model whose width the workbench cannot prune."""
    if config.model_type not in WIDTH_FAMILIES:
        arch = (getattr(config, "architectures", None) or [config.model_type])[0]
        raise UserError(Message("width pruning (mlp=, heads=, hidden=) supports the {families} families; {arch} "
                                "({model_type}) is not one of them: prune its depth only (layers=)",
                                families=", ".join(WIDTH_FAMILIES), arch=arch, model_type=config.model_type))


def base_widths(config) -> dict[str, int]:
    heads = config.num_attention_heads
    return {
        "mlp": config.intermediate_size,
        "heads": heads,
        "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
        "hidden": config.hidden_size,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads,
    }


def check_target(config, target: WidthTarget, spec_text: str) -> None:
    """The asked widths fit the base: at most the base's, and heads in whole key/value groups."""
    check_family(config)
    base = base_widths(config)
    for key in WIDTH_KEYS:
        value = getattr(target, key)
        if value is not None and value > base[key]:
            raise UserError(Message("model spec {spec!r}: {key}={value} is more than the base model's {base}",
                                    spec=spec_text, key=key, value=value, base=base[key]))
    group = base["heads"] // base["kv_heads"]
    if target.heads is not None and target.heads % group:
        choices = ", ".join(str(group * k) for k in range(1, base["kv_heads"] + 1))
        raise UserError(Message("model spec {spec!r}: heads={heads} must keep whole key/value groups of {group} "
                                "query heads; choose one of {choices}", spec=spec_text, heads=target.heads,
                                group=group, choices=choices))
    heads, hidden = target.heads or base["heads"], target.hidden or base["hidden"]
    if hidden % heads:  # transformers' config validation asks for it even with an explicit head_dim
        lower, upper = hidden - hidden % heads, hidden - hidden % heads + heads
        raise UserError(Message("model spec {spec!r}: hidden={hidden} must be a multiple of the {heads} attention "
                                "heads (for example {lower} or {upper})", spec=spec_text, hidden=hidden, heads=heads,
                                lower=lower, upper=min(upper, base["hidden"])))


def pruned_config(config, target: WidthTarget):
    """`config` (already depth-pruned or not) with the widths of `target` written in (in place; returned)."""
    if not target:
        return config
    base = base_widths(config)
    config.head_dim = base["head_dim"]  # explicit: hidden_size / heads no longer gives it
    if target.mlp is not None:
        config.intermediate_size = target.mlp
    if target.heads is not None:
        config.num_attention_heads = target.heads
        config.num_key_value_heads = target.heads // (base["heads"] // base["kv_heads"])
    if target.hidden is not None:
        config.hidden_size = target.hidden
    return config


def _decoder(model: nn.Module) -> nn.Module:
    return model.get_decoder() if hasattr(model, "get_decoder") else model.model


def _layers(model: nn.Module) -> nn.ModuleList:
    return _decoder(model).layers


def _mean_over_tokens(values: torch.Tensor) -> torch.Tensor:
    """(B, T, ...) → (B, ...), float64."""
    return values.double().mean(dim=1)


@torch.no_grad()
def width_importance(model: nn.Module, batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Activation importance of every MLP channel, query head and hidden channel of `model` (see the module doc).

    Returns float64 tensors: `mlp` (L, I), `heads` (L, A), `hidden` (L + 1, H) (row l: layer l's two norms; the last
    row: the final norm) and `norm_ms` (2L + 1, H), the mean square of each norm's input per channel (for the norm
    rescaling). `batches` are LongTensors [B, T] without padding.
    """
    check_family(model.config)
    layers = _layers(model)
    widths = base_widths(model.config)
    n_layers = len(layers)
    sums = {
        "mlp": torch.zeros(n_layers, widths["mlp"], dtype=torch.float64),
        "heads": torch.zeros(n_layers, widths["heads"], dtype=torch.float64),
        "hidden": torch.zeros(n_layers + 1, widths["hidden"], dtype=torch.float64),
        "norm_ms": torch.zeros(2 * n_layers + 1, widths["hidden"], dtype=torch.float64),
    }
    tokens = [0]
    head_dim = widths["head_dim"]

    def add_squared(name: str, row: int, per_sequence: torch.Tensor) -> None:
        sums[name][row] += (per_sequence**2).sum(dim=0)  # L2 over sequences: sum of squares now, sqrt at the end

    def down_hook(index: int):
        def hook(module, args):
            add_squared("mlp", index, _mean_over_tokens(args[0].abs()))
        return hook

    def o_hook(index: int):
        def hook(module, args):
            attn = args[0]  # (B, T, A * d)
            per_head = attn.reshape(*attn.shape[:-1], -1, head_dim).double().norm(dim=-1)  # (B, T, A)
            add_squared("heads", index, per_head.mean(dim=1))
        return hook

    def norm_hook(row: int, ms_row: int):
        def hook(module, args, output):
            add_squared("hidden", row, _mean_over_tokens(output.abs()))
            sums["norm_ms"][ms_row] += args[0].double().pow(2).sum(dim=(0, 1))
        return hook

    handles = []
    for index, layer in enumerate(layers):
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(down_hook(index)))
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(o_hook(index)))
        handles.append(layer.input_layernorm.register_forward_hook(norm_hook(index, 2 * index)))
        handles.append(layer.post_attention_layernorm.register_forward_hook(norm_hook(index, 2 * index + 1)))
    handles.append(_final_norm(model).register_forward_hook(norm_hook(n_layers, 2 * n_layers)))
    try:
        for input_ids in batches:
            model(input_ids=input_ids.to(model.device), use_cache=False)
            tokens[0] += input_ids.numel()
    finally:
        for handle in handles:
            handle.remove()
    return {
        "mlp": sums["mlp"].sqrt(),
        "heads": sums["heads"].sqrt(),
        "hidden": sums["hidden"].sqrt(),
        "norm_ms": sums["norm_ms"] / max(tokens[0], 1),
    }


def _final_norm(model: nn.Module) -> nn.Module:
    return _decoder(model).norm


def _top(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` highest scores, in ascending index order (ties: the lower index)."""
    order = sorted(range(scores.numel()), key=lambda i: (-float(scores[i]), i))
    return torch.tensor(sorted(order[:count]), dtype=torch.long)


@dataclass
class WidthPlan:
    """What survives in each kept layer: MLP channels, key/value groups, and the hidden channels of the whole model."""

    mlp: list[torch.Tensor]
    groups: list[torch.Tensor]
    hidden: torch.Tensor
    norm_scale: list[torch.Tensor]  # one per norm (2 per layer, then the final norm): the scale to multiply it by

    def summary(self) -> dict[str, int]:
        return {"mlp": len(self.mlp[0]), "kv_groups": len(self.groups[0]), "hidden": len(self.hidden)}


def plan_width(scores: dict[str, torch.Tensor], config, kept_layers: list[int], target: WidthTarget) -> WidthPlan:
    """Choose the channels to keep in each of `kept_layers` (indices into the scored base model)."""
    base = base_widths(config)
    group = base["heads"] // base["kv_heads"]
    mlp_count = target.mlp or base["mlp"]
    group_count = (target.heads or base["heads"]) // group
    hidden_count = target.hidden or base["hidden"]
    rows = [*kept_layers, scores["hidden"].shape[0] - 1]  # the kept layers' norms and the final norm
    hidden = _top(scores["hidden"][rows].pow(2).sum(dim=0).sqrt(), hidden_count)
    norm_rows = [r for layer in kept_layers for r in (2 * layer, 2 * layer + 1)] + [scores["norm_ms"].shape[0] - 1]
    norm_scale = []
    for row in norm_rows:
        ms = scores["norm_ms"][row]
        norm_scale.append((ms[hidden].mean() / ms.mean()).sqrt().clamp(min=1e-6) if hidden_count < base["hidden"]
                          else torch.tensor(1.0, dtype=torch.float64))
    return WidthPlan(
        mlp=[_top(scores["mlp"][layer], mlp_count) for layer in kept_layers],
        groups=[_top(scores["heads"][layer].reshape(-1, group).sum(dim=1), group_count) for layer in kept_layers],
        hidden=hidden,
        norm_scale=norm_scale,
    )


def _slice_linear(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    """Keep `rows` (output features) and `cols` (input features) of a Linear, in place."""
    weight = linear.weight.data
    bias = linear.bias.data if linear.bias is not None else None
    if rows is not None:
        weight = weight[rows]
        bias = bias[rows] if bias is not None else None
    if cols is not None:
        weight = weight[:, cols]
    linear.weight = nn.Parameter(weight.contiguous().clone(), requires_grad=linear.weight.requires_grad)
    if bias is not None:
        linear.bias = nn.Parameter(bias.contiguous().clone(), requires_grad=linear.bias.requires_grad)
    linear.out_features, linear.in_features = linear.weight.shape


def _slice_norm(norm: nn.Module, channels: torch.Tensor, scale: torch.Tensor) -> None:
    weight = norm.weight.data[channels] * scale.to(norm.weight.dtype)
    norm.weight = nn.Parameter(weight.contiguous().clone(), requires_grad=norm.weight.requires_grad)


def _head_rows(groups: torch.Tensor, per_group: int, head_dim: int) -> torch.Tensor:
    """Row indices of a projection's output for the heads of `groups` (each group `per_group` heads wide)."""
    heads = (groups[:, None] * per_group + torch.arange(per_group)[None, :]).reshape(-1)
    return (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


@torch.no_grad()
def prune_width(model: nn.Module, plan: WidthPlan, target: WidthTarget) -> nn.Module:
    """Cut `model`'s width to `plan` (in place) and write the new widths into its config."""
    check_family(model.config)
    base = base_widths(model.config)
    group, head_dim = base["heads"] // base["kv_heads"], base["head_dim"]
    hidden = plan.hidden if target.hidden is not None else None
    norms = iter(plan.norm_scale)
    for index, layer in enumerate(_layers(model)):
        attn, mlp = layer.self_attn, layer.mlp
        q_rows = _head_rows(plan.groups[index], group, head_dim) if target.heads is not None else None
        kv_rows = _head_rows(plan.groups[index], 1, head_dim) if target.heads is not None else None
        for projection, rows in ((attn.q_proj, q_rows), (attn.k_proj, kv_rows), (attn.v_proj, kv_rows)):
            _slice_linear(projection, rows=rows, cols=hidden)
        _slice_linear(attn.o_proj, rows=hidden, cols=q_rows)
        channels = plan.mlp[index] if target.mlp is not None else None
        _slice_linear(mlp.gate_proj, rows=channels, cols=hidden)
        _slice_linear(mlp.up_proj, rows=channels, cols=hidden)
        _slice_linear(mlp.down_proj, rows=hidden, cols=channels)
        for norm in (layer.input_layernorm, layer.post_attention_layernorm):
            scale = next(norms)
            if hidden is not None:
                _slice_norm(norm, hidden, scale)
    if hidden is not None:
        _slice_norm(_final_norm(model), hidden, next(norms))
        embed = model.get_input_embeddings()
        embed.weight = nn.Parameter(embed.weight.data[:, hidden].contiguous().clone(),
                                    requires_grad=embed.weight.requires_grad)
        embed.embedding_dim = len(hidden)
        head = model.get_output_embeddings()
        if getattr(model.config, "tie_word_embeddings", False):
            head.weight = embed.weight
            head.in_features = len(hidden)
        else:
            _slice_linear(head, cols=hidden)
    pruned_config(model.config, target)
    return model
