"""Loading: local folders, tokenizers, parameter counts, hub ids offline, pickle and remote-code refusal."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch
from tiny import ARCHITECTURES, tiny_model_dir, tiny_tokenizer

from workbench.errors import UserError
from workbench.models.loading import count_parameters, load_config, load_model, load_tokenizer, num_layers

TEXT = "the king said to the people that the light was good ."


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_local_folder_loads_in_eval_mode_with_its_tokenizer(tiny_root, arch):
    folder = tiny_model_dir(tiny_root, arch, layers=2)
    model = load_model(str(folder))
    tokenizer = load_tokenizer(str(folder))
    assert not model.training and num_layers(model) == 2
    assert tokenizer(TEXT)["input_ids"] == tiny_tokenizer()(TEXT)["input_ids"]  # qwen2 folders included
    assert tokenizer.pad_token == "<pad>"
    assert load_config(str(folder)).model_type == arch


def test_pad_token_falls_back_to_eos(tiny_root, tmp_path):
    folder = tmp_path / "no-pad"
    shutil.copytree(tiny_model_dir(tiny_root, "llama"), folder)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config.pop("pad_token")
    config_file.write_text(json.dumps(config))
    assert load_tokenizer(str(folder)).pad_token == "</s>"


def test_count_parameters_counts_tied_weights_once_and_separates_embeddings(tiny_root):
    llama = load_model(str(tiny_model_dir(tiny_root, "llama")))  # tied embeddings
    counts = count_parameters(llama)
    assert counts["total"] == sum(p.numel() for p in llama.parameters())
    assert counts["total"] - counts["non_embedding"] == 168 * 32
    neox = load_model(str(tiny_model_dir(tiny_root, "gpt_neox")))  # untied input and output embeddings
    assert count_parameters(neox)["total"] - count_parameters(neox)["non_embedding"] == 2 * 168 * 32
    llama.model.embed_tokens.weight.requires_grad_(False)
    assert count_parameters(llama)["trainable"] == counts["total"] - 168 * 32


def test_dtype_and_device_are_applied(tiny_root):
    model = load_model(str(tiny_model_dir(tiny_root, "qwen2")), dtype=torch.bfloat16, device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16


@pytest.mark.timeout(30)  # a retried download would run for minutes
def test_hub_id_fails_fast_offline_with_a_useful_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as info:
        load_model("kd-workbench-tests/not-a-cached-model")
    message = str(info.value)
    assert "'kd-workbench-tests/not-a-cached-model'" in message and "local folder" in message
    assert "huggingface-cli download" in message


@pytest.mark.timeout(30)  # retries against an unreachable hub would run for minutes
def test_hub_id_fails_fast_when_the_hub_is_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(UserError, match="unreachable"):
        load_tokenizer("kd-workbench-tests/not-a-cached-model")


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no model folder"):
        load_model(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="unknown built-in"):
        load_model("builtin:gpt-17")


def test_pickle_weights_are_refused_unless_allowed(tiny_root, tmp_path):
    source = load_model(str(tiny_model_dir(tiny_root, "llama")))
    folder = tmp_path / "pickled"
    folder.mkdir()
    source.config.save_pretrained(folder)
    torch.save(source.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(UserError, match="allow_pickle"):
        load_model(str(folder))
    loaded = load_model(str(folder), allow_pickle=True)
    assert torch.equal(loaded.lm_head.weight, source.lm_head.weight)


def test_remote_code_is_not_run_unless_trusted(tiny_root, tmp_path):
    folder = tmp_path / "remote-code"
    shutil.copytree(tiny_model_dir(tiny_root, "llama"), folder)
    marker = tmp_path / "code-ran"
    (folder / "custom_config.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import LlamaConfig\n\nclass CustomConfig(LlamaConfig):\n    model_type = 'kd_custom_tiny'\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "custom_config.CustomConfig"}
    config["model_type"] = "kd_custom_tiny"  # unknown to transformers: only the repo's code could build it
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_model(str(folder))
    assert not marker.exists()
    assert load_config(str(folder), trust_remote_code=True).model_type == "kd_custom_tiny"
    assert marker.exists()


def test_builtin_conversion_runs_once_and_lands_atomically(tiny_root, tmp_path, monkeypatch):
    import threading

    import workbench.models.loading as models

    monkeypatch.setenv("KD_WORKBENCH_HOME", str(tmp_path))
    calls = []

    def convert(name, out_dir):  # the tiny model stands in for the GGUF file; the lock and rename are real
        calls.append(out_dir)
        time.sleep(0.3)
        assert not (tmp_path / "models" / name).exists()
        shutil.copytree(tiny_model_dir(tiny_root, "llama"), out_dir, dirs_exist_ok=True)

    monkeypatch.setattr(models, "_convert_gguf", convert)
    results = []
    threads = [threading.Thread(target=lambda: results.append(models.builtin_teacher_dir())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = tmp_path / "models" / "smollm2-135m-instruct"
    assert len(calls) == 1 and results == [target] * 3
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == [target.name]
    assert num_layers(load_model("builtin:smollm2-135m-instruct")) == 2
