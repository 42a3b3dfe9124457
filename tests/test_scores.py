"""Perplexity, KL(teacher‖student) at T = 1 and top-1 agreement: against a float64 reference, dense = top-k cache."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.engine.scores import agreement_sums, ce_sum
from workbench.models.vocab import perplexity


def _logits(seed: int, shape=(2, 7, 11)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


def test_agreement_sums_match_a_float64_reference_and_skip_ignored_positions():
    student, teacher = _logits(0), _logits(1)
    targets = torch.randint(0, 11, (2, 7), generator=torch.Generator().manual_seed(2))
    targets[0, :3] = -100
    ce, kl, hits, count = agreement_sums(student, targets, teacher_logits=teacher).tolist()
    mask = targets != -100
    s, t = torch.log_softmax(student.double(), -1)[mask], torch.log_softmax(teacher.double(), -1)[mask]
    assert count == mask.sum()
    assert ce == pytest.approx(float(-s.gather(-1, targets[mask][:, None]).sum()), rel=1e-5)
    assert kl == pytest.approx(float((t.exp() * (t - s)).sum()), rel=1e-5)
    assert hits == float((s.argmax(-1) == t.argmax(-1)).sum())


@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_ce_sum_matches_a_float64_reference_in_any_chunking(chunk_size):
    logits = _logits(6).bfloat16()  # a bf16 teacher's logits, as the trainer's eval gets them
    targets = torch.randint(0, 11, (2, 7), generator=torch.Generator().manual_seed(7))
    targets[1, 4:] = -100
    mask = targets != -100
    reference = -torch.log_softmax(logits.double(), -1)[mask].gather(-1, targets[mask][:, None]).sum()
    assert ce_sum(logits, targets, chunk_size) == pytest.approx(float(reference), rel=1e-6)


def test_top_k_cache_missing_one_token_equals_the_dense_teacher():
    """With k = V - 1 the tail is one token, so the cache's teacher estimate is the teacher itself."""
    student, teacher = _logits(3), _logits(4)
    targets = torch.randint(0, 11, (2, 7), generator=torch.Generator().manual_seed(5))
    log_probs, ids = torch.log_softmax(teacher, -1).sort(-1, descending=True)
    dense = agreement_sums(student, targets, teacher_logits=teacher)
    cache = (ids[..., :10], log_probs[..., :10], log_probs[..., 10].exp())
    cached = agreement_sums(student, targets, teacher_topk=cache)
    assert torch.allclose(dense, cached, rtol=1e-5, atol=1e-6)


def test_perplexity_is_exp_of_mean_ce_and_stays_finite():
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert math.isfinite(perplexity(1e6))
