"""Write a Llama, Mistral, Qwen2 or Qwen3 student as one GGUF file that llama.cpp (and Ollama) load: f16, q8_0 or q4_0.

    info = write_gguf(model, tokenizer, "exports/run-1/student-q8_0.gguf", "gguf-q8_0")
    info["size_bytes"], info["tensor_types"]

Tensor names come from gguf's own name map for the architecture (`token_embd`, `blk.N.attn_q`, ...); metadata keys
are the `llama.*` / `qwen2.*` / `qwen3.*` ones llama.cpp reads, every dimension taken from the model's config (pruned
students have their own hidden size, heads, head_dim and intermediate size). Mistral is written as `llama`, as
llama.cpp's own converter writes it (a sliding window in its config is not written: runtimes attend over the whole
context, the same below the window's length). Llama's q/k rows are reordered to the interleaved rotary layout
llama.cpp uses (Qwen2 and Qwen3 keep HF's half-split layout: llama.cpp runs them with NEOX rope; Qwen3's per-head
q/k norms go in as `attn_q_norm` / `attn_k_norm`). Quantized
blocks are made by `gguf.quants`. Norms and biases stay float32; a matrix whose rows are not a whole number of
quantization blocks falls back to f16 (as llama.cpp's own converter does); in the 4-bit file the token embedding and
the output head are q8_0, because they are the tensors 4-bit hurts most (llama-quantize keeps them wider too).
The byte-level BPE tokenizer (vocabulary, merges, special tokens) and the chat template are stored in the file.
"""

from __future__ import annotations

import json
from hashlib import sha256
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch

from workbench.errors import Message, UserError

# Relative logit error ||reloaded - source|| / ||source|| the tests allow each type against the float32 student
# (measured on tiny random Llama and Qwen2 models: f16 4e-4, q8_0 9e-3, q4_0 9e-2; the bounds leave headroom).
# Export reports the error and does not refuse on it: SmolLM2-135M's q4_0 file measures 0.34 (docs/export-formats.md).
GGUF_TOLERANCE = {"gguf-f16": 2e-3, "gguf-q8_0": 3e-2, "gguf-q4_0": 0.25}
# A reader must decode the file to exactly the rounded weights: only float32 summation order may differ.
LAYOUT_TOLERANCE = 1e-4
GGUF_TYPES: dict[str, gguf.GGMLQuantizationType] = {
    "gguf-f16": gguf.GGMLQuantizationType.F16,
    "gguf-q8_0": gguf.GGMLQuantizationType.Q8_0,
    "gguf-q4_0": gguf.GGMLQuantizationType.Q4_0,
}
FILE_TYPES = {
    gguf.GGMLQuantizationType.F16: gguf.LlamaFileType.MOSTLY_F16,
    gguf.GGMLQuantizationType.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
    gguf.GGMLQuantizationType.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0,
}
GGUF_ARCHS = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2, "qwen3": gguf.MODEL_ARCH.QWEN3}
# transformers' model_type -> the GGUF architecture llama.cpp runs it as
ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
WIDE_IN_4BIT = ("token_embd.weight", "output.weight")

# llama.cpp names a BPE pre-tokenizer by the token ids its tokenizer gives this text (convert_hf_to_gguf.py);
# the hashes below are the ones it lists for the tokenizers the workbench's teachers use. A tokenizer trained here
# has its own ids, so no hash knows it: its plain GPT-2 byte-level split is named by its shape instead.
PRE_TOKENIZER_CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 "
    "3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= "
    "нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure "
    "I'll make it, 'D you like some tea? We'Ve a'lL"
)
KNOWN_PRE_TOKENIZERS = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",
}


def gguf_architecture(config) -> str:
    """The GGUF architecture name of a model config (`llama` for Mistral), or a one-line refusal naming it."""
    model_type = getattr(config, "model_type", "?")
    if model_type not in ARCHITECTURES:
        raise UserError(Message("GGUF export: architecture {model_type!r} has no GGUF mapping here (supported: "
                                "{supported}); export it as safetensors or onnx", model_type=model_type,
                                supported=", ".join(ARCHITECTURES)))
    return ARCHITECTURES[model_type]


