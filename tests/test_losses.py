"""Logit divergences, the fused CE + KD pass, hidden-state and attention losses against float64 references."""

import math

import pytest
import torch
import torch.nn.functional as F

from workbench.engine.losses import (
    DIVERGENCE_KINDS,
    HIDDEN_KINDS,
    LN_EPS,
    DivergenceSpec,
    attention_loss,
    divergence,
    hidden_state_loss,
    logit_losses,
)

DIVERGENCES = [k for k in DIVERGENCE_KINDS if k != "mse"]


def _softmax64(row, temperature):
    scaled = [float(x) / temperature for x in row]
    top = max(scaled)
    exps = [math.exp(x - top) for x in scaled]
    total = sum(exps)
    return [e / total for e in exps]


def _kl64(a, b):
    return sum(x * math.log(x / y) for x, y in zip(a, b, strict=True) if x > 0)


def _reference_row(s_row, t_row, kind, temperature, beta, alpha):
    """One position's loss in plain Python floats (float64), straight from the formulas in the issue."""
    if kind == "mse":
        return sum((float(a) - float(b)) ** 2 for a, b in zip(s_row, t_row, strict=True)) / len(s_row)
    p, q = _softmax64(t_row, temperature), _softmax64(s_row, temperature)
    if kind == "forward_kl":
        value = _kl64(p, q)
    elif kind == "reverse_kl":
        value = _kl64(q, p)
    elif kind == "jsd":
        m = [beta * x + (1 - beta) * y for x, y in zip(p, q, strict=True)]
        value = beta * _kl64(p, m) + (1 - beta) * _kl64(q, m)
    elif kind == "kl_mix":
        value = (1 - beta) * _kl64(p, q) + beta * _kl64(q, p)
    elif kind == "skew_forward_kl":
        value = _kl64(p, [alpha * x + (1 - alpha) * y for x, y in zip(p, q, strict=True)])
    elif kind == "skew_reverse_kl":
        value = _kl64(q, [(1 - alpha) * x + alpha * y for x, y in zip(p, q, strict=True)])
    elif kind == "tvd":
        value = 0.5 * sum(abs(x - y) for x, y in zip(p, q, strict=True))
    else:
        value = -sum(x * math.log(y) for x, y in zip(p, q, strict=True))
    return value * temperature**2


def reference_divergence(student, teacher, labels, kind, temperature=1.0, beta=0.5, alpha=0.1, ignore_index=-100):
    values = []
    for b in range(student.shape[0]):
        for t in range(student.shape[1]):
            if labels is not None and int(labels[b, t]) == ignore_index:
                continue
            row = _reference_row(student[b, t].tolist(), teacher[b, t].tolist(), kind, temperature, beta, alpha)
            values.append(row)
    return sum(values) / len(values) if values else 0.0


def _inputs(shape=(2, 5, 13), seed=0, scale=3.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    student = (torch.randn(shape, generator=gen) * scale).to(dtype)
    teacher = (torch.randn(shape, generator=gen) * scale).to(dtype)
    labels = torch.randint(0, shape[-1], shape[:-1], generator=gen)
    labels[0, 1] = labels[1, -1] = -100
    return student, teacher, labels


@pytest.mark.parametrize("kind", DIVERGENCE_KINDS)
@pytest.mark.parametrize("temperature,beta,alpha", [(1.0, 0.5, 0.1), (2.5, 0.3, 0.25), (0.7, 0.9, 0.6)])
def test_matches_float64_reference(kind, temperature, beta, alpha):
    student, teacher, labels = _inputs()
    got = divergence(student, teacher, labels, kind=kind, temperature=temperature, beta=beta, alpha=alpha)
    want = reference_divergence(student, teacher, labels, kind, temperature, beta, alpha)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want, rel=2e-5, abs=1e-6)


