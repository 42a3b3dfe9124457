"""Any teacher, any student: padded vocabularies, a second tokenizer, cross-tokenizer losses against float64
references, bits per byte, and training across tokenizers on tiny models (the real teacher's tokenizer is in
test_cross_tokenizer_real.py, marked slow)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from engine_helpers import LoadRecorder, changed, snapshot, tiny_config
from tiny import tiny_bpe_model_dir, tiny_tokenizer
from transformers import AutoModelForCausalLM, Qwen2Config

from workbench.analysis.compatibility import compatibility_card, format_compatibility
from workbench.cli import main
from workbench.config import DistillConfig
from workbench.engine.cross_tokenizer import (
    RowAlignment,
    align_ends,
    align_row,
    aligned_divergence,
    batch_alignment,
    span_log_probs,
    uld_distance,
)
from workbench.engine.losses import divergence
from workbench.engine.tokenizer_pairing import Pairing, tokenizer_pairing
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.models.bpe import builtin_tokenizer_dir
from workbench.models.loading import load_config, load_tokenizer
from workbench.models.vocab import bits_per_byte, bytes_per_token, shared_vocab, token_bytes
from workbench.runs.sinks import ListSink

BPE_8K = "builtin:bpe-8k"


# ---------- references (float64, loops, written independently of the vectorised code) ----------


def _kl(p: torch.Tensor, q: torch.Tensor) -> float:
    return float(sum(pi * math.log(pi / qi) for pi, qi in zip(p.tolist(), q.tolist(), strict=True) if pi > 0))


def _buckets(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits.double(), -1)
    return torch.cat([probs[ids], (1 - probs[ids].sum()).clamp(min=0).reshape(1)])


def _tokens_of(span_ids: np.ndarray, k: int) -> list[int]:
    return [i for i, span in enumerate(span_ids.tolist()) if span == k]


def reference_aligned(s_logits, t_logits, s_ids, rows, shared, kind="forward_kl") -> float:
    total = 0.0
    for b, row in enumerate(rows):
        for k in range(1, row.spans):
            si, ti = _tokens_of(row.student_span, k), _tokens_of(row.teacher_span, k)
            if not si or not ti or si[0] == 0 or ti[0] == 0:
                continue
            if len(si) == 1 and len(ti) == 1:
                p = _buckets(t_logits[b, ti[0] - 1], shared[1])
                q = _buckets(s_logits[b, si[0] - 1], shared[0])
            else:
                lq = sum(float(torch.log_softmax(s_logits[b, i - 1].double(), -1)[s_ids[b, i]]) for i in si)
                lp = sum(float(torch.log_softmax(t_logits[b, j - 1].double(), -1)[row.teacher_ids[j]]) for j in ti)
                p = torch.tensor([math.exp(lp), 1 - math.exp(lp)], dtype=torch.float64)
                q = torch.tensor([math.exp(lq), 1 - math.exp(lq)], dtype=torch.float64)
            total += _kl(p, q) if kind == "forward_kl" else _kl(q, p)
    return total


def reference_uld(s_logits, t_logits, rows) -> float:
    total = 0.0
    for b, row in enumerate(rows):
        for k in range(1, row.spans):
            si, ti = _tokens_of(row.student_span, k), _tokens_of(row.teacher_span, k)
            if not si or not ti or si[0] == 0 or ti[0] == 0:
                continue
            q = sorted(torch.softmax(s_logits[b, si[0] - 1].double(), -1).tolist(), reverse=True)
            p = sorted(torch.softmax(t_logits[b, ti[0] - 1].double(), -1).tolist(), reverse=True)
            width = max(len(p), len(q))
            p, q = p + [0.0] * (width - len(p)), q + [0.0] * (width - len(q))
            total += sum(abs(a - c) for a, c in zip(p, q, strict=True))
    return total


# ---------- synthetic alignments ----------


def _row(student_ends: list[int], teacher_ends: list[int], teacher_ids: list[int]) -> RowAlignment:
    s_ends, t_ends = np.array(student_ends), np.array(teacher_ends)
    s_span, t_span, spans = align_ends(s_ends, t_ends)
    return RowAlignment(s_span, t_span, teacher_ids, spans, "", s_ends, t_ends)


def _synthetic(seed: int = 0):
    """Two rows of 7 student tokens; teacher rows of 6 and 5 tokens; vocabularies 11 (student) and 13 (teacher)."""
    gen = torch.Generator().manual_seed(seed)
    rows = [_row([2, 4, 7, 9, 12, 12, 15], [2, 3, 4, 9, 12, 15], torch.randint(13, (6,), generator=gen).tolist()),
            _row([1, 3, 5, 6, 8, 10, 11], [3, 5, 6, 10, 11], torch.randint(13, (5,), generator=gen).tolist())]
    s_ids = torch.randint(11, (2, 7), generator=gen)
    s_logits = torch.randn(2, 7, 11, generator=gen, dtype=torch.float64) * 2
    t_logits = torch.randn(2, 6, 13, generator=gen, dtype=torch.float64) * 2
    shared = (torch.tensor([0, 3, 4, 7, 9]), torch.tensor([5, 0, 12, 7, 2]))
    return rows, s_ids, s_logits, t_logits, shared


def test_align_ends_tiles_the_text_in_order():
    row = _row([2, 4, 7, 9, 12, 12, 15], [2, 3, 4, 9, 12, 15], [0] * 6)
    assert row.student_span.tolist() == [0, 1, 2, 2, 3, 3, 4] and row.teacher_span.tolist() == [0, 1, 1, 2, 3, 4]
    assert row.spans == 5  # span ends 2, 4, 9, 12, 15: the ends both sides share; a 0-byte token joins the span before


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl"])
def test_aligned_divergence_matches_a_float64_reference(kind):
    rows, s_ids, s_logits, t_logits, shared = _synthetic()
    batch = batch_alignment(rows, pad_id=0)
    assert batch.exact.tolist() == [False, False, False, True, True, True, False, True]
    value, parts = aligned_divergence(s_logits, t_logits, s_ids, batch, shared, kind=kind, t2_scale=False)
    assert value.dtype == torch.float64
    assert float(value) == pytest.approx(reference_aligned(s_logits, t_logits, s_ids, rows, shared, kind), rel=1e-9)
    assert float(parts["spans"]) == 8 and 0 < float(parts["exact"]) < float(value)
    hot, _ = aligned_divergence(s_logits, t_logits, s_ids, batch, shared, kind=kind, temperature=2.0)
    cooled = s_logits / 2, t_logits / 2
    expected = 4 * reference_aligned(*cooled, s_ids, rows, shared, kind)
    assert float(hot) == pytest.approx(expected, rel=1e-9)


def test_aligned_divergence_gradient_is_finite_and_matches_finite_differences():
    rows, s_ids, s_logits, t_logits, shared = _synthetic(seed=3)
    batch = batch_alignment(rows, pad_id=0)
    student = s_logits.clone().requires_grad_(True)

    def loss(x):
        return aligned_divergence(x, t_logits, s_ids, batch, shared, kind="jsd", t2_scale=False)[0]

    assert torch.autograd.gradcheck(loss, (student,), eps=1e-6, atol=1e-6)
    loss(student).backward()
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


def test_span_probabilities_are_products_of_conditionals_and_at_most_one():
    rows, s_ids, s_logits, _, _ = _synthetic(seed=5)
    batch = batch_alignment(rows, pad_id=0)
    log_span = span_log_probs(s_logits, s_logits.logsumexp(-1), s_ids, batch.student_span, batch.num_spans)
    probs = torch.softmax(s_logits, -1)
    for b, row in enumerate(rows):
        offset = sum(r.spans for r in rows[:b])
        for k in range(1, row.spans):
            product = math.prod(float(probs[b, i - 1, s_ids[b, i]]) for i in _tokens_of(row.student_span, k))
            assert math.exp(float(log_span[offset + k])) == pytest.approx(product, rel=1e-12)
    assert (log_span <= 0).all()


def test_uld_matches_a_float64_reference():
    rows, _, s_logits, t_logits, _ = _synthetic(seed=7)
    batch = batch_alignment(rows, pad_id=0)
    value, _ = uld_distance(s_logits, t_logits, batch, t2_scale=False)
    assert float(value) == pytest.approx(reference_uld(s_logits, t_logits, rows), rel=1e-9)
    wide = torch.randn(2, 6, 40, dtype=torch.float64)  # the teacher vocabulary larger than the student's
    value, _ = uld_distance(s_logits, wide, batch, t2_scale=False)
    assert float(value) == pytest.approx(reference_uld(s_logits, wide, rows), rel=1e-9)
    same, _ = uld_distance(s_logits, s_logits[:, :6], batch_alignment([_row([1, 2, 3, 4, 5, 6, 7],
                                                                             [1, 2, 3, 4, 5, 6], [0] * 6)] * 2, 0))
    assert float(same) == pytest.approx(0.0, abs=1e-12)


# ---------- one real tokenizer: builtin:bpe-8k on both sides ----------


@pytest.fixture(scope="module")
def bpe_8k():
    return load_tokenizer(f"builtin:smollm2-135m-instruct?fresh&layers=1&hidden=8&heads=1&tokenizer={BPE_8K}")


def test_builtin_bpe_8k_records_how_it_was_made(bpe_8k):
    meta = json.loads((builtin_tokenizer_dir(BPE_8K) / "workbench-tokenizer.json").read_text())
    assert len(bpe_8k) == meta["vocab_size"] == 8192
    assert meta["datasets"] == ["builtin:kjv", "builtin:chat"] and meta["command"].startswith("workbench train-tokenizer")
    text = "In the beginning 東京 🙂 <|im_start|>user\n  spaced\tout"
    ids = bpe_8k(text, add_special_tokens=False)["input_ids"]
    assert b"".join(token_bytes(bpe_8k)[i] for i in ids) == text.encode()
    assert "<|im_start|>user\nhi<|im_end|>" in bpe_8k.apply_chat_template([{"role": "user", "content": "hi"}],
                                                                            tokenize=False)


def test_aligned_equals_the_ordinary_divergence_with_one_tokenizer(bpe_8k):
    texts = ["And God said, Let there be light: and there was light.", "The quick brown fox jumps over the dog."]
    rows = torch.tensor([bpe_8k(t, add_special_tokens=False)["input_ids"][:10] for t in texts])
    table = token_bytes(bpe_8k)
    lengths = np.array([len(t) for t in table])
    aligned = [align_row(row.tolist(), lengths, table, bpe_8k, lengths) for row in rows]
    assert [a.teacher_ids for a in aligned] == rows.tolist()  # the teacher re-reads the same tokens
    batch = batch_alignment(aligned, pad_id=0)
    assert batch.exact.all() and batch.exact_share == 1.0
    shared = shared_vocab(table, table)
    gen = torch.Generator().manual_seed(0)
    student, teacher = (torch.randn(2, 10, len(table), generator=gen) for _ in range(2))
    targets = rows.roll(-1, 1)
    targets[:, -1] = -100
    for kind in ("forward_kl", "reverse_kl", "jsd", "tvd"):
        value, _ = aligned_divergence(student, teacher, rows, batch, shared, kind=kind, temperature=2.0)
        ordinary = divergence(student, teacher, targets, kind=kind, temperature=2.0, reduction="sum")
        assert float(value) == pytest.approx(float(ordinary), rel=1e-5), kind
    zero, _ = aligned_divergence(student, student, rows, batch, shared)
    assert float(zero) == pytest.approx(0.0, abs=1e-4)


def test_a_fresh_student_takes_another_tokenizer(tiny_teacher):
    spec = f"{tiny_teacher}?fresh&layers=1&hidden=16&heads=2&tokenizer={BPE_8K}"
    config = load_config(spec)
    tokenizer = load_tokenizer(spec)
    assert config.vocab_size == len(tokenizer) == 8192 and config.eos_token_id == tokenizer.eos_token_id
    assert len(load_tokenizer(f"{tiny_teacher}?fresh&layers=1&hidden=16&heads=2")) == 168
    with pytest.raises(UserError, match="tokenizer= needs"):
        load_config(f"{tiny_teacher}?fresh&layers=1&hidden=16&heads=2&tokenizer=")
    with pytest.raises(UserError, match="not a derived model spec"):
        load_tokenizer(f"{tiny_teacher}?fresh&layers=1&hidden=16&heads=2&tokenizer={tiny_teacher}?prune=even%26layers=1")


# ---------- tiny pairs: padded logits, two trained byte-level BPEs ----------


def _save_model(folder, config, tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_padded_vocabularies_are_distilled_over_the_real_ids(tmp_path, tiny_text):
    tokenizer = tiny_tokenizer()
    common = dict(num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, bos_token_id=2,
                  eos_token_id=3, pad_token_id=1)
    teacher = _save_model(tmp_path / "teacher", Qwen2Config(vocab_size=200, hidden_size=64, intermediate_size=128,
                                                            num_hidden_layers=2, **common), tokenizer)
    student = _save_model(tmp_path / "student", Qwen2Config(vocab_size=176, hidden_size=32, intermediate_size=64,
                                                            num_hidden_layers=1, **common), tokenizer, seed=1)
    text = format_compatibility(compatibility_card(str(teacher), str(student)))
    assert "logits widths     differ (teacher 200, student 176)" in text and "168 real ids" in text
    cfg = tiny_config(teacher, student, tiny_text)
    pairing = tokenizer_pairing(cfg, tokenizer, tokenizer)
    assert pairing.cross is None
    sink = ListSink()
    assert train(cfg, tmp_path / "run", sink)["state"] == "finished"
    assert all(math.isfinite(r["kd"]) and r["kd"] > 0 for r in sink.of_kind("train"))
    final = sink.of_kind("eval")[-1]
    assert math.isfinite(final["eval_kl"]) and final["eval_kl"] > 0 and 0 < final["eval_bpb"] < 20
    from workbench.app.tab_runs import TABLE_COLUMNS, runs_table

    row = dict(zip(TABLE_COLUMNS, runs_table(tmp_path)[0], strict=True))  # the Runs table compares any tokenizers
    assert row["bits per byte"] == round(final["eval_bpb"], 3)
    logits = torch.randn(2, 5, 200), torch.randn(2, 5, 176)
    pairing = Pairing(tokenizer, tokenizer, None, bytes_per_token(tokenizer), width=168)
    assert [x.shape[-1] for x in pairing.trim(*logits)] == [168, 168]


@pytest.fixture(scope="module")
def bpe_pair(tmp_path_factory, tiny_text):
    """Two tiny Llamas, each with its own byte-level BPE trained on the tiny text (300 and 360 tokens)."""
    root = tmp_path_factory.mktemp("bpe-pair")
    return [tiny_bpe_model_dir(root, tiny_text, "teacher", 300, hidden=64, seed=1),
            tiny_bpe_model_dir(root, tiny_text, "student", 360, hidden=32, seed=2)]


def test_train_tokenizer_cli_writes_a_tokenizer_and_its_record(tmp_path, tiny_text, capsys):
    out = tmp_path / "tok"
    assert main(["train-tokenizer", "--data", str(tiny_text), "--vocab-size", "300", "--out", str(out)]) == 0
    meta = json.loads((out / "workbench-tokenizer.json").read_text())
    assert meta["vocab_size"] == 300 and meta["command"].startswith("workbench train-tokenizer --data=")
    assert "300 tokens" in capsys.readouterr().out
    assert main(["train-tokenizer", "--data", str(tiny_text), "--vocab-size", "10", "--out", str(out)]) == 2
    assert "--vocab-size" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["aligned", "uld"])
def test_training_across_tokenizers(bpe_pair, tiny_text, tmp_path, monkeypatch, method):
    teacher, student = bpe_pair
    recorder = LoadRecorder(monkeypatch)
    cfg = tiny_config(teacher, student, tiny_text, loss={"cross_tokenizer": method, "temperature": 1.0})
    sink = ListSink()
    assert train(cfg, tmp_path / "run", sink)["state"] == "finished"
    rows = sink.of_kind("train")
    assert all(math.isfinite(r["kd"]) and r["kd"] > 0 and math.isfinite(r["ce"]) for r in rows)
    final = sink.of_kind("eval")[-1]
    assert 0 < final["eval_exact_share"] <= 1 and math.isfinite(final["eval_kl"]) and 0 < final["eval_bpb"] < 20
    assert changed(recorder.initial[str(student)], snapshot(recorder.loaded[str(student)]))
    assert not changed(recorder.initial[str(teacher)], snapshot(recorder.loaded[str(teacher)]))
    card = compatibility_card(str(teacher), str(student))
    assert not card["tokenizer"]["identical"] and card["tokenizer"]["cross"]["shared"] > 256
    assert "loss.cross_tokenizer" in format_compatibility(card)


@pytest.mark.parametrize("change, field", [
    ({"loss": {"hidden_weight": 1.0}}, "loss.hidden_weight"),
    ({"loss": {"attn_weight": 1.0}}, "loss.attn_weight"),
    ({"loss": {"divergence": "mse"}}, "loss.divergence"),
    ({"train": {"teacher_cache": "somewhere"}}, "train.teacher_cache"),
])
def test_combinations_that_cannot_cross_tokenizers_are_refused(bpe_pair, tiny_text, change, field):
    teacher, student = bpe_pair
    cfg = tiny_config(teacher, student, tiny_text, **change)
    with pytest.raises(UserError) as info:
        tokenizer_pairing(cfg, load_tokenizer(str(teacher)), load_tokenizer(str(student)))
    message = str(info.value)
    assert message.startswith(field) and "tokenizers differ" in message and "\n" not in message


def test_cross_tokenizer_config_field_is_checked():
    assert DistillConfig.from_dict({"loss": {"cross_tokenizer": "uld"}}).loss.cross_tokenizer == "uld"
    with pytest.raises(UserError, match="loss.cross_tokenizer must be"):
        DistillConfig.from_dict({"loss": {"cross_tokenizer": "nearest"}})


def test_bits_per_byte_counts_the_bytes_of_the_predicted_tokens(bpe_8k):
    table = bytes_per_token(bpe_8k)
    ids = bpe_8k("In the beginning God created", add_special_tokens=False)["input_ids"]
    assert float(table[ids].sum()) == len(b"In the beginning God created")
    assert bits_per_byte(math.log(2) * 10, 5) == pytest.approx(2.0)


def test_report_card_scores_a_student_with_another_tokenizer(bpe_pair, tiny_text):
    from workbench.analysis.comparison_plots import report_figure
    from workbench.analysis.report_card import EvalSettings, evaluate_models, format_report

    teacher, student = bpe_pair
    settings = EvalSettings(dataset=str(tiny_text), seq_len=32, max_sequences=6, batch_size=3, gen_tokens=8,
                            device="cpu")
    card = evaluate_models(str(teacher), {"other": str(student), "same": str(teacher)}, settings)
    other, same = card["students"]
    assert other["kl_teacher_student"] is None and other["tokenizer"] == "own" and 0 < other["val_bpb"] < 20
    assert same["val_bpb"] == pytest.approx(card["teacher"]["val_bpb"], rel=1e-6) and same["kl_teacher_student"] < 1e-6
    assert "bits per byte" in format_report(card)
    assert {trace.name for trace in report_figure(card).data} == {"teacher", "other", "same"}
