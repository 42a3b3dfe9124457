"""Divergences against a top-k + tail teacher: the estimate, exactness limits, error vs full vocabulary, gradients."""

import math

import pytest
import torch

from workbench.engine.losses import DIVERGENCE_KINDS, divergence
from workbench.engine.topk_losses import tail_mass_from_log_probs, topk_divergence
from workbench.errors import UserError

KINDS = [k for k in DIVERGENCE_KINDS if k != "mse"]


def _cache(teacher_logits, k):
    """What the teacher cache stores: top-k ids and log-probs at T = 1 and the exact remaining mass."""
    log_p = teacher_logits.double().log_softmax(-1)
    top = log_p.topk(k, dim=-1)
    tail = log_p.scatter(-1, top.indices, float("-inf")).logsumexp(-1).exp()
    return top.indices, top.values.float(), tail.float()


def _softmax64(scores):
    top = max(scores)
    exps = [math.exp(x - top) for x in scores]
    return [x / sum(exps) for x in exps]


def _estimate_reference(student, ids, log_probs, tail, kind, temperature, beta, alpha):
    """Plain-float float64 version of the documented estimate, one position at a time: the teacher's k cached
    probabilities, its tail mass spread like the student's own distribution over the other tokens, then both
    tempered and compared over the whole vocabulary, times T²."""
    values = []
    for b in range(student.shape[0]):
        for t in range(student.shape[1]):
            chosen = {int(i): float(lp) for i, lp in zip(ids[b, t], log_probs[b, t], strict=True)}
            q1 = _softmax64([float(x) for x in student[b, t]])
            rest = sum(x for i, x in enumerate(q1) if i not in chosen)
            teacher_t1 = [math.exp(chosen[i]) if i in chosen else float(tail[b, t]) * x / rest for i, x in enumerate(q1)]
            p = _softmax64([math.log(x) / temperature for x in teacher_t1])
            q = _softmax64([float(x) / temperature for x in student[b, t]])
            values.append(_divergence64(p, q, kind, beta, alpha) * temperature**2)
    return sum(values) / len(values)


def _bucket_reference(student, ids, log_probs, tail, kind, beta, alpha):
    """At T = 1: both models merged into k + 1 buckets (the k cached tokens and one tail), float64."""
    values = []
    for b in range(student.shape[0]):
        for t in range(student.shape[1]):
            chosen = [int(i) for i in ids[b, t]]
            p = [math.exp(float(x)) for x in log_probs[b, t]] + [float(tail[b, t])]
            q_full = _softmax64([float(x) for x in student[b, t]])
            q = [q_full[i] for i in chosen] + [sum(x for i, x in enumerate(q_full) if i not in chosen)]
            values.append(_divergence64(p, q, kind, beta, alpha))
    return sum(values) / len(values)


def _kl(a, b):
    return sum(x * math.log(x / y) for x, y in zip(a, b, strict=True) if x > 0)


def _divergence64(p, q, kind, beta, alpha):
    if kind == "forward_kl":
        return _kl(p, q)
    if kind == "reverse_kl":
        return _kl(q, p)
    if kind == "jsd":
        m = [beta * x + (1 - beta) * y for x, y in zip(p, q, strict=True)]
        return beta * _kl(p, m) + (1 - beta) * _kl(q, m)
    if kind == "kl_mix":
        return (1 - beta) * _kl(p, q) + beta * _kl(q, p)
    if kind == "skew_forward_kl":
        return _kl(p, [alpha * x + (1 - alpha) * y for x, y in zip(p, q, strict=True)])
    if kind == "skew_reverse_kl":
        return _kl(q, [(1 - alpha) * x + alpha * y for x, y in zip(p, q, strict=True)])
    if kind == "tvd":
        return 0.5 * sum(abs(x - y) for x, y in zip(p, q, strict=True))
    return -sum(x * math.log(y) for x, y in zip(p, q, strict=True))


