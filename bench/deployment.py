"""Comparison (j): the `chat` preset's student shipped in every export format, against its teacher in PyTorch.

One run: the student of a finished `chat` run (`--run`, else the newest finished one under WORK_DIR/deployment/runs,
else one trained now with the preset as it is) is exported as `gguf-f16`, `gguf-q8_0`, `gguf-q4_0`, `onnx` and
`onnx-int8`, and the report card (`workbench.analysis.report_card.evaluate_run`) measures the teacher in float32
PyTorch, the unquantized student in float32 PyTorch and every artefact in its own runtime (ONNX Runtime; llama.cpp
when llama-cpp-python is installed, else transformers' dequantizing GGUF loader, and the row says which), on the same
held-out prompts. The teacher in bf16 PyTorch is measured beside them with the card's own helpers: its safetensors
file written in bf16, greedy decoding at batch 1, and reverse KL to the float32 teacher on its own answers.

Decode speed is timed again at the end, every model in turn: each of `SPEED_ROUNDS` rounds times each model once (the
card's 32 greedy tokens at batch 1 after a warm-up), and a model's tokens/s is the median of its rounds, its slowest
and fastest round beside it. A change of machine load during the bench then falls on every model alike, where the
card's single call per model, minutes apart, can catch one model under load and the next on a quiet machine.

Every runtime gets the same CPU threads as PyTorch (`torch.get_num_threads()`, so OMP_NUM_THREADS=1 means one thread
each). Targets, for the best int8 or 4-bit artefact (the one meeting most of them, then the lowest reverse KL):
size on disk ≤ 0.3× the teacher's float32 file, decode tokens/s at batch 1 ≥ 3× the faster PyTorch teacher's, and
reverse KL within 0.1 nats/token of the unquantized student's.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import BenchSettings, isolated, ratio, target
from workbench.analysis.export_formats import GGUF_FORMATS, ONNX_FORMATS

FORMATS = (*GGUF_FORMATS, *ONNX_FORMATS)
QUANTIZED = ("gguf-q8_0", "gguf-q4_0", "onnx-int8")  # the int8 and 4-bit artefacts the targets are about
SIZE_GOAL, SPEED_GOAL, RKL_GOAL = 0.3, 3.0, 0.1
DISTILLED = "distilled student"
SPEED_ROUNDS = 5


def train_chat(settings: dict[str, Any], runs_dir: str, minutes: float | None) -> dict[str, Any]:
    """Train the `chat` preset as it is (or for `minutes`) into `runs_dir`; returns the run folder and wall time."""
    from workbench.config import apply_overrides, load_preset
    from workbench.engine.trainer import train

    cfg = BenchSettings.from_dict(settings)
    overrides = [f"train.device={cfg.device}", *([f"train.max_minutes={minutes}"] if minutes else [])]
    run_dir = Path(runs_dir) / time.strftime("chat-%Y%m%d-%H%M%S")
    started = time.perf_counter()
    train(apply_overrides(load_preset("chat"), overrides), run_dir)
    return {"run": str(run_dir), "train_seconds": round(time.perf_counter() - started, 1)}


def finished_chat_run(runs_dir: Path) -> Path | None:
    """The newest run under `runs_dir` that finished with the `chat` preset's teacher and student."""
    from workbench.config import DistillConfig, load_preset

    chat = load_preset("chat").models
    for run in sorted((p for p in runs_dir.glob("*") if (p / "config.yaml").is_file()), reverse=True,
                      key=lambda p: p.stat().st_mtime):
        status = json.loads((run / "status.json").read_text()) if (run / "status.json").is_file() else {}
        models = DistillConfig.load(run / "config.yaml").models
        if status.get("state") == "finished" and (models.teacher, models.student) == (chat.teacher, chat.student):
            return run
    return None