def _dimensions(config, arch: str) -> dict[str, Any]:
    """Every size the GGUF header needs, read from the config (never derived from hidden/heads when it is given)."""
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = dict(getattr(config, "rope_parameters", None) or {})
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", None):
        raise UserError(Message("GGUF export: rope_parameters.rope_type={rope_type!r} is not written by this exporter "
                                "(default rope only)", rope_type=rope_type))
    for flag in ("attention_bias", "mlp_bias"):
        if arch in ("llama", "qwen3") and getattr(config, flag, False):
            raise UserError(Message("GGUF export: {arch} with {flag}=true is not supported", arch=arch, flag=flag))
    return {
        "layers": config.num_hidden_layers, "hidden": config.hidden_size, "intermediate": config.intermediate_size,
        "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "context": config.max_position_embeddings,
        "rms_eps": float(config.rms_norm_eps), "vocab": config.vocab_size,
        "rope_theta": float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))),
    }


def _interleave_rope_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """HF Llama q/k rows (per head: first half, second half of the rotary pairs) -> llama.cpp's interleaved pairs.

    weight (heads*head_dim, in) -> same shape, rows of each head reordered as (head_dim/2, 2) -> (2, head_dim/2).T
    """
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _tensor_type(name: str, array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> gguf.GGMLQuantizationType:
    if array.ndim == 1:
        return gguf.GGMLQuantizationType.F32
    if qtype == gguf.GGMLQuantizationType.Q4_0 and name in WIDE_IN_4BIT:
        qtype = gguf.GGMLQuantizationType.Q8_0
    block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
    if array.shape[-1] % block_size:
        return gguf.GGMLQuantizationType.F16
    return qtype


def _encoded(array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def _named_weights(model, arch: str, layers: int):
    """(HF key, GGUF name, tensor) for each weight that goes into the file; a tied output head is left out."""
    name_map = gguf.get_tensor_name_map(GGUF_ARCHS[arch], layers)
    state = model.state_dict()
    tied = "lm_head.weight" in state and state["lm_head.weight"].data_ptr() == state[
        "model.embed_tokens.weight"].data_ptr()
    for key, tensor in state.items():
        if key == "lm_head.weight" and (tied or getattr(model.config, "tie_word_embeddings", False)):
            continue  # llama.cpp uses token_embd as the output head when output.weight is absent
        name = name_map.get_name(key, try_suffixes=(".weight", ".bias"))  # keeps the .weight / .bias suffix
        if name is None:
            raise UserError(Message("GGUF export: weight {key!r} of a {arch} model has no GGUF name", key=key,
                                    arch=arch))
        yield key, name, tensor


def _gguf_tensors(model, arch: str, dims: dict[str, Any]):
    """(gguf name, float32 array) for each weight of the model, Llama's q/k rows reordered for llama.cpp."""
    for key, name, tensor in _named_weights(model, arch, dims["layers"]):
        array = tensor.detach().float().cpu().numpy()
        if arch == "llama" and key.endswith(("q_proj.weight", "k_proj.weight")):
            heads = dims["heads"] if key.endswith("q_proj.weight") else dims["kv_heads"]
            if array.shape[0] != heads * dims["head_dim"]:
                raise UserError(Message("GGUF export: {key} has {rows} rows, not heads x head_dim = {heads} x "
                                        "{head_dim}; layers of different widths are not supported", key=key,
                                        rows=array.shape[0], heads=heads, head_dim=dims["head_dim"]))
            array = _interleave_rope_rows(array, heads)
        yield name, array


def _vocabulary(tokenizer, vocab_size: int) -> dict[str, Any]:
    """Tokens, token types and merges of a byte-level BPE tokenizer, padded to the model's vocabulary size."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    model_spec = spec.get("model") or {}
    pre = json.dumps(spec.get("pre_tokenizer") or {})
    if model_spec.get("type") != "BPE" or "ByteLevel" not in pre:
        kind = model_spec.get("type") or type(tokenizer).__name__
        raise UserError(Message("GGUF export: tokenizer model {kind!r} is not a byte-level BPE; the GGUF exporter "
                                "writes byte-level BPE (GPT-2 style) vocabularies only", kind=kind))
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    if max(by_id) >= vocab_size:
        raise UserError(Message("GGUF export: tokenizer has id {top} but the model's vocab_size is {vocab_size}",
                                top=max(by_id), vocab_size=vocab_size))
    added = {item.content: item for item in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for index in range(vocab_size):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in added:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if added[token].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    merges = [pair if isinstance(pair, str) else " ".join(pair) for pair in model_spec.get("merges", [])]
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
    return {"tokens": tokens, "types": types, "merges": merges, "pre": _pre_tokenizer_name(tokenizer, spec),
            "add_bos": adds_bos}


def _pre_tokenizer_name(tokenizer, spec: dict) -> str:
    """llama.cpp's name for the pre-tokenizer: a known tokenizer by its hash; else a plain byte-level split with
    GPT-2's regex (what `workbench train-tokenizer` writes) is "gpt-2"; else "default"."""
    check_ids = tokenizer.encode(PRE_TOKENIZER_CHECK_TEXT, add_special_tokens=False)
    known = KNOWN_PRE_TOKENIZERS.get(sha256(str(check_ids).encode()).hexdigest())
    if known is not None:
        return known
    pre = spec.get("pre_tokenizer") or {}
    plain_gpt2 = pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not spec.get("normalizer")
    return "gpt-2" if plain_gpt2 else "default"


def _write_tokenizer(writer: gguf.GGUFWriter, tokenizer, vocab_size: int) -> str:
    vocab = _vocabulary(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab["pre"])
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    writer.add_token_merges(vocab["merges"])
    for token_id, add in ((tokenizer.bos_token_id, writer.add_bos_token_id),
                          (tokenizer.eos_token_id, writer.add_eos_token_id),
                          (tokenizer.unk_token_id, writer.add_unk_token_id),
                          (tokenizer.pad_token_id, writer.add_pad_token_id)):
        if token_id is not None:
            add(int(token_id))
    writer.add_add_bos_token(vocab["add_bos"])
    writer.add_add_eos_token(False)
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)
    return vocab["pre"]


def _write_header(writer: gguf.GGUFWriter, dims: dict[str, Any], qtype, name: str) -> None:
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(dims["context"])
    writer.add_embedding_length(dims["hidden"])
    writer.add_block_count(dims["layers"])
    writer.add_feed_forward_length(dims["intermediate"])
    writer.add_head_count(dims["heads"])
    writer.add_head_count_kv(dims["kv_heads"])
    writer.add_key_length(dims["head_dim"])
    writer.add_value_length(dims["head_dim"])
    writer.add_rope_dimension_count(dims["head_dim"])
    writer.add_rope_freq_base(dims["rope_theta"])
    writer.add_layer_norm_rms_eps(dims["rms_eps"])
    writer.add_vocab_size(dims["vocab"])
    writer.add_file_type(FILE_TYPES[qtype])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


@torch.inference_mode()
def write_gguf(model, tokenizer, path: str | Path, fmt: str, *, name: str = "distilled student") -> dict[str, Any]:
    """Write `model` (float weights, LoRA already merged) and its tokenizer as GGUF `fmt` to `path`."""
    if fmt not in GGUF_TYPES:
        raise UserError(Message("GGUF export: format {fmt!r} unknown; choose one of {choices}", fmt=fmt,
                                choices=", ".join(GGUF_TYPES)))
    qtype = GGUF_TYPES[fmt]
    arch = gguf_architecture(model.config)
    dims = _dimensions(model.config, arch)
    path = Path(path)
    writer = gguf.GGUFWriter(path, arch)
    _write_header(writer, dims, qtype, name)
    pre = _write_tokenizer(writer, tokenizer, dims["vocab"])
    tensor_types: dict[str, int] = {}
    for tensor_name, array in _gguf_tensors(model, arch, dims):
        tensor_qtype = _tensor_type(tensor_name, array, qtype)
        writer.add_tensor(tensor_name, _encoded(array, tensor_qtype), raw_dtype=tensor_qtype)
        tensor_types[tensor_qtype.name] = tensor_types.get(tensor_qtype.name, 0) + 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"file": str(path), "format": fmt, "architecture": arch, "size_bytes": path.stat().st_size,
            "tensor_types": tensor_types, "pre_tokenizer": pre}


