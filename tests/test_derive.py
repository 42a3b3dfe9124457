"""Model specs and student derivations on tiny random models of four architectures."""

from __future__ import annotations

import pytest
import torch
from tiny import ARCHITECTURES, tiny_model_dir

from workbench.errors import UserError
from workbench.models.derive import format_index_list, importance_keep, kept_layers, layer_importance, parse_spec
from workbench.models.loading import count_parameters, decoder_layers, load_model, load_tokenizer, num_layers

IDS = torch.tensor([[4, 17, 60, 100, 23, 8, 150, 41, 9, 77, 12, 5]])


@pytest.fixture(scope="module")
def four_layer(tiny_root):
    return {
        arch: tiny_model_dir(tiny_root, arch, layers=4, hidden=32, heads=4, kv_heads=2, seed=3)
        for arch in ARCHITECTURES
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("prune=even&layers=4", [0, 1, 3, 4]),
        ("prune=even&layers=3", [0, 2, 4]),
        ("prune=even&layers=2", [0, 4]),
        ("prune=drop&block=1-3", [0, 4]),
        ("prune=drop&block=2-2", [0, 1, 3, 4]),
        ("prune=keep&layers=0-1,4", [0, 1, 4]),
        ("prune=keep&layers=3,1", [1, 3]),
    ],
)
def test_kept_layers(query, expected):
    assert kept_layers(parse_spec(f"some/model?{query}"), 5) == expected


def test_parse_spec_forms():
    plain = parse_spec("builtin:smollm2-135m-instruct")
    assert (plain.base, plain.derivation, plain.is_builtin) == ("builtin:smollm2-135m-instruct", None, True)
    fresh = parse_spec("/models/x?fresh&layers=4&hidden=256&heads=4&kv_heads=2")
    assert fresh.derivation == "fresh" and fresh.params == {
        "layers": "4",
        "hidden": "256",
        "heads": "4",
        "kv_heads": "2",
    }
    importance = parse_spec("org/name?prune=importance&layers=20")
    assert (importance.base, importance.method, importance.params) == ("org/name", "importance", {"layers": "20"})
    assert format_index_list([0, 1, 2, 3, 8, 28, 29]) == "0-3,8,28-29"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("base?prune=sideways&layers=2", "prune=one of"),
        ("base?prune=even", "takes layers="),
        ("base?prune=even&layers=0", "positive integer"),
        ("base?prune=drop&block=5-2", "runs backwards"),
        ("base?prune=keep&layers=a-b", "must look like 0-3,8,29"),
        ("base?fresh&layers=2&hidden=64", "fresh needs heads="),
        ("base?fresh&layers=2&hidden=64&heads=4&width=3", "unknown key"),
        ("base?fresh=1&layers=2&hidden=64&heads=4", "takes no value"),
        ("base?fresh&layers=2&hidden=64&heads=4&seed=-1", "seed must be a non-negative integer"),
        ("base?fresh&layers=0&hidden=64&heads=4&seed=0", "layers must be a positive integer"),
        ("base?prune=even&layers=2&layers=3", "given twice"),
        ("?prune=even&layers=2", "missing base"),
        ("", "empty spec"),
    ],
)
def test_bad_specs_name_the_spec_and_the_forms(spec, fragment):
    with pytest.raises(UserError) as info:
        parse_spec(spec)
    message = str(info.value)
    assert fragment in message and repr(spec) in message and "accepted forms" in message


