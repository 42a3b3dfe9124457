"""Exported artefacts (GGUF and ONNX folders written by `workbench export`) as rows of the report card.

    is_artefact("exports/run-1-int8")                       # a folder whose export.json names a GGUF or ONNX format
    model, tokenizer, facts = load_artefact("exports/run-1-int8")
    artefact_sentence(card, entry)                          # "31% of the teacher's size on disk, 2.4× ..."

Each artefact runs where it is meant to run, as far as this machine allows: ONNX files in ONNX Runtime (CPU), GGUF
files in llama.cpp through llama-cpp-python when it is installed (`pip install -e ".[llama]"`, a source build).
Without it a GGUF file is read with transformers' GGUF loader, which dequantizes every tensor to float32 and runs in
PyTorch: the quality numbers are those of the quantized weights, speed and memory are PyTorch's, and the row says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.analysis.export_formats import GGUF_FORMATS, ONNX_FORMATS
from workbench.analysis.llama_cpp_runtime import LlamaCppCausalLM, llama_cpp_available
from workbench.errors import Message, UserError

EXPORT_META = "export.json"


def export_meta(folder: Path) -> dict[str, Any] | None:
    path = folder / EXPORT_META
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_artefact(spec: str) -> bool:
    """True for an export folder of a GGUF or ONNX format (a safetensors export loads as a plain model)."""
    folder = Path(str(spec)).expanduser()
    meta = export_meta(folder) if folder.is_dir() else None
    return meta is not None and meta.get("format") in (*GGUF_FORMATS, *ONNX_FORMATS)


def artefact_folders(exports_dir: str | Path) -> list[str]:
    """The GGUF and ONNX export folders directly under `exports_dir`, sorted by name."""
    root = Path(exports_dir)
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [str(p) for p in folders if is_artefact(str(p))]


def artefact_bytes(folder: Path, filename: str) -> int:
    """Size on disk of the artefact's weights: the file and any external-data file beside it."""
    return sum(p.stat().st_size for p in folder.glob(filename + "*") if p.is_file())


def load_artefact(spec: str, threads: int | None = None):
    """(model, tokenizer, facts) of an export folder; `model` answers `model(input_ids=...)` and `.generate()`.
    ONNX Runtime and llama.cpp run on `threads` CPU threads, by default PyTorch's (`torch.get_num_threads()`), so
    an artefact's speed is compared with the teacher's on the same cores."""
    import torch
    from transformers import AutoTokenizer

    from workbench.analysis.export_gguf import load_gguf_model

    folder = Path(str(spec)).expanduser()
    meta = export_meta(folder)
    if meta is None or meta.get("format") not in (*GGUF_FORMATS, *ONNX_FORMATS):
        raise UserError(Message("{spec!r} is not a GGUF or ONNX export folder (no export.json naming one)",
                                spec=str(spec)))
    fmt, filename = meta["format"], meta["file"]
    threads = threads or torch.get_num_threads()
    if fmt in ONNX_FORMATS:
        import onnxruntime

        from workbench.analysis.onnx_runtime import OnnxCausalLM, OnnxDecoder

        model = OnnxCausalLM(OnnxDecoder(folder / filename, threads=threads))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        runtime, short = f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)", "in onnxruntime"
    elif llama_cpp_available():
        import llama_cpp

        model = LlamaCppCausalLM(folder / filename, threads=threads)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)  # the prompts' ids, read from the file
        runtime, short = f"llama.cpp through llama-cpp-python {llama_cpp.__version__} (CPU)", "in llama.cpp"
    else:
        model = load_gguf_model(folder, filename)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        runtime = ("transformers GGUF loader: dequantized to float32, run in PyTorch (llama-cpp-python is not "
                   "installed; speed and memory are PyTorch's, not llama.cpp's)")
        short = "dequantized in PyTorch, not llama.cpp"
    runtime = f"{runtime}, {threads} thread(s)" if fmt in ONNX_FORMATS or llama_cpp_available() else runtime
    facts = {"format": fmt, "file": filename, "runtime": runtime, "runtime_short": short, "size_bytes": artefact_bytes(folder, filename),
             "params_total": meta.get("params_total"), "params_non_embedding": meta.get("params_non_embedding")}
    return model, tokenizer, facts


def _unquantized(card: dict) -> dict | None:
    """The student entry the artefacts were made from: the first one that is not an artefact."""
    return next((entry for entry in card.get("students", []) if not entry.get("format")), None)


def artefact_sentence(card: dict, entry: dict) -> str | None:
    """One DistilBERT-style line for an artefact row, every number read from the card; None when one is missing."""
    teacher, base = card["teacher"], _unquantized(card)
    size, speed, rkl = entry.get("size_on_disk_mb"), entry.get("gen_tokens_per_s"), entry.get("gen_rkl")
    teacher_size, teacher_speed = teacher.get("size_on_disk_mb"), teacher.get("gen_tokens_per_s")
    if None in (size, speed, rkl, teacher_size, teacher_speed) or not teacher_size or not teacher_speed:
        return None
    base_rkl = base.get("gen_rkl") if base else None
    base_text = f"{base_rkl:.3f}" if base_rkl is not None else "not measured"
    device = card.get("settings", {}).get("device", "cpu")
    where = "this CPU" if str(device) == "cpu" else str(device)
    return (f"{entry['label']}: {size / teacher_size:.0%} of the teacher's size on disk, {speed / teacher_speed:.1f}× "
            f"its decode speed on {where} ({entry.get('runtime_short', '?')}), reverse KL {rkl:.3f} nats/token on held-out prompts (teacher 0, "
            f"unquantized student {base_text}).")


def export_labels(exports) -> dict[str, str]:
    """{"gguf-q8_0 (folder name)": folder} for the report card's artefact rows."""
    labels = {}
    for folder in exports:
        meta = export_meta(Path(folder).expanduser()) or {}
        labels[f"{meta.get('format', 'export')} ({Path(folder).name})"] = str(folder)
    return labels


def artefact_lines(card: dict) -> list[str]:
    """Per exported artefact: the runtime its numbers were measured in, and its one-sentence summary."""
    lines = []
    for entry in card.get("students", []):
        if entry.get("format"):
            lines.append(f"{entry['label']}: measured in {entry['runtime']}; size is the file on disk.")
            sentence = artefact_sentence(card, entry)
            if sentence:
                lines.append(sentence)
    return lines
