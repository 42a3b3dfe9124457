"""Teacher cache round trip: shards on disk keyed by their inputs, training from them skips the teacher and
matches the live teacher (exactly when k = V - 1, closely at small k)."""

from __future__ import annotations

import json

import pytest
import torch
from engine_helpers import LoadRecorder, tiny_config
from safetensors.torch import load_file

from workbench.data.splits import build_splits
from workbench.engine.teacher_cache import cache_teacher
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.models.loading import load_model, load_tokenizer
from workbench.runs.sinks import ListSink

VOCAB = 168


def test_cache_files_match_teacher(tiny_teacher, tiny_student, tiny_text, tmp_path):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text)
    path = cache_teacher(cfg, top_k=8, out_dir=tmp_path / "cache")
    meta = json.loads((path / "meta.json").read_text())
    assert meta["top_k"] == 8 and len(meta["key"]) == 24
    shard = load_file(str(path / "train-00000.safetensors"))
    n, seq_len, k = shard["ids"].shape
    assert (seq_len, k) == (16, 8) and shard["logprobs"].shape == (n, 16, 8) and shard["tail"].shape == (n, 16)
    train_ids = build_splits(cfg.data, load_tokenizer(str(tiny_student))).train
    with torch.no_grad():
        log_probs = torch.log_softmax(load_model(str(tiny_teacher))(train_ids[:2]).logits.float(), -1)
    top = log_probs.topk(8, dim=-1)
    assert torch.equal(shard["ids"][:2].long(), top.indices)
    assert torch.allclose(shard["logprobs"][:2], top.values, atol=1e-5)
    assert torch.allclose(shard["tail"][:2] + top.values.exp().sum(-1), torch.ones(2, 16), atol=1e-5)
    again = cache_teacher(cfg, top_k=8, out_dir=tmp_path / "cache")
    assert again == path and json.loads((again / "meta.json").read_text())["key"] == meta["key"]


@pytest.mark.parametrize("top_k", [VOCAB - 1, 8])
def test_training_from_cache_matches_live_teacher(tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch,
                                                  top_k):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"temperature": 1.0}, train={"steps": 3})
    live = ListSink()
    train(cfg, tmp_path / "live", live)
    path = cache_teacher(cfg, top_k=top_k, out_dir=tmp_path / "cache")
    recorder = LoadRecorder(monkeypatch)
    cached = ListSink()
    cached_cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"temperature": 1.0},
                             train={"steps": 3, "teacher_cache": str(path)})
    assert train(cached_cfg, tmp_path / "cached", cached)["state"] == "finished"
    assert str(tiny_teacher) not in recorder.loaded  # the teacher forward is skipped entirely
    live_rows, cached_rows = live.of_kind("train"), cached.of_kind("train")
    assert abs(live_rows[0]["ce"] - cached_rows[0]["ce"]) <= 1e-5
    if top_k == VOCAB - 1:  # the tail is one token: the k + 1 buckets are the full vocabulary, so exact
        for a, b in zip(live_rows, cached_rows, strict=True):
            assert abs(a["kd"] - b["kd"]) <= 1e-4 * a["kd"] and abs(a["ce"] - b["ce"]) <= 1e-4
        assert abs(live.of_kind("eval")[-1]["eval_kl"] - cached.of_kind("eval")[-1]["eval_kl"]) <= 1e-4
    else:  # merging tokens into one bucket can only lose divergence (data-processing inequality), same weights
        assert 0 < cached_rows[0]["kd"] < live_rows[0]["kd"]


def test_cache_for_other_data_is_refused(tiny_teacher, tiny_student, tiny_text, tmp_path):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text)
    path = cache_teacher(cfg, top_k=8, out_dir=tmp_path / "cache")
    other = tiny_config(tiny_teacher, tiny_student, tiny_text, data={"seq_len": 24},
                        train={"teacher_cache": str(path)})
    with pytest.raises(UserError, match="train.teacher_cache: .* other data"):
        train(other, tmp_path / "run", ListSink())
    with pytest.raises(UserError, match="hidden_weight"):
        train(tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"hidden_weight": 1.0},
                          train={"teacher_cache": str(path)}), tmp_path / "run2", ListSink())
