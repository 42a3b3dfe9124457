"""The report card: what the student gained in size and speed and what it lost in quality, against the teacher.

    card = evaluate_models(teacher_spec, {"distilled": "runs/run-1", "undistilled": student_spec})
    print(format_report(card))
    card = evaluate_run("runs/run-1")          # teacher, the run's student and its undistilled start; writes eval.json

Per model: total and non-embedding parameters, size on disk (weight files; estimated from the parameters for derived
specs that have no folder), validation perplexity, KL(teacher‖student) at temperature 1, top-1 agreement (same argmax
as the teacher) and top-5 agreement (the teacher's argmax is among the student's five most likely tokens), greedy
generation speed at batch 1 (tokens/s after the first token), time to first token, and peak memory while loading and
generating (RSS growth of this process on the CPU, `torch.cuda.max_memory_allocated` growth on a GPU). Students also
get the compression ratio (teacher parameters / student parameters) and the speedup (student tokens/s / teacher's).
Validation text is the held-out split of the run's data (`workbench.data.splits.build_splits`), cut to a small budget.
Bits per byte (cross-entropy in bits per UTF-8 byte of the predicted tokens) compares models whatever their
tokenizers: a student with another tokenizer reads the same validation text its own way (each sequence's text,
tokenized by it) and gets perplexity and bits per byte only, since KL and agreement need one vocabulary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.analysis.artefacts import artefact_lines, export_labels, is_artefact
from workbench.analysis.decode_speed import PeakMemory, measure_generation
from workbench.analysis.eval_estimate import RunTimings, run_timings, stage_reporter
from workbench.analysis.task_report import run_task_scores, task_lines, with_task_columns
from workbench.engine.scores import agreement_sums
from workbench.errors import Message, UserError
from workbench.measured import REPORT_ROWS, measured
from workbench.models.vocab import bits_per_byte, bytes_per_token, perplexity, row_text, token_bytes
from workbench.runs.folder import RunFolder, atomic_write_text
from workbench.runs.pool import ResolvedSpec, default_device, load_resolved, resolve_spec

DEFAULT_PROMPT = "Write a short note to a friend about a walk by the sea."


@dataclass
class EvalSettings:
    dataset: str = "builtin:chat"
    text_column: str = "text"
    seq_len: int | None = None  # None: a run's own eval rows (its seq_len), else 128
    max_sequences: int | None = None  # None: a run's own eval rows (eval_batches × batch_size), else 16
    batch_size: int = 4
    gen_tokens: int = 32
    prompt: str = DEFAULT_PROMPT
    device: str | None = None
    generation: bool = True  # sample answers to held-out prompts and score them (genquality)

    def __post_init__(self) -> None:
        for name, low, high in (("seq_len", 8, 8192), ("max_sequences", 1, 4096), ("batch_size", 1, 256),
                                ("gen_tokens", 2, 1024)):
            value = getattr(self, name)
            if value is None and name in ("seq_len", "max_sequences"):
                continue
            if not isinstance(value, int) or not low <= value <= high:
                raise UserError(Message("eval {name} must be an integer in [{low}, {high}], got {value!r}", name=name,
                                        low=low, high=high, value=value))


def _size_on_disk(resolved: ResolvedSpec, model) -> tuple[float, str]:
    folder = Path(resolved.load_spec)
    if resolved.load_spec.startswith("builtin:") and "?" not in resolved.load_spec:
        from workbench.models.loading import builtin_teacher_dir

        folder = builtin_teacher_dir(resolved.load_spec.removeprefix("builtin:"))
    if "?" not in resolved.load_spec and not resolved.checkpoint_state and folder.is_dir():
        files = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")]
        if files:
            return sum(p.stat().st_size for p in files) / 2**20, "files"
    tensors = {t.data_ptr(): t for t in list(model.parameters()) + list(model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20, "estimated"


def _load_artefact(label: str, spec: str) -> tuple[dict[str, Any], Any, Any, PeakMemory]:
    """An exported GGUF / ONNX folder, loaded in its runtime on the CPU (see workbench.analysis.artefacts)."""
    from workbench.analysis.artefacts import load_artefact

    with PeakMemory("cpu") as memory:
        model, tokenizer, facts = load_artefact(spec)
    entry = {
        "label": label, "spec": spec, "params_total": facts["params_total"],
        "params_non_embedding": facts["params_non_embedding"], "size_on_disk_mb": round(facts["size_bytes"] / 2**20, 3),
        "size_source": f"file {facts['file']}", "format": facts["format"], "runtime": facts["runtime"],
        "runtime_short": facts["runtime_short"],
    }
    return entry, model, tokenizer, memory


def _load_and_size(label: str, spec: str, device: str) -> tuple[dict[str, Any], Any, Any, PeakMemory]:
    """A model loaded, with its parameters and size on disk, and the memory its loading took."""
    from workbench.models.loading import count_parameters

    if is_artefact(spec):
        return _load_artefact(label, spec)
    resolved = resolve_spec(spec)
    with PeakMemory(device) as memory:
        model, tokenizer = load_resolved(resolved, device=device, dtype=torch.float32, attn_implementation=None)
    params = count_parameters(model)
    size_mb, size_source = _size_on_disk(resolved, model)
    entry = {
        "label": label,
        "spec": spec,
        "params_total": params["total"],
        "params_non_embedding": params["non_embedding"],
        "size_on_disk_mb": round(size_mb, 3),
        "size_source": size_source,
    }
    return entry, model, tokenizer, memory


def _time(model, tokenizer, loading: PeakMemory, device: str, settings: EvalSettings) -> dict[str, float | None]:
    """Greedy decoding speed at batch 1, and the peak memory of loading and decoding: the larger of loading's own
    peak and what the loaded model holds plus decoding's growth on top of it."""
    with PeakMemory(device) as decoding:
        speed = measure_generation(model, tokenizer, settings.prompt, settings.gen_tokens)
    return {**speed, "peak_memory_mb": round(max(loading.peak_mb, loading.end_mb + decoding.peak_mb), 1)}


