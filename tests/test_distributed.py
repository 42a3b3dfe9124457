"""Two CPU processes (accelerate launch, gloo) with the same global batch give the same loss curve as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_helpers import tiny_config

from workbench.runs.folder import RunFolder, read_metrics

ROOT = Path(__file__).resolve().parent.parent


def _curve(run: RunFolder, kind: str, keys: tuple[str, ...]) -> torch.Tensor:
    return torch.tensor([[row[k] for k in keys] for row in read_metrics(run.metrics_path) if row["kind"] == kind])


def _train(config: Path, runs: Path, name: str, processes: int = 1, timeout: float = 240) -> RunFolder:
    """`workbench train --config CONFIG run.name=NAME` in a subprocess, on one process or through `accelerate launch`
    (on a machine without GPUs, --multi_gpu starts torchrun workers that Accelerator(cpu=True) joins over gloo)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command = [*launcher, "-m", "workbench", "train", "--config", str(config), f"run.name={name}"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return RunFolder(runs / name)


def test_two_processes_match_one(tiny_teacher, tiny_student, tiny_text, tmp_path):
    runs = tmp_path / "runs"
    base = dict(steps=4, eval_every=2, eval_batches=2, save_every=100)
    one = tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"hidden_weight": 0.5},
                      train={**base, "batch_size": 4}, run={"runs_dir": str(runs)})
    two = tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"hidden_weight": 0.5},
                      train={**base, "batch_size": 2}, run={"runs_dir": str(runs)})
    one.save(tmp_path / "one.yaml")
    two.save(tmp_path / "two.yaml")
    run_one, run_two = _train(tmp_path / "one.yaml", runs, "one"), _train(tmp_path / "two.yaml", runs, "two", 2)
    assert run_two.read_status()["state"] == "finished"
    keys = ("total", "ce", "kd", "hidden")
    curve_one, curve_two = _curve(run_one, "train", keys), _curve(run_two, "train", keys)
    assert curve_one.shape == (4, 4)
    assert torch.allclose(curve_one, curve_two, rtol=1e-4, atol=1e-5), (curve_one, curve_two)
    eval_keys = ("eval_loss", "eval_kl", "eval_top1")
    assert torch.allclose(_curve(run_one, "eval", eval_keys), _curve(run_two, "eval", eval_keys), rtol=1e-4, atol=1e-5)


def test_two_processes_each_sample_their_share_on_policy(tiny_teacher, tiny_student, tiny_pairs, tmp_path):
    runs = tmp_path / "runs"
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_pairs,
                      data={"dataset": str(tiny_pairs), "seq_len": 32, "max_sequences": None, "holdout_prompts": 6},
                      onpolicy={"lmbda": 1.0, "max_new_tokens": 5},
                      train={"steps": 2, "eval_every": 2, "save_every": 1, "batch_size": 2},
                      run={"runs_dir": str(runs)})
    cfg.save(tmp_path / "onpolicy.yaml")
    run = _train(tmp_path / "onpolicy.yaml", runs, "two", 2)
    rows = read_metrics(run.metrics_path)
    assert run.read_status()["state"] == "finished"
    assert [r["onpolicy"] for r in rows if r["kind"] == "train"] == [1, 1]
    assert [r["gen_prompts"] for r in rows if r["kind"] == "gen_eval"] == [6]
    from workbench.engine.checkpoint import load_checkpoint

    samplers = load_checkpoint(run.checkpoints()[-1])["sampler"]
    assert len(samplers) == 2 and not torch.equal(samplers[0], samplers[1])  # each process draws its own samples


def test_two_processes_mix_tasks_as_one_does(tiny_teacher, tiny_student, tiny_text, tiny_pairs, tmp_path):
    """A multi-task run (plain text, qa, classify, each with its own loss weights) on two processes draws the same
    rows per step as one process with the same global batch: the same loss curve and the same per-task scores."""
    from test_tasks import _classify_file, _task_config

    runs = tmp_path / "runs"
    base = dict(steps=4, eval_every=4, eval_batches=2, save_every=100, gen_eval=False)
    classify = _classify_file(tmp_path)
    for name, batch in (("one", 4), ("two", 2)):
        cfg = _task_config(tiny_teacher, tiny_student, tiny_text, tiny_pairs, classify,
                           train={**base, "batch_size": batch}, run={"runs_dir": str(runs)})
        cfg.save(tmp_path / f"{name}.yaml")
    run_one = _train(tmp_path / "one.yaml", runs, "one", timeout=600)
    run_two = _train(tmp_path / "two.yaml", runs, "two", 2, timeout=600)
    keys = ("total", "ce", "kd")
    curve_one, curve_two = _curve(run_one, "train", keys), _curve(run_two, "train", keys)
    assert curve_one.shape == (4, 3)
    assert torch.allclose(curve_one, curve_two, rtol=1e-4, atol=1e-5), (curve_one, curve_two)
    scores = [[r["tasks"] for r in read_metrics(run.metrics_path) if r["kind"] == "eval"][-1] for run in (run_one, run_two)]
    numbers = [{(task, key): value for task, row in score.items() for key, value in row.items()
                if isinstance(value, float)} for score in scores]
    assert set(scores[0]) == {"text", "pairs", "cls"} and numbers[0] == pytest.approx(numbers[1], rel=1e-4)