@pytest.mark.parametrize("kind", DIVERGENCE_KINDS)
def test_chunked_matches_unchunked_value_and_gradient(kind):
    student, teacher, labels = _inputs(shape=(3, 7, 17), seed=1)
    results = []
    for chunk_size in (None, 1, 4, 1000):
        s = student.clone().requires_grad_(True)
        t = teacher.clone().requires_grad_(True)
        loss = divergence(s, t, labels, kind=kind, temperature=2.0, chunk_size=chunk_size)
        loss.backward()
        results.append((loss.detach(), s.grad, t.grad))
    base = results[0]
    assert base[1].abs().sum() > 0 and base[2].abs().sum() > 0
    for value, s_grad, t_grad in results[1:]:
        torch.testing.assert_close(value, base[0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(s_grad, base[1], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(t_grad, base[2], rtol=1e-5, atol=1e-7)
        masked = labels == -100
        assert s_grad[masked].abs().sum() == 0


@pytest.mark.parametrize("kind", DIVERGENCE_KINDS)
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_gradcheck_float64(kind, chunk_size):
    student, teacher, labels = _inputs(shape=(2, 3, 5), seed=2, scale=1.5, dtype=torch.float64)
    student.requires_grad_(True)
    teacher.requires_grad_(True)

    def loss(s, t):
        return divergence(s, t, labels, kind=kind, temperature=1.7, beta=0.4, alpha=0.2, chunk_size=chunk_size)

    # fast_mode checks a random projection of the Jacobian; the chunked path recomputes per chunk, so it is slow
    assert torch.autograd.gradcheck(loss, (student, teacher), fast_mode=chunk_size is not None)


@pytest.mark.parametrize("kind", DIVERGENCE_KINDS)
def test_identical_inputs_give_zero(kind):
    student, _, labels = _inputs()
    for chunk_size in (None, 4):
        value = divergence(student, student.clone(), labels, kind=kind, temperature=2.0, chunk_size=chunk_size)
        expected = reference_divergence(student, student, labels, kind, 2.0) if kind == "soft_ce" else 0.0
        assert value.item() == pytest.approx(expected, abs=2e-6, rel=1e-5)


def test_jsd_symmetric_at_half():
    student, teacher, labels = _inputs(seed=3)
    forward = divergence(student, teacher, labels, kind="jsd", beta=0.5, temperature=1.3)
    backward = divergence(teacher, student, labels, kind="jsd", beta=0.5, temperature=1.3)
    assert forward.item() > 0.01
    assert forward.item() == pytest.approx(backward.item(), rel=1e-6)
    skewed = divergence(teacher, student, labels, kind="jsd", beta=0.2, temperature=1.3)
    assert skewed.item() != pytest.approx(divergence(student, teacher, labels, kind="jsd", beta=0.2).item(), rel=1e-3)


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_endpoints_equal_plain_kl_exactly(chunk_size):
    student, teacher, labels = _inputs(seed=4)

    def run(kind, **kw):
        return divergence(student, teacher, labels, kind=kind, temperature=1.5, chunk_size=chunk_size, **kw)

    assert torch.equal(run("jsd", beta=0.0), run("forward_kl"))
    assert torch.equal(run("jsd", beta=1.0), run("reverse_kl"))
    assert torch.equal(run("kl_mix", beta=0.0), run("forward_kl"))
    assert torch.equal(run("kl_mix", beta=1.0), run("reverse_kl"))
    # kl_mix is linear in β between its end points (jsd is not: `near` below)
    mixed = run("kl_mix", beta=0.2).item()
    assert mixed == pytest.approx(0.8 * run("forward_kl").item() + 0.2 * run("reverse_kl").item(), rel=1e-5)
    assert torch.equal(run("skew_forward_kl", alpha=0.0), run("forward_kl"))
    assert torch.equal(run("skew_reverse_kl", alpha=0.0), run("reverse_kl"))
    assert run("skew_forward_kl", alpha=1.0).item() == 0.0
    near = run("jsd", beta=1e-4).item()
    assert 0 <= near < 0.01 * run("forward_kl").item()


@pytest.mark.parametrize("kind", DIVERGENCE_KINDS)
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_all_masked_gives_zero_with_finite_gradient(kind, chunk_size):
    student, teacher, _ = _inputs()
    student[0, 0, 0] = float("nan")
    labels = torch.full(student.shape[:-1], -100)
    s = student.clone().requires_grad_(True)
    loss = divergence(s, teacher, labels, kind=kind, chunk_size=chunk_size)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(s.grad, torch.zeros_like(s))


@pytest.mark.parametrize("kind", DIVERGENCE_KINDS)
def test_t2_scaling(kind):
    student, teacher, labels = _inputs(seed=5)
    scaled = divergence(student, teacher, labels, kind=kind, temperature=3.0, t2_scale=True)
    plain = divergence(student, teacher, labels, kind=kind, temperature=3.0, t2_scale=False)
    factor = 1.0 if kind == "mse" else 9.0
    assert scaled.item() == pytest.approx(factor * plain.item(), rel=1e-6)


@pytest.mark.parametrize("kind", DIVERGENCE_KINDS)
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_bf16_inputs_use_float32_math(kind, chunk_size):
    student, teacher, labels = _inputs(seed=6, dtype=torch.bfloat16)
    s = student.clone().requires_grad_(True)
    value = divergence(s, teacher, labels, kind=kind, temperature=2.0, chunk_size=chunk_size)
    value.backward()
    # The reference sees exactly the bf16 values, upcast: any error left is the loss's own arithmetic.
    want = reference_divergence(student.double(), teacher.double(), labels, kind, 2.0)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(want, rel=2e-5, abs=1e-6)
    assert s.grad.dtype == torch.bfloat16 and torch.isfinite(s.grad).all()


def test_sum_reduction_and_masking_by_labels():
    student, teacher, labels = _inputs(seed=7)
    mean = divergence(student, teacher, labels, kind="forward_kl")
    total = divergence(student, teacher, labels, kind="forward_kl", reduction="sum", chunk_size=3)
    assert total.item() == pytest.approx(mean.item() * int((labels != -100).sum()), rel=1e-5)
    changed = teacher.clone()
    changed[labels == -100] = 50.0
    assert divergence(student, changed, labels, kind="forward_kl").item() == pytest.approx(mean.item(), rel=1e-7)


def test_teacher_minus_inf_logits_stay_finite():
    student, teacher, labels = _inputs(seed=8)
    teacher[..., :4] = float("-inf")
    for chunk_size in (None, 3):
        s = student.clone().requires_grad_(True)
        loss = divergence(s, teacher, labels, kind="forward_kl", chunk_size=chunk_size)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_chunked_backward_twice_with_retain_graph():
    student, teacher, labels = _inputs(seed=9)
    s = student.clone().requires_grad_(True)
    loss = divergence(s, teacher, labels, kind="jsd", chunk_size=3) * 2.0
    (first,) = torch.autograd.grad(loss, s, retain_graph=True)
    (second,) = torch.autograd.grad(loss, s)
    torch.testing.assert_close(first, second)


def test_shape_mismatch_raises():
    student, teacher, labels = _inputs()
    with pytest.raises(ValueError, match="shape"):
        divergence(student, teacher[..., :-1], kind="forward_kl")
    with pytest.raises(ValueError, match="labels"):
        divergence(student, teacher, labels[:, :-1], kind="forward_kl")
    with pytest.raises(ValueError, match="kind"):
        divergence(student, teacher, kind="kl")


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_ce_and_divergence_in_one_pass(chunk_size):
    student, teacher, labels = _inputs(seed=10)
    s = student.clone().requires_grad_(True)
    out = logit_losses(s, labels, teacher, ce_weight=0.3, kd_weight=0.7,
                       spec=DivergenceSpec("reverse_kl", temperature=2.0, chunk_size=chunk_size))
    out.total.backward()
    s2 = student.clone().requires_grad_(True)
    ce = torch.nn.functional.cross_entropy(s2.reshape(-1, 13), labels.reshape(-1), ignore_index=-100)
    kd = divergence(s2, teacher, labels, kind="reverse_kl", temperature=2.0)
    (0.3 * ce + 0.7 * kd).backward()
    assert out.ce.item() == pytest.approx(ce.item(), rel=1e-6)
    assert out.kd.item() == pytest.approx(kd.item(), rel=1e-6)
    assert out.total.item() == pytest.approx(0.3 * ce.item() + 0.7 * kd.item(), rel=1e-6)
    torch.testing.assert_close(s.grad, s2.grad)
    ce_only = logit_losses(student, labels, None, ce_weight=1.0, kd_weight=0.0, spec=DivergenceSpec(chunk_size=chunk_size))
    assert ce_only.total.item() == pytest.approx(ce.item(), rel=1e-6) and ce_only.kd.item() == 0.0


def _reference_hidden(s, t, kind, mask):
    values = []
    for b in range(s.shape[0]):
        for i in range(s.shape[1]):
            if mask is not None and not mask[b, i]:
                continue
            x, y = s[b, i].double(), t[b, i].double()
            if kind == "ln_mse":  # (h − mean) / sqrt(var + eps), the biased variance over the width
                x, y = ((h - h.mean()) / math.sqrt(float(((h - h.mean()) ** 2).mean()) + LN_EPS) for h in (x, y))
            if kind in ("mse", "ln_mse"):
                values.append(float(((x - y) ** 2).sum()) / x.numel())
            else:
                values.append(1 - float((x * y).sum()) / math.sqrt(float((x * x).sum()) * float((y * y).sum())))
    return sum(values) / len(values) if values else 0.0


@pytest.mark.parametrize("kind", HIDDEN_KINDS)
def test_hidden_state_loss(kind):
    gen = torch.Generator().manual_seed(11)
    s, t = torch.randn(2, 6, 8, generator=gen), torch.randn(2, 6, 8, generator=gen)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    for m in (None, mask):
        assert hidden_state_loss(s, t, kind, m).item() == pytest.approx(_reference_hidden(s, t, kind, m), rel=1e-5)
    assert hidden_state_loss(s, s.clone(), kind).item() == pytest.approx(0.0, abs=1e-6)
    s.requires_grad_(True)
    empty = hidden_state_loss(s, t, kind, torch.zeros(2, 6))
    empty.backward()
    assert empty.item() == 0.0 and torch.isfinite(s.grad).all()
    with pytest.raises(ValueError):
        hidden_state_loss(s, t, "l1")


def test_config_offers_exactly_the_kinds_the_losses_compute():
    from workbench import config

    assert config.DIVERGENCE_KINDS == DIVERGENCE_KINDS and config.HIDDEN_KINDS == HIDDEN_KINDS


def test_ln_mse_ignores_scale_and_offset_and_bounds_every_position():
    gen = torch.Generator().manual_seed(13)
    s, t = (torch.randn(2, 5, 16, generator=gen, dtype=torch.float64) for _ in range(2))
    t_massive = t.clone()
    t_massive[:, 0] *= 1000.0  # a first position thousands of times larger, as in a decoder's hidden states
    plain = hidden_state_loss(s, t, "ln_mse").item()  # equal up to the layer norm's eps
    assert hidden_state_loss(s, t_massive, "ln_mse").item() == pytest.approx(plain, rel=1e-5)
    assert hidden_state_loss(3.0 * s + 2.0, t, "ln_mse").item() == pytest.approx(plain, rel=1e-5)
    assert hidden_state_loss(s, t_massive, "mse").item() > 1000 * hidden_state_loss(s, t, "mse").item()
    assert 0.0 <= hidden_state_loss(s, -t, "ln_mse").item() <= 4.0
    centred = s - s.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
    correlation = F.cosine_similarity(*centred, dim=-1).mean()
    assert hidden_state_loss(s, t, "ln_mse").item() == pytest.approx(2 * (1 - correlation.item()), rel=1e-3)
    s_param = s.clone().requires_grad_(True)
    hidden_state_loss(s_param, t_massive, "ln_mse").backward()
    assert torch.isfinite(s_param.grad).all() and s_param.grad.abs().sum() > 0


def _attention(batch, heads, length, gen):
    scores = torch.randn(batch, heads, length, length, generator=gen)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(-1)


def _reference_attention(s, t, kind, mask):
    if s.shape[1] != t.shape[1]:
        s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    values = []
    for b in range(s.shape[0]):
        for i in range(s.shape[2]):
            if mask is not None and not mask[b, i]:
                continue
            per_head = []
            for h in range(s.shape[1]):
                x, y = s[b, h, i].tolist(), t[b, h, i].tolist()
                if kind == "kl":
                    per_head.append(sum(b_ * math.log(b_ / a_) for a_, b_ in zip(x, y, strict=True) if b_ > 0))
                else:
                    per_head.append(sum((a_ - b_) ** 2 for a_, b_ in zip(x, y, strict=True)) / len(x))
            values.append(sum(per_head) / len(per_head))
    return sum(values) / len(values)


@pytest.mark.parametrize("kind", ["kl", "mse"])
@pytest.mark.parametrize("heads", [(4, 4), (2, 6)])
def test_attention_loss(kind, heads):
    gen = torch.Generator().manual_seed(12)
    s, t = _attention(2, heads[0], 5, gen).double(), _attention(2, heads[1], 5, gen).double()
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[0, 3:] = False
    for m in (None, mask):
        got = attention_loss(s.float(), t.float(), kind, m)
        assert got.item() == pytest.approx(_reference_attention(s, t, kind, m), rel=1e-5)
    same = attention_loss(s.float(), s.float(), kind)
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    s_param = s.float().requires_grad_(True)
    loss = attention_loss(s_param, t.float(), kind, torch.zeros(2, 5))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(s_param.grad).all()


def _peak_allocated_bytes(step):
    """Peak of the running total of CPU allocations (torch.profiler memory events) while `step` runs."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def test_chunked_transient_memory_is_a_fraction_of_unchunked():
    student, teacher, _ = _inputs(shape=(2, 256, 4096), seed=13)
    logits_bytes = student.numel() * student.element_size()
    transient = {}
    for chunk_size in (None, 32):
        s = student.clone().requires_grad_(True)

        def step(s=s, chunk_size=chunk_size):
            divergence(s, teacher, kind="forward_kl", temperature=2.0, chunk_size=chunk_size).backward()

        transient[chunk_size] = _peak_allocated_bytes(step) - logits_bytes  # minus the logits' own gradient
    assert transient[None] > 2 * logits_bytes
    assert transient[32] < 0.25 * transient[None]


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_teacher_from_inference_mode(chunk_size):
    student, teacher, labels = _inputs(seed=14)
    with torch.inference_mode():
        frozen_teacher, frozen_labels = teacher.clone(), labels.clone()
    grads = []
    for t, y in ((teacher, labels), (frozen_teacher, frozen_labels)):
        s = student.clone().requires_grad_(True)
        for kind in ("forward_kl", "mse"):
            divergence(s, t, y, kind=kind, chunk_size=chunk_size).backward()
        logit_losses(s, y, t, ce_weight=1.0, kd_weight=1.0, spec=DivergenceSpec(chunk_size=chunk_size)).total.backward()
        grads.append(s.grad)
    torch.testing.assert_close(grads[0], grads[1])