def validation_ids(splits, data_cfg, settings: EvalSettings) -> torch.Tensor:
    """Held-out token ids [N, L] of the data's splits, cut to the settings' sequence budget."""
    if splits.val.numel() == 0:
        raise UserError(Message("data.dataset {dataset!r} has no validation sequences to evaluate on",
                                dataset=data_cfg.dataset))
    return splits.val[: settings.max_sequences or 16, : settings.seq_len or 128]


@torch.inference_mode()
def score_quality(teacher, students: list, val_ids: torch.Tensor, batch_size: int,
                  target_bytes: torch.Tensor | None = None) -> list[dict[str, float]]:
    """Perplexity of the teacher and each student, and each student's KL/top-1/top-5 against the teacher.

    Returns one dict per model, the teacher first. KL is per token, in nats, at temperature 1. With `target_bytes`
    ([V] bytes of each token id) each dict also has bits per byte."""
    device = next(teacher.parameters()).device
    models = [teacher, *students]
    sums = torch.zeros(len(models), 5, dtype=torch.float64)  # ce, kl, top-1 hits, positions, top-5 hits
    text_bytes = 0.0
    for start in range(0, val_ids.shape[0], batch_size):
        batch = val_ids[start : start + batch_size].to(device)
        inputs, targets = batch[:, :-1], batch[:, 1:]
        if target_bytes is not None:
            text_bytes += float(target_bytes[targets.cpu()].sum())
        teacher_logits = teacher(input_ids=inputs).logits.float()  # [B, L-1, V]
        vocab = teacher_logits.shape[-1]
        teacher_top1 = teacher_logits.argmax(-1)  # [B, L-1]
        for index, model in enumerate(models):
            # an exported artefact answers on the CPU whatever the teacher's device
            logits = teacher_logits if index == 0 else model(input_ids=inputs).logits.float()[..., :vocab].to(
                teacher_logits.device)
            sums[index, :4] += agreement_sums(logits, targets, teacher_logits=teacher_logits).cpu()
            top5 = logits.topk(min(5, vocab), dim=-1).indices
            sums[index, 4] += float((top5 == teacher_top1.unsqueeze(-1)).any(-1).sum())
    return [
        {
            "val_ppl": perplexity(ce / positions),
            "val_ce": ce / positions,
            "kl_teacher_student": max(kl / positions, 0.0),
            "top1_agreement": top1 / positions,
            "top5_agreement": top5 / positions,
            "val_tokens": int(positions),
            **({"val_bpb": bits_per_byte(ce, text_bytes)} if text_bytes else {}),
        }
        for ce, kl, top1, positions, top5 in sums.tolist()
    ]


