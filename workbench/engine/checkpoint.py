"""Checkpoints of a run: written to checkpoints/.tmp-step-N, then renamed to step-N with a COMPLETE marker.

A checkpoint is one `state.pt` of plain tensors and Python scalars (loaded with weights_only=True): the trained
weights (all student weights, or only the LoRA adapter's), the projectors, optimizer and scheduler state, the RNG
states and the trainer's counters (step, tokens seen, elapsed seconds). The data position follows from the step.

Not accelerate's `save_state`, for three reasons: the objects it saves through `register_for_checkpointing` (the
trainer's counters, the sampler's generator) are loaded back with `weights_only=False`, that is by unpickling, so a
run folder someone hands you could run code on `--resume`; it writes into the final folder, where a write cut short
leaves a checkpoint that looks whole (here a checkpoint exists only once renamed with its COMPLETE marker, which
resume past a damaged checkpoint relies on); and a LoRA run would save the whole student, not only its adapter.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.runs.folder import checkpoint_name, complete_checkpoints

KEEP_LAST = 2


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np.random.get_state()[0], torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                  *np.random.get_state()[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trained_state(module: torch.nn.Module, only_trainable: bool) -> dict[str, torch.Tensor]:
    names = {n for n, p in module.named_parameters() if p.requires_grad} if only_trainable else None
    state = module.state_dict()
    return {k: v.detach().cpu().clone() for k, v in state.items() if names is None or k in names}


def save_checkpoint(checkpoints_dir: Path, step: int, payload: dict[str, Any], keep_last: int = KEEP_LAST) -> Path:
    """Write atomically (temporary folder, COMPLETE marker, rename) and prune all but the last `keep_last`."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / checkpoint_name(step)
    tmp = checkpoints_dir / f".tmp-{checkpoint_name(step)}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(payload, tmp / "state.pt")
    (tmp / "COMPLETE").write_text(str(step))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in complete_checkpoints(checkpoints_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=True)
