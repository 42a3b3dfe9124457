"""Record and replay decoder layers: run a model with hooks up to a layer (the teacher's layer outputs; each student
layer's input and the other arguments the model passed it), then call single layers again on new hidden states.
Healing (`workbench.models.heal`) fits one layer at a time this way, each on the output of the layers fitted before.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.models.derive import decoder_layers


class StopForward(Exception):
    """Raised by a hook once the layer of interest has run: the rest of the forward is not needed."""


def layer_output(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def run_hooked(model: nn.Module, handles: list, batches: list[torch.Tensor]) -> None:
    """Run `model` on each batch (a hook may end a forward early with StopForward), then remove the hooks."""
    try:
        for ids in batches:
            try:
                model(input_ids=ids.to(model.device), use_cache=False)
            except StopForward:
                pass
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def teacher_targets(teacher: nn.Module, teacher_layers: list[int], batches: list[torch.Tensor]) -> dict[int, list]:
    """Outputs (B, T, H) of the given teacher layers for every batch, as float32 on the CPU."""
    layers, wanted, last = decoder_layers(teacher), sorted(set(teacher_layers)), max(teacher_layers)
    store: dict[int, list] = {t: [] for t in wanted}

    def hook_for(index: int):
        def hook(module, args, output):
            store[index].append(layer_output(output).float().cpu())
            if index == last:
                raise StopForward
        return hook

    handles = [layers[t].register_forward_hook(hook_for(t)) for t in wanted]
    run_hooked(teacher, handles, batches)
    return store


@torch.no_grad()
def layer_calls(student: nn.Module, batches: list[torch.Tensor], first: int, last: int) -> tuple[list, list]:
    """One forward per batch up to layer `last`: the hidden input of layer `first` per batch, and per layer
    first..last and batch the other arguments the model passed it (masks, position embeddings), to call it again."""
    layers = decoder_layers(student)
    hidden: list[torch.Tensor] = []
    calls: list[list] = [[] for _ in range(first, last + 1)]

    def pre_hook(index: int):
        def hook(module, args, kwargs):
            hidden_in = args[0] if args else kwargs["hidden_states"]
            if index == first:
                hidden.append(hidden_in)
            calls[index - first].append((bool(args), args[1:], {k: v for k, v in kwargs.items()
                                                                 if k != "hidden_states"}))
            if index == last:
                raise StopForward
        return hook

    handles = [layers[i].register_forward_pre_hook(pre_hook(i), with_kwargs=True) for i in range(first, last + 1)]
    run_hooked(student, handles, batches)
    return hidden, calls


def run_layer(layer: nn.Module, hidden: torch.Tensor, call: tuple) -> torch.Tensor:
    positional, args, kwargs = call
    output = layer(hidden, *args, **kwargs) if positional else layer(hidden_states=hidden, **kwargs)
    return layer_output(output)
