"""Glue behind the setup tab: picker choices, the compatibility card, layer counts and mapping checks, LoRA target
defaults, the dataset preview, and the cached next-token logits behind the temperature preview.

Nothing here runs at app start; models are loaded on first use through the shared `ModelPool`.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench.app.i18n import tr, translator
from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT
from workbench.errors import Message, UserError
from workbench.runs.folder import list_runs

DERIVED_EXAMPLES = (
    f"{BUILTIN_TEACHER}?prune=keep&layers=0-19",
    f"{BUILTIN_TEACHER}?prune=drop&block=20-24",
    f"{BUILTIN_TEACHER}?prune=importance&layers=20",
    f"{BUILTIN_TEACHER}?prune=even&layers=20",
    f"{BUILTIN_TEACHER}?fresh&layers=4&hidden=256&heads=4&kv_heads=2",
    f"{BUILTIN_TEACHER}?fresh&layers=4&hidden=256&heads=4&tokenizer=builtin:bpe-8k",
)
BUILTIN_DATASETS = ("builtin:chat", "builtin:kjv")
SAMPLE_PROMPT = "The capital of France is"


def model_choices(ctx, role: str) -> list[str]:
    """Teacher/student picker entries: the app's pair, the built-in and derived specs, recent runs' students."""
    specs = [ctx.teacher, ctx.student] if role == "teacher" else [ctx.student, ctx.teacher]
    specs += [BUILTIN_TEACHER, DEFAULT_STUDENT, *DERIVED_EXAMPLES]
    if role == "student":
        for run in list_runs(ctx.runs_dir)[:10]:
            if run.student_dir.is_dir() and (run.student_dir / "config.json").is_file():
                specs.append(str(run.student_dir))
    return list(dict.fromkeys(specs))


def dataset_choices(ctx, current: str | None = None) -> list[str]:
    uploads = Path(ctx.runs_dir) / ".uploads"
    found = [str(p) for p in sorted(uploads.iterdir())] if uploads.is_dir() else []
    return list(dict.fromkeys([*([current] if current else []), *BUILTIN_DATASETS, *found]))


def store_upload(ctx, upload_path: str) -> str:
    """Copy an uploaded data file next to the runs (the gradio cache is temporary); returns its new path."""
    source = Path(upload_path)
    target_dir = Path(ctx.runs_dir) / ".uploads"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    shutil.copyfile(source, target)
    return str(target.resolve())


@lru_cache(maxsize=64)
def _card(teacher: str, student: str, batch: int, seq_len: int, trust_remote_code: bool) -> dict:
    from workbench.analysis.compatibility import compatibility_card

    return compatibility_card(teacher, student, batch, seq_len, trust_remote_code=trust_remote_code)


def compatibility_card_text(teacher: str, student: str, batch: int, seq_len: int, trust: bool,
                   lang: str = "en") -> tuple[str, bool | None]:
    """(card as an HTML table in `lang`, same tokenizer). Errors (unknown spec, offline hub id) come back as plain
    text, with None."""
    from workbench.analysis.compatibility import card_html

    teacher, student = (teacher or "").strip(), (student or "").strip()
    if not teacher or not student:
        return tr("Choose a teacher and a student to see their compatibility card.", lang), None
    try:
        card = _card(teacher, student, int(batch or 1), int(seq_len or 8), bool(trust))
    except (ValueError, OSError) as exc:
        return tr("Cannot read this pair: {error}", lang, error=exc), None
    return card_html(card, translator(lang)), bool(card["tokenizer"]["identical"])


@lru_cache(maxsize=64)
def layer_count(spec: str) -> int:
    from workbench.models.loading import load_config

    return int(load_config(spec).num_hidden_layers)


def mapping_check(strategy: str, pairs: list[str], student: str, teacher: str) -> dict[str, Any]:
    """Resolve a mapping against both models' depths: pairs, invalid items, their reasons (Messages) and the layer
    counts."""
    from workbench.engine.mapping import parse_pairs, resolve_mapping, source_layers

    student_layers, teacher_layers = layer_count(student.strip()), layer_count(teacher.strip())
    result: dict[str, Any] = {"student_layers": student_layers, "teacher_layers": teacher_layers,
                              "pairs": [], "invalid": [], "errors": []}
    if strategy != "custom":
        try:
            source = source_layers(student.strip(), teacher.strip(), teacher_layers) if strategy == "source" else None
            result["pairs"] = resolve_mapping(strategy, None, student_layers, teacher_layers, source)
        except UserError as exc:
            result["errors"].append(exc.message)
        return result
    if not pairs:
        result["errors"].append(Message("custom mapping needs at least one pair"))
    for item in pairs:
        try:
            result["pairs"] += parse_pairs([*[f"{s}:{t}" for s, t in result["pairs"]], item], student_layers,
                                           teacher_layers)[len(result["pairs"]):]
        except UserError as exc:
            student_side, _, teacher_side = item.partition(":")
            result["invalid"].append((student_side, teacher_side))
            result["errors"].append(exc.message)
    return result


def lora_targets(student: str) -> tuple[list[str], list[str]]:
    """(module names that can take LoRA, the library's defaults for an empty lora.target_modules), read from the
    student's config on a weightless model."""
    import torch
    from transformers import AutoModelForCausalLM

    from workbench.models.loading import load_config
    from workbench.models.lora import default_target_modules, linear_names

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(load_config(student.strip()))
    return [name for name in linear_names(model) if name != "lm_head"], default_target_modules(model)


def dataset_preview(dataset: str, text_column: str, seq_len: int, tokenizer_spec: str, count: int = 3) -> list[list]:
    """A few packed training sequences as rows (index, tokens, text), via `workbench.data.splits`."""
    from workbench.config import DataConfig
    from workbench.data import splits as data

    tokenizer = load_tokenizer_cached(tokenizer_spec.strip())
    if hasattr(data, "preview"):
        shown = data.preview(DataConfig(dataset=dataset, text_column=text_column, seq_len=int(seq_len)), tokenizer,
                             count=count)
        return [[row.get("index", i), row.get("tokens", ""), row.get("text", "")] for i, row in enumerate(shown)]
    splits = data.build_splits(DataConfig(dataset=dataset, text_column=text_column, seq_len=int(seq_len)), tokenizer)
    rows = []
    for index, ids in enumerate(splits.train[:count]):
        rows.append([index, len(ids), tokenizer.decode(ids.tolist())])
    return rows


@lru_cache(maxsize=8)
def load_tokenizer_cached(spec: str):
    from workbench.models.loading import load_tokenizer

    return load_tokenizer(spec)


def next_token_logits(ctx, teacher: str, student: str, prompt: str) -> dict[str, Any]:
    """Both models' next-token logits after `prompt`, cached per (teacher, student, prompt) so a slider move is a
    softmax away. Loads the models through the pool on first use."""
    import torch

    key = (teacher.strip(), student.strip(), prompt)
    if key in ctx.preview_cache:
        return ctx.preview_cache[key]
    logits = {}
    tokenizer = None
    for role, spec in (("teacher", key[0]), ("student", key[1])):
        model, tokenizer = ctx.pool.get(spec)
        ids = tokenizer(prompt or " ", return_tensors="pt")["input_ids"].to(next(model.parameters()).device)
        with torch.no_grad():
            logits[role] = model(input_ids=ids).logits[0, -1].float().cpu()
    vocab = min(logits["teacher"].shape[-1], logits["student"].shape[-1])
    entry = {
        "teacher": logits["teacher"][:vocab].tolist(),
        "student": logits["student"][:vocab].tolist(),
        "decode": (lambda tok: lambda i: tok.decode([i]))(tokenizer),
    }
    if len(ctx.preview_cache) > 16:
        ctx.preview_cache.clear()
    ctx.preview_cache[key] = entry
    return entry



def tokenizer_alignment(teacher: str, student: str, text: str) -> str:
    """HTML of the sample text tokenized by both models, aligned into spans (workbench.analysis.alignment_view)."""
    from workbench.analysis.alignment_view import alignment_html, alignment_spans

    if not (text or "").strip():
        raise UserError("Sample text: type a sentence for both tokenizers to read")
    view = alignment_spans(load_tokenizer_cached(teacher.strip()), load_tokenizer_cached(student.strip()), text)
    return alignment_html(view)
