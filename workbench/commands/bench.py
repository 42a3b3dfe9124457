"""`workbench bench`: run the performance comparisons side by side, print a table and write JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure throughput, cache, memory, effectiveness, inference, app start-up and exports side by side",
        description="Run the benchmark comparisons in one invocation; prints a table and writes JSON.",
    )
    parser.add_argument("--only", help="comma-separated comparisons (throughput,cache,divergence_memory,"
                        "effectiveness,inference,app_start,levers,load,onpolicy_throughput,generation_quality,width_depth,"
                        "deployment,multitask) or letters a-k, "
                        "3 (levers), 8 (load)")
    parser.add_argument("--quick", action="store_true", help="fewer steps and tokens: minutes instead of an hour")
    parser.add_argument("--out", default="bench-results.json", help="where to write the JSON results")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to run")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="auto: fp32, plus bf16 where it is faster on this device")
    parser.add_argument("--teacher", help="teacher spec (default: the built-in teacher)")
    parser.add_argument("--student", help="student spec (default: the default student)")
    parser.add_argument("--steps", type=int, help="training steps per throughput and cache variant")
    parser.add_argument("--seq-len", type=int, help="sequence length of the throughput and cache workload (256)")
    parser.add_argument("--batch-size", type=int, help="sequences per step of the throughput and cache workload (4)")
    parser.add_argument("--effectiveness-steps", type=int,
                        help="steps of each (d) student (default: the `default` preset's budget)")
    parser.add_argument("--effectiveness-seq-len", type=int, help="sequence length of (d) (default: the preset's)")
    parser.add_argument("--dataset", help="dataset spec of every comparison but (d) (default: builtin:chat)")
    parser.add_argument("--effectiveness-dataset",
                        help="dataset of (d) (default: the `default` preset's, human-written text: on data the "
                        "teacher generated, CE-only training is itself sequence-level distillation)")
    parser.add_argument("--run", help="(j): a finished run of the `chat` preset to export and measure (default: the "
                        "newest under WORK_DIR/deployment/runs, else one trained now)")
    parser.add_argument("--minutes", type=float,
                        help="(h), (i) and (k): training minutes of each student (default: (h) the `chat` preset's "
                        "budget, (i) 8, 1.5 with --quick, (k) the `multitask` preset's)")
    parser.add_argument("--work-dir", default="bench-work", help="folder for the bench's runs and caches")
    parser.add_argument("--no-isolate", action="store_true",
                        help="run variants in this process (faster; peak memory is then not per variant)")
    parser.set_defaults(func=run)


def _checkout_root() -> Path:
    """The source checkout holding the top-level `bench` package; the benchmarks are not part of the wheel."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__init__.py").is_file():
        raise UserError("workbench bench runs from a source checkout (its bench/ package is not installed with the "
                        "wheel); clone the project and run it there")
    return root


def _extra(args: argparse.Namespace) -> dict | None:
    """Settings single comparisons read: (j)'s run, (h)'s, (i)'s and (k)'s minutes."""
    extra = {key: value for key, value in (("run", args.run), ("minutes", args.minutes)) if value is not None}
    return extra or None


def run(args: argparse.Namespace) -> int:
    root = str(_checkout_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench import make_settings, parse_only, run_bench
    from bench.report import format_table, write_json
    from workbench.config import load_preset

    only = parse_only(args.only)
    settings = make_settings(
        quick=args.quick, device=args.device, precision=args.precision, teacher=args.teacher, student=args.student,
        steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size, dataset=args.dataset,
        effectiveness_steps=args.effectiveness_steps, effectiveness_seq_len=args.effectiveness_seq_len,
        effectiveness_dataset=args.effectiveness_dataset or load_preset("default").data.dataset,
        work_dir=args.work_dir, isolate=not args.no_isolate, extra=_extra(args),
    )
    results = run_bench(settings, only, partial=lambda done: write_json(done, args.out))
    path = write_json(results, args.out)
    print(format_table(results))
    print(f"wrote {path}")
    return 0