def _logits(shape=(2, 4, 24), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * 2.5, torch.randn(shape, generator=gen) * 2.5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_matches_float64_reference(kind, temperature):
    student, teacher = _logits()
    ids, log_probs, tail = _cache(teacher, k=5)
    got = topk_divergence(student, ids, log_probs, tail, kind=kind, temperature=temperature, beta=0.3, alpha=0.2)
    want = _estimate_reference(student, ids, log_probs, tail, kind, temperature, 0.3, 0.2)
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "soft_ce"])  # soft_ce adds the teacher's entropy
def test_at_temperature_one_equals_the_k_plus_one_buckets(kind):
    student, teacher = _logits(seed=9)
    ids, log_probs, tail = _cache(teacher, k=5)
    got = topk_divergence(student, ids, log_probs, tail, kind=kind, beta=0.3, alpha=0.2)
    want = _bucket_reference(student, ids, log_probs, tail, kind, 0.3, 0.2)
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_all_but_one_token_is_exact(kind, temperature):
    # With k = V - 1 the tail is a single token, so the estimate is the teacher itself at any temperature.
    student, teacher = _logits(seed=1)
    ids, log_probs, tail = _cache(teacher, k=teacher.shape[-1] - 1)
    s_top, s_full = student.clone().requires_grad_(True), student.clone().requires_grad_(True)
    approx = topk_divergence(s_top, ids, log_probs, tail, kind=kind, temperature=temperature)
    full = divergence(s_full, teacher, kind=kind, temperature=temperature)
    approx.backward()
    full.backward()
    assert approx.item() == pytest.approx(full.item(), rel=1e-4, abs=1e-6)
    torch.testing.assert_close(s_top.grad, s_full.grad, rtol=1e-3, atol=1e-6)


def _peaked(positions=64, vocab=2048, seed=2):
    """Zipf-shaped teacher logits (LM-like: a few likely tokens, a long tail) and a noisy student of them."""
    gen = torch.Generator().manual_seed(seed)
    ranks = torch.arange(1, vocab + 1, dtype=torch.float32)
    base = -1.1 * ranks.log() * 2.0
    teacher = torch.stack([base[torch.randperm(vocab, generator=gen)] for _ in range(positions)])
    teacher = teacher + 0.5 * torch.randn(positions, vocab, generator=gen)
    student = teacher + 1.5 * torch.randn(positions, vocab, generator=gen)
    return student.unsqueeze(0), teacher.unsqueeze(0)


@pytest.mark.parametrize("kind", ["forward_kl", "jsd", "tvd", "reverse_kl"])
def test_error_vs_full_vocabulary_shrinks_with_k(kind):
    student, teacher = _peaked()
    full = divergence(student, teacher, kind=kind).item()
    errors = []
    for k in (8, 32, 128, 512):
        ids, log_probs, tail = _cache(teacher, k)
        approx = topk_divergence(student, ids, log_probs, tail, kind=kind).item()
        assert approx <= full * (1 + 1e-5)  # merging the tail can only lose divergence (data processing)
        errors.append((full - approx) / full)
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.5 * errors[0]


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_gradcheck_float64(chunk_size):
    # At T = 1 the detached estimate changes nothing for the divergences: the gradient is the exact gradient of the
    # loss value (soft_ce is left out: it also holds the estimate's entropy, which the detached target ignores).
    student, teacher = _logits(shape=(1, 3, 7), seed=3)
    ids, log_probs, tail = _cache(teacher, k=3)
    for kind in [k for k in KINDS if k != "soft_ce"]:
        s = student.double().requires_grad_(True)

        def loss(x, kind=kind):
            return topk_divergence(x, ids, log_probs.double(), tail.double(), kind=kind, chunk_size=chunk_size)

        assert torch.autograd.gradcheck(loss, (s,)), kind


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_treats_the_estimate_as_a_fixed_target(kind):
    # At T != 1 the gradient is that of the full-vocabulary divergence against the estimated teacher held constant.
    student, teacher = _logits(shape=(2, 3, 11), seed=10)
    ids, log_probs, tail = _cache(teacher, k=4)
    q1 = student.double().softmax(-1)
    rest = q1.scatter(-1, ids, 0.0)
    estimate = (tail.double().unsqueeze(-1) * rest / rest.sum(-1, keepdim=True)).scatter(-1, ids, log_probs.double().exp())
    s_top, s_full = student.double().requires_grad_(True), student.double().requires_grad_(True)
    topk_divergence(s_top, ids, log_probs.double(), tail.double(), kind=kind, temperature=2.5).backward()
    divergence(s_full, estimate.log(), kind=kind, temperature=2.5).backward()
    torch.testing.assert_close(s_top.grad, s_full.grad)


