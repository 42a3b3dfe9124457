"""Width pruning (MLP channels, attention heads by key/value group, hidden channels) on tiny Llama and Qwen2 models."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model_dir
from transformers import AutoModelForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from workbench.errors import UserError
from workbench.models.derive import decoder_layers, parse_spec
from workbench.models.loading import count_parameters, load_config, load_model, resolve_layers, resolve_width
from workbench.models.width import width_importance

IDS = torch.tensor([[4, 17, 60, 100, 23, 8, 150, 41, 9, 77, 12, 5], [9, 33, 2, 71, 150, 6, 18, 18, 40, 3, 99, 120]])
FAMILIES = ("llama", "qwen2")


@pytest.fixture(scope="module")
def bases(tiny_root):
    # hidden 32, 4 query heads in 2 key/value groups (head_dim 8), MLP 64
    return {arch: tiny_model_dir(tiny_root, arch, layers=3, hidden=32, heads=4, kv_heads=2, seed=5)
            for arch in FAMILIES}


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_WORKBENCH_HOME", str(tmp_path / "home"))


def logits(model, ids=IDS):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("arch", FAMILIES)
def test_keeping_every_channel_is_the_identity(bases, arch):
    base = load_model(str(bases[arch]))
    full = load_model(f"{bases[arch]}?prune=importance&mlp=64&heads=4&hidden=32")
    assert torch.equal(logits(base), logits(full))


@pytest.mark.parametrize("arch", FAMILIES)
def test_width_pruned_model_reloads_with_from_pretrained(bases, arch, tmp_path):
    spec = f"{bases[arch]}?prune=importance&layers=2&mlp=40&heads=2&hidden=24"
    model = load_model(spec)
    model.save_pretrained(tmp_path / "pruned")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "pruned")
    assert (reloaded.config.intermediate_size, reloaded.config.num_attention_heads,
            reloaded.config.num_key_value_heads, reloaded.config.hidden_size, reloaded.config.head_dim) == (
        40, 2, 1, 24, 8)
    assert torch.allclose(logits(model), logits(reloaded.eval()), atol=1e-6)
    config = load_config(spec)  # the config alone (no weights read) agrees with the pruned model
    assert (config.intermediate_size, config.num_attention_heads, config.hidden_size,
            config.num_hidden_layers) == (40, 2, 24, 2)
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(config)
    assert count_parameters(meta) == count_parameters(model)


@pytest.mark.parametrize("arch", FAMILIES)
def test_cut_channels_and_heads_equal_zeroing_them(bases, arch):
    """Dropping MLP channels or whole key/value groups gives exactly the logits of the full model with those
    channels' (heads') columns of the output projection zeroed: the kept q/k/v rows belong together."""
    spec = parse_spec(f"{bases[arch]}?prune=importance&mlp=24&heads=2")
    pruned = load_model(spec)
    full = load_model(str(bases[arch]))
    plan = resolve_width(spec, resolve_layers(spec, base_layers=3))
    with torch.no_grad():
        for layer, channels, groups in zip(decoder_layers(full), plan.mlp, plan.groups, strict=True):
            dropped = sorted(set(range(64)) - set(channels.tolist()))
            layer.mlp.down_proj.weight[:, dropped] = 0
            dropped_heads = [h for g in range(2) if g not in groups.tolist() for h in (2 * g, 2 * g + 1)]
            for head in dropped_heads:
                layer.self_attn.o_proj.weight[:, head * 8:(head + 1) * 8] = 0
    assert torch.allclose(logits(pruned), logits(full), atol=1e-5)


def _rms_norm(norm, x):
    x = x.double()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon) * norm.weight.double()


@pytest.mark.parametrize("arch", FAMILIES)
def test_importance_matches_an_independent_computation(bases, arch):
    """MLP, head and hidden-channel scores recomputed in float64 from each layer's own inputs."""
    model = load_model(str(bases[arch]))
    scores = width_importance(model, [IDS])
    seen = {}

    def keep(name):
        return lambda module, args, kwargs: seen.__setitem__(name, (args, kwargs))

    handles = []
    for i, layer in enumerate(decoder_layers(model)):
        handles += [layer.register_forward_pre_hook(keep(f"layer{i}"), with_kwargs=True),
                    layer.mlp.register_forward_pre_hook(keep(f"mlp{i}"), with_kwargs=True),
                    layer.self_attn.register_forward_pre_hook(keep(f"attn{i}"), with_kwargs=True)]
    handles.append(model.model.norm.register_forward_pre_hook(keep("final"), with_kwargs=True))
    logits(model)
    for handle in handles:
        handle.remove()

    def aggregate(per_token):  # (B, T, C): mean over tokens, then L2 over the sequences
        return per_token.mean(dim=1).pow(2).sum(dim=0).sqrt()

    hidden_rows = []
    for i, layer in enumerate(decoder_layers(model)):
        mlp_in = seen[f"mlp{i}"][0][0].double()
        mlp = layer.mlp
        act = torch.nn.functional.silu(mlp_in @ mlp.gate_proj.weight.double().T) * (mlp_in @ mlp.up_proj.weight.double().T)
        assert torch.allclose(scores["mlp"][i], aggregate(act.abs()), rtol=1e-4, atol=1e-6)

        attn = layer.self_attn
        args, kwargs = seen[f"attn{i}"]
        x = kwargs["hidden_states"].double() if "hidden_states" in kwargs else args[0].double()
        cos, sin = (t.double() for t in kwargs["position_embeddings"])
        length = x.shape[1]

        def project(x, linear, heads):
            out = x @ linear.weight.double().T + (linear.bias.double() if linear.bias is not None else 0)
            return out.view(*x.shape[:2], heads, 8).transpose(1, 2)

        q, k, v = project(x, attn.q_proj, 4), project(x, attn.k_proj, 2), project(x, attn.v_proj, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k, v = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
        weights = (q @ k.transpose(-1, -2)) / 8**0.5
        weights = weights.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
        heads_out = weights.softmax(-1) @ v  # (B, heads, T, 8)
        assert torch.allclose(scores["heads"][i], aggregate(heads_out.norm(dim=-1).transpose(1, 2)), rtol=1e-4)

        residual = seen[f"layer{i}"][0][0] if seen[f"layer{i}"][0] else seen[f"layer{i}"][1]["hidden_states"]
        mid = mlp_in  # the post-attention norm's output is the MLP's input
        hidden_rows.append(aggregate(_rms_norm(layer.input_layernorm, residual).abs()).pow(2)
                           + aggregate(mid.abs()).pow(2))
    hidden_rows.append(aggregate(_rms_norm(model.model.norm, seen["final"][0][0]).abs()).pow(2))
    assert torch.allclose(scores["hidden"], torch.stack(hidden_rows).sqrt(), rtol=1e-4)


def test_importance_prefers_a_channel_that_carries_signal(bases, tmp_path):
    """A head group and MLP channels silenced by zeroing their value / up rows score lowest and are cut first."""
    model = load_model(str(bases["llama"]))
    with torch.no_grad():
        for layer in decoder_layers(model):
            layer.mlp.up_proj.weight[:8] = 0  # channels 0-7 produce nothing
            layer.self_attn.v_proj.weight[:8] = 0  # key/value group 0 (query heads 0 and 1) outputs zeros
    model.save_pretrained(tmp_path / "silenced")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (bases["llama"] / name).exists():
            (tmp_path / "silenced" / name).write_bytes((bases["llama"] / name).read_bytes())
    spec = parse_spec(f"{tmp_path / 'silenced'}?prune=importance&mlp=56&heads=2")
    plan = resolve_width(spec, [0, 1, 2])
    for channels, groups in zip(plan.mlp, plan.groups, strict=True):
        assert set(channels.tolist()) == set(range(8, 64))
        assert groups.tolist() == [1]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("prune=importance&heads=3", "whole key/value groups of 2 query heads; choose one of 2, 4"),
        ("prune=importance&mlp=65", "mlp=65 is more than the base model's 64"),
        ("prune=importance&hidden=30", "hidden=30 must be a multiple of the 4 attention heads"),
    ],
)
def test_widths_the_base_cannot_take_are_refused(bases, query, fragment):
    with pytest.raises(UserError, match=fragment.replace("'", ".")):
        load_config(f"{bases['llama']}?{query}")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [("prune=importance&mlp=0", "mlp must be a positive integer"),
     ("prune=even&mlp=8", "prune=even takes layers="),
     ("prune=importance&width=8", "prune=importance takes layers=")],
)
def test_bad_width_specs_name_the_field(query, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_spec(f"base?{query}")


def test_width_pruning_refuses_other_families_by_name(tiny_root):
    folder = tiny_model_dir(tiny_root, "gpt2", layers=2, hidden=32, heads=4)
    with pytest.raises(UserError, match="GPT2LMHeadModel .gpt2. is not one of them"):
        load_model(f"{folder}?prune=importance&mlp=32")


def test_depth_and_width_compose(bases):
    model = load_model(f"{bases['llama']}?prune=keep&layers=0,2&mlp=32&heads=2&hidden=24")
    params = count_parameters(model)
    layers = decoder_layers(model)
    assert len(layers) == 2 and layers[0].mlp.down_proj.weight.shape == (24, 32)
    assert layers[1].self_attn.q_proj.weight.shape == (16, 24) and layers[1].self_attn.k_proj.weight.shape == (8, 24)
    assert model.get_input_embeddings().weight.shape[1] == 24
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert params["non_embedding"] < count_parameters(load_model(str(bases["llama"])))["non_embedding"] / 3
    assert torch.isfinite(logits(model)).all()


def test_compatibility_card_shows_what_was_pruned(bases):
    from workbench.analysis.compatibility import format_compatibility, model_summary

    card = model_summary(f"{bases['llama']}?prune=keep&layers=0,2&mlp=32&heads=2&hidden=24")
    assert card["pruned"] == [("layers", 3, 2), ("MLP", 64, 32), ("heads", 4, 2), ("hidden", 32, 24)]
    text = format_compatibility(card)
    share = card["params"]["non_embedding"] / card["base_non_embedding"]
    assert "layers 3 → 2, MLP 64 → 32, heads 4 → 2, hidden 32 → 24; non-embedding" in text
    assert f"({share:.3f} of the base)" in text and 0.1 < share < 0.4


@pytest.mark.parametrize("lora", [False, True])
def test_width_pruned_student_trains_with_lora_and_exports(tiny_teacher, tiny_text, tmp_path, lora):
    """A width-pruned student distilled (with LoRA merged on export, or fully) reloads with plain transformers and
    gives the app's logits, and differs from the untrained pruned student."""
    from engine_helpers import tiny_config

    from workbench.analysis.export import export_run
    from workbench.engine.trainer import train
    from workbench.runs.pool import ModelPool
    from workbench.runs.sinks import ListSink

    student = f"{tiny_teacher}?prune=importance&layers=3&mlp=96&heads=2&hidden=48"
    cfg = tiny_config(tiny_teacher, student, tiny_text, train={"heal_init": True, "heal_sequences": 8},
                      lora={"enabled": lora, "target_modules": ["q_proj", "v_proj"]})
    assert train(cfg, tmp_path / "run", ListSink())["state"] == "finished"
    result = export_run(tmp_path / "run", tmp_path / "export", evaluate=False)
    reloaded = AutoModelForCausalLM.from_pretrained(result["folder"]).eval()
    assert not any("lora" in key for key in reloaded.state_dict())
    assert (reloaded.config.intermediate_size, reloaded.config.num_attention_heads, reloaded.config.hidden_size,
            reloaded.config.num_hidden_layers) == (96, 2, 48, 3)
    app_model, _ = ModelPool(device="cpu").get(str(tmp_path / "run"))
    ids = IDS[:1]
    assert torch.allclose(logits(reloaded, ids), logits(app_model, ids).float(), atol=1e-5)
    assert not torch.allclose(logits(reloaded, ids), logits(load_model(student), ids), atol=1e-4)  # it trained
