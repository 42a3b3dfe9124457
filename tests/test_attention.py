"""Attention capture, comparison metrics and heatmap figures on tiny models of four architectures."""

from __future__ import annotations

import pytest
import torch
from tiny import ARCHITECTURES, tiny_model_dir

from workbench.analysis.attention import (
    DEFAULT_TEXT,
    align_heads,
    capture_attention,
    compare_attention,
    entropy_bits,
    js_divergence,
    uniform_entropy_bits,
)
from workbench.analysis.comparison_plots import attention_figure, summary_figure
from workbench.errors import UserError
from workbench.runs.pool import ModelPool


@pytest.fixture(scope="module")
def pool():
    return ModelPool(max_models=4, device="cpu")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_capture_shapes_causal_and_rows_sum_to_one(tiny_root, pool, arch):
    folder = tiny_model_dir(tiny_root, arch, layers=2, hidden=32, heads=4, kv_heads=2, seed=3)
    model, tokenizer = pool.get(str(folder), attn_implementation="eager")
    maps = capture_attention(model, tokenizer, DEFAULT_TEXT, max_tokens=12)
    assert maps.num_layers == 2
    assert maps.note and "first 12" in maps.note
    assert len(maps.tokens) == 12 and len(set(maps.tokens)) == 12  # unique axis labels even for repeated words
    for layer_map in maps.maps:
        assert layer_map.shape == (4, 12, 12)
        assert torch.allclose(layer_map.sum(-1), torch.ones(4, 12), atol=1e-4)
        assert float(layer_map.triu(diagonal=1).abs().max()) == 0.0


def test_sdpa_model_gives_a_clear_error(tiny_root, pool):
    folder = tiny_model_dir(tiny_root, "llama", layers=2, hidden=32, seed=3)
    model, tokenizer = pool.get(str(folder), attn_implementation="sdpa")
    with pytest.raises(UserError, match="eager"):
        capture_attention(model, tokenizer, DEFAULT_TEXT)


def test_short_text_has_no_note_and_empty_text_fails(tiny_root, pool):
    model, tokenizer = pool.get(str(tiny_model_dir(tiny_root, "gpt2", seed=3)), attn_implementation="eager")
    assert capture_attention(model, tokenizer, "the king said", max_tokens=48).note is None
    with pytest.raises(UserError, match="empty"):
        capture_attention(model, tokenizer, "   ")


def test_js_and_entropy_reference_values():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert torch.allclose(js_divergence(p, q), torch.tensor([1.0, 0.0]), atol=1e-6)  # disjoint -> 1 bit
    assert torch.allclose(entropy_bits(q), torch.tensor([0.0, 1.0]), atol=1e-6)
    rand = torch.softmax(torch.randn(3, 5, 7, dtype=torch.float64), -1)
    m = 0.5 * (rand + rand.flip(0))
    manual = 0.5 * (rand * (rand / m).log2()).sum(-1) + 0.5 * (rand.flip(0) * (rand.flip(0) / m).log2()).sum(-1)
    assert torch.allclose(js_divergence(rand, rand.flip(0)).double(), manual, atol=1e-5)


def test_align_heads_groups_the_larger_side():
    student = torch.softmax(torch.randn(2, 5, 5), -1)
    teacher = torch.softmax(torch.randn(4, 5, 5), -1)
    s, t, note = align_heads(student, teacher)
    assert s.shape == t.shape == (2, 5, 5) and "groups of 2" in note
    assert torch.allclose(t[0], teacher[:2].mean(0))
    s, t, note = align_heads(torch.ones(3, 5, 5), teacher)
    assert s.shape == t.shape == (1, 5, 5) and "do not divide" in note


