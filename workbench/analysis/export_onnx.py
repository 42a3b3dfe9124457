"""Write a Llama or Qwen2 student as an ONNX decoder step with a KV cache, in float32 or dynamic int8.

    info = write_onnx(model, "exports/run-1-onnx", "onnx-int8")      # model-int8.onnx
    check = onnx_reload_check(model, tokenizer, folder, info["file"], "onnx-int8", text)

The step graph is traced with torch.onnx's dynamo exporter (its inputs and outputs are described in
workbench.analysis.onnx_runtime, which runs it); batch, new tokens and cached tokens are dynamic dimensions, so one
graph does the prompt pass and each decode step, and generation carries the cache instead of recomputing the prefix.
The int8 file is made from the float32 one by ONNX Runtime's quantization tools: MatMul weights to int8 in blocks of
32 with one scale each (`MatMulNBitsQuantizer`, bits 8, int8 compute), then the embedding table to int8
(`quantize_dynamic` on Gather). Plain `quantize_dynamic` on the MatMuls (one scale per weight tensor, activations
quantized per tensor) was tried first and dropped: on SmolLM2-135M its logits were 0.56 (relative) from the float
model's and no greedy token agreed, against 0.04 and most tokens for the blocked file. Every dimension comes from the
model's config.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import Message, UserError

ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
ONNX_ARCHITECTURES = ("llama", "qwen2")
# Relative logit error ||onnxruntime - student|| / ||student|| the tests allow each file (measured: float32 below
# 1e-6; int8 1.4e-2 on a tiny random Llama, 3.7e-2 on SmolLM2-135M; the bounds leave headroom).
ONNX_TOLERANCE = {"onnx": 1e-4, "onnx-int8": 0.05}
INT8_BLOCK = 32  # weights per int8 scale, as in GGUF's q8_0
EXTERNAL_DATA_BYTES = 1_500_000_000  # protobuf's 2 GB limit: larger models keep their weights beside the graph


class DecoderStep(nn.Module):
    """The causal LM as a function of tensors only: (ids, mask, positions, stacked past) -> (logits, stacked present).

    past_keys, past_values: (layers, B, kv_heads, P, head_dim); the outputs have P+T positions.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, past_keys, past_values):
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        for layer in range(past_keys.shape[0]):
            cache.update(past_keys[layer], past_values[layer], layer)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                         use_cache=True)
        keys = torch.stack([layer.keys for layer in cache.layers])
        values = torch.stack([layer.values for layer in cache.layers])
        return out.logits, keys, values


def check_onnx_exportable(model) -> None:
    model_type = getattr(model.config, "model_type", "?")
    if model_type not in ONNX_ARCHITECTURES:
        raise UserError(Message("ONNX export: architecture {model_type!r} is not supported here (supported: "
                                "{supported}); export it as safetensors", model_type=model_type,
                                supported=", ".join(ONNX_ARCHITECTURES)))


def _example_inputs(config) -> tuple[torch.Tensor, ...]:
    layers, kv_heads = config.num_hidden_layers, config.num_key_value_heads or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    batch, new, past = 2, 3, 4  # sizes above 1, so that the exporter keeps them dynamic
    return (torch.zeros(batch, new, dtype=torch.long), torch.ones(batch, past + new, dtype=torch.long),
            torch.arange(past, past + new).repeat(batch, 1),
            torch.zeros(layers, batch, kv_heads, past, head_dim), torch.zeros(layers, batch, kv_heads, past, head_dim))


def _export_float(model, path: Path) -> None:
    dim = torch.export.Dim
    batch, new, past, total = dim("batch", max=256), dim("seq", max=8192), dim("past", max=8192), dim("total", max=16384)
    shapes = {"input_ids": {0: batch, 1: new}, "attention_mask": {0: batch, 1: total},
              "position_ids": {0: batch, 1: new}, "past_keys": {1: batch, 3: past}, "past_values": {1: batch, 3: past}}
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    step = DecoderStep(model.float().eval()).eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, _example_inputs(model.config), str(path), input_names=list(shapes),
                          output_names=["logits", "present_keys", "present_values"], dynamic_shapes=shapes,
                          dynamo=True, external_data=weight_bytes > EXTERNAL_DATA_BYTES, verbose=False)


