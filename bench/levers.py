"""What makes a distillation step fast: each lever timed on its own, on one fixed batch.

    workbench bench --only levers

Teacher forward: eager vs sdpa attention, `no_grad` vs `inference_mode`, `output_hidden_states` vs forward hooks
on the mapped layers only. Student step (forward, KD loss, backward, AdamW): the plain float32 step, chunked
divergence through autograd and in closed form (the default), frozen tied embedding/head, gradient checkpointing, bf16 autocast (only where bf16 matmuls are fast),
`torch.compile` (first-step cost and steady step). Packing: the share of padding a per-document batch would carry.
Every number is the median of `repeats` timings after one warm-up, all in one process, so ratios compare.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from bench.common import BenchSettings, _sync, bf16_matmul_probe, isolated, ratio
from bench.workload import forward_kl_full, load_pair, train_rows
from workbench.timing import MIN_TIMED_S, resolvable, time_calls


def _median_seconds(fn: Callable[[], Any], repeats: int, device: str) -> float | None:
    """Median seconds per call over `repeats` timings; each timing repeats `fn` until `MIN_TIMED_S / repeats` has
    passed, so a call shorter than the clock resolves is averaged, not read as zero. None if still unresolvable."""
    fn()
    _sync(device)
    per_call = []
    for _ in range(repeats):
        seconds, calls = time_calls(fn, min_seconds=MIN_TIMED_S / repeats, sync=lambda: _sync(device))
        per_call.append(seconds / calls if resolvable(seconds) else None)
    if None in per_call:
        return None
    return float(f"{statistics.median(per_call):.4g}")


def teacher_levers(teacher, student, input_ids: torch.Tensor, repeats: int, device: str) -> dict[str, float | None]:
    from workbench.models.loading import decoder_layers

    layers = decoder_layers(teacher)
    mapped = [round((i + 1) * len(layers) / len(decoder_layers(student))) - 1
              for i in range(len(decoder_layers(student)))]
    captured: dict[int, torch.Tensor] = {}
    results = {}
    with torch.no_grad():
        results["teacher sdpa no_grad"] = _median_seconds(lambda: teacher(input_ids=input_ids), repeats, device)
    with torch.inference_mode():
        results["teacher sdpa inference_mode"] = _median_seconds(lambda: teacher(input_ids=input_ids), repeats,
                                                                 device)
        results["teacher output_hidden_states"] = _median_seconds(
            lambda: teacher(input_ids=input_ids, output_hidden_states=True), repeats, device)
        handles = [layers[i].register_forward_hook(
            lambda _m, _i, out, i=i: captured.__setitem__(i, out[0] if isinstance(out, tuple) else out))
            for i in mapped]
        results["teacher hooks on mapped layers"] = _median_seconds(lambda: teacher(input_ids=input_ids), repeats,
                                                                    device)
        for handle in handles:
            handle.remove()
        teacher.set_attn_implementation("eager")
        results["teacher eager"] = _median_seconds(lambda: teacher(input_ids=input_ids), repeats, device)
        results["teacher eager + output_attentions"] = _median_seconds(
            lambda: teacher(input_ids=input_ids, output_attentions=True), repeats, device)
        teacher.set_attn_implementation("sdpa")
    return results


def _student_step(student, input_ids, teacher_logits, loss_fn, autocast: bool):
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-5)

    def step() -> None:
        with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = student(input_ids=input_ids).logits
        loss_fn(logits, teacher_logits).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def student_levers(student, input_ids, teacher_logits, repeats: int, device: str, bf16_fast: bool,
                   compile_model: bool) -> dict[str, Any]:
    from workbench.engine.losses import divergence

    def chunked(s, t, closed_form=True):
        return divergence(s[:, :-1], t[:, :-1], kind="forward_kl", temperature=1.0, chunk_size=1024,
                          closed_form=closed_form)

    def chunked_autograd(s, t):
        return chunked(s, t, closed_form=False)

    variants: dict[str, tuple[Callable, dict[str, Any]]] = {
        "student step plain (unchunked KL)": (forward_kl_full, {}),
        "student step chunked KL, autograd": (chunked_autograd, {}),
        "student step chunked KL": (chunked, {}),
        "student step chunked KL + frozen emb/head": (chunked, {"freeze": True}),
        "student step chunked KL + grad checkpointing": (chunked, {"checkpointing": True}),
    }
    if bf16_fast:
        variants["student step chunked KL + bf16 autocast"] = (chunked, {"autocast": True})
    results: dict[str, Any] = {}
    for label, (loss_fn, options) in variants.items():
        model = copy.deepcopy(student).train()
        if options.get("freeze"):
            model.get_input_embeddings().weight.requires_grad_(False)
            model.get_output_embeddings().weight.requires_grad_(False)
        if options.get("checkpointing"):
            model.gradient_checkpointing_enable()
        step = _student_step(model, input_ids, teacher_logits, loss_fn, options.get("autocast", False))
        results[label] = _median_seconds(step, repeats, device)
        del model, step
    if compile_model:
        model = copy.deepcopy(student).train()
        compiled = torch.compile(model)
        step = _student_step(compiled, input_ids, teacher_logits, chunked, False)
        start = time.perf_counter()
        step()
        results["torch.compile first step (compile)"] = round(time.perf_counter() - start, 2)
        results["student step chunked KL + torch.compile"] = _median_seconds(step, repeats, device)
    return results


def packing_waste(settings: BenchSettings, tokenizer) -> dict[str, Any]:
    """Padding share if each document were padded to seq_len alone instead of packed with EOS separators."""
    from workbench.data.splits import load_texts

    texts = load_texts(settings.dataset, tokenizer=tokenizer)[:2000]
    lengths = [min(len(tokenizer(t)["input_ids"]) + 1, settings.seq_len) for t in texts]
    padded = len(lengths) * settings.seq_len
    return {"documents": len(lengths), "mean_tokens": round(sum(lengths) / max(len(lengths), 1), 1),
            "padding_share_unpacked": round(1 - sum(lengths) / max(padded, 1), 3),
            "throughput_multiplier_from_packing": round(padded / max(sum(lengths), 1), 2)}


def measure(settings: dict[str, Any], compile_model: bool) -> dict[str, Any]:
    cfg = BenchSettings.from_dict(settings)
    repeats = 1 if cfg.quick else 3
    torch.manual_seed(0)
    teacher, student, tokenizer = load_pair(cfg, torch.float32)
    input_ids = train_rows(cfg, tokenizer, cfg.batch_size).to(cfg.device)
    probe = bf16_matmul_probe(cfg.device)
    result: dict[str, Any] = {"batch": list(input_ids.shape), "bf16_probe": probe}
    result["seconds"] = teacher_levers(teacher, student, input_ids, repeats, cfg.device)
    with torch.inference_mode():
        teacher_logits = teacher(input_ids=input_ids).logits.clone()
    teacher_logits = teacher_logits.clone()
    bf16_pays = (probe["bf16_over_fp32"] or 0.0) >= 1.0 or cfg.device != "cpu"
    result["seconds"].update(student_levers(student, input_ids, teacher_logits, repeats, cfg.device, bf16_pays,
                                            compile_model))
    result["packing"] = packing_waste(cfg, tokenizer)
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    result = isolated(settings, __name__, "measure", settings=settings.to_dict(),
                      compile_model=bool(settings.extra.get("compile", not settings.quick)))
    seconds = result.get("seconds", {})
    base = seconds.get("student step plain (unchunked KL)")
    if base:
        result["speedup_vs_plain_step"] = {k: ratio(base, v) for k, v in seconds.items() if k.startswith("student step")}
    result["targets"] = []
    return result