def check_gguf_exportable(model, tokenizer) -> None:
    """Raise the one-line refusal (architecture, config field, tokenizer) before anything is written."""
    arch = gguf_architecture(model.config)
    dims = _dimensions(model.config, arch)
    _vocabulary(tokenizer, dims["vocab"])


@torch.inference_mode()
def rounded_copy(model, fmt: str):
    """A copy of `model` whose weights went through the GGUF type each gets in `fmt` and back to float32.

    Quantization works on blocks along a row and the q/k reordering only moves whole rows, so this is the exact
    model a correct file decodes to: a reader that disagrees with it has the layout wrong, not the rounding.
    """
    import copy

    qtype = GGUF_TYPES[fmt]
    arch = gguf_architecture(model.config)
    rounded = copy.deepcopy(model).float().eval()
    params = dict(rounded.named_parameters(remove_duplicate=False)) | dict(rounded.named_buffers())
    for key, name, tensor in _named_weights(rounded, arch, model.config.num_hidden_layers):
        array = tensor.detach().float().cpu().numpy()
        tensor_qtype = _tensor_type(name, array, qtype)
        if tensor_qtype == gguf.GGMLQuantizationType.F32:
            continue
        back = gguf.quants.dequantize(_encoded(array, tensor_qtype), tensor_qtype).reshape(array.shape)
        params[key].data.copy_(torch.from_numpy(np.ascontiguousarray(back, dtype=np.float32)))
    return rounded


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-12))


