"""Layer-mapping presets, validation of custom pairs, and the projectors."""

import math

import pytest
import torch

from workbench.engine.mapping import (
    Projectors,
    describe_mapping,
    hidden_state_index,
    resolve_mapping,
    uniform_teacher_layer,
)
from workbench.errors import UserError


@pytest.mark.parametrize("student_layers,teacher_layers", [(2, 4), (20, 30), (10, 30), (3, 7), (5, 5), (6, 4), (5, 2)])
def test_uniform_is_half_up_rounding(student_layers, teacher_layers):
    pairs = resolve_mapping("uniform", None, student_layers, teacher_layers)
    assert [s for s, _ in pairs] == list(range(student_layers))
    for s, t in pairs:
        exact = (s + 1) * teacher_layers / student_layers
        assert t == max(math.floor(exact + 0.5) - 1, 0)
    assert pairs[-1] == (student_layers - 1, teacher_layers - 1)


def test_uniform_differs_from_python_round_on_ties():
    # 20 -> 30: student layer 2 gives (2 + 1)·30/20 = 4.5; half-up says teacher 4, round() would say 3.
    assert uniform_teacher_layer(2, 20, 30) == 4
    assert round(4.5) - 1 == 3
    assert resolve_mapping("uniform", None, 2, 4) == [(0, 1), (1, 3)]


def test_last_and_custom():
    assert resolve_mapping("last", ["0:0"], 3, 8) == [(2, 7)]
    assert resolve_mapping("custom", ["emb:emb", "0:3", " 1 : 7 "], 2, 8) == [("emb", "emb"), (0, 3), (1, 7)]
    assert resolve_mapping("custom", "0:1,1:1", 2, 4) == [(0, 1), (1, 1)]


@pytest.mark.parametrize(
    "pairs,fragment",
    [
        (["2:3"], "student layer 2 is out of range"),
        (["0:8"], "teacher layer 8 is out of range"),
        (["0:3", "0:5"], "appears twice"),
        (["emb:3"], "emb can only be paired with emb"),
        (["1:emb"], "emb can only be paired with emb"),
        (["a:b"], "items must be"),
        (["1-3"], "items must be"),
        (["-1:3"], "items must be"),
        ([], "at least one pair"),
    ],
)
def test_custom_pairs_validation(pairs, fragment):
    with pytest.raises(UserError) as error:
        resolve_mapping("custom", pairs, 2, 8)
    message = str(error.value)
    assert "mapping.pairs" in message and fragment in message
    assert "0..1" in message and "0..7" in message


def test_bad_preset_and_layer_counts():
    with pytest.raises(UserError, match="mapping.strategy"):
        resolve_mapping("even", None, 2, 4)
    with pytest.raises(UserError, match="student layer"):
        resolve_mapping("uniform", None, 0, 4)


def test_describe_mapping_and_hidden_index():
    pairs = resolve_mapping("custom", ["emb:emb", "1:3"], 2, 4)
    described = describe_mapping(pairs, 2, 4)
    assert described["student_layers"] == 2 and described["teacher_layers"] == 4
    assert described["pairs"][0] == {"student": "emb", "teacher": "emb", "student_hidden_index": 0,
                                     "teacher_hidden_index": 0}
    assert described["pairs"][1]["teacher_hidden_index"] == 4
    assert hidden_state_index("emb") == 0 and hidden_state_index(5) == 6


def test_projectors_linear_when_widths_differ():
    pairs = resolve_mapping("uniform", None, 2, 4)
    torch.manual_seed(0)
    projectors = Projectors(pairs, student_width=32, teacher_width=64)
    assert not projectors.is_identity
    hidden = torch.randn(2, 5, 32, dtype=torch.bfloat16)
    out = projectors(pairs[0], hidden)
    assert out.shape == (2, 5, 64) and out.dtype == torch.float32
    state = projectors.state_dict()
    assert set(state) == {"projections.s0_t1.weight", "projections.s0_t1.bias", "projections.s1_t3.weight",
                          "projections.s1_t3.bias"}
    reloaded = Projectors(pairs, 32, 64)
    reloaded.load_state_dict(state)
    torch.testing.assert_close(reloaded(pairs[0], hidden), out)
    out.sum().backward()
    assert projectors.projections["s0_t1"].weight.grad is not None


def test_projectors_identity_when_widths_match():
    pairs = [("emb", "emb"), (0, 1)]
    projectors = Projectors(pairs, 16, 16)
    assert projectors.is_identity and len(list(projectors.parameters())) == 0
    hidden = torch.randn(1, 3, 16)
    assert projectors(("emb", "emb"), hidden) is hidden


def test_source_pairs_each_kept_layer_with_the_teacher_layer_it_was_copied_from():
    from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT
    from workbench.engine.mapping import is_pruned_from, source_layers

    kept = source_layers(DEFAULT_STUDENT, BUILTIN_TEACHER, 30)
    assert kept == [0, 1, 2, 6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23, 24, 27, 28, 29]
    source = resolve_mapping("source", None, 19, 30, source=kept)
    uniform = resolve_mapping("uniform", None, 19, 30)
    assert source[3] == (3, 6) and uniform[3] == (3, 5)  # uniform pairs the copy of layer 6 with layer 5
    assert sum(a != b for a, b in zip(source, uniform, strict=True)) >= 5
    assert is_pruned_from(DEFAULT_STUDENT, BUILTIN_TEACHER) and not is_pruned_from(BUILTIN_TEACHER, BUILTIN_TEACHER)
    with pytest.raises(UserError, match="mapping.strategy source"):
        source_layers(f"{BUILTIN_TEACHER}?fresh&layers=4&hidden=64&heads=4&kv_heads=2", BUILTIN_TEACHER, 30)
    with pytest.raises(UserError, match="mapping.strategy source"):
        resolve_mapping("source", None, 3, 30, source=None)
