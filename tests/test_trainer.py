"""Trainer smoke tests on tiny models: loss terms finite, student and projectors learn, teacher untouched,
gradient accumulation normalised by the step's token count, stop with a checkpoint, NaN -> failed."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import torch
from engine_helpers import LoadRecorder, changed, snapshot, tiny_config

import workbench.engine.step
import workbench.engine.teachers
import workbench.engine.trainer
from workbench.engine.mapping import Projectors
from workbench.engine.step import NonFiniteLoss
from workbench.engine.trainer import train
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import ListSink


def test_train_smoke_all_terms(tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch):
    recorder = LoadRecorder(monkeypatch)
    made: list[Projectors] = []

    class RecordingProjectors(Projectors):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)
            self.initial = snapshot(self)

    monkeypatch.setattr(workbench.engine.trainer, "Projectors", RecordingProjectors)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"hidden_weight": 1.0, "attn_weight": 1.0})
    sink = ListSink()
    result = train(cfg, tmp_path / "run", sink)
    assert result["state"] == "finished"
    rows = sink.of_kind("train")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        for term in ("total", "ce", "kd", "hidden", "attn", "lr", "tokens_per_s", "eta", "elapsed", "tokens"):
            assert math.isfinite(row[term]), (term, row)
        assert row["kd"] > 0 and row["hidden"] > 0 and row["attn"] > 0
    assert [r["step"] for r in sink.of_kind("eval")] == [2, 4]
    for key in ("eval_loss", "eval_ppl", "eval_kl", "eval_top1"):
        assert math.isfinite(sink.of_kind("eval")[-1][key])
    student, teacher = recorder.loaded[str(tiny_student)], recorder.loaded[str(tiny_teacher)]
    assert changed(recorder.initial[str(tiny_student)], snapshot(student))
    assert not changed(recorder.initial[str(tiny_teacher)], snapshot(teacher))
    assert teacher.config._attn_implementation == "eager"
    (projectors,) = made
    assert changed(projectors.initial, snapshot(projectors)) == set(projectors.initial)
    run = RunFolder(tmp_path / "run")
    assert run.read_status()["state"] == "finished" and run.read_status()["step"] == 4
    assert [r["step"] for r in read_metrics(run.metrics_path) if r["kind"] == "train"] == [1, 2, 3, 4]
    assert (run.student_dir / "model.safetensors").exists() and (run.student_dir / "tokenizer.json").exists()
    assert (run.path / "projectors.safetensors").exists() and not (run.student_dir / "projectors.safetensors").exists()
    assert [p.name for p in run.checkpoints()] == ["step-2"]


def test_teacher_uses_sdpa_without_attention_term(tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch):
    recorder = LoadRecorder(monkeypatch)
    train(tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 1}), tmp_path / "run")
    assert recorder.loaded[str(tiny_teacher)].config._attn_implementation == "sdpa"


def test_grad_accum_matches_bigger_batch(tiny_teacher, tiny_student, tiny_text, tmp_path):
    curves = []
    for batch, accum in ((4, 1), (1, 4), (2, 2)):
        sink = ListSink()
        cfg = tiny_config(tiny_teacher, tiny_student, tiny_text,
                          train={"batch_size": batch, "grad_accum": accum, "steps": 3, "eval_every": 100})
        train(cfg, tmp_path / f"run-{batch}x{accum}", sink)
        curves.append([(r["total"], r["ce"], r["kd"]) for r in sink.of_kind("train")])
    for other in curves[1:]:
        assert torch.allclose(torch.tensor(curves[0]), torch.tensor(other), rtol=1e-4, atol=1e-5)


def test_stop_event_checkpoints_and_stops(tiny_teacher, tiny_student, tiny_text, tmp_path):
    stop = threading.Event()

    class StopAtTwo(ListSink):
        def emit(self, row):
            super().emit(row)
            if row["kind"] == "train" and row["step"] == 3:
                stop.set()

    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 10, "save_every": 100})
    result = train(cfg, tmp_path / "run", StopAtTwo(), stop=stop)
    run = RunFolder(tmp_path / "run")
    assert result["state"] == "stopped" and run.read_status()["state"] == "stopped"
    assert [p.name for p in run.checkpoints()] == ["step-3"]
    assert not run.student_dir.exists()


def test_nan_loss_fails_and_keeps_last_good_checkpoint(tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch):
    original = workbench.engine.teachers.logit_losses
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        losses = original(*args, **kwargs)
        if calls["n"] >= 4:
            return losses._replace(total=losses.total * float("nan"), kd=losses.kd * float("nan"))
        return losses

    monkeypatch.setattr(workbench.engine.teachers, "logit_losses", poisoned)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 6, "save_every": 2})
    with pytest.raises(NonFiniteLoss, match="not finite at step 4"):
        train(cfg, tmp_path / "run", ListSink())
    run = RunFolder(tmp_path / "run")
    status = run.read_status()
    assert status["state"] == "failed" and status["exit_code"] == 1
    assert "not finite at step 4" in status["error"] and "step-2" in status["error"]
    assert [p.name for p in run.checkpoints()] == ["step-2"]
    assert torch.load(run.checkpoints()[0] / "state.pt", weights_only=True)["step"] == 2


def test_max_minutes_ends_the_run_as_finished(tiny_teacher, tiny_student, tiny_text, tmp_path):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 50, "max_minutes": 1e-6})
    sink = ListSink()
    result = train(cfg, tmp_path / "run", sink)
    run = RunFolder(tmp_path / "run")
    assert result["state"] == "finished" and [r["step"] for r in sink.of_kind("train")] == [1]
    assert [r["step"] for r in sink.of_kind("eval")] == [1] and run.read_status()["total_steps"] == 1
    assert (run.student_dir / "model.safetensors").exists()
    assert any("train.max_minutes reached" in line for line in sink.messages)


def test_warmup_longer_than_the_run_is_clamped_and_logged(tiny_teacher, tiny_student, tiny_text, tmp_path):
    sink = ListSink()
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 2, "warmup_steps": 10, "lr": 3e-3})
    train(cfg, tmp_path / "run", sink)
    assert any("train.warmup_steps 10 is more than train.steps 2" in message for message in sink.messages)
    # the schedule's multiplier after step 1 is 2/3 of the peak, not 2/11 as a 10-step warmup would give
    assert sink.of_kind("train")[0]["lr"] == pytest.approx(3e-3 * 2 / 3)


@pytest.mark.parametrize("skip_first", [False, True])
def test_hidden_matching_with_ln_mse_can_leave_out_the_first_position(
    tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch, skip_first
):
    masks = []
    real = workbench.engine.step.hidden_state_loss

    def recording(student_h, teacher_h, kind, mask=None):
        masks.append((kind, mask.clone()))
        return real(student_h, teacher_h, kind, mask=mask)

    monkeypatch.setattr(workbench.engine.step, "hidden_state_loss", recording)
    loss = {"hidden_weight": 1.0, "hidden_loss": "ln_mse", "hidden_skip_first": skip_first}
    sink = ListSink()
    train(tiny_config(tiny_teacher, tiny_student, tiny_text, loss=loss, train={"steps": 2}), tmp_path / "run", sink)
    assert masks and all(kind == "ln_mse" for kind, _ in masks)
    for _, mask in masks:
        assert bool(mask[:, 0].any()) is not skip_first
        assert mask[:, 1:-1].all() and not mask[:, -1].any()
    assert all(0 < row["hidden"] <= 4 * len(masks) for row in sink.of_kind("train"))


def test_long_phases_are_stages_and_tokens_per_s_counts_training_time_only(
        tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch):
    """Evaluation, saving and the final outputs are stages of their own (the app shows them instead of a frozen
    step), and a slow evaluation does not drag the tokens/s of the next steps down (it used to be a running
    average over the whole session)."""
    import time

    evaluate = workbench.engine.trainer.evaluate
    monkeypatch.setattr(workbench.engine.trainer, "evaluate", lambda cfg, s: (time.sleep(3.0), evaluate(cfg, s))[1])
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 4, "log_every": 1})
    sink = ListSink()
    assert train(cfg, tmp_path / "run", sink)["state"] == "finished"
    stages = [line.removeprefix("stage: ") for line in sink.messages if line.startswith("stage: ")]
    assert stages == ["loading data", "loading student", "loading teacher", "first step", "evaluating",
                      "saving a checkpoint", "final evaluation", "saving the student"], stages
    rows = sink.of_kind("train")
    tokens = [rows[0]["tokens"]] + [b["tokens"] - a["tokens"] for a, b in zip(rows, rows[1:], strict=False)]
    seconds_per_step = [count / row["tokens_per_s"] for count, row in zip(tokens, rows, strict=True)]
    # a running average over the session would put the 3 s evaluation after step 2 into step 3's row: >= 1 s a step
    assert max(seconds_per_step) < 1.0, seconds_per_step
    assert RunFolder(tmp_path / "run").read_status()["stage"] == "saving the student"


def test_a_run_parses_each_model_spec_once(tiny_teacher, tiny_text, tmp_path, monkeypatch):
    """The run's two specs are parsed at its start and the parsed objects handed on: loading, healing and the
    `source` layer mapping read them, rather than parsing the text again at each use."""
    import collections
    import sys

    import workbench.models.derive as derive
    from workbench.engine.trainer import train

    real, parsed = derive.parse_spec, collections.Counter()

    def counting(spec):
        parsed[spec] += 1
        return real(spec)

    for module in [m for name, m in sys.modules.items() if name.startswith("workbench")]:
        if getattr(module, "parse_spec", None) is real:
            monkeypatch.setattr(module, "parse_spec", counting)
    student = f"{tiny_teacher}?prune=keep&layers=0,3"
    cfg = tiny_config(tiny_teacher, student, tiny_text, train={"heal_init": True, "heal_sequences": 2},
                      mapping={"strategy": "source"}, loss={"hidden_weight": 1.0})
    train(cfg, tmp_path / "run")
    assert parsed == {student: 1, str(tiny_teacher): 1}


@pytest.mark.parametrize("kind,module,formula", [
    ("forward_kl", "workbench.engine.closed_form", "_divergence"),  # the closed form: the default path
    ("jsd", "workbench.engine.losses", "divergence_from_log_probs"),  # autograd
])
def test_a_micro_batch_reaches_the_divergence_formula_in_six_calls(kind, module, formula, tiny_teacher, tiny_student,
                                                                     tiny_text, tmp_path, monkeypatch):
    """From `micro_step` to the function where the divergence's formula is written, counting workbench's own calls
    (torch's autograd plumbing between them is not ours): the step calls the teacher, which calls the loss."""
    import importlib
    import inspect

    import workbench
    from workbench.engine.trainer import train

    target = importlib.import_module(module)
    real, depths = getattr(target, formula), []
    root = str(Path(workbench.__file__).parent)

    def measuring(*args, **kwargs):
        frames = inspect.stack(0)[1:]
        step = next((i for i, f in enumerate(frames) if f.function == "micro_step"), None)
        if step is not None:
            depths.append(1 + sum(f.filename.startswith(root) for f in frames[:step]))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, formula, measuring)
    train(tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"divergence": kind}, train={"steps": 1}),
          tmp_path / "run")
    assert depths and max(depths) <= 6, depths  # 11 before the teacher interface
