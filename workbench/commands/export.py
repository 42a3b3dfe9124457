"""`workbench export RUN DIR [--format F]`: write a run's merged student as a Hugging Face folder, a GGUF file or
an ONNX model.

workbench export runs/run-1 exports/run-1               # folder: safetensors, tokenizer, README.md, config
workbench export runs/run-1 exports/run-1 --zip         # also exports/run-1.zip
workbench export runs/run-1/checkpoints/step-50 exports/run-1-step50
workbench export runs/run-1 exports/run-1-q4 --format gguf-q4_0   # exports/run-1-q4/student-q4_0.gguf
workbench export runs/run-1 exports/run-1-int8 --format onnx-int8  # model-int8.onnx + tokenizer, for ONNX Runtime

The export is reloaded (AutoModelForCausalLM.from_pretrained; for GGUF, transformers' dequantizing GGUF loader; for
ONNX, onnxruntime, whose greedy tokens are compared with PyTorch's too) and its logits checked against the student's.
GGUF covers Llama, Mistral, Qwen2 and Qwen3 students (with a byte-level BPE tokenizer), ONNX Llama and Qwen2; others
are refused with one line naming what has no mapping.
"""

from __future__ import annotations

import argparse

from workbench.analysis.export_formats import EXPORT_FORMATS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="Export a run's student (LoRA merged): safetensors + tokenizer + model card, GGUF or ONNX; folder or zip.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", help="Run folder (runs/<id>) or a checkpoint folder inside it.")
    parser.add_argument("dir", help="Destination folder (created; must be empty unless --overwrite).")
    parser.add_argument("--format", default="safetensors", choices=EXPORT_FORMATS, dest="fmt",
                        help="safetensors (Hugging Face folder), a GGUF file for llama.cpp / Ollama, or ONNX for ONNX Runtime.")
    parser.add_argument("--zip", action="store_true", help="Also write DIR.zip.")
    parser.add_argument("--overwrite", action="store_true", help="Replace DIR when it exists.")
    parser.add_argument("--no-eval", action="store_true", help="Do not evaluate when eval.json is missing or stale.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.analysis.export import export_run

    result = export_run(args.run, args.dir, fmt=args.fmt, make_zip=args.zip, overwrite=args.overwrite,
                        evaluate=not args.no_eval)
    print(f"exported {result['source']} -> {result['folder']} ({result['format']})")
    if result["zip"]:
        print(f"zip: {result['zip']}")
    print(f"reload check: max |logit difference| {result['max_abs_logit_diff']:.2e} over {result['check_tokens']} tokens")
    if "relative_logit_error" in result:
        types = f", tensor types {result['tensor_types']}" if "tensor_types" in result else ""
        print(f"{result['file']}: {result['size_bytes'] / 1e6:.2f} MB{types}, relative logit error "
              f"{result['relative_logit_error']:.2e} (the tests hold tiny models to {result['tolerance']:g}), "
              f"read back with {result['loader']}")
    if "greedy_tokens" in result:
        print(f"greedy decoding in onnxruntime: first {result['greedy_tokens_equal']} of {result['greedy_tokens']} "
              "tokens equal to PyTorch's")
    print("files: " + ", ".join(result["files"]))
    return 0