@torch.inference_mode()
def score_own_tokenizer(model, tokenizer, texts: list[str]) -> dict[str, float | None]:
    """Perplexity and bits per byte of a model that reads `texts` with its own tokenizer (one sequence per text);
    it cannot be compared with the teacher token by token, so KL and agreement are None."""
    device = next(model.parameters()).device
    target_bytes = bytes_per_token(tokenizer)
    ce, positions, text_bytes = 0.0, 0, 0.0
    for text in texts:
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]], device=device)
        if ids.shape[1] < 2:
            continue
        logits = model(input_ids=ids[:, :-1]).logits.float()
        ce += float(torch.nn.functional.cross_entropy(logits[0], ids[0, 1:], reduction="sum"))
        positions += ids.shape[1] - 1
        text_bytes += float(target_bytes[ids[0, 1:].cpu()].sum())
    positions = max(positions, 1)
    return {"val_ppl": perplexity(ce / positions), "val_ce": ce / positions,
            "val_bpb": bits_per_byte(ce, text_bytes), "kl_teacher_student": None, "top1_agreement": None,
            "top5_agreement": None, "val_tokens": positions, "tokenizer": "own"}


def _data_config(settings: EvalSettings, data_cfg=None):
    from workbench.config import DataConfig

    if data_cfg is not None:
        return data_cfg
    # no training split is needed here: hold out a quarter, and pack only the text that yields the sequences asked for
    return DataConfig(dataset=settings.dataset, text_column=settings.text_column, seq_len=settings.seq_len or 128,
                      val_fraction=0.25, max_sequences=max(2, (settings.max_sequences or 16) * 4))


def evaluate_models(
    teacher_spec: str, students: dict[str, str], settings: EvalSettings | None = None, *, data_cfg=None,
    progress: Callable[[float, Message], None] = lambda fraction, message: None,
    partial: Callable[[dict], None] = lambda card: None, timings: RunTimings | None = None,
) -> dict[str, Any]:
    """The report card of a teacher and one or more students ({label: spec}); see the module docstring.
    Stages: each model loaded (its size), the teacher-forced scores of all of them, each model's decoding speed, then
    (with `settings.generation`) their answers to the held-out prompts. `progress(fraction done, what comes next)` is
    called before each stage and `partial(card so far)` after each one but the last, so the app shows sizes first,
    then quality, then speed.
    With `timings` (a run's own, `workbench.analysis.eval_estimate`) each stage's message says about how long it
    takes, the first one also the whole evaluation, and the fraction done counts estimated seconds."""
    from workbench.data.splits import build_splits
    from workbench.engine.genquality import card_generation
    from workbench.models.vocab import compare_tokenizers

    settings = settings or EvalSettings()
    if not students:
        raise UserError(Message("evaluation needs at least one student spec"))
    if "teacher" in students:
        raise UserError(Message("a student cannot be labelled 'teacher'"))
    data = _data_config(settings, data_cfg)
    stage = stage_reporter(progress, timings, students=len(students), gen_tokens=settings.gen_tokens,
                           val_tokens=(settings.max_sequences or 16) * (min(settings.seq_len or 128, data.seq_len) - 1),
                           prompts=data.holdout_prompts, generation=settings.generation)
    device = settings.device or default_device()
    started = time.time()
    loaded = {}  # label: (model, tokenizer, the memory its loading took, the device it runs on)
    entries, models, own = [], [], {}
    card = {"teacher": None, "students": entries, "settings": {"device": device}}
    for label, spec in {"teacher": teacher_spec, **students}.items():
        stage(Message("loading {model}", model=Message(label)))
        entry, model, tokenizer, memory = _load_and_size(label, spec, device)
        loaded[label] = (model, tokenizer, memory, "cpu" if is_artefact(spec) else device)
        if label == "teacher":
            card["teacher"], teacher, teacher_tok = entry, model, tokenizer
        else:
            if compare_tokenizers(teacher_tok, tokenizer)["problem"]:
                own[label] = (model, tokenizer)  # another tokenizer: scored on the same text, read its own way
            else:
                models.append(model)
            entries.append({**entry, **_ratios(card["teacher"], entry)})
        partial(card)  # sizes first
    teacher_entry = card["teacher"]
    splits = build_splits(data, teacher_tok)
    val_ids = validation_ids(splits, data, settings)
    stage(Message("scoring {rows} validation rows (perplexity, KL, agreement)", rows=val_ids.shape[0]))
    quality = score_quality(teacher, models, val_ids, settings.batch_size, bytes_per_token(teacher_tok))
    teacher_entry.update(quality[0])
    texts = [row_text(row.tolist(), token_bytes(teacher_tok)) for row in val_ids] if own else []
    same_scores = iter(quality[1:])
    for entry in entries:
        entry.update(score_own_tokenizer(*own[entry["label"]], texts) if entry["label"] in own else next(same_scores))
    card["settings"] = {**asdict(settings), "device": device, "dataset": data.dataset,
                        "val_rows": measured(REPORT_ROWS, rows=val_ids.shape[0], tokens=val_ids.shape[1],
                                             source=data.dataset)}
    partial(card)  # then quality
    for entry in [teacher_entry, *entries]:
        stage(Message("timing {model}", model=Message(entry["label"])))
        entry.update(_time(*loaded[entry["label"]], settings))
        if entry is not teacher_entry:
            entry.update(_ratios(teacher_entry, entry))
        partial(card)  # then speed
    generation = None
    if settings.generation:
        stage(Message("sampling and scoring answers to the held-out prompts"))
        generation = card_generation(teacher, models, teacher_tok, splits.heldout, data.dataset)
        _apply_generation(generation, [teacher_entry, *[e for e in entries if e["label"] not in own]])
    card["settings"].update(generation_on=generation["measured_on"] if generation else None,
                            samples=generation["samples"] if generation else [])
    return {**card, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "elapsed_s": round(time.time() - started, 2)}


