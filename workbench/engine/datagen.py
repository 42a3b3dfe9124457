"""Sequence-level distillation data: a teacher answers a file of prompts, written as JSONL.

`generate_answers(teacher_spec, prompts_path, out_path)` reads {"prompt", "category"} rows, formats each with
the teacher tokenizer's chat template, generates in left-padded batches and writes {"prompt", "response",
"category"} rows to `out_path`, plus the generation settings to a sidecar `<out stem>.meta.json`.
Run it as `workbench generate-data --teacher SPEC --prompts FILE --out FILE`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from workbench.data.chat_format import has_template, prompt_text
from workbench.errors import UserError


@dataclass
class GenerationSettings:
    teacher: str
    max_new_tokens: int = 160
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    batch_size: int = 16


def read_prompts(path: str | Path) -> list[dict]:
    """Rows of a prompt file: JSONL with a "prompt" field (and optional "category"), or one prompt per line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--prompts: no such file {str(path)!r}; give a .jsonl with a 'prompt' field or a .txt")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"--prompts: line {number} of {path} is not JSON ({exc.msg})") from exc
            if not isinstance(record, dict) or not str(record.get("prompt", "")).strip():
                raise UserError(f"--prompts: line {number} of {path} has no 'prompt' field")
            rows.append({"prompt": record["prompt"], "category": record.get("category", "")})
        else:
            rows.append({"prompt": line.strip(), "category": ""})
    if not rows:
        raise UserError(f"--prompts: {path} holds no prompts")
    return rows


@torch.no_grad()
def _generate_batch(model, tokenizer, prompts: list[str], settings: GenerationSettings) -> list[str]:
    texts = [prompt_text(tokenizer, p) for p in prompts]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not has_template(tokenizer))
    sample = settings.temperature > 0
    output = model.generate(
        **batch,
        max_new_tokens=settings.max_new_tokens,
        do_sample=sample,
        temperature=settings.temperature if sample else None,
        top_p=settings.top_p if sample else None,
        pad_token_id=tokenizer.pad_token_id,
    )
    new_tokens = output[:, batch["input_ids"].shape[1]:]  # (B, generated)
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new_tokens]


def generate_answers(
    settings: GenerationSettings, prompts_path: str | Path, out_path: str | Path, *, progress: bool = True
) -> dict:
    """Answer every prompt with the teacher; write rows + sidecar settings; return the settings record."""
    from tqdm.auto import tqdm

    from workbench.models.loading import load_model, load_tokenizer

    rows = read_prompts(prompts_path)
    tokenizer = load_tokenizer(settings.teacher)
    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    model = load_model(settings.teacher)
    torch.manual_seed(settings.seed)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    new_tokens = 0
    with out_path.open("w", encoding="utf-8") as sink, tqdm(total=len(rows), disable=not progress, unit="prompt") as bar:
        for first in range(0, len(rows), settings.batch_size):
            chunk = rows[first:first + settings.batch_size]
            answers = _generate_batch(model, tokenizer, [r["prompt"] for r in chunk], settings)
            for row, answer in zip(chunk, answers, strict=True):
                new_tokens += len(tokenizer(answer, add_special_tokens=False)["input_ids"])
                record = {"prompt": row["prompt"], "response": answer, "category": row["category"]}
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            bar.update(len(chunk))
    meta = {
        **asdict(settings),
        "prompts_file": Path(prompts_path).name,
        "count": len(rows),
        "response_tokens": new_tokens,
        "seconds": round(time.perf_counter() - start, 1),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
    }
    meta_path(out_path).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def meta_path(out_path: str | Path) -> Path:
    """Sidecar file holding the generation settings of a generated JSONL."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".meta.json")
