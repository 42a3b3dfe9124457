"""Cross-tokenizer distillation, measured: the built-in teacher into a fresh 4-layer student on builtin:bpe-8k.

Three students with equal steps, data and seed: CE only, CE + `aligned` KD and CE + `uld` KD, each scored in bits
per byte on held-out builtin:kjv (the validation split, so tokenizers compare fairly). A fourth run, a fresh student of
the same size on the teacher's own tokenizer with ordinary KD, gives the same-tokenizer time per step; each time per
step is the median of the logged steps after the first two. Prints a Markdown table and writes JSON.

    python bench/cross_tokenizer.py [--steps 150] [--out assets/bench/cross-tokenizer.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from workbench.config import BUILTIN_TEACHER, DistillConfig
from workbench.engine.trainer import train
from workbench.runs.sinks import ListSink

FRESH = "?fresh&layers=4&hidden=256&heads=4"
STUDENT = f"{BUILTIN_TEACHER}{FRESH}&tokenizer=builtin:bpe-8k"
SAME_TOKENIZER_STUDENT = f"{BUILTIN_TEACHER}{FRESH}"


def config(student: str, loss: dict, args: argparse.Namespace, steps: int, run_dir: Path) -> DistillConfig:
    return DistillConfig.from_dict({
        "models": {"teacher": BUILTIN_TEACHER, "student": student},
        "data": {"dataset": "builtin:kjv", "seq_len": args.seq_len, "max_sequences": args.sequences},
        "loss": {"ce_weight": args.ce_weight, "temperature": args.temperature, **loss},
        "train": {"steps": steps, "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": max(1, steps // 15),
                  "eval_every": steps, "eval_batches": args.eval_batches, "save_every": 10**6, "device": "cpu",
                  "precision": "fp32", "seed": 0},
        "run": {"runs_dir": str(run_dir)},
    })


def run_variant(name: str, cfg: DistillConfig, work: Path) -> dict:
    sink = ListSink()
    started = time.perf_counter()
    train(cfg, work / name, sink)
    elapsed = [row["elapsed"] for row in sink.of_kind("train")]
    step_s = statistics.median(b - a for a, b in zip(elapsed[2:], elapsed[3:], strict=False))
    final = sink.of_kind("eval")[-1]
    row = {"variant": name, "step_s": step_s, "wall_s": time.perf_counter() - started,
           **{key: final[key] for key in ("eval_bpb", "eval_loss", "eval_kl", "eval_top1") if key in final},
           "eval_exact_share": final.get("eval_exact_share")}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--timing-steps", type=int, default=12, help="steps of the same-tokenizer timing run")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--sequences", type=int, default=3000, help="packed sequences of builtin:kjv (train + val)")
    parser.add_argument("--eval-batches", type=int, default=20)
    parser.add_argument("--ce-weight", type=float, default=1.0, help="loss.ce_weight of every student")
    parser.add_argument("--kd-weight", type=float, default=1.0, help="loss.kd_weight of every KD student")
    parser.add_argument("--temperature", type=float, default=1.0, help="loss.temperature of every KD student")
    parser.add_argument("--out", default="assets/bench/cross-tokenizer.json")
    args = parser.parse_args(argv)
    variants = [
        ("CE only", STUDENT, {"kd_weight": 0.0}),
        ("CE + aligned", STUDENT, {"kd_weight": args.kd_weight, "cross_tokenizer": "aligned"}),
        ("CE + uld", STUDENT, {"kd_weight": args.kd_weight, "cross_tokenizer": "uld"}),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cross-bench-") as tmp:
        work = Path(tmp)
        for name, student, loss in variants:
            rows.append(run_variant(name, config(student, loss, args, args.steps, work), work))
        same = config(SAME_TOKENIZER_STUDENT, {"kd_weight": args.kd_weight}, args, args.timing_steps, work)
        rows.append(run_variant("same-tokenizer KD (timing)", same, work))
    ce_bpb = rows[0]["eval_bpb"]
    same_step = rows[-1]["step_s"]
    lines = ["| student | bits per byte (held-out kjv) | vs CE only (lower is better) | s/step | vs same-tokenizer KD |",
             "|---|---|---|---|---|"]
    for row in rows:
        bpb = row.get("eval_bpb")
        gain = "–" if row is rows[-1] or row is rows[0] else f"{bpb / ce_bpb - 1:+.1%}"
        lines.append(f"| {row['variant']} | {'–' if row is rows[-1] else f'{bpb:.4f}'} | {gain} | "
                     f"{row['step_s']:.2f} | {row['step_s'] / same_step:.2f}× |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "settings": vars(args), "rows": rows,
                               "table": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
