"""`workbench inspect [TEACHER [STUDENT]]`: the compatibility card; `--rank-pruning` compares pruned students.

workbench inspect                                   # the default pair
workbench inspect builtin:smollm2-135m-instruct "builtin:smollm2-135m-instruct?prune=even&layers=10"
workbench inspect --rank-pruning --dataset builtin:chat --sequences 8 --seq-len 256
"""

from __future__ import annotations

import argparse
import json

from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="Show the compatibility card of a teacher/student pair (default: the built-in pair).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("teacher", nargs="?", default=None, help=f"Teacher spec (default {BUILTIN_TEACHER}).")
    parser.add_argument(
        "student", nargs="?", default=None, help="Student spec (default: the built-in default student)."
    )
    parser.add_argument("--batch", type=int, default=8, help="Batch size for the training-memory estimate.")
    parser.add_argument("--seq-len", type=int, default=256, help="Tokens per sequence (memory estimate, ranking).")
    parser.add_argument("--json", action="store_true", help="Print the card as JSON.")
    parser.add_argument("--trust-remote-code", action="store_true", help="Allow model code shipped with a hub repo.")
    parser.add_argument(
        "--rank-pruning",
        action="store_true",
        help="Measure undistilled validation perplexity of pruned students of TEACHER (or of the given specs "
        "after --specs) and print a table, best first.",
    )
    parser.add_argument("--specs", nargs="+", default=None, help="Student specs to rank (with --rank-pruning).")
    parser.add_argument("--dataset", default="builtin:chat", help="Validation data for --rank-pruning.")
    parser.add_argument("--sequences", type=int, default=8, help="Validation sequences for --rank-pruning.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.analysis.compatibility import compatibility_card, format_compatibility, model_summary

    teacher = args.teacher or BUILTIN_TEACHER
    if args.rank_pruning:
        return _rank(args, teacher)
    if args.teacher and not args.student:
        card = model_summary(teacher, trust_remote_code=args.trust_remote_code)
    else:
        student = args.student or DEFAULT_STUDENT
        card = compatibility_card(teacher, student, args.batch, args.seq_len, trust_remote_code=args.trust_remote_code)
    print(json.dumps(card, indent=2) if args.json else format_compatibility(card), flush=True)
    return 0


def _rank(args: argparse.Namespace, teacher: str) -> int:
    from workbench.analysis.compatibility import format_ranking, pruning_candidates, rank_pruning
    from workbench.config import DataConfig
    from workbench.data.splits import build_splits
    from workbench.models.loading import load_config, load_tokenizer

    tokenizer = load_tokenizer(teacher, trust_remote_code=args.trust_remote_code)
    data_cfg = DataConfig(dataset=args.dataset, seq_len=args.seq_len)
    val_ids = build_splits(data_cfg, tokenizer).val[: args.sequences]
    layers = load_config(teacher, trust_remote_code=args.trust_remote_code).num_hidden_layers
    specs = args.specs or pruning_candidates(teacher, layers)
    rows = rank_pruning(teacher, specs, val_ids, trust_remote_code=args.trust_remote_code)
    print(f"validation perplexity before distillation: {len(val_ids)} x {val_ids.shape[1]} tokens of {args.dataset}")
    print(format_ranking(rows))
    return 0