def export_all(run_dir: str, exports_dir: Path) -> dict[str, dict[str, Any]]:
    """Every GGUF and ONNX format of the run's student under `exports_dir/<format>`; a folder already exported from
    the same weights is kept. Returns per format: folder, file, size, relative logit error, export seconds."""
    from workbench.analysis.artefacts import export_meta
    from workbench.analysis.export import export_run
    from workbench.models.loading import weights_mtime
    from workbench.runs.pool import resolve_spec

    resolved = resolve_spec(run_dir)
    exported = {}
    for fmt in FORMATS:
        folder = exports_dir / fmt
        meta = export_meta(folder) if folder.is_dir() else None
        fresh = (meta is not None and meta.get("source") == resolved.stamp_path
                 and (folder / "export.json").stat().st_mtime >= weights_mtime(resolved.load_spec))
        started = time.perf_counter()
        if not fresh:
            meta = export_run(run_dir, folder, fmt=fmt, overwrite=True, evaluate=False)
        exported[fmt] = {"folder": str(folder), "file": meta["file"], "size_bytes": meta["size_bytes"],
                         "relative_logit_error": meta.get("relative_logit_error"),
                         "export_seconds": None if fresh else round(time.perf_counter() - started, 1),
                         "reused": fresh}
    return exported


def teacher_bf16(teacher_spec: str, data_cfg, eval_settings, work_dir: Path) -> dict[str, Any]:
    """The teacher in bf16 PyTorch: its bf16 safetensors on disk, decode speed at batch 1 and reverse KL to the
    float32 teacher on its own answers to the held-out prompts (the card's prompts, sampling and seed)."""
    import torch

    from workbench.analysis.decode_speed import measure_generation
    from workbench.config import DataConfig
    from workbench.data.splits import build_splits
    from workbench.engine.genquality import GEN_KEYS, generation_quality, protocol_label
    from workbench.runs.pool import load_resolved, resolve_spec

    resolved = resolve_spec(teacher_spec)
    model, tokenizer = load_resolved(resolved, device="cpu", dtype=torch.bfloat16, attn_implementation=None)
    folder = work_dir / "teacher-bf16"
    model.save_pretrained(folder, safe_serialization=True)
    size_mb = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20
    speed = measure_generation(model, tokenizer, eval_settings.prompt, eval_settings.gen_tokens)
    reference, _ = load_resolved(resolved, device="cpu", dtype=torch.float32, attn_implementation=None)
    dataset, heldout = data_cfg.dataset, build_splits(data_cfg, tokenizer).heldout
    if not heldout:  # as the card does: builtin:chat's prompts when the data has none
        dataset, heldout = "builtin:chat", build_splits(DataConfig(dataset="builtin:chat", seq_len=64), tokenizer).heldout
    prompts = [e.prompt_ids for e in heldout]
    quality, _, _ = generation_quality(model, reference, tokenizer, prompts, protocol_label(len(prompts), dataset))
    numbers = quality.to_dict()
    return {"label": "teacher bf16", "runtime": "PyTorch bf16", "size_on_disk_mb": round(size_mb, 3),
            "size_source": "bf16 safetensors written by save_pretrained", **speed,
            **{k: numbers[k] for k in GEN_KEYS}}


def speed_rounds(models: dict[str, Any], prompt: str, new_tokens: int, rounds: int = SPEED_ROUNDS
                 ) -> dict[str, dict[str, Any]]:
    """{label: {"median", "min", "max", "rounds"}} decode tokens/s at batch 1; `models` maps a label to a
    zero-argument loader of (model, tokenizer). All are loaded first, then each round times each model once, in
    turn."""
    from workbench.analysis.decode_speed import measure_generation

    loaded = {label: load() for label, load in models.items()}
    speeds: dict[str, list[float]] = {label: [] for label in loaded}
    for _ in range(rounds):
        for label, (model, tokenizer) in loaded.items():
            value = measure_generation(model, tokenizer, prompt, new_tokens)["gen_tokens_per_s"]
            if value is not None:
                speeds[label].append(round(value, 3))
    return {label: {"median": statistics.median(v), "min": min(v), "max": max(v), "rounds": v}
            for label, v in speeds.items() if v}


