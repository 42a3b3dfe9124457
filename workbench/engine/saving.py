"""What a training session writes to its run folder and reads back: checkpoints (with every process's on-policy
sampling RNG), the resume from the latest one, and the final student (merged when LoRA) with its projectors.
`workbench.engine.trainer` calls these; the checkpoint file format is `workbench.engine.checkpoint`.
"""

from __future__ import annotations

from typing import Any

import torch

from workbench.config import DistillConfig
from workbench.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, trained_state
from workbench.engine.step import TrainingState
from workbench.errors import UserError
from workbench.models.lora import is_lora
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import Sink


def _sampler_states(state: TrainingState) -> list[torch.Tensor]:
    """Every process's on-policy sampling RNG state, in process order (a collective call)."""
    from accelerate.utils import gather_object

    rng = state.sampler.get_state()
    return gather_object([rng]) if state.accelerator.num_processes > 1 else [rng]


def _checkpoint_payload(cfg: DistillConfig, state: TrainingState, step: int, tokens: int, elapsed: float,
                        samplers: list[torch.Tensor]) -> dict[str, Any]:
    inner = state.accelerator.unwrap_model(state.module)
    return {
        "model": trained_state(inner.student, only_trainable=cfg.lora.enabled),
        "projectors": trained_state(inner.projectors, only_trainable=False),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": rng_state(),
        "sampler": samplers,
        "step": step,
        "tokens": tokens,
        "elapsed": elapsed,
    }


def readable_checkpoint(run: RunFolder, log=print) -> tuple[dict[str, Any], str]:
    """(state, name) of the newest complete checkpoint whose file reads; a damaged one (truncated, overwritten) is
    named through `log` and the one before it tried. UserError when none is left."""
    found = run.checkpoints()
    if not found:
        raise UserError(f"--resume: {run.path} has no complete checkpoint to resume from")
    damaged = []
    for path in reversed(found):
        try:
            state = load_checkpoint(path)
        except Exception as exc:  # torch.load raises RuntimeError, EOFError, UnpicklingError... on a damaged file
            damaged.append(path.name)
            log(f"checkpoint {path.name} is damaged ({(str(exc).splitlines() or [type(exc).__name__])[0]}); "
                "trying the one before it")
            continue
        if damaged:
            log(f"resuming from {path.name}, the newest checkpoint that reads (damaged: {', '.join(damaged)})")
        return state, path.name
    raise UserError(f"--resume: every checkpoint of {run.path} is damaged ({', '.join(damaged)}); "
                    "start the run again without --resume")


def restore_checkpoint(cfg: DistillConfig, state: TrainingState, run: RunFolder, log=print) -> tuple[int, int, float]:
    """Load the newest complete checkpoint that reads; returns (step, tokens, elapsed). Metrics past it are
    dropped."""
    saved, _ = readable_checkpoint(run, log)
    inner = state.accelerator.unwrap_model(state.module)
    inner.student.load_state_dict(saved["model"], strict=not cfg.lora.enabled)
    inner.projectors.load_state_dict(saved["projectors"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(saved["rng"])
    samplers = saved.get("sampler") or []
    if len(samplers) == state.accelerator.num_processes:
        state.sampler.set_state(samplers[state.accelerator.process_index])
    step = int(saved["step"])
    if state.accelerator.is_main_process and run.metrics_path.exists():
        import json

        kept = [row for row in read_metrics(run.metrics_path) if int(row.get("step", 0)) <= step]
        run.metrics_path.write_text("".join(json.dumps(row) + "\n" for row in kept))
    return step, int(saved["tokens"]), float(saved["elapsed"])


def save_outputs(cfg: DistillConfig, state: TrainingState, run: RunFolder) -> None:
    """student/ (merged when LoRA) with the tokenizer, adapter/ for LoRA, projectors.safetensors at run level."""
    from safetensors.torch import save_file

    inner = state.accelerator.unwrap_model(state.module)
    inner.capture.close()  # no hooks on the saved (or merged) student
    student = inner.student
    if is_lora(student):
        student.save_pretrained(run.path / "adapter")
        student = student.merge_and_unload()
    student.save_pretrained(run.student_dir)
    state.tokenizer.save_pretrained(run.student_dir)
    save_file({k: v.contiguous() for k, v in trained_state(inner.projectors, False).items()},
              str(run.path / "projectors.safetensors"))


def save_session(cfg: DistillConfig, state: TrainingState, run: RunFolder, sink: Sink, step: int, tokens: int,
                 elapsed: float) -> None:
    samplers = _sampler_states(state)
    if state.accelerator.is_main_process:
        path = save_checkpoint(run.checkpoints_dir, step, _checkpoint_payload(cfg, state, step, tokens, elapsed, samplers))
        run.update_status(step=step)
        sink.log(f"checkpoint saved: {path}")
    state.accelerator.wait_for_everyone()
