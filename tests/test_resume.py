"""Resume equivalence: 10 steps straight equals 5 steps, stop, resume, 5 more (losses, data order, weights)."""

from __future__ import annotations

import threading

import pytest
import torch
from engine_helpers import tiny_config
from safetensors.torch import load_file

from workbench.engine.trainer import train
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import ListSink


class StopAt(ListSink):
    def __init__(self, step: int, stop: threading.Event) -> None:
        super().__init__()
        self.step, self.stop = step, stop

    def emit(self, row):
        super().emit(row)
        if row["kind"] == "train" and row["step"] == self.step:
            self.stop.set()


def _curve(rows):
    return torch.tensor([[r[k] for k in ("total", "ce", "kd", "hidden", "lr")] for r in rows if r["kind"] == "train"])


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora-dropout"])
def test_resume_equals_straight_run(tiny_teacher, tiny_student, tiny_text, tmp_path, lora):
    # LoRA dropout draws random numbers every step, so this also checks that the RNG state is restored
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"hidden_weight": 0.5},
                      lora={"enabled": lora, "dropout": 0.3}, train={"steps": 10, "save_every": 100, "eval_every": 4})
    train(cfg, tmp_path / "straight", ListSink())
    stop = threading.Event()
    first = train(cfg, tmp_path / "resumed", StopAt(5, stop), stop=stop)
    assert first["state"] == "stopped"
    run = RunFolder(tmp_path / "resumed")
    assert [p.name for p in run.checkpoints()] == ["step-5"]
    with open(run.metrics_path, "a") as handle:  # a row written after the checkpoint, lost on resume
        handle.write('{"kind": "train", "step": 6, "total": 99.0}\n')
    second = train(cfg, run.path, ListSink(), resume=True)
    assert second["state"] == "finished" and run.read_status()["step"] == 10
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    resumed = read_metrics(run.metrics_path)
    assert [r["step"] for r in resumed if r["kind"] == "train"] == list(range(1, 11))
    assert torch.allclose(_curve(straight), _curve(resumed), rtol=1e-5, atol=1e-6)
    assert [r["step"] for r in resumed if r["kind"] == "eval"] == [4, 8, 10]
    weights_a = load_file(str(tmp_path / "straight" / "student" / "model.safetensors"))
    weights_b = load_file(str(run.student_dir / "model.safetensors"))
    for name, value in weights_a.items():
        assert torch.allclose(value, weights_b[name], atol=1e-6), name


def test_resume_without_checkpoint_is_a_user_error(tiny_teacher, tiny_student, tiny_text, tmp_path):
    from workbench.errors import UserError

    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text)
    with pytest.raises(UserError, match="no complete checkpoint"):
        train(cfg, tmp_path / "empty", ListSink(), resume=True)


def _truncate(checkpoint) -> None:
    state = checkpoint / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 3])


def test_resume_skips_a_damaged_checkpoint_and_says_so(tiny_teacher, tiny_student, tiny_text, tmp_path):
    from workbench.errors import UserError

    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 6, "save_every": 2, "eval_every": 100})
    train(cfg, tmp_path / "straight", ListSink())
    run = RunFolder(tmp_path / "straight")
    assert [p.name for p in run.checkpoints()] == ["step-2", "step-4"]  # none at the last step
    straight = _curve(read_metrics(run.metrics_path))
    _truncate(run.checkpoints()[-1])  # the newest checkpoint's file cut short, as a full disk or a kill leaves it
    sink = ListSink()
    resumed = train(cfg, run.path, sink, resume=True)
    assert resumed["state"] == "finished" and run.read_status()["step"] == 6
    said = "\n".join(sink.messages)
    assert "checkpoint step-4 is damaged" in said and "resuming from step-2" in said
    rows = read_metrics(run.metrics_path)
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, 7))
    assert torch.allclose(_curve(rows), straight, rtol=1e-5, atol=1e-6)  # steps 3 to 6 trained again, the same
    for checkpoint in run.checkpoints():
        _truncate(checkpoint)
    with pytest.raises(UserError, match=r"every checkpoint of .* is damaged \(step-4, step-2\)"):
        train(cfg, run.path, ListSink(), resume=True)
