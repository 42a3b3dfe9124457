"""A finished run folder built from tiny models, for the tests of evaluation, export and the tabs that look at a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tiny import tiny_model_dir


def make_finished_run(root: Path, teacher: Path, student: Path, text: Path, *, name: str = "run-tiny",
                      distilled_seed: int = 9, checkpoint_steps: tuple[int, ...] = (5,)) -> Path:
    """runs/<name>/ with config.yaml, a finished status, student/ (a tiny llama of another seed standing in for the
    distilled student) and complete trainer checkpoints (state.pt) holding the undistilled weights."""
    from workbench.config import DistillConfig
    from workbench.models.loading import load_model

    run = Path(root) / name
    run.mkdir(parents=True, exist_ok=True)
    cfg = DistillConfig.from_dict({
        "models": {"teacher": str(teacher), "student": str(student)},
        "data": {"dataset": str(text), "seq_len": 32},
        "train": {"steps": 10, "warmup_steps": 0},
    })
    cfg.save(run / "config.yaml")
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 10, "total_steps": 10}))
    distilled = tiny_model_dir(Path(root) / ".models", "llama", layers=2, hidden=32, heads=4, kv_heads=2,
                               seed=distilled_seed)
    if not (run / "student").exists():
        shutil.copytree(distilled, run / "student")
    for step in checkpoint_steps:
        if not (run / "checkpoints" / f"step-{step}").exists():
            save_student_checkpoint(run, step, load_model(str(student)), lora=False)
    return run


def save_student_checkpoint(run: Path, step: int, student, *, lora: bool) -> Path:
    """A checkpoint as the trainer writes it (state.pt via workbench.engine.checkpoint); only the weights matter here."""
    from workbench.engine.checkpoint import save_checkpoint, trained_state

    return save_checkpoint(run / "checkpoints", step, {"model": trained_state(student, only_trainable=lora),
                                                       "step": step})
