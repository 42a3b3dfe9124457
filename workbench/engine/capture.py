"""Capture only the mapped layers' hidden states and attention maps with forward hooks.

Asking a model for `output_hidden_states=True` keeps every layer's output alive; a distillation step only needs
the mapped ones. `LayerCapture(model, hidden_layers, attn_layers)` hooks the decoder blocks named in the mapping
("emb" hooks the input embedding) and, for attention, each mapped block's attention module, whose second output
is the attention map [B, H, T, T] under attn_implementation="eager". A decoder block's output is taken before the
model's final norm, the same way for teacher and student.

    with LayerCapture(student, [0, 1], []) as captured:
        logits = student(input_ids).logits
    captured.hidden[1]        # [B, T, D]
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from workbench.engine.mapping import Layer
from workbench.models.loading import decoder_layers

ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")


def attention_module(block: nn.Module) -> nn.Module:
    for name in ATTENTION_NAMES:
        module = getattr(block, name, None)
        if isinstance(module, nn.Module):
            return module
    raise ValueError(f"cannot find the attention module of {type(block).__name__} (looked for {ATTENTION_NAMES})")


def _first(output):
    return output[0] if isinstance(output, (tuple, list)) else output


class LayerCapture:
    """Forward hooks on the chosen layers: after each forward, `hidden[layer]` and `attn[layer]` hold its tensors.

    The hooks are on from construction until `close()` (idempotent); `with LayerCapture(...) as capture:` scopes
    them to a block."""

    def __init__(self, model: nn.Module, hidden_layers: list[Layer], attn_layers: list[int]) -> None:
        self.model, self.hidden_layers, self.attn_layers = model, list(hidden_layers), list(attn_layers)
        self.hidden: dict[Layer, torch.Tensor] = {}
        self.attn: dict[int, torch.Tensor] = {}
        blocks = decoder_layers(model)
        self.handles = [
            (model.get_input_embeddings() if layer == "emb" else blocks[int(layer)]).register_forward_hook(
                self._store_hidden(layer)) for layer in self.hidden_layers
        ] + [attention_module(blocks[layer]).register_forward_hook(self._store_attn(layer)) for layer in attn_layers]

    def _store_hidden(self, layer: Layer):
        def hook(_module, _inputs, output):
            self.hidden[layer] = _first(output)

        return hook

    def _store_attn(self, layer: int):
        def hook(_module, _inputs, output):
            weights = output[1] if isinstance(output, (tuple, list)) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError("attention maps were not returned; load the model with attn_implementation='eager'")
            self.attn[layer] = weights

        return hook

    def __enter__(self) -> LayerCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def clear(self) -> None:
        self.hidden.clear()
        self.attn.clear()


@contextlib.contextmanager
def scored_head(model: nn.Module, keep: torch.Tensor | None):
    """While active, `model`'s output head sees only the positions where `keep` [B, T] is True, so its logits come
    out [1, N, V] (N = keep.sum(), in row-major order) and the others' logits are never built: an on-policy batch
    scores its completions, not its prompts or padding. `keep` None leaves the head alone."""
    if keep is None:
        yield
        return

    def gather(_module, args):
        return (args[0][keep].unsqueeze(0), *args[1:])

    handle = model.get_output_embeddings().register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()
