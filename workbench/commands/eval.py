"""`workbench eval`: the report card of a run's student against its teacher, or of any pair of model specs.

workbench eval runs/run-1                         # teacher vs the run's student and its undistilled start
workbench eval runs/run-1 --no-base --json        # only the distilled student; print JSON
workbench eval runs/run-1 --export exports/run-1-q8 --export exports/run-1-int8   # + exported artefacts, each
                                                  # measured in its runtime (ONNX Runtime; GGUF dequantized)
workbench eval --model "builtin:smollm2-135m-instruct?prune=even&layers=10" --teacher builtin:smollm2-135m-instruct \
    --dataset builtin:chat

With a run folder the card is also written to RUN_DIR/eval.json.
"""

from __future__ import annotations

import argparse
import json

from workbench.config import BUILTIN_TEACHER


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="Report card: size, speed, perplexity, KL and agreement of student(s) vs teacher; writes eval.json.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", nargs="?", default=None, help="A run folder (runs/<id>) or one of its checkpoints.")
    parser.add_argument("--model", action="append", default=None, help="Student spec to evaluate (repeatable).")
    parser.add_argument("--teacher", default=None, help=f"Teacher spec (default: the run's, else {BUILTIN_TEACHER}).")
    parser.add_argument("--dataset", default=None, help="Validation data (default: the run's, else builtin:chat).")
    parser.add_argument("--text-column", default="text", help="Text column of JSONL/CSV/parquet data.")
    parser.add_argument("--seq-len", type=int, default=None,
                        help="Tokens per validation sequence (default: a run's seq_len, the rows its Train-tab eval "
                             "scores; else 128).")
    parser.add_argument("--sequences", type=int, default=None,
                        help="Validation sequences scored (default: a run's eval_batches × batch_size; else 16).")
    parser.add_argument("--no-generation", action="store_true",
                        help="Skip generation quality (sampling answers to held-out prompts).")
    parser.add_argument("--batch-size", type=int, default=4, help="Sequences per scoring batch.")
    parser.add_argument("--gen-tokens", type=int, default=32, help="Greedy tokens generated for the speed numbers.")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
    parser.add_argument("--no-base", action="store_true", help="Skip the undistilled student of a run.")
    parser.add_argument("--export", action="append", default=[], metavar="DIR",
                        help="A GGUF or ONNX export folder of the run's student (repeatable): one more row, measured "
                             "in its own runtime, with its one-line summary.")
    parser.add_argument("--json", action="store_true", help="Print the card as JSON instead of a table.")
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace, dataset: str):
    from workbench.analysis.report_card import EvalSettings

    return EvalSettings(
        dataset=dataset, text_column=args.text_column, seq_len=args.seq_len, max_sequences=args.sequences,
        batch_size=args.batch_size, gen_tokens=args.gen_tokens, device=args.device, generation=not args.no_generation,
    )


def _run_config(path: str | None):
    """The DistillConfig of a run folder or of the run holding a checkpoint folder, else None."""
    from workbench.config import DistillConfig
    from workbench.runs.folder import run_of

    run = run_of(path) if path else None
    return DistillConfig.load(run.config_path) if run is not None else None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.analysis.artefacts import export_labels
    from workbench.analysis.report_card import evaluate_models, evaluate_run, format_report
    from workbench.errors import UserError

    cfg = _run_config(args.run_dir)
    is_run_folder = cfg is not None and (Path(args.run_dir) / "config.yaml").is_file()
    if is_run_folder and not args.model and not args.teacher:
        settings = _settings(args, args.dataset or cfg.data.dataset)
        card = evaluate_run(args.run_dir, settings, include_base=not args.no_base, exports=args.export)
        print(f"wrote {Path(args.run_dir) / 'eval.json'}")
    else:
        students = list(args.model or [])
        if args.run_dir:
            students.insert(0, args.run_dir)
        if not students:
            raise UserError("eval needs a run folder or at least one --model SPEC")
        labels = {f"student {i + 1}" if len(students) > 1 else "student": spec for i, spec in enumerate(students)}
        labels.update(export_labels(args.export))
        teacher = args.teacher or (cfg.models.teacher if cfg else BUILTIN_TEACHER)
        dataset = args.dataset or (cfg.data.dataset if cfg else "builtin:chat")
        data_cfg = cfg.data if cfg and not args.dataset else None
        card = evaluate_models(teacher, labels, _settings(args, dataset), data_cfg=data_cfg)
    print(json.dumps(card, indent=1) if args.json else format_report(card))
    return 0