def test_chunked_matches_unchunked_and_masking():
    student, teacher = _logits(shape=(3, 5, 30), seed=4)
    ids, log_probs, tail = _cache(teacher, k=6)
    labels = torch.zeros(3, 5, dtype=torch.long)
    labels[1, 2:] = -100
    grads = []
    for chunk_size in (None, 2):
        s = student.clone().requires_grad_(True)
        value = topk_divergence(s, ids, log_probs, tail, labels, kind="jsd", temperature=2.0, chunk_size=chunk_size)
        value.backward()
        grads.append((value.detach(), s.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    assert grads[0][1][1, 2:].abs().sum() == 0
    s = student.clone().requires_grad_(True)
    empty = topk_divergence(s, ids, log_probs, tail, torch.full((3, 5), -100), kind="forward_kl", chunk_size=2)
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(s.grad, torch.zeros_like(s))


def test_tail_defaults_to_remaining_mass_and_half_precision_cache():
    student, teacher = _logits(seed=5)
    ids, log_probs, tail = _cache(teacher, k=4)
    torch.testing.assert_close(tail_mass_from_log_probs(log_probs), tail, rtol=1e-4, atol=1e-6)
    explicit = topk_divergence(student, ids, log_probs, tail, kind="forward_kl")
    implied = topk_divergence(student, ids.int(), log_probs.half(), None, kind="forward_kl")
    assert implied.dtype == torch.float32
    assert implied.item() == pytest.approx(explicit.item(), rel=2e-3)


def test_identical_distributions_give_zero_and_mse_is_refused():
    _, teacher = _logits(seed=6)
    ids, log_probs, tail = _cache(teacher, k=4)
    assert topk_divergence(teacher, ids, log_probs, tail, kind="forward_kl").item() == pytest.approx(0, abs=1e-6)
    with pytest.raises(UserError, match="loss.divergence"):
        topk_divergence(teacher, ids, log_probs, tail, kind="mse")
    with pytest.raises(ValueError, match="k must be"):
        ids_all = torch.arange(24).expand(2, 4, 24)
        topk_divergence(teacher, ids_all, torch.zeros(2, 4, 24), kind="forward_kl")


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_ce_and_topk_divergence_in_one_pass(chunk_size):
    from workbench.engine.losses import DivergenceSpec, logit_losses
    from workbench.engine.topk_losses import TopKTeacher

    student, teacher = _logits(seed=7)
    ids, log_probs, tail = _cache(teacher, k=5)
    targets = torch.randint(0, 24, (2, 4), generator=torch.Generator().manual_seed(0))
    targets[0, -1] = -100
    s = student.clone().requires_grad_(True)
    out = logit_losses(s, targets, TopKTeacher(ids, log_probs, tail), ce_weight=0.4, kd_weight=0.6,
                       spec=DivergenceSpec("jsd", temperature=2.0, chunk_size=chunk_size))
    out.total.backward()
    s2 = student.clone().requires_grad_(True)
    ce = torch.nn.functional.cross_entropy(s2.reshape(-1, 24), targets.reshape(-1))
    kd = topk_divergence(s2, ids, log_probs, tail, targets, kind="jsd", temperature=2.0)
    (0.4 * ce + 0.6 * kd).backward()
    assert out.ce.item() == pytest.approx(ce.item(), rel=1e-6)
    assert out.kd.item() == pytest.approx(kd.item(), rel=1e-6)
    torch.testing.assert_close(s.grad, s2.grad)


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_cache_tensors_from_inference_mode(chunk_size):
    student, teacher = _logits(seed=8)
    with torch.inference_mode():
        ids, log_probs, tail = _cache(teacher, k=4)
    s = student.clone().requires_grad_(True)
    topk_divergence(s, ids, log_probs, tail, kind="jsd", temperature=2.0, chunk_size=chunk_size).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
