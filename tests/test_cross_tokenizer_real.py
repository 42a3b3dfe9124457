"""Cross-tokenizer distillation with the two real tokenizers: the built-in teacher's (49,152 tokens) and builtin:bpe-8k
(8,192), on packed rows of builtin:kjv and builtin:chat. Marked slow: it reads the built-in teacher."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from engine_helpers import tiny_config
from test_cross_tokenizer import _tokens_of, reference_aligned, reference_uld

from workbench.analysis.compatibility import compatibility_card, format_compatibility
from workbench.config import BUILTIN_TEACHER, DataConfig
from workbench.data.splits import build_splits
from workbench.engine.cross_tokenizer import (
    align_row,
    aligned_divergence,
    batch_alignment,
    span_log_probs,
    uld_distance,
)
from workbench.engine.tokenizer_pairing import CrossTokenizer, tokenizer_pairing
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.models.loading import load_tokenizer
from workbench.runs.sinks import ListSink

pytestmark = pytest.mark.slow
STUDENT = f"{BUILTIN_TEACHER}?fresh&layers=1&hidden=32&heads=2&tokenizer=builtin:bpe-8k"


@pytest.fixture(scope="module")
def cross():
    return CrossTokenizer(load_tokenizer(BUILTIN_TEACHER), load_tokenizer(STUDENT))


@pytest.fixture(scope="module")
def rows():
    student = load_tokenizer(STUDENT)
    picked = [build_splits(DataConfig(dataset=name, seq_len=48, max_sequences=12), student).train[:3]
              for name in ("builtin:kjv", "builtin:chat")]
    return torch.cat(picked)


def _align(cross, row):
    return align_row(row.tolist(), cross.student_lengths, cross.student_table, cross.teacher_tokenizer,
                     cross.teacher_lengths)


def test_aligned_spans_cover_the_text_exactly_and_in_order(cross, rows):
    for row in rows:
        aligned = _align(cross, row)
        data = aligned.text.encode()
        teacher_pieces = [cross.teacher_table[i] for i in aligned.teacher_ids]
        assert b"".join(teacher_pieces) == data  # the teacher spells the row's text byte for byte
        assert np.all(np.diff(aligned.student_ends) >= 0) and np.all(np.diff(aligned.teacher_ends) >= 0)
        assert np.all(np.diff(aligned.student_span) >= 0) and np.all(np.diff(aligned.teacher_span) >= 0)
        start = 0
        for k in range(aligned.spans):
            s_tokens, t_tokens = _tokens_of(aligned.student_span, k), _tokens_of(aligned.teacher_span, k)
            end = int(aligned.teacher_ends[t_tokens[-1]])
            assert end == int(aligned.student_ends[s_tokens[-1]]) and end > start  # both sides close here
            assert b"".join(teacher_pieces[j] for j in t_tokens) == data[start:end]
            if 0 < k < aligned.spans - 1:  # the first and last spans may hold a character cut at the row's ends
                assert b"".join(cross.student_table[int(row[i])] for i in s_tokens) == data[start:end]
            start = end
        assert start == len(data)


def test_span_probabilities_are_products_of_the_conditionals(cross, rows):
    picked = rows[3:5]  # chat rows: text the student's tokenizer, trained mostly on kjv, splits more finely
    batch = batch_alignment([_align(cross, row) for row in picked], cross.pad_id)
    logits = torch.randn(2, rows.shape[1], len(cross.student_table), dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    log_span = span_log_probs(logits, logits.logsumexp(-1), picked, batch.student_span, batch.num_spans)
    assert (log_span <= 0).all() and (log_span.exp() <= 1).all()
    probs = torch.softmax(logits, -1)
    aligned = _align(cross, picked[0])
    multi = [k for k in range(1, aligned.spans) if len(_tokens_of(aligned.student_span, k)) > 1]
    assert multi, "the rows have spans of several student tokens"
    for k in multi[:5]:
        product = math.prod(float(probs[0, i - 1, picked[0, i]]) for i in _tokens_of(aligned.student_span, k))
        assert math.exp(float(log_span[k])) == pytest.approx(product, rel=1e-10)


def test_losses_match_the_float64_references(cross, rows):
    picked = rows[[0, 3], :16]
    aligned = [_align(cross, row) for row in picked]
    batch = batch_alignment(aligned, cross.pad_id)
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(2, 16, len(cross.student_table), dtype=torch.float64, generator=gen) * 3
    teacher = torch.randn(2, batch.teacher_ids.shape[1], len(cross.teacher_table), dtype=torch.float64,
                          generator=gen) * 3
    value, _ = aligned_divergence(student, teacher, picked, batch, cross.shared, t2_scale=False)
    assert float(value) == pytest.approx(reference_aligned(student, teacher, picked, aligned, cross.shared), rel=1e-8)
    value, _ = uld_distance(student, teacher, batch, t2_scale=False)
    assert float(value) == pytest.approx(reference_uld(student, teacher, aligned), rel=1e-8)


def test_card_of_the_built_in_teacher_and_a_bpe_8k_student():
    card = compatibility_card(BUILTIN_TEACHER, STUDENT)
    cross = card["tokenizer"]["cross"]
    assert not card["tokenizer"]["identical"] and card["student"]["vocab"] == 8192
    assert 0.5 < cross["student_share"] < 1 and 0 < cross["teacher_share"] < 0.2
    assert 0.5 < cross["teacher_per_student"] < 1.5 and 0.3 < cross["exact_share"] <= 1
    assert "teacher tokens per student token" in format_compatibility(card)


def test_train_the_built_in_teacher_into_a_bpe_8k_student(tmp_path):
    cfg = tiny_config(BUILTIN_TEACHER, STUDENT, "builtin:kjv", data={"dataset": "builtin:kjv", "seq_len": 32,
                                                                       "max_sequences": 16},
                      loss={"temperature": 1.0}, train={"steps": 2, "eval_every": 2, "save_every": 2})
    sink = ListSink()
    assert train(cfg, tmp_path / "run", sink)["state"] == "finished"
    assert all(math.isfinite(r["kd"]) and r["kd"] > 0 for r in sink.of_kind("train"))
    final = sink.of_kind("eval")[-1]
    assert 0.5 < final["eval_exact_share"] <= 1 and 0 < final["eval_bpb"] < 20
    with pytest.raises(UserError, match="loss.hidden_weight"):
        bad = tiny_config(BUILTIN_TEACHER, STUDENT, "builtin:kjv", loss={"hidden_weight": 1.0})
        tokenizer_pairing(bad, load_tokenizer(BUILTIN_TEACHER), load_tokenizer(STUDENT))
