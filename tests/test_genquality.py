"""Generation-quality numbers against independent float64 references on tiny models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tiny import tiny_model_dir

from workbench.engine.genquality import (
    generation_quality,
    quality_of,
    repeated_ngram_share,
    score_tokens,
    token_disagreement,
)
from workbench.engine.onpolicy import Sampling, completion_batch, sample_completions
from workbench.models.loading import load_model, load_tokenizer


@pytest.fixture(scope="module")
def pair(tiny_teacher, tiny_student):
    return load_model(str(tiny_student)).eval(), load_model(str(tiny_teacher)).eval(), load_tokenizer(str(tiny_student))


def test_repeated_ngram_share():
    assert repeated_ngram_share([[1, 2, 3, 4, 5, 6]]) == 0.0
    assert repeated_ngram_share([[1, 2, 3, 4, 1, 2, 3, 4]]) == pytest.approx(1 / 5)  # 5 grams, (1,2,3,4) twice
    assert repeated_ngram_share([[7, 7, 7, 7, 7, 7]]) == pytest.approx(2 / 3)
    assert repeated_ngram_share([[1, 2, 3], []]) == 0.0  # too short to hold a 4-gram
    assert repeated_ngram_share([[1, 2, 3, 4], [1, 2, 3, 4]]) == 0.0  # repeats count within one answer only


def _reference(student, teacher, prompts, answers):
    """float64: per answer token log q(y), log p(y) and KL(q‖p), from a fresh forward of each sequence alone."""
    out = []
    for prompt, answer in zip(prompts, answers, strict=True):
        ids = torch.tensor([prompt + answer])
        with torch.no_grad():
            q = F.log_softmax(student(input_ids=ids).logits.double()[0], -1)
            p = F.log_softmax(teacher(input_ids=ids).logits.double()[0], -1)
        positions = torch.arange(len(prompt) - 1, len(prompt) + len(answer) - 1)
        y = torch.tensor(answer)
        out.append({"student": q[positions, y], "teacher": p[positions, y],
                    "rkl": (q[positions].exp() * (q[positions] - p[positions])).sum(-1)})
    return out


def test_sequence_reverse_kl_matches_float64_reference(pair):
    student, teacher, tokenizer = pair
    prompts = [[5, 6, 7, 8], [9], [10, 11]]
    answers = [[20, 21, 3], [22, 23, 24, 25, 26], [27]]
    scores = score_tokens(student, teacher, completion_batch(prompts, answers, tokenizer.pad_token_id))
    reference = _reference(student, teacher, prompts, answers)
    for got, want in zip(scores, reference, strict=True):
        for key in ("student", "teacher", "rkl"):
            assert torch.allclose(torch.tensor(got[key], dtype=torch.float64), want[key], atol=2e-5), key
    quality = quality_of(prompts, answers, scores, stop=[3], label="three prompts")
    tokens = sum(len(a) for a in answers)
    expected = sum(float((r["student"] - r["teacher"]).sum()) for r in reference) / tokens
    assert quality.gen_rkl == pytest.approx(expected, abs=1e-5)
    assert quality.gen_teacher_nll == pytest.approx(-sum(float(r["teacher"].sum()) for r in reference) / tokens, abs=1e-5)
    assert quality.gen_len == pytest.approx((2 + 5 + 1) / 3)  # the end-of-turn token is not counted
    assert quality.gen_empty == pytest.approx(2 / 3)  # [20, 21] and [27] have fewer than 3 tokens
    same = quality_of(prompts, answers, score_tokens(teacher, teacher, completion_batch(prompts, answers, 1)),
                      stop=[3], label="")
    assert same.gen_rkl == pytest.approx(0.0, abs=1e-6)  # the teacher against itself


def test_generation_quality_samples_and_scores(pair):
    student, teacher, tokenizer = pair
    prompts = [[5, 6, 7], [8, 9], [10]]
    quality, answers, scores = generation_quality(student, teacher, tokenizer, prompts, "three prompts",
                                                  sampling=Sampling(6, 0.7, 0.9), seed=3)
    again = sample_completions(student, prompts, Sampling(6, 0.7, 0.9), torch.Generator().manual_seed(3), [3],
                               tokenizer.pad_token_id)
    assert answers == again and all(1 <= len(a) <= 6 for a in answers)
    assert [len(s["rkl"]) for s in scores] == [len(a) for a in answers]
    assert math.isfinite(quality.gen_rkl) and quality.gen_prompts == 3 and quality.measured_on == "three prompts"


def test_token_disagreement_pieces_and_values(pair):
    student, teacher, tokenizer = pair
    pieces = token_disagreement(student, teacher, tokenizer, "the king", "the lord of the land")
    assert [p["piece"] for p in pieces] == ["the", "lord", "of", "the", "land"]
    assert all(p["rkl"] >= 0 for p in pieces)
    assert token_disagreement(student, student, tokenizer, "the king", "the land")[0]["rkl"] == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "qwen2", "gpt_neox"])
def test_left_padding_in_sampling_other_architectures(tiny_root, arch):
    folder = tiny_model_dir(tiny_root, arch, layers=2, hidden=32, seed=5)
    model = load_model(str(folder)).eval()
    prompts = [[5, 6, 7, 8, 9, 10], [11], [12, 13, 14]]
    greedy = Sampling(6, 1e-4, 1.0)
    batched = sample_completions(model, prompts, greedy, torch.Generator().manual_seed(0), [3], 1)
    single = [sample_completions(model, [p], greedy, torch.Generator().manual_seed(0), [3], 1)[0] for p in prompts]
    assert batched == single


def test_scores_over_the_common_width_of_padded_vocabularies(pair):
    from tiny import tiny_config
    from transformers import AutoModelForCausalLM

    student, _, tokenizer = pair
    torch.manual_seed(3)
    wide_teacher = AutoModelForCausalLM.from_config(tiny_config("llama", len(tokenizer) + 32)).eval()
    prompts, answers = [[5, 6, 7]], [[20, 21, 3]]
    (score,) = score_tokens(student, wide_teacher, completion_batch(prompts, answers, tokenizer.pad_token_id))
    ids = torch.tensor([prompts[0] + answers[0]])
    with torch.no_grad():
        p = F.log_softmax(wide_teacher(input_ids=ids).logits.double()[0, 2:5, : len(tokenizer)], -1)
    assert torch.allclose(torch.tensor(score["teacher"], dtype=torch.float64), p[torch.arange(3), torch.tensor(answers[0])],
                          atol=2e-5)
    assert len(score["rkl"]) == 3 and all(v >= 0 for v in score["rkl"])
