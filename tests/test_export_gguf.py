"""GGUF export: the file reads back with gguf's reader (names, keys, types, tokenizer) and with transformers' GGUF
loader, whose logits match the student's within each type's stated bound and equal the rounded weights' exactly
(so the q/k layout is right); runs export through the CLI, LoRA checkpoints merge first, refusals are one line.

Stated bounds (relative logit error ||gguf - student|| / ||student||): f16 2e-3, q8_0 3e-2, q4_0 0.25.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gguf
import pytest
import torch
from tiny import tiny_bpe_model_dir, tiny_text_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

from workbench.analysis.export import CHECK_TEXT, export_run
from workbench.analysis.export_formats import GGUF_FORMATS
from workbench.analysis.export_gguf import GGUF_TOLERANCE, LAYOUT_TOLERANCE, load_gguf_model, rounded_copy, write_gguf
from workbench.analysis.export_onnx import ONNX_TOLERANCE
from workbench.analysis.onnx_runtime import OnnxDecoder
from workbench.cli import main as cli_main

PROMPT = "the king said to his son that the light of the land is good ."


@pytest.fixture(scope="module")
def bpe_llama(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gguf-models")
    return tiny_bpe_model_dir(root, tiny_text_file(root), "llama", 300, hidden=64)


def _model(bpe_llama: Path, kind: str):
    """A tiny model of `kind` on the byte-level BPE tokenizer of `bpe_llama`."""
    if kind == "llama-tied":
        return AutoModelForCausalLM.from_pretrained(bpe_llama).eval()
    tokenizer = AutoTokenizer.from_pretrained(bpe_llama)
    common = dict(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  num_hidden_layers=2, tie_word_embeddings=False)
    if kind == "qwen2":
        config = Qwen2Config(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                             **common)
    elif kind == "qwen3":  # per-head q/k norms; head_dim given, not hidden/heads (the loader must read it from the file)
        config = Qwen3Config(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                             head_dim=32, **common)
    elif kind == "mistral":  # written as llama, as llama.cpp's converter does
        config = MistralConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                               **common)
    else:  # a width-pruned Llama: head_dim given (not hidden/heads), intermediate not a multiple of the block size
        config = LlamaConfig(hidden_size=96, intermediate_size=80, num_attention_heads=3, num_key_value_heads=1,
                             head_dim=16, **common)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def _field(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


@pytest.mark.parametrize("kind", ["llama-tied", "qwen2", "llama-pruned", "qwen3", "mistral"])
@pytest.mark.parametrize("fmt", GGUF_FORMATS)
def test_gguf_reads_back_and_matches_the_student(tmp_path, bpe_llama, kind, fmt):
    model = _model(bpe_llama, kind)
    tokenizer = AutoTokenizer.from_pretrained(bpe_llama)
    info = write_gguf(model, tokenizer, tmp_path / "student.gguf", fmt)
    cfg = model.config
    arch = {"mistral": "llama"}.get(cfg.model_type, cfg.model_type)

    reader = gguf.GGUFReader(tmp_path / "student.gguf")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    expected_keys = {f"{arch}.block_count": cfg.num_hidden_layers, f"{arch}.embedding_length": cfg.hidden_size,
                     f"{arch}.feed_forward_length": cfg.intermediate_size,
                     f"{arch}.attention.head_count": cfg.num_attention_heads,
                     f"{arch}.attention.head_count_kv": cfg.num_key_value_heads,
                     f"{arch}.attention.key_length": head_dim, f"{arch}.rope.dimension_count": head_dim,
                     f"{arch}.context_length": cfg.max_position_embeddings, "general.architecture": arch,
                     "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.eos_token_id": tokenizer.eos_token_id,
                     "tokenizer.chat_template": tokenizer.chat_template}
    for key, value in expected_keys.items():
        assert _field(reader, key) == value, key
    assert len(_field(reader, "tokenizer.ggml.tokens")) == cfg.vocab_size
    assert len(_field(reader, "tokenizer.ggml.merges")) > 0
    types = {tensor.name: tensor.tensor_type for tensor in reader.tensors}
    layer_names = {f"blk.{i}.{part}.weight" for i in range(cfg.num_hidden_layers) for part in (
        "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
    expected_names = {"token_embd.weight", "output_norm.weight"} | layer_names
    if not cfg.tie_word_embeddings:
        expected_names.add("output.weight")
    if arch == "qwen2":
        expected_names |= {f"blk.{i}.attn_{p}.bias" for i in range(cfg.num_hidden_layers) for p in "qkv"}
    if arch == "qwen3":
        expected_names |= {f"blk.{i}.attn_{p}_norm.weight" for i in range(cfg.num_hidden_layers) for p in "qk"}
    assert set(types) == expected_names
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    main_type = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0", "gguf-q4_0": "Q4_0"}[fmt]
    assert types["blk.0.attn_q.weight"].name == main_type
    if cfg.intermediate_size % 32:  # rows of ffn_down are not whole blocks: f16, as llama.cpp's converter does
        assert types["blk.0.ffn_down.weight"].name == "F16"
    assert info["size_bytes"] == (tmp_path / "student.gguf").stat().st_size

    reloaded = load_gguf_model(tmp_path, "student.gguf")
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        source, actual = model(ids).logits, reloaded(ids).logits
        rounded = rounded_copy(model, fmt)(ids).logits
    assert float((actual - rounded).norm() / rounded.norm()) <= LAYOUT_TOLERANCE  # layout exact
    assert float((actual - source).norm() / source.norm()) <= GGUF_TOLERANCE[fmt]
    gguf_tokenizer = AutoTokenizer.from_pretrained(tmp_path, gguf_file="student.gguf")
    assert gguf_tokenizer(PROMPT)["input_ids"] == tokenizer(PROMPT)["input_ids"]


def test_smaller_types_give_smaller_files(tmp_path, bpe_llama):
    model = _model(bpe_llama, "qwen2")
    tokenizer = AutoTokenizer.from_pretrained(bpe_llama)
    sizes = [write_gguf(model, tokenizer, tmp_path / f"{fmt}.gguf", fmt)["size_bytes"] for fmt in GGUF_FORMATS]
    assert sizes[0] > sizes[1] > sizes[2]


def _bpe_run(tmp_path: Path, bpe_llama: Path, text: Path) -> Path:
    from finished_run import make_finished_run

    run = make_finished_run(tmp_path / "runs", bpe_llama, bpe_llama, text, checkpoint_steps=())
    shutil.rmtree(run / "student")
    shutil.copytree(bpe_llama, run / "student")
    return run


def test_export_cli_writes_each_gguf_type(tmp_path, bpe_llama, tiny_text, capsys):
    run = _bpe_run(tmp_path, bpe_llama, tiny_text)
    for fmt in GGUF_FORMATS:
        out = tmp_path / f"out-{fmt}"
        assert cli_main(["export", str(run), str(out), "--format", fmt, "--no-eval"]) == 0
        printed = capsys.readouterr().out
        assert f"({fmt})" in printed and "relative logit error" in printed
        name = f"student-{fmt.removeprefix('gguf-')}.gguf"
        assert {name, "export.json", "distill_config.yaml"} <= {p.name for p in out.iterdir()}
        reloaded = AutoModelForCausalLM.from_pretrained(out, gguf_file=name, dtype=torch.float32)
        assert type(reloaded).__name__ == "LlamaForCausalLM"


def test_lora_checkpoint_is_merged_before_gguf_and_onnx(tmp_path, bpe_llama, tiny_text):
    from finished_run import make_finished_run, save_student_checkpoint

    from workbench.config import DistillConfig
    from workbench.models.loading import load_model
    from workbench.models.lora import wrap_lora

    run = make_finished_run(tmp_path / "runs", bpe_llama, bpe_llama, tiny_text, checkpoint_steps=())
    cfg = DistillConfig.load(run / "config.yaml")
    cfg.lora.enabled, cfg.lora.target_modules = True, ["q_proj", "k_proj", "v_proj"]
    cfg.save(run / "config.yaml")
    torch.manual_seed(0)
    peft_model = wrap_lora(load_model(str(bpe_llama)), cfg.lora)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    checkpoint = save_student_checkpoint(run, 3, peft_model, lora=True)
    ids = AutoTokenizer.from_pretrained(bpe_llama)(CHECK_TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = peft_model.eval()(ids).logits
        base = load_model(str(bpe_llama))(ids).logits

    result = export_run(checkpoint, tmp_path / "lora-f16", fmt="gguf-f16", evaluate=False)
    reloaded = AutoModelForCausalLM.from_pretrained(result["folder"], gguf_file=result["file"], dtype=torch.float32)
    with torch.no_grad():
        actual = reloaded(ids).logits
    assert float((actual - expected).norm() / expected.norm()) <= GGUF_TOLERANCE["gguf-f16"]
    assert float((base - expected).norm() / expected.norm()) > 10 * GGUF_TOLERANCE["gguf-f16"]
    assert result["relative_logit_error"] <= GGUF_TOLERANCE["gguf-f16"]

    onnx = export_run(checkpoint, tmp_path / "lora-onnx", fmt="onnx", evaluate=False)  # the same merge for ONNX
    onnx_logits = torch.from_numpy(OnnxDecoder(Path(onnx["folder"]) / onnx["file"]).logits(ids.numpy()))
    assert float((onnx_logits - expected).norm() / expected.norm()) <= ONNX_TOLERANCE["onnx"]


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error:" in line]


def test_refusals_are_one_line(tmp_path, bpe_llama, tiny_text, tiny_teacher, tiny_student, capsys):
    from finished_run import make_finished_run
    from tiny import tiny_model_dir

    word_level = make_finished_run(tmp_path / "runs", tiny_teacher, tiny_student, tiny_text, checkpoint_steps=())
    gpt2_run = _bpe_run(tmp_path / "gpt2", bpe_llama, tiny_text)
    shutil.rmtree(gpt2_run / "student")
    shutil.copytree(tiny_model_dir(tmp_path / "models", "gpt2"), gpt2_run / "student")
    capsys.readouterr()  # the setup's progress bars
    assert cli_main(["export", str(word_level), str(tmp_path / "a"), "--format", "gguf-q8_0", "--no-eval"]) == 2
    (err,) = _error_lines(capsys.readouterr().err)  # transformers' loading bars share stderr
    assert "WordLevel" in err

    assert cli_main(["export", str(gpt2_run), str(tmp_path / "b"), "--format", "gguf-f16", "--no-eval"]) == 2
    (err,) = _error_lines(capsys.readouterr().err)
    assert "'gpt2'" in err and "no GGUF mapping" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("kind", ["llama-tied", "qwen2", "llama-pruned", "qwen3", "mistral"])
def test_llama_cpp_runs_the_file(tmp_path, bpe_llama, kind):
    """With the `llama` extra installed, llama.cpp itself loads each file: same token ids for the text, logits within
    the type's bound, greedy generation through its KV cache equal to PyTorch's for f16."""
    pytest.importorskip("llama_cpp")
    from workbench.analysis.llama_cpp_runtime import LlamaCppCausalLM

    model = _model(bpe_llama, kind)
    tokenizer = AutoTokenizer.from_pretrained(bpe_llama)
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        source = model(ids).logits
    for fmt in GGUF_FORMATS:
        write_gguf(model, tokenizer, tmp_path / f"{fmt}.gguf", fmt)
        runner = LlamaCppCausalLM(tmp_path / f"{fmt}.gguf", threads=1, context=256)
        assert runner.llm.tokenize(PROMPT.encode(), add_bos=False, special=False) == ids[0].tolist()
        actual = runner(input_ids=ids).logits[..., : source.shape[-1]]
        assert float((actual - source).norm() / source.norm()) <= GGUF_TOLERANCE[fmt], fmt
        if fmt == "gguf-f16":  # rows of a batch each get their own logits (the card scores batches of 4)
            batch = torch.cat([ids, ids.flip(-1)])
            both = runner(input_ids=batch).logits
            for row in range(2):
                alone = runner(input_ids=batch[row : row + 1]).logits[0]
                assert torch.allclose(both[row], alone, atol=1e-5), row
            prompt = ids[:, :6]
            expected = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6,
                                      min_new_tokens=6, do_sample=False, pad_token_id=0)
            assert runner.generate(prompt, max_new_tokens=6, min_new_tokens=6).tolist() == expected.tolist()
