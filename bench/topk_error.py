"""How far the top-k + tail teacher cache is from the full-vocabulary divergence, on the real pair.

    python -m bench.topk_error --sequences 4 --seq-len 256 --out topk-error.json

For each kind, temperature and k it reports the relative error of the loss value and the cosine similarity between
the gradient (with respect to the student's logits) of the cached loss and of the full-vocabulary loss: the
gradient direction is what training follows.
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import torch

from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT, DataConfig
from workbench.data.splits import build_splits
from workbench.engine.losses import divergence
from workbench.engine.teacher_cache import topk_from_logits
from workbench.engine.topk_losses import topk_divergence
from workbench.models.loading import load_model, load_tokenizer

KINDS = ("forward_kl", "reverse_kl", "jsd", "tvd")


def _loss_and_grad(fn, student_logits: torch.Tensor) -> tuple[float, torch.Tensor]:
    leaf = student_logits.detach().clone().requires_grad_(True)
    value = fn(leaf)
    value.backward()
    return value.item(), leaf.grad.flatten()


def measure(student_logits: torch.Tensor, teacher_logits: torch.Tensor, ks: list[int], temperatures: list[float]) -> list[dict]:
    """Rows of {kind, temperature, k, full, cached, rel_error, grad_cosine} for logits [B, T, V]."""
    caches = {k: topk_from_logits(teacher_logits, k) for k in ks}
    rows = []
    for kind in KINDS:
        for temperature in temperatures:
            settings = {"kind": kind, "temperature": temperature, "chunk_size": 256}
            full, full_grad = _loss_and_grad(partial(divergence, teacher_logits=teacher_logits, **settings),
                                             student_logits)
            for k in ks:
                ids, log_probs, tail = caches[k]
                cached, grad = _loss_and_grad(
                    partial(topk_divergence, topk_ids=ids, topk_log_probs=log_probs, tail_mass=tail, **settings),
                    student_logits)
                cosine = torch.nn.functional.cosine_similarity(grad, full_grad, dim=0).item()
                rows.append({"kind": kind, "temperature": temperature, "k": k, "full": full, "cached": cached,
                             "rel_error": (cached - full) / full, "grad_cosine": cosine})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=BUILTIN_TEACHER)
    parser.add_argument("--student", default=DEFAULT_STUDENT)
    parser.add_argument("--dataset", default="builtin:chat")
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--ks", default="8,32,64,128,512")
    parser.add_argument("--temperatures", default="1,2,4")
    parser.add_argument("--out", default="topk-error.json")
    args = parser.parse_args(argv)

    tokenizer = load_tokenizer(args.teacher)
    val = build_splits(DataConfig(dataset=args.dataset, seq_len=args.seq_len), tokenizer).val[: args.sequences]
    with torch.inference_mode():
        teacher_logits = load_model(args.teacher).eval()(input_ids=val).logits.float()
        student_logits = load_model(args.student).eval()(input_ids=val).logits.float()
    teacher_logits, student_logits = teacher_logits.clone(), student_logits.clone()
    rows = measure(student_logits, teacher_logits, [int(k) for k in args.ks.split(",")],
                   [float(t) for t in args.temperatures.split(",")])
    print(f"{'kind':<12} {'T':>4} {'k':>5} {'full':>9} {'cached':>9} {'rel.err':>8} {'grad cos':>8}")
    for row in rows:
        print(f"{row['kind']:<12} {row['temperature']:>4g} {row['k']:>5} {row['full']:>9.4f} {row['cached']:>9.4f} "
              f"{row['rel_error']:>+8.1%} {row['grad_cosine']:>8.4f}")
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"teacher": args.teacher, "student": args.student, "dataset": args.dataset,
                   "tokens": int(val.numel()), "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