def _ratios(teacher_entry: dict, entry: dict) -> dict[str, float | None]:
    """How much smaller and faster a student is than the teacher."""
    teacher_speed, speed = teacher_entry.get("gen_tokens_per_s"), entry.get("gen_tokens_per_s")
    return {"compression_ratio": teacher_entry["params_total"] / max(entry["params_total"] or 0, 1),
            "size_ratio": teacher_entry["size_on_disk_mb"] / max(entry["size_on_disk_mb"], 1e-9),
            "speedup": speed / teacher_speed if speed and teacher_speed else None}


def _apply_generation(generation: dict, sampled: list[dict]) -> None:
    """Each sampled model's generation numbers into its entry (students with their own tokenizer are not sampled)."""
    from workbench.engine.genquality import GEN_KEYS

    for entry, numbers in zip(sampled, generation["models"], strict=True):
        entry["generation"] = numbers
        entry.update({k: numbers[k] for k in GEN_KEYS})


def cached_report(run: RunFolder) -> dict | None:
    """The run's eval.json when it is newer than the final student's weights (else None: evaluate again)."""
    from workbench.models.loading import weights_mtime

    eval_path = run.path / "eval.json"
    if not eval_path.is_file():
        return None
    fresh = eval_path.stat().st_mtime >= weights_mtime(resolve_spec(str(run.path)).load_spec)
    return json.loads(eval_path.read_text()) if fresh else None


