"""The closed-form chunked path (workbench.engine.closed_form) against autograd through the plain formulas, in float64."""

import pytest
import torch

import workbench.engine.closed_form as closed_form
import workbench.engine.topk_losses as sparse_losses
from workbench.engine.closed_form import block_rows, closed_kind
from workbench.engine.losses import DivergenceSpec, divergence, logit_losses
from workbench.engine.topk_losses import TopKTeacher

# (kind, beta, alpha) that have a closed form: the three kinds and the jsd / skew end points equal to them
CLOSED = [
    ("forward_kl", 0.5, 0.1),
    ("reverse_kl", 0.5, 0.1),
    ("soft_ce", 0.5, 0.1),
    ("jsd", 0.0, 0.1),
    ("jsd", 1.0, 0.1),
    ("kl_mix", 0.0, 0.1),
    ("kl_mix", 1.0, 0.1),
    ("skew_forward_kl", 0.5, 0.0),
    ("skew_reverse_kl", 0.5, 0.0),
]


def _inputs(shape=(2, 6, 11), seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    student = (torch.randn(shape, generator=gen) * 3).to(dtype)
    teacher = (torch.randn(shape, generator=gen) * 3).to(dtype)
    targets = torch.randint(0, shape[-1], shape[:-1], generator=gen)
    targets[0, 2] = targets[1, -1] = -100
    return student, teacher, targets


@pytest.fixture
def closed_calls(monkeypatch):
    """Counts the blocks that went through the closed form (so a test knows autograd was not used instead)."""
    calls = []

    def counting(real):
        def wrapper(*args, **kwargs):
            calls.append(args[0].shape[0])
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(closed_form, "logit_rows", counting(closed_form.logit_rows))
    monkeypatch.setattr(sparse_losses, "topk_forward_kl_rows", counting(sparse_losses.topk_forward_kl_rows))
    return calls


def test_closed_kinds():
    assert [closed_kind(k, b, a) for k, b, a in CLOSED] == [
        "forward_kl", "reverse_kl", "soft_ce", "forward_kl", "reverse_kl", "forward_kl", "reverse_kl", "forward_kl",
        "reverse_kl"]
    for kind, beta, alpha in [("jsd", 0.5, 0.1), ("kl_mix", 0.2, 0.1), ("tvd", 0.5, 0.1), ("mse", 0.5, 0.1), ("skew_forward_kl", 0.5, 0.3)]:
        assert closed_kind(kind, beta, alpha) is None


@pytest.mark.parametrize("kind,beta,alpha", CLOSED)
@pytest.mark.parametrize("temperature", [1.0, 2.5])
@pytest.mark.parametrize("ce_weight", [0.0, 0.4])
def test_matches_autograd_value_parts_and_gradient(kind, beta, alpha, temperature, ce_weight, closed_calls):
    student, teacher, targets = _inputs()
    results = []
    for chunk_size in (None, 4):  # None: autograd through log_softmax; 4: the closed form in blocks
        s = student.clone().requires_grad_(True)
        out = logit_losses(s, targets, teacher, ce_weight=ce_weight, kd_weight=0.7,
                           spec=DivergenceSpec(kind, temperature, beta, alpha, chunk_size=chunk_size))
        out.total.backward()
        results.append((out.total.detach(), out.ce, out.kd, s.grad))
    assert closed_calls, "the chunked call did not take the closed form"
    (value, ce, kd, grad), (c_value, c_ce, c_kd, c_grad) = results
    assert grad.abs().sum() > 0 and kd > 0
    for want, got in ((value, c_value), (ce, c_ce), (kd, c_kd), (grad, c_grad)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert c_grad[targets == -100].abs().sum() == 0


@pytest.mark.parametrize("kind,beta,alpha", CLOSED[:3])
def test_gradcheck_student_only(kind, beta, alpha, closed_calls):
    student, teacher, targets = _inputs(shape=(2, 3, 7), seed=3)
    student.requires_grad_(True)

    def loss(s):
        return logit_losses(s, targets, teacher, ce_weight=0.3, kd_weight=0.9,
                            spec=DivergenceSpec(kind, 1.7, beta, alpha, chunk_size=2)).total

    assert torch.autograd.gradcheck(loss, (student,))
    assert closed_calls


def test_divergence_without_targets_and_values_without_gradient(closed_calls):
    student, teacher, labels = _inputs(seed=4)
    want = divergence(student, teacher, labels, kind="forward_kl", temperature=2.0)
    with torch.no_grad():
        got = divergence(student, teacher, labels, kind="forward_kl", temperature=2.0, chunk_size=3)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=0)
    assert closed_calls


def test_teacher_gradient_falls_back_to_autograd(closed_calls):
    student, teacher, labels = _inputs(seed=5)
    s, t = student.clone().requires_grad_(True), teacher.clone().requires_grad_(True)
    divergence(s, t, labels, kind="forward_kl", chunk_size=3).backward()
    assert not closed_calls and t.grad.abs().sum() > 0


def test_teacher_minus_inf_logits_give_the_finite_autograd_answer():
    student, teacher, labels = _inputs(seed=6)
    teacher[..., :3] = float("-inf")
    grads = []
    for chunk_size in (None, 3):
        s = student.clone().requires_grad_(True)
        loss = divergence(s, teacher, labels, kind="forward_kl", chunk_size=chunk_size)
        loss.backward()
        grads.append((loss.detach(), s.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    torch.testing.assert_close(grads[1][1], grads[0][1])


def test_bf16_logits_get_a_bf16_gradient_close_to_float64():
    student, teacher, targets = _inputs(shape=(2, 8, 301), seed=7)
    s64 = student.clone().requires_grad_(True)
    logit_losses(s64, targets, teacher, ce_weight=0.5, kd_weight=1.0).total.backward()
    s16 = student.bfloat16().requires_grad_(True)
    out = logit_losses(s16, targets, teacher.bfloat16(), ce_weight=0.5, kd_weight=1.0, spec=DivergenceSpec(chunk_size=5))
    out.total.backward()
    assert s16.grad.dtype == torch.bfloat16 and out.total.dtype == torch.float32
    torch.testing.assert_close(s16.grad.double(), s64.grad, rtol=0.02, atol=2e-4)


def test_cpu_blocks_stay_cache_sized_and_other_devices_keep_the_chunk():
    assert block_rows(1024, 49152, torch.device("cpu")) == 10
    assert block_rows(4, 49152, torch.device("cpu")) == 4
    assert block_rows(1024, 2**21, torch.device("cpu")) == 1
    assert block_rows(1024, 49152, torch.device("cuda")) == 1024


def test_cpu_splits_a_large_vocabulary_chunk_into_blocks(closed_calls):
    student, teacher, targets = _inputs(shape=(2, 3, 2**18), seed=8, dtype=torch.float32)
    s = student.clone().requires_grad_(True)
    logit_losses(s, targets, teacher, ce_weight=0.5, kd_weight=1.0, spec=DivergenceSpec(chunk_size=1024)).total.backward()
    assert closed_calls == [2, 2, 2] and torch.isfinite(s.grad).all()


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "soft_ce"])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_topk_cache_path_matches_autograd(kind, temperature, closed_calls):
    student, teacher, targets = _inputs(shape=(2, 5, 17), seed=9)
    top_lp, top_ids = torch.log_softmax(teacher, -1).topk(4, dim=-1)
    tail = 1.0 - top_lp.exp().sum(-1)  # float64 (the default tail is computed in float32)
    results = []
    for chunk_size in (None, 3):
        s = student.clone().requires_grad_(True)
        out = logit_losses(s, targets, TopKTeacher(top_ids, top_lp, tail), ce_weight=0.2, kd_weight=1.0,
                           spec=DivergenceSpec(kind, temperature, chunk_size=chunk_size))
        out.total.backward()
        results.append((out.total.detach(), out.ce, out.kd, s.grad))
    assert closed_calls
    for want, got in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_topk_forward_kl_keeps_its_digits_when_the_student_is_sure():
    """A student with almost all its mass on the cached ids: the tail term needs its mass Q outside them to many
    digits; Q is summed from the small probabilities, not taken as 1 − Σ top-k, so float32 agrees with float64."""
    student, teacher, targets = _inputs(shape=(2, 3, 50), seed=10)
    top_lp, top_ids = torch.log_softmax(teacher, -1).topk(3, dim=-1)
    student = student.scatter(-1, top_ids, 30.0)  # the student's top-3 are the teacher's: Q is about 1e-11
    tail = 1.0 - top_lp.exp().sum(-1)
    values = []
    for dtype in (torch.float64, torch.float32):
        s = student.to(dtype, copy=True).requires_grad_(True)
        out = logit_losses(s, targets, TopKTeacher(top_ids, top_lp.to(dtype), tail.to(dtype)), ce_weight=0.0,
                           kd_weight=1.0, spec=DivergenceSpec(chunk_size=2))
        out.total.backward()
        values.append((out.kd.double(), s.grad.double()))
    assert values[0][0] > 1.0  # the tail term r · (log r − log Q) dominates
    torch.testing.assert_close(values[1][0], values[0][0], rtol=1e-5, atol=0)
    torch.testing.assert_close(values[1][1], values[0][1], rtol=1e-4, atol=1e-6)


def test_backward_twice_with_retain_graph_recomputes_the_same_gradient(closed_calls):
    student, teacher, labels = _inputs(seed=11)
    s = student.clone().requires_grad_(True)
    loss = logit_losses(s, labels, teacher, ce_weight=0.5, kd_weight=1.0, spec=DivergenceSpec(chunk_size=3)).total * 2.0
    (first,) = torch.autograd.grad(loss, s, retain_graph=True)
    (second,) = torch.autograd.grad(loss, s)
    torch.testing.assert_close(first, second)
    assert len(closed_calls) == 8  # 12 rows in blocks of 3, once in the forward and once more for the second