def _quantize_int8(float_path: Path, path: Path) -> None:
    """ONNX Runtime's quantization tools: every MatMul weight to int8 in blocks of 32 along the input (one scale per
    block, MatMulNBits computing in int8), then the embedding table (Gather) to int8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    blocked = path.with_name(path.stem + ".blocked.onnx")
    # both tools log every node they skip (and a pre-processing hint for image models) at INFO / WARNING
    loggers = [logging.getLogger(), logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        quantizer = MatMulNBitsQuantizer(str(float_path), bits=8, block_size=INT8_BLOCK, is_symmetric=True,
                                         accuracy_level=4)
        quantizer.process()
        quantizer.model.save_model_to_file(str(blocked), use_external_data_format=False)
        quantize_dynamic(str(blocked), str(path), weight_type=QuantType.QInt8, op_types_to_quantize=["Gather"])
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        blocked.unlink(missing_ok=True)


def write_onnx(model, folder: str | Path, fmt: str) -> dict[str, Any]:
    """Write the decoder step of `model` (LoRA merged) into `folder` as `fmt`; returns the file and its size."""
    if fmt not in ONNX_FILES:
        raise UserError(Message("ONNX export: format {fmt!r} unknown; choose one of {choices}", fmt=fmt,
                                choices=", ".join(ONNX_FILES)))
    check_onnx_exportable(model)
    folder = Path(folder)
    float_path = folder / ONNX_FILES["onnx"]
    _export_float(model, float_path)
    path = float_path
    if fmt == "onnx-int8":
        path = folder / ONNX_FILES[fmt]
        _quantize_int8(float_path, path)
        for leftover in folder.glob("model.onnx*"):  # the float graph (and any external data) was a means only
            leftover.unlink()
    size = sum(p.stat().st_size for p in folder.glob(path.name + "*"))
    return {"file": path.name, "format": fmt, "architecture": model.config.model_type, "size_bytes": size,
            "runtime": "onnxruntime"}


@torch.inference_mode()
def onnx_reload_check(model, tokenizer, folder: Path, filename: str, fmt: str, text: str) -> dict[str, Any]:
    """Run the file in ONNX Runtime: teacher-forced logits against the student's, then greedy tokens against
    PyTorch's greedy tokens over the KV cache. A float32 file that disagrees is an error."""
    from workbench.analysis.onnx_runtime import OnnxDecoder

    decoder = OnnxDecoder(folder / filename)
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :64]
    source = model.float()(input_ids=ids).logits.float()
    actual = torch.from_numpy(decoder.logits(ids.numpy()))
    relative = float((actual - source).norm() / source.norm().clamp_min(1e-12))
    if fmt == "onnx" and relative > ONNX_TOLERANCE["onnx"]:  # int8's cost is reported, not refused
        raise RuntimeError(f"ONNX export check failed: ONNX Runtime logits are {relative:.3g} (relative) from the "
                           "student's")
    prompt = ids[:, :8]
    reference = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=False,
                               min_new_tokens=8, pad_token_id=tokenizer.pad_token_id)[0, prompt.shape[1]:].tolist()
    generated = decoder.greedy(prompt[0].tolist(), max_new_tokens=8)
    agree = next((i for i, (a, b) in enumerate(zip(generated, reference, strict=True)) if a != b), len(reference))
    return {"max_abs_logit_diff": float((actual - source).abs().max()), "relative_logit_error": relative,
            "tolerance": ONNX_TOLERANCE[fmt], "check_tokens": int(ids.shape[1]),
            "greedy_tokens_equal": agree, "greedy_tokens": len(reference),
            "loader": "onnxruntime (CPUExecutionProvider)"}
