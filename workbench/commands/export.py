"""`workbench export RUN DIR`: write a run's merged student as a Hugging Face folder with a model card.

workbench export runs/run-1 exports/run-1               # folder: safetensors, tokenizer, README.md, config
workbench export runs/run-1 exports/run-1 --zip         # also exports/run-1.zip
workbench export runs/run-1/checkpoints/step-50 exports/run-1-step50

The export is reloaded with AutoModelForCausalLM.from_pretrained and its logits checked against the student's.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="Export a run's student (LoRA merged) as safetensors + tokenizer + model card, as a folder or zip.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", help="Run folder (runs/<id>) or a checkpoint folder inside it.")
    parser.add_argument("dir", help="Destination folder (created; must be empty unless --overwrite).")
    parser.add_argument("--zip", action="store_true", help="Also write DIR.zip.")
    parser.add_argument("--overwrite", action="store_true", help="Replace DIR when it exists.")
    parser.add_argument("--no-eval", action="store_true", help="Do not evaluate when eval.json is missing or stale.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.analysis.export import export_run

    result = export_run(args.run, args.dir, make_zip=args.zip, overwrite=args.overwrite, evaluate=not args.no_eval)
    print(f"exported {result['source']} -> {result['folder']}")
    if result["zip"]:
        print(f"zip: {result['zip']}")
    print(f"reload check: max |logit difference| {result['max_abs_logit_diff']:.2e} over {result['check_tokens']} tokens")
    print("files: " + ", ".join(result["files"]))
    return 0