def evaluate_run(run_dir: str | Path, settings: EvalSettings | None = None, *, include_base: bool = True,
                 progress: Callable[[float, Message], None] = lambda fraction, message: None,
                 partial: Callable[[dict], None] = lambda card: None,
                 exports: list[str] | tuple[str, ...] = ()) -> dict:
    """Evaluate a run's student (final, else its latest checkpoint) against its teacher; writes `eval.json`.
    `exports`: GGUF / ONNX export folders of the student, each a row measured in its own runtime."""
    from workbench.config import DistillConfig

    run = RunFolder(Path(run_dir))
    if not run.config_path.is_file():
        raise UserError(Message("run folder {run_dir!r} has no config.yaml; give a folder under runs/",
                                run_dir=str(run_dir)))
    cfg = DistillConfig.load(run.config_path)
    settings = settings or EvalSettings(dataset=cfg.data.dataset, text_column=cfg.data.text_column)
    if settings.seq_len is None and settings.max_sequences is None:  # the rows the run's train-time eval scores
        settings = EvalSettings(**{**asdict(settings), "seq_len": cfg.data.seq_len, "batch_size": cfg.train.batch_size,
                                   "max_sequences": cfg.train.eval_batches * cfg.train.batch_size})
    students = {"distilled student": str(run.path)}
    if include_base:
        students["undistilled student"] = cfg.models.student
    students.update(export_labels(exports))
    card = evaluate_models(cfg.models.teacher, students, settings, data_cfg=cfg.data, progress=progress,
                           partial=partial, timings=run_timings(run))
    card["run"] = run.run_id
    card.update(run_task_scores(run.metrics_path))  # a multi-task run's per-task scores, from its last evaluation
    card["student_source"] = resolve_spec(str(run.path)).load_spec
    atomic_write_text(run.path / "eval.json", json.dumps(card, indent=1))
    return card


def report_rows(card: dict) -> list[dict[str, Any]]:
    """The teacher's entry then each student's, for tables and bar charts."""
    return [card["teacher"], *card["students"]]


REPORT_COLUMNS = (
    ("params_total", "parameters", "{:,.0f}"),
    ("params_non_embedding", "non-embedding", "{:,.0f}"),
    ("size_on_disk_mb", "size (MB)", "{:.1f}"),
    ("val_ppl", "val perplexity", "{:.2f}"),
    ("val_bpb", "bits per byte", "{:.4f}"),
    ("kl_teacher_student", "KL(teacher‖student)", "{:.4f}"),
    ("top1_agreement", "top-1 agreement", "{:.3f}"),
    ("top5_agreement", "top-5 agreement", "{:.3f}"),
    ("gen_rkl", "reverse KL on own answers (nats/token)", "{:.3f}"),
    ("gen_teacher_nll", "teacher NLL of answers (nats/token)", "{:.3f}"),
    ("gen_rep4", "repeated 4-grams", "{:.1%}"),
    ("gen_empty", "empty answers", "{:.0%}"),
    ("gen_len", "mean answer length (tokens)", "{:.1f}"),
    ("gen_tokens_per_s", "tokens/s (batch 1)", "{:.1f}"),
    ("ttft_s", "time to first token (s)", "{:.3f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:.0f}"),
    ("compression_ratio", "compression ×", "{:.2f}"),
    ("speedup", "speedup ×", "{:.2f}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def report_table(card: dict, text: Callable[[str], str] = str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the report card as text cells: one row per model (then a run's per-task scores)."""
    header = ["model", *[title for _, title, _ in REPORT_COLUMNS]]
    rows = [[entry["label"], *[_cell(entry.get(k), f) for k, _, f in REPORT_COLUMNS]] for entry in report_rows(card)]
    return with_task_columns(card, header, rows, text)


def format_report(card: dict) -> str:
    """The report card as a Markdown table (models as columns, metrics as rows) with a line about the settings."""
    entries = report_rows(card)
    lines = ["| metric | " + " | ".join(e["label"] for e in entries) + " |", "|---|" + "---|" * len(entries)]
    for key, title, fmt in REPORT_COLUMNS:
        lines.append(f"| {title} | " + " | ".join(_cell(e.get(key), fmt) for e in entries) + " |")
    s = card.get("settings", {})
    lines.append("")
    lines.append(
        f"Teacher-forced numbers: {s.get('val_rows') or s.get('dataset', '?')} ({entries[0].get('val_tokens', 0)} "
        f"tokens, held-out split); speed: {s.get('gen_tokens', '?')} greedy tokens at batch 1 on {s.get('device', '?')}."
    )
    if s.get("generation_on"):
        lines.append(f"Generation quality: {s['generation_on']}.")
    lines.extend(artefact_lines(card))  # exported GGUF / ONNX rows: runtime and one sentence each
    lines.extend(task_lines(card))
    return "\n".join(lines)
