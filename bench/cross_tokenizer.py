"""Cross-tokenizer distillation, measured: the built-in teacher into a fresh 4-layer student on builtin:bpe-8k.

Three students with equal steps, data and seed: CE only, CE + `aligned` KD and CE + `uld` KD, each scored in bits
per byte on held-out builtin:kjv (the validation split, so tokenizers compare fairly), each trained once per seed
(the seed draws the student's initial weights and the order of the training rows). By default data is scarce: 500
packed rows of 64 tokens, 200 of them held out, so 600 steps of 4 rows read the 300 training rows 8 times, at lr
10⁻³ (the best of 5 × 10⁻⁴ to 5 × 10⁻³ for CE only there); pass `--sequences 3000 --val-fraction 0.05
--eval-batches 20 --lr 3e-3` for one pass over 2,850 rows. A fourth run, a fresh student
of the same size on the teacher's own tokenizer with ordinary KD, gives the same-tokenizer time per step; each time
per step is the median of the logged steps after the first two (first seed). `--jobs` trains that many students at
once, each in its own process with `--threads` threads. Prints a Markdown table and writes JSON.

    python bench/cross_tokenizer.py [--steps 600] [--seeds 0,1,2] [--jobs 2] [--out assets/bench/cross-tokenizer.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from workbench.config import BUILTIN_TEACHER, DistillConfig
from workbench.engine.trainer import train
from workbench.runs.sinks import ListSink

FRESH = "?fresh&layers=4&hidden=256&heads=4"
STUDENT = f"{BUILTIN_TEACHER}{FRESH}&tokenizer=builtin:bpe-8k"
SAME_TOKENIZER_STUDENT = f"{BUILTIN_TEACHER}{FRESH}"
TIMING = "same-tokenizer KD (timing)"


def config(student: str, loss: dict, args: argparse.Namespace, steps: int, seed: int, run_dir: Path
           ) -> DistillConfig:
    return DistillConfig.from_dict({
        "models": {"teacher": BUILTIN_TEACHER, "student": student},
        "data": {"dataset": "builtin:kjv", "seq_len": args.seq_len, "max_sequences": args.sequences,
                 "val_fraction": args.val_fraction},
        "loss": {"ce_weight": args.ce_weight, "temperature": args.temperature, **loss},
        "train": {"steps": steps, "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": max(1, steps // 15),
                  "eval_every": steps, "eval_batches": args.eval_batches, "save_every": 10**6, "device": "cpu",
                  "precision": "fp32", "seed": seed},
        "run": {"runs_dir": str(run_dir)},
    })


def run_variant(name: str, cfg: DistillConfig, work: Path, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    sink = ListSink()
    started = time.perf_counter()
    # each run in a folder of its own: runs in one folder wait for each other (its device lock)
    train(cfg, work / f"{name}-{cfg.train.seed}" / "run", sink)
    elapsed = [row["elapsed"] for row in sink.of_kind("train")]
    step_s = statistics.median(b - a for a, b in zip(elapsed[2:], elapsed[3:], strict=False))
    final = sink.of_kind("eval")[-1]
    row = {"variant": name, "seed": cfg.train.seed, "step_s": step_s, "wall_s": time.perf_counter() - started,
           **{key: final[key] for key in ("eval_bpb", "eval_loss", "eval_kl", "eval_top1") if key in final},
           "eval_exact_share": final.get("eval_exact_share")}
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict], seeds: list[int]) -> str:
    """One line per variant: mean bits per byte over the seeds, and each seed's change against CE only."""
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["variant"], []).append(row)
    ce = {row["seed"]: row["eval_bpb"] for row in by_name["CE only"]}
    same_step = by_name[TIMING][0]["step_s"]
    lines = [f"| student | bits per byte, mean of {len(seeds)} seeds | vs CE only, mean | per seed | s/step | "
             "vs same-tokenizer KD |", "|---|---|---|---|---|---|"]
    for name, group in by_name.items():
        step = f"{group[0]['step_s']:.2f} | {group[0]['step_s'] / same_step:.2f}×"
        if name == TIMING:
            lines.append(f"| {name} | – | – | – | {step} |")
            continue
        mean = statistics.fmean(row["eval_bpb"] for row in group)
        gains = [row["eval_bpb"] / ce[row["seed"]] - 1 for row in group]
        gain = "–" if name == "CE only" else f"{statistics.fmean(gains):+.1%}"
        per_seed = "–" if name == "CE only" else ", ".join(f"{g:+.1%}" for g in gains)
        lines.append(f"| {name} | {mean:.4f} | {gain} | {per_seed} | {step} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated train.seed values, one run of each student "
                        "per seed")
    parser.add_argument("--timing-steps", type=int, default=12, help="steps of the same-tokenizer timing run")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--sequences", type=int, default=500, help="packed sequences of builtin:kjv (train + val)")
    parser.add_argument("--val-fraction", type=float, default=0.4, help="share of them held out for validation")
    parser.add_argument("--eval-batches", type=int, default=50)
    parser.add_argument("--ce-weight", type=float, default=1.0, help="loss.ce_weight of every student")
    parser.add_argument("--kd-weight", type=float, default=1.0, help="loss.kd_weight of every KD student")
    parser.add_argument("--temperature", type=float, default=1.0, help="loss.temperature of every KD student")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of each run")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, each in its own process")
    parser.add_argument("--out", default="assets/bench/cross-tokenizer.json")
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    variants = [
        ("CE only", STUDENT, {"kd_weight": 0.0}),
        ("CE + aligned", STUDENT, {"kd_weight": args.kd_weight, "cross_tokenizer": "aligned"}),
        ("CE + uld", STUDENT, {"kd_weight": args.kd_weight, "cross_tokenizer": "uld"}),
    ]
    with tempfile.TemporaryDirectory(prefix="cross-bench-") as tmp:
        work = Path(tmp)
        jobs = [(name, config(student, loss, args, args.steps, seed, work), work, args.threads)
                for name, student, loss in variants for seed in seeds]
        same = config(SAME_TOKENIZER_STUDENT, {"kd_weight": args.kd_weight}, args, args.timing_steps, seeds[0], work)
        jobs.append((TIMING, same, work, args.threads))
        with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
            rows = pool.starmap(run_variant, jobs, chunksize=1)
    text = table(rows, seeds)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "settings": vars(args), "rows": rows,
                               "table": text}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
