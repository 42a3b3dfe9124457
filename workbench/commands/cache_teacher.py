"""`workbench cache-teacher`: precompute the teacher's top-k log-probabilities + tail mass for a config's data.

    workbench cache-teacher --preset quick --top-k 64
    workbench cache-teacher --config run.yaml data.seq_len=512 --out caches/chat-512
    workbench train --config run.yaml train.teacher_cache=caches/chat-512 loss.temperature=4

The cache is keyed by a hash of the teacher, k and the exact token ids of both splits; training checks the key.
"""

from __future__ import annotations

import argparse

from workbench.commands.train import resolve_config
from workbench.engine.teacher_cache import cache_teacher


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache-teacher",
        help="Precompute the teacher's top-k log-probs + tail mass so training can skip the teacher.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None, help="Run config YAML (models and data are what matter here).")
    parser.add_argument("--preset", default=None, help="Start from a preset: quick, default or thorough.")
    parser.add_argument("--top-k", type=int, default=64, help="Teacher log-probabilities kept per position.")
    parser.add_argument("--out", default=None, help="Cache folder (default: <workbench home>/teacher-cache/<key>).")
    parser.add_argument("--batch-size", type=int, default=8, help="Sequences per teacher forward pass.")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. data.seq_len=512.")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm.auto import tqdm

    cfg = resolve_config(args.config, args.preset, args.overrides)
    bars: dict[str, tqdm] = {}

    def progress(split: str, done: int, total: int) -> None:
        bar = bars.setdefault(split, tqdm(total=total, desc=f"teacher {split}", unit="seq"))
        bar.update(done - bar.n)

    path = cache_teacher(cfg, top_k=args.top_k, out_dir=args.out, batch_size=args.batch_size, progress=progress)
    for bar in bars.values():
        bar.close()
    print(path)
    print(f"train with: train.teacher_cache={path}")
    return 0