@pytest.mark.parametrize("teacher_arch,student_arch", [("llama", "qwen2"), ("gpt_neox", "gpt2")])
def test_compare_mapped_pairs_and_figures(tiny_root, pool, teacher_arch, student_arch):
    teacher_dir = tiny_model_dir(tiny_root, teacher_arch, layers=4, hidden=64, heads=4, kv_heads=2, seed=5)
    student_dir = tiny_model_dir(tiny_root, student_arch, layers=2, hidden=32, heads=2, kv_heads=1, seed=6)
    teacher, t_tok = pool.get(str(teacher_dir), attn_implementation="eager")
    student, s_tok = pool.get(str(student_dir), attn_implementation="eager")
    comparison = compare_attention(teacher, t_tok, student, s_tok, DEFAULT_TEXT, strategy="uniform", max_tokens=10)
    assert comparison.pairs == [(0, 1), (1, 3)]
    assert comparison.js.shape == (2, 2)  # 4 teacher heads averaged in pairs to meet 2 student heads
    assert bool((comparison.js >= 0).all()) and bool((comparison.js <= 1).all())
    assert float(comparison.student_entropy.max()) <= uniform_entropy_bits(10) + 1e-4
    teacher_map, student_map, diff = comparison.pair_maps(1, head=1)
    assert torch.allclose(diff, (teacher_map - student_map).abs())

    custom = compare_attention(teacher, t_tok, student, s_tok, DEFAULT_TEXT, strategy="custom",
                               custom_pairs=["emb:emb", "1:2"], max_tokens=10)
    assert custom.pairs == [(1, 2)] and any("emb" in n for n in custom.notes)

    fig = attention_figure(comparison, pair_index=0, head=None)
    assert len(fig.data) == 3
    teacher_trace = fig.data[0]
    assert list(teacher_trace.x) == comparison.tokens and list(teacher_trace.y) == comparison.tokens
    assert teacher_trace.z[0][1] is None and teacher_trace.z[1][0] is not None  # causal mask left blank
    assert fig.layout.plot_bgcolor  # masked cells show the background colour
    all_pairs = attention_figure(comparison, pair_index=None, head=0)
    assert len(all_pairs.data) == len(comparison.pairs)  # one compact |difference| cell per pair
    assert all_pairs.layout.height < 500 and "S1↔T3" in all_pairs.layout.annotations[1].text
    hidden = attention_figure(comparison, pair_index=0, head=None, hide_first=True)  # the attention sink left out
    assert list(hidden.data[0].x) == comparison.tokens[1:] and len(hidden.data[0].z) == len(comparison.tokens) - 1
    assert hidden.data[0].zmax <= fig.data[0].zmax and hidden.layout.xaxis.tickfont.size >= 9
    grid = attention_figure(comparison, pair_index=None, head=0, hide_first=True)
    assert list(grid.data[0].x) == comparison.tokens[1:]
    summary = summary_figure(comparison)
    assert [list(map(list, t.z)) for t in summary.data][0] == comparison.js.tolist()
    assert list(summary.data[0].y) == ["S0↔T1", "S1↔T3"]


def test_identical_models_have_zero_divergence(tiny_root, pool):
    folder = tiny_model_dir(tiny_root, "llama", layers=2, hidden=32, seed=3)
    model, tokenizer = pool.get(str(folder), attn_implementation="eager")
    comparison = compare_attention(model, tokenizer, model, tokenizer, DEFAULT_TEXT, max_tokens=16)
    assert float(comparison.js.max()) < 1e-6
    assert torch.allclose(comparison.teacher_entropy, comparison.student_entropy)


def test_bad_pair_and_head_are_user_errors(tiny_root, pool):
    folder = tiny_model_dir(tiny_root, "llama", layers=2, hidden=32, seed=3)
    model, tokenizer = pool.get(str(folder), attn_implementation="eager")
    comparison = compare_attention(model, tokenizer, model, tokenizer, DEFAULT_TEXT, max_tokens=8)
    with pytest.raises(UserError, match="head"):
        comparison.pair_maps(0, head=9)
    with pytest.raises(UserError, match="out of range"):
        compare_attention(model, tokenizer, model, tokenizer, DEFAULT_TEXT, strategy="custom", custom_pairs=["5:0"])