def test_out_of_range_layers_are_rejected():
    with pytest.raises(UserError, match="out of range"):
        kept_layers(parse_spec("m?prune=keep&layers=0,7"), 5)
    with pytest.raises(UserError, match="only 5 layers"):
        kept_layers(parse_spec("m?prune=even&layers=6"), 5)
    with pytest.raises(UserError, match="leaves no layers"):
        kept_layers(parse_spec("m?prune=drop&block=0-4"), 5)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_keep_all_reproduces_base_logits(four_layer, arch):
    base = load_model(str(four_layer[arch]))
    pruned = load_model(f"{four_layer[arch]}?prune=keep&layers=0-3")
    with torch.no_grad():
        assert torch.equal(base(IDS).logits, pruned(IDS).logits)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_prune_keeps_the_chosen_layers_weights(four_layer, arch):
    base = load_model(str(four_layer[arch]))
    pruned = load_model(f"{four_layer[arch]}?prune=keep&layers=1,3")
    assert num_layers(pruned) == 2 and pruned.config.num_hidden_layers == 2
    for new_index, old_index in enumerate([1, 3]):
        new_state = decoder_layers(pruned)[new_index].state_dict()
        for name, tensor in decoder_layers(base)[old_index].state_dict().items():
            assert torch.equal(new_state[name], tensor), name
    assert torch.equal(pruned.get_input_embeddings().weight, base.get_input_embeddings().weight)
    assert torch.equal(pruned.get_output_embeddings().weight, base.get_output_embeddings().weight)
    attention_indices = [
        m.layer_idx for layer in decoder_layers(pruned) for m in layer.modules() if hasattr(m, "layer_idx")
    ]
    assert sorted(set(attention_indices)) == [0, 1]
    if getattr(pruned.config, "layer_types", None) is not None:
        assert len(pruned.config.layer_types) == 2
    assert count_parameters(pruned)["non_embedding"] < count_parameters(base)["non_embedding"]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_pruned_model_kv_cache_matches_full_forward(four_layer, arch):
    model = load_model(f"{four_layer[arch]}?prune=drop&block=1-2")
    with torch.no_grad():
        full = model(IDS, use_cache=False).logits[:, -1]
        prefix = model(IDS[:, :-1], use_cache=True)
        step = model(IDS[:, -1:], cache=prefix.cache, use_cache=True).logits[:, -1]
    assert torch.allclose(full, step, atol=1e-5)
    assert len(prefix.cache) == 2


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_pruned_model_round_trips_through_save(four_layer, arch, tmp_path):
    model = load_model(f"{four_layer[arch]}?prune=even&layers=2")
    model.save_pretrained(tmp_path / "student")
    reloaded = load_model(str(tmp_path / "student"))
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, reloaded(IDS).logits)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_fresh_model_has_requested_sizes(four_layer, arch):
    grouped = arch in ("llama", "qwen2")
    spec = f"{four_layer[arch]}?fresh&layers=3&hidden=48&heads=6&intermediate=40" + ("&kv_heads=2" if grouped else "")
    model = load_model(spec)
    config = model.config
    assert (num_layers(model), config.hidden_size, config.num_attention_heads) == (3, 48, 6)
    assert config.vocab_size == 168 and type(model).__name__ == type(load_model(str(four_layer[arch]))).__name__
    if grouped:
        assert config.num_key_value_heads == 2
        assert decoder_layers(model)[0].self_attn.k_proj.out_features == 2 * 8
    assert (config.n_inner if arch == "gpt2" else config.intermediate_size) == 40
    again = load_model(spec)
    assert torch.equal(model.get_input_embeddings().weight, again.get_input_embeddings().weight)  # seeded
    with torch.no_grad():
        assert torch.isfinite(model(IDS).logits).all()


def test_fresh_seed_zero_is_accepted_and_is_the_default_seed(four_layer):
    base = f"{four_layer['llama']}?fresh&layers=2&hidden=32&heads=4"
    assert parse_spec(f"{base}&seed=0").params["seed"] == "0"
    weights = {seed: load_model(f"{base}&seed={seed}").get_input_embeddings().weight for seed in (0, 1)}
    assert torch.equal(weights[0], load_model(base).get_input_embeddings().weight)
    assert not torch.equal(weights[0], weights[1])


def test_fresh_rejects_sizes_the_family_cannot_take(four_layer):
    with pytest.raises(UserError, match="divisible"):
        load_model(f"{four_layer['llama']}?fresh&layers=2&hidden=50&heads=4")
    with pytest.raises(UserError, match="no grouped key/value heads"):
        load_model(f"{four_layer['gpt2']}?fresh&layers=2&hidden=32&heads=4&kv_heads=2")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_importance_prune_is_deterministic_and_cached(four_layer, arch, tmp_path, monkeypatch):
    monkeypatch.setenv("KD_WORKBENCH_HOME", str(tmp_path))
    spec = f"{four_layer[arch]}?prune=importance&layers=2"
    first = load_model(spec)
    cache_files = list((tmp_path / "importance").glob("*.json"))
    assert len(cache_files) == 1
    second = load_model(spec)
    assert num_layers(first) == 2
    with torch.no_grad():
        assert torch.equal(first(IDS).logits, second(IDS).logits)


def test_importance_drops_a_layer_that_does_nothing(four_layer, tmp_path, monkeypatch):
    monkeypatch.setenv("KD_WORKBENCH_HOME", str(tmp_path / "home"))
    model = load_model(str(four_layer["llama"]))
    with torch.no_grad():
        for name in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
            decoder_layers(model)[2].get_parameter(name).zero_()  # layer 2 now returns its input unchanged
    model.save_pretrained(tmp_path / "idle-layer-2")
    load_tokenizer(str(four_layer["llama"])).save_pretrained(tmp_path / "idle-layer-2")
    scores = layer_importance(load_model(str(tmp_path / "idle-layer-2")), [IDS])
    assert scores[2] == pytest.approx(0.0, abs=1e-9) and min(scores[:2] + scores[3:]) > 1e-4
    assert importance_keep(scores, 3) == [0, 1, 3]
    pruned = load_model(f"{tmp_path / 'idle-layer-2'}?prune=importance&layers=3")
    assert torch.equal(decoder_layers(pruned)[2].mlp.down_proj.weight, decoder_layers(model)[3].mlp.down_proj.weight)
