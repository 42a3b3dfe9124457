"""On-policy distillation on tiny models: lmbda 0 is the off-policy path, only completion tokens are scored, no
gradient reaches the teacher or flows through sampling, ragged completions stay finite, resume reproduces."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.nn.functional as F
from engine_helpers import LoadRecorder, snapshot, tiny_config
from safetensors.torch import load_file
from test_resume import StopAt

import workbench.engine.onpolicy
import workbench.engine.step
from workbench.engine.onpolicy import completion_batch, cut_at_eos, is_onpolicy_step, left_pad, sample_completions
from workbench.engine.step import MicroBatch, micro_step, sampled_batches
from workbench.engine.trainer import _make_accelerator, setup, train
from workbench.errors import UserError
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import ListSink


def onpolicy_config(teacher, student, pairs, **sections):
    base = {"data": {"dataset": str(pairs), "seq_len": 32, "max_sequences": None, "holdout_prompts": 6},
            "onpolicy": {"lmbda": 1.0, "max_new_tokens": 6, "temperature": 1.0},
            "loss": {"divergence": "reverse_kl", "temperature": 1.0, "ce_weight": 0.0, "kd_weight": 1.0}}
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return tiny_config(teacher, student, pairs, **base)


def test_lmbda_zero_is_the_off_policy_path(tiny_teacher, tiny_student, tiny_pairs, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("lmbda=0 must not sample")

    plain = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, onpolicy={"lmbda": 0.0})
    tuned = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs,
                            onpolicy={"lmbda": 0.0, "temperature": 0.3, "top_p": 0.5, "max_new_tokens": 3})
    train(plain, tmp_path / "a", ListSink())
    monkeypatch.setattr(workbench.engine.step, "sample_completions", refuse)
    sink = ListSink()
    train(tuned, tmp_path / "b", sink)
    assert all(row["onpolicy"] == 0 for row in sink.of_kind("train"))
    first, second = read_metrics(tmp_path / "a" / "metrics.jsonl"), sink.rows
    curve = lambda rows: [(r["total"], r["ce"], r["kd"]) for r in rows if r["kind"] == "train"]  # noqa: E731
    assert curve(first) == curve(second)
    a = load_file(str(tmp_path / "a" / "student" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "student" / "model.safetensors"))
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_mixing_share_is_seeded_per_step():
    draws = [is_onpolicy_step(0.3, 0, step) for step in range(2000)]
    assert abs(sum(draws) / len(draws) - 0.3) < 0.04
    assert draws == [is_onpolicy_step(0.3, 0, step) for step in range(2000)]
    assert not any(is_onpolicy_step(0.0, 0, s) for s in range(50)) and all(is_onpolicy_step(1.0, 0, s) for s in range(50))


def test_completion_batch_scores_completion_tokens_only():
    prompts, completions = [[5, 6, 7], [8]], [[9, 10, 3], [11]]
    batch = completion_batch(prompts, completions, pad=1)
    assert batch.input_ids.tolist() == [[5, 6, 7, 9, 10, 3], [8, 11, 1, 1, 1, 1]]
    assert batch.targets.tolist() == [[-100, -100, 9, 10, 3, -100], [11, -100, -100, -100, -100, -100]]
    assert batch.tokens == 4
    assert cut_at_eos([4, 3, 7, 3], [3]) == [4, 3] and cut_at_eos([4, 5], [3]) == [4, 5]
    ids, mask = left_pad(prompts, pad=1)
    assert ids.tolist() == [[5, 6, 7], [1, 1, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def _setup(cfg):
    accelerator = _make_accelerator(cfg)
    return setup(cfg, accelerator, ListSink())


def _reference_reverse_kl(student, teacher, batch) -> float:
    """Independent float64 reverse KL(q‖p) at T = 1, summed over the completion positions."""
    with torch.no_grad():
        q = F.log_softmax(student(input_ids=batch.input_ids).logits.double(), -1)
        p = F.log_softmax(teacher(input_ids=batch.input_ids).logits.double(), -1)
    where = batch.targets != -100
    return float((q.exp() * (q - p)).sum(-1)[where].sum())


def test_divergence_is_taken_on_completion_tokens_only(tiny_teacher, tiny_student, tiny_pairs):
    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, train={"batch_size": 3})
    s = _setup(cfg)
    (batch,), stats = sampled_batches(cfg, s, step=0)
    assert stats["gen_tokens"] == batch.scored.tokens > 0
    for row, start in enumerate(batch.prompt_lens):  # targets start at the last prompt position
        scored = (batch.scored.targets[row] != -100).nonzero().squeeze(1)
        assert scored.min() == start - 1 and batch.scored.targets[row, scored].tolist() == \
            batch.scored.input_ids[row, start:start + len(scored)].tolist()
    student = s.accelerator.unwrap_model(s.module).student
    expected = _reference_reverse_kl(student.eval(), s.teacher, batch.scored)
    student.train()
    sums = micro_step(cfg, s, batch, scale=1.0)
    assert math.isclose(float(sums["kd"]), expected, rel_tol=1e-4)
    # scoring every position instead would give another value: the prompts are really left out
    everywhere = workbench.engine.onpolicy.TokenBatch(batch.scored.input_ids, torch.zeros_like(batch.scored.targets))
    assert _reference_reverse_kl(student.eval(), s.teacher, everywhere) > expected * 1.5


def test_no_gradient_reaches_teacher_or_flows_through_sampling(tiny_teacher, tiny_student, tiny_pairs, monkeypatch):
    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, loss={"ce_weight": 0.5})
    grad_modes = []
    original = workbench.engine.step.sample_completions

    def recording(model, *args, **kwargs):
        grad_modes.append(torch.is_grad_enabled())
        out = original(model, *args, **kwargs)
        grad_modes.append(torch.is_grad_enabled())
        return out

    monkeypatch.setattr(workbench.engine.step, "sample_completions", recording)
    s = _setup(cfg)
    before = snapshot(s.teacher)
    workbench.engine.step.optimizer_step(cfg, s, 0)
    assert grad_modes and all(mode is True for mode in grad_modes)  # the caller's mode is restored ...
    student = s.accelerator.unwrap_model(s.module).student
    prompts = [e.prompt_ids for e in s.train_examples[:2]]
    with torch.enable_grad():  # ... while sampling itself runs without gradient, so samples are plain ids
        ids = sample_completions(student, prompts, workbench.engine.onpolicy.Sampling(4, 1.0, 1.0),
                                 torch.Generator().manual_seed(0), [3], 1)
    assert all(isinstance(t, int) for row in ids for t in row)
    assert all(p.grad is None and not p.requires_grad for p in s.teacher.parameters())
    assert all(torch.equal(v, snapshot(s.teacher)[k]) for k, v in before.items())


def test_ce_is_taken_on_the_data_answers(tiny_teacher, tiny_student, tiny_pairs):
    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, loss={"ce_weight": 1.0, "kd_weight": 1.0})
    s = _setup(cfg)
    (batch,), _ = sampled_batches(cfg, s, step=0)
    examples = [s.train_examples[i] for i in batch.indices.tolist()]
    assert batch.ce is not None
    for row, example in enumerate(examples):
        scored = batch.ce.targets[row][batch.ce.targets[row] != -100].tolist()
        assert scored == example.answer_ids
    student = s.accelerator.unwrap_model(s.module).student.eval()
    with torch.no_grad():
        logp = F.log_softmax(student(input_ids=batch.ce.input_ids).logits.double(), -1)
    where = batch.ce.targets != -100
    reference = float(-logp[where].gather(-1, batch.ce.targets[where][:, None]).sum())
    student.train()
    sums = micro_step(cfg, s, batch, scale=1.0, ce_scale=1.0)
    assert math.isclose(float(sums["ce"]), reference, rel_tol=1e-4)


def test_ragged_completions_give_finite_losses(tiny_teacher, tiny_student, tiny_pairs):
    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, train={"batch_size": 3},
                          loss={"ce_weight": 0.5, "hidden_weight": 0.5, "divergence": "jsd"})
    s = _setup(cfg)
    prompts = [[5, 6, 7, 8, 9], [10], [11, 12]]
    completions = [[20], [21, 22, 23, 24, 25, 3], [26, 3]]  # EOS right away, late, and in between
    scored = completion_batch(prompts, completions, pad=1)
    ce = completion_batch(prompts, [[30, 31, 3], [32], [33, 34]], pad=1)
    batch = MicroBatch(scored, torch.arange(3), ce, [len(p) for p in prompts])
    sums = micro_step(cfg, s, batch, scale=1 / scored.tokens, ce_scale=1 / ce.tokens)
    assert all(math.isfinite(float(v)) for v in sums.values()) and float(sums["kd"]) > 0
    student = s.accelerator.unwrap_model(s.module).student
    assert all(torch.isfinite(p.grad).all() for p in student.parameters() if p.grad is not None)


def test_heads_score_the_completion_tokens_only_with_the_same_loss_and_gradient(tiny_teacher, tiny_student,
                                                                               tiny_pairs, monkeypatch):
    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, train={"batch_size": 3},
                          loss={"ce_weight": 0.5, "hidden_weight": 0.5, "divergence": "jsd"})
    s = _setup(cfg)
    (batch,), _ = sampled_batches(cfg, s, step=0)
    student = s.accelerator.unwrap_model(s.module).student
    shapes = []
    handles = [m.get_output_embeddings().register_forward_hook(lambda _m, _a, out: shapes.append(tuple(out.shape)))
               for m in (student, s.teacher)]

    def step():
        shapes.clear()
        student.zero_grad(set_to_none=True)
        sums = micro_step(cfg, s, batch, scale=1 / batch.scored.tokens, ce_scale=1 / batch.ce.tokens)
        grads = {name: p.grad.clone() for name, p in student.named_parameters() if p.grad is not None}
        return sums, grads, s.last_sample["rkl"]

    lean = step()
    vocab = shapes[0][-1]
    # student and teacher on the sampled completions, then the student on the data's answers: no other position
    assert shapes == [(1, batch.scored.tokens, vocab)] * 2 + [(1, batch.ce.tokens, vocab)]
    monkeypatch.setattr(workbench.engine.step, "head_positions", lambda *args: None)
    full = step()
    assert shapes[0] == (*batch.scored.input_ids.shape, vocab)  # every position, as before
    for handle in handles:
        handle.remove()
    assert all(math.isclose(float(lean[0][k]), float(full[0][k]), rel_tol=1e-5) for k in ("ce", "kd", "hidden"))
    assert lean[1].keys() == full[1].keys() and lean[1]
    assert all(torch.allclose(lean[1][k], full[1][k], rtol=1e-4, atol=1e-7) for k in lean[1])
    assert lean[2] == pytest.approx(full[2], rel=1e-5, abs=1e-7)


def test_left_padded_batch_samples_like_single_prompts(tiny_student):
    from workbench.models.loading import load_model, load_tokenizer

    model = load_model(str(tiny_student)).eval()
    tokenizer = load_tokenizer(str(tiny_student))
    prompts = [[5, 6, 7, 8, 9, 10], [11], [12, 13, 14]]
    greedy = workbench.engine.onpolicy.Sampling(8, 1e-4, 1.0)  # near-zero temperature: the argmax, whatever the draw
    batched = sample_completions(model, prompts, greedy, torch.Generator().manual_seed(0), [3], tokenizer.pad_token_id)
    single = [sample_completions(model, [p], greedy, torch.Generator().manual_seed(0), [3], tokenizer.pad_token_id)[0]
              for p in prompts]
    assert batched == single and all(len(c) == 8 or c[-1] == 3 for c in batched)


def test_resumed_onpolicy_run_reproduces_the_straight_run(tiny_teacher, tiny_student, tiny_pairs, tmp_path):
    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, onpolicy={"lmbda": 0.5},
                          loss={"ce_weight": 0.5}, train={"steps": 8, "save_every": 100, "eval_every": 4})
    train(cfg, tmp_path / "straight", ListSink())
    stop = threading.Event()
    assert train(cfg, tmp_path / "resumed", StopAt(4, stop), stop=stop)["state"] == "stopped"
    run = RunFolder(tmp_path / "resumed")
    assert train(cfg, run.path, ListSink(), resume=True)["state"] == "finished"
    straight, resumed = read_metrics(tmp_path / "straight" / "metrics.jsonl"), read_metrics(run.metrics_path)
    rows = lambda rs: [(r["step"], r["onpolicy"], r["kd"], r.get("completion_len")) for r in rs  # noqa: E731
                       if r["kind"] == "train"]
    assert rows(straight) == rows(resumed)
    assert {r[1] for r in rows(straight)} == {0, 1}  # both kinds of step happened
    a = load_file(str(tmp_path / "straight" / "student" / "model.safetensors"))
    b = load_file(str(run.student_dir / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_onpolicy_rows_and_generation_eval(tiny_teacher, tiny_student, tiny_pairs, tmp_path, monkeypatch):
    recorder = LoadRecorder(monkeypatch)
    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, train={"steps": 2, "eval_every": 2})
    sink = ListSink()
    assert train(cfg, tmp_path / "run", sink)["state"] == "finished"
    for row in sink.of_kind("train"):
        assert row["onpolicy"] == 1 and row["ce"] is None
        assert row["gen_tokens_per_s"] > 0 and 0 < row["gen_share"] < 1 and 1 <= row["completion_len"] <= 6
    (gen,) = sink.of_kind("gen_eval")
    assert gen["gen_prompts"] == 6 and "6 held-out prompts" in gen["measured_on"]
    assert gen["gen_rkl"] > 0 and gen["gen_teacher_nll"] > 0 and 0 <= gen["gen_rep4"] <= 1
    assert len(gen["samples"]) == 3 and all(isinstance(s["student"], str) and isinstance(s["teacher"], str)
                                            for s in gen["samples"])
    assert any(s["student"] for s in gen["samples"]) and any(s["teacher"] for s in gen["samples"])  # a random tiny
    # model may end an answer at once (a legitimate empty answer), but not every one
    samples = sink.of_kind("sample")
    assert {s["source"] for s in samples} == {"onpolicy", "eval"}
    assert all(len(s["tokens"]) == len(s["rkl"]) > 0 for s in samples)
    assert not any(torch.equal(v, recorder.initial[str(tiny_student)][k])
                   for k, v in snapshot(recorder.loaded[str(tiny_student)]).items() if "norm" not in k)


def test_onpolicy_needs_prompts_and_a_live_teacher(tiny_teacher, tiny_student, tiny_text, tiny_pairs, tmp_path):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, onpolicy={"lmbda": 0.5})
    with pytest.raises(UserError, match="onpolicy.lmbda: on-policy steps need prompts"):
        train(cfg, tmp_path / "plain", ListSink())
    from workbench.config import ConfigError

    with pytest.raises(ConfigError, match="onpolicy.lmbda must be 0 when train.teacher_cache"):
        onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, train={"teacher_cache": str(tmp_path)})


def test_report_card_scores_generation_on_the_runs_heldout_prompts(tiny_teacher, tiny_student, tiny_pairs, tmp_path):
    from workbench.analysis.report_card import EvalSettings, evaluate_run, format_report

    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, train={"steps": 2, "eval_every": 2})
    sink = ListSink()
    train(cfg, tmp_path / "run", sink)
    card = evaluate_run(tmp_path / "run", EvalSettings(gen_tokens=4, device="cpu"))
    teacher, distilled = card["teacher"], card["students"][0]
    assert teacher["gen_rkl"] == pytest.approx(0.0, abs=1e-5) and teacher["generation"]["gen_prompts"] == 6
    assert distilled["gen_rkl"] > 0 and 0 <= distilled["gen_rep4"] <= 1
    assert "6 held-out prompts of" in card["settings"]["generation_on"]
    # the report card's perplexity is taken on the rows the train-time eval scores
    (last_eval,) = [r for r in sink.of_kind("eval") if r["step"] == 2]
    assert distilled["val_ppl"] == pytest.approx(last_eval["eval_ppl"], rel=1e-4)
    assert teacher["val_ppl"] == pytest.approx(last_eval["eval_teacher_ppl"], rel=1e-4)  # the Train tab's reference
    text = format_report(card)
    assert "reverse KL on own answers" in text and "Generation quality: 6 held-out prompts" in text


def test_onpolicy_with_lora_trains_the_adapter_only(tiny_teacher, tiny_student, tiny_pairs, tmp_path):
    from workbench.engine.checkpoint import load_checkpoint

    cfg = onpolicy_config(tiny_teacher, tiny_student, tiny_pairs, lora={"enabled": True, "r": 4},
                          train={"steps": 2, "eval_every": 2, "save_every": 1})
    sink = ListSink()
    assert train(cfg, tmp_path / "run", sink)["state"] == "finished"
    assert all(r["onpolicy"] == 1 and math.isfinite(r["kd"]) for r in sink.of_kind("train"))
    assert (tmp_path / "run" / "adapter").is_dir()
    trained = load_checkpoint(RunFolder(tmp_path / "run").checkpoints()[-1])["model"]
    assert trained and all("lora_" in name for name in trained)  # sampling went through the adapted student