def _speed_loaders(teacher_spec: str, run_dir: str, exported: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Loaders of every model of the table, by row label."""
    import torch

    from workbench.analysis.artefacts import load_artefact
    from workbench.runs.pool import load_resolved, resolve_spec

    def pytorch(spec: str, dtype):
        return lambda: load_resolved(resolve_spec(spec), device="cpu", dtype=dtype, attn_implementation=None)

    loaders = {"teacher float32": pytorch(teacher_spec, torch.float32),
               "teacher bf16": pytorch(teacher_spec, torch.bfloat16),
               DISTILLED: pytorch(run_dir, torch.float32)}
    for fmt, entry in exported.items():
        loaders[f"student {fmt}"] = lambda folder=entry["folder"]: load_artefact(folder)[:2]
    return loaders


def _row(entry: dict[str, Any], runtime: str, fmt: str) -> dict[str, Any]:
    keys = ("label", "size_on_disk_mb", "gen_tokens_per_s", "ttft_s", "gen_rkl", "gen_rep4", "val_bpb",
            "peak_memory_mb")
    return {**{k: entry.get(k) for k in keys}, "format": fmt, "runtime": runtime}


def measure(settings: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Export every format, then the report card of teacher, student and artefacts, then the bf16 teacher."""
    import torch

    from workbench.analysis.report_card import EvalSettings, evaluate_run
    from workbench.config import DistillConfig

    cfg = BenchSettings.from_dict(settings)
    work_dir = Path(cfg.work_dir) / "deployment"
    exported = export_all(run_dir, work_dir / "exports")
    run_cfg = DistillConfig.load(Path(run_dir) / "config.yaml")
    card = evaluate_run(run_dir, include_base=False, exports=[e["folder"] for e in exported.values()])
    eval_settings = EvalSettings(**{k: card["settings"][k] for k in ("prompt", "gen_tokens")})
    bf16 = teacher_bf16(run_cfg.models.teacher, run_cfg.data, eval_settings, work_dir)
    rows = [_row(card["teacher"], "PyTorch float32", "safetensors float32"), _row(bf16, bf16["runtime"], "bf16")]
    for entry in card["students"]:
        fmt = entry.get("format")
        if not fmt:
            rows.append(_row(entry, "PyTorch float32", "safetensors float32"))
            continue
        rows.append(_row({**entry, "label": f"student {fmt}"}, entry["runtime_short"].removeprefix("in "), fmt))
        rows[-1].update(relative_logit_error=exported[fmt]["relative_logit_error"],
                        export_seconds=exported[fmt]["export_seconds"])
    rows[0]["label"] = "teacher float32"
    timed = speed_rounds(_speed_loaders(run_cfg.models.teacher, run_dir, exported), eval_settings.prompt,
                         eval_settings.gen_tokens)
    for row in rows:
        if row["label"] in timed:
            row["single_call_tokens_per_s"] = row["gen_tokens_per_s"]
            row["gen_tokens_per_s"] = timed[row["label"]]["median"]
            row["tokens_per_s_range"] = [timed[row["label"]]["min"], timed[row["label"]]["max"]]
    return {"run": run_dir, "teacher": run_cfg.models.teacher, "student": run_cfg.models.student,
            "threads": torch.get_num_threads(), "rows": rows, "exports": exported,
            "measured_on": {"speed": f"{card['settings']['gen_tokens']} greedy tokens at batch 1 after the prompt "
                                     f"{card['settings']['prompt']!r}, median of {SPEED_ROUNDS} rounds, every model "
                                     "timed once in each round, in turn",
                            "reverse_kl": card["settings"].get("generation_on"),
                            "bits_per_byte": card["settings"].get("val_rows")},
            "runtimes": {e["format"]: e["runtime"] for e in card["students"] if e.get("format")}}


def best_artefact(rows: list[dict[str, Any]], checks) -> dict[str, Any] | None:
    """The int8 / 4-bit row meeting most of `checks(row)` (a list of booleans), then the lowest reverse KL."""
    quantized = [r for r in rows if r["format"] in QUANTIZED]
    if not quantized:
        return None
    return max(quantized, key=lambda r: (sum(checks(r)), -(r.get("gen_rkl") if r.get("gen_rkl") is not None
                                                           else float("inf"))))


def add_ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Each row's size share of the float32 teacher, speed over the faster PyTorch teacher, and reverse KL above the
    unquantized student; then the three targets on the best int8 / 4-bit artefact."""
    rows = result["rows"]
    teacher, student = rows[0], next(r for r in rows if r["label"] == DISTILLED)
    pytorch_teachers = [r for r in rows[:2] if r.get("gen_tokens_per_s")]
    fastest = max(pytorch_teachers, key=lambda r: r["gen_tokens_per_s"], default=None)
    for row in rows:
        row["size_share"] = ratio(row["size_on_disk_mb"], teacher["size_on_disk_mb"])
        row["speedup"] = ratio(row.get("gen_tokens_per_s"), fastest["gen_tokens_per_s"] if fastest else None)
        row["rkl_over_student"] = (round(row["gen_rkl"] - student["gen_rkl"], 4)
                                   if row.get("gen_rkl") is not None and student.get("gen_rkl") is not None else None)

    def checks(row: dict[str, Any]) -> list[bool]:
        return [row["size_share"] is not None and row["size_share"] <= SIZE_GOAL,
                row["speedup"] is not None and row["speedup"] >= SPEED_GOAL,
                row["rkl_over_student"] is not None and row["rkl_over_student"] <= RKL_GOAL]

    best = best_artefact(rows, checks)
    result["fastest_pytorch_teacher"] = fastest["label"] if fastest else None
    result["best_artefact"] = best["label"] if best else None
    name = best["label"] if best else "no int8 / 4-bit artefact"
    runtime = best["runtime"] if best else ""
    result["targets"] = [
        target(f"(j) {name}: size on disk / teacher float32", best and best["size_share"], SIZE_GOAL, at_most=True,
               why="the file keeps more than the quantized matrices (the embedding, norms, tokenizer)"),
        target(f"(j) {name}: decode tokens/s / {result['fastest_pytorch_teacher']} (batch 1)",
               best and best["speedup"], SPEED_GOAL,
               why=f"measured {runtime}, {result.get('threads')} thread(s) per runtime; quantized weights cut "
                   "memory traffic, not the compute of the layers the student keeps"),
        target(f"(j) {name}: reverse KL − unquantized student's (nats/token)", best and best["rkl_over_student"],
               RKL_GOAL, at_most=True, why="quantization moves this small model's distribution (see the samples)"),
    ]
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    runs_dir = Path(settings.work_dir) / "deployment" / "runs"
    trained = None
    run_dir = settings.extra.get("run") or finished_chat_run(runs_dir)
    if run_dir is None:
        trained = isolated(settings, __name__, "train_chat", settings=settings.to_dict(), runs_dir=str(runs_dir),
                           minutes=2.0 if settings.quick else None)
        if "error" in trained:
            return {**trained, "targets": []}
        run_dir = trained["run"]
    result = isolated(settings, __name__, "measure", settings=settings.to_dict(), run_dir=str(run_dir))
    if "error" in result:
        return {**result, "targets": []}
    result["trained"] = trained or {"run": str(run_dir), "reused": True}
    return add_ratios(result)


def markdown_table(result: dict[str, Any]) -> str:
    """The rows as the Markdown table of docs/bench-j-deployment.md."""
    lines = ["| model | format | runs in | size on disk | share of teacher fp32 | decode tokens/s (batch 1) | "
             "× faster PyTorch teacher | time to first token | reverse KL (nats/token) | − unquantized student |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def cell(value, fmt):
        return "–" if value is None else fmt.format(value)

    for r in result["rows"]:
        lines.append(f"| {r['label']} | {r['format']} | {r['runtime']} | {cell(r['size_on_disk_mb'], '{:.1f} MB')} | "
                     f"{cell(r['size_share'], '{:.0%}')} | {cell(r['gen_tokens_per_s'], '{:.1f}')} | "
                     f"{cell(r['speedup'], '{:.2f}×')} | {cell(r['ttft_s'], '{:.3f} s')} | "
                     f"{cell(r['gen_rkl'], '{:.3f}')} | {cell(r['rkl_over_student'], '{:+.3f}')} |")
    return "\n".join(lines)