def load_gguf_model(folder: Path, filename: str):
    """The file as a float32 transformers model through its dequantizing GGUF loader. That loader does not map
    `qwen3.attention.key_length` (it assumes Qwen3's usual head_dim of 128), so for Qwen3 the file's own value is
    read and passed on: a width-pruned Qwen3 student keeps its head_dim."""
    from transformers import AutoModelForCausalLM

    reader = gguf.GGUFReader(Path(folder) / filename)
    extra = {}
    if reader.fields["general.architecture"].contents() == "qwen3":
        extra["head_dim"] = int(reader.fields["qwen3.attention.key_length"].contents())
    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32, **extra).eval()


@torch.inference_mode()
def gguf_reload_check(model, tokenizer, folder: Path, filename: str, fmt: str, text: str) -> dict[str, Any]:
    """Load the file with transformers' GGUF loader (it dequantizes) and compare its logits on `text` with the
    rounded student's (layout: must agree to LAYOUT_TOLERANCE) and the float32 student's (the quantization's cost)."""
    reloaded = load_gguf_model(folder, filename)
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :64]
    source = model.float()(input_ids=ids).logits.float()
    rounded = rounded_copy(model, fmt)(input_ids=ids).logits.float()
    actual = reloaded(input_ids=ids).logits.float()
    layout_error = _relative_error(actual, rounded)
    if layout_error > LAYOUT_TOLERANCE:
        raise RuntimeError(f"GGUF export check failed: the file decodes to logits {layout_error:.3g} (relative) away "
                           f"from the {fmt} rounding of the student's weights; the tensor layout is wrong")
    return {"max_abs_logit_diff": float((actual - source).abs().max()),
            "relative_logit_error": _relative_error(actual, source), "layout_error": layout_error,
            "tolerance": GGUF_TOLERANCE[fmt], "check_tokens": int(ids.shape[1]), "class": type(reloaded).__name__,
            "loader": "transformers GGUF loader (dequantized to float32)"}
