"""`workbench generate-data`: a teacher answers a prompt file -> JSONL for sequence-level distillation.

workbench generate-data --teacher builtin:smollm2-135m-instruct \
    --prompts workbench/builtin/chat_prompts.jsonl --out workbench/builtin/chat.jsonl --batch-size 16
"""

from __future__ import annotations

import argparse

from workbench.config import BUILTIN_TEACHER
from workbench.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate-data",
        help="Generate answers to a prompt file with a teacher (JSONL + settings sidecar).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--teacher", default=BUILTIN_TEACHER, help=f"Teacher model spec (default {BUILTIN_TEACHER}).")
    parser.add_argument("--prompts", required=True, help="JSONL with a 'prompt' field (optional 'category'), or .txt.")
    parser.add_argument("--out", required=True, help="Output JSONL; settings go to <stem>.meta.json beside it.")
    parser.add_argument("--max-new-tokens", type=int, default=160, help="Longest answer in tokens.")
    parser.add_argument("--temperature", type=float, default=0.7, help="Sampling temperature; 0 is greedy.")
    parser.add_argument("--top-p", type=float, default=0.9, help="Nucleus sampling mass.")
    parser.add_argument("--seed", type=int, default=0, help="Sampling seed.")
    parser.add_argument("--batch-size", type=int, default=16, help="Prompts generated together (left padded).")
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.engine.datagen import GenerationSettings, generate_answers, meta_path

    if args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens: must be >= 1, got {args.max_new_tokens}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if args.temperature < 0 or not 0 < args.top_p <= 1:
        raise UserError("--temperature must be >= 0 and --top-p in (0, 1]")
    settings = GenerationSettings(
        teacher=args.teacher, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed, batch_size=args.batch_size,
    )
    meta = generate_answers(settings, args.prompts, args.out)
    print(f"wrote {meta['count']} rows to {args.out} ({meta['seconds']} s); settings in {meta_path(args.out)}")
    return 0
