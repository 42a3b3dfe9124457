"""Comparison (e): generation speed of the student vs the teacher at batch 1 and 8, time to first token, and the
speedup that the ratio of per-token compute predicts (2 × (non-embedding weights + head) per token).

Greedy decoding with the KV cache, a fixed prompt, `generate_tokens` new tokens; teacher and student alternate
(teacher, student, teacher, student) so a change in machine load hits both, and the faster of the two rounds
counts.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from bench.common import BenchSettings, _sync, isolated, ratio, target, torch_dtype
from bench.workload import flops_per_token

PROMPT = (
    "The student model learns from the teacher by matching its next-token distribution over the vocabulary. "
    "Explain in two sentences why a smaller model can generate text faster than a larger one."
)


def _time_generation(model, input_ids: torch.Tensor, new_tokens: int, device: str) -> dict[str, float]:
    attention_mask = torch.ones_like(input_ids)
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True).logits[:, -1].argmax(-1)
        _sync(device)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        _sync(device)
        total = time.perf_counter() - start
    generated = (out.shape[1] - input_ids.shape[1]) * input_ids.shape[0]
    decode = max(total - ttft, 1e-9)
    return {"ttft_s": round(ttft, 4), "generate_s": round(total, 3),
            "tokens_per_s": round(generated / total, 2),
            "decode_tokens_per_s": round((generated - input_ids.shape[0]) / decode, 2)}


def measure(settings: dict[str, Any], batch_sizes: list[int]) -> dict[str, Any]:
    """Load both models once and time them alternately at each batch size."""
    from workbench.models.loading import load_model, load_tokenizer

    cfg = BenchSettings.from_dict(settings)
    dtype = torch_dtype("bf16" if cfg.precision == "bf16" else "fp32")
    models = {
        name: load_model(spec, dtype=dtype, device=cfg.device, attn_implementation="sdpa")
        for name, spec in (("teacher", cfg.teacher), ("student", cfg.student))
    }
    tokenizer = load_tokenizer(cfg.teacher)
    prompt_ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"].to(cfg.device)
    result: dict[str, Any] = {"prompt_tokens": int(prompt_ids.shape[1]), "new_tokens": cfg.generate_tokens,
                              "flops_per_token": {n: flops_per_token(m) for n, m in models.items()}}
    for model in models.values():
        _time_generation(model, prompt_ids, 2, cfg.device)  # warm-up: first-call allocations
    for batch in batch_sizes:
        input_ids = prompt_ids.repeat(batch, 1)
        rounds: dict[str, list[dict[str, float]]] = {"teacher": [], "student": []}
        for _ in range(2):
            for name, model in models.items():
                rounds[name].append(_time_generation(model, input_ids, cfg.generate_tokens, cfg.device))
        result[f"batch_{batch}"] = {n: max(r, key=lambda x: x["decode_tokens_per_s"]) for n, r in rounds.items()}
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    batch_sizes = [1, 8]
    result = isolated(settings, __name__, "measure", settings=settings.to_dict(), batch_sizes=batch_sizes)
    if "error" in result:
        return result
    flops = result["flops_per_token"]
    predicted = ratio(flops["teacher"]["flops"], flops["student"]["flops"])
    result["predicted_speedup"] = predicted
    result["targets"] = []
    for batch in batch_sizes:
        row = result[f"batch_{batch}"]
        speedup = ratio(row["student"]["decode_tokens_per_s"], row["teacher"]["decode_tokens_per_s"])
        row["speedup"] = speedup
        row["ttft_speedup"] = ratio(row["teacher"]["ttft_s"], row["student"]["ttft_s"])
        row["share_of_prediction"] = ratio(speedup, predicted)
        result["targets"].append(target(
            f"(e) batch {batch}: student/teacher decode speedup as share of the per-token-compute prediction",
            row["share_of_prediction"], 0.9,
            why="per-token time is not all matmul: the head, sampling and Python overhead per step do not "
                "shrink with fewer layers",
        ))
    return result
