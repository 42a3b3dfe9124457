"""Prompts the teacher writes itself, for on-policy steps (`onpolicy.teacher_prompts`).

An instruction-tuned teacher given its chat template up to the start of a user turn, and nothing else, continues
with a user's request: the idea of Magpie (Xu et al. 2024, "Magpie: Alignment Data Synthesis from Scratch by
Prompting Aligned LLMs with Nothing"). On-policy distillation needs prompts only (the student writes the answers and
the teacher grades them), so a teacher with a chat template gives a run as many prompts as it asks for.

    texts = write_prompts(teacher, teacher_tok, 800, seed=0, avoid=[e.prompt for e in heldout])
    examples = prompt_examples(texts, student_tok)

Kept are the requests that end their turn within `max_new_tokens`, hold at least `MIN_WORDS` words, are not
repeats of each other and do not contain, nor are contained in, a held-out prompt (compared lower-case, letters and
digits only), so the held-out score stays a score on prompts the student never trained on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import torch

from workbench.data.chat_format import exchange_text, has_template
from workbench.data.splits import Example
from workbench.engine.onpolicy import Sampling, eos_ids, pad_id, sample_completions
from workbench.errors import UserError
from workbench.runs.folder import atomic_write_text

MARK = "\x00WORKBENCH-USER-TURN\x00"
MIN_WORDS = 4
BATCH = 128
MAX_TRIES = 4  # batches drawn at most: MAX_TRIES × the batches `count` needs if every request were kept
SAMPLING = Sampling(max_new_tokens=64, temperature=1.0, top_p=1.0)


def user_turn_prefix(tokenizer) -> str:
    """The teacher's chat template up to where a user's words begin (its system turn, if it has one, included)."""
    if not has_template(tokenizer):
        raise UserError("onpolicy.teacher_prompts: the teacher's tokenizer has no chat template, so it cannot be "
                        "asked to write a user's request; set 0, or use a chat teacher")
    text = tokenizer.apply_chat_template([{"role": "user", "content": MARK}], tokenize=False)
    if MARK not in text:
        raise UserError("onpolicy.teacher_prompts: the teacher's chat template does not show the user's words "
                        "verbatim; set 0")
    return text[: text.index(MARK)]


def normalized(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


def _overlaps(key: str, avoid: list[str]) -> bool:
    return any(a and (a in key or key in a) for a in avoid)


def write_prompts(teacher, tokenizer, count: int, *, seed: int, avoid: list[str] = (),
                  progress: Callable[[int, int], None] | None = None, batch: int = BATCH) -> list[str]:
    """Up to `count` distinct user requests sampled from `teacher` (fewer if MAX_TRIES batches per needed batch
    could not find them), in the order they were written; same teacher, seed and count give the same list."""
    prefix = tokenizer(user_turn_prefix(tokenizer), add_special_tokens=False)["input_ids"]
    stop, pad = eos_ids(teacher, tokenizer), pad_id(tokenizer)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + 29)
    avoid_keys = [normalized(a) for a in avoid]
    kept: list[str] = []
    seen: set[str] = set()
    for _ in range(MAX_TRIES * -(-count // batch)):
        if len(kept) >= count:
            break
        for tokens in sample_completions(teacher, [prefix] * batch, SAMPLING, generator, stop, pad):
            if not tokens or tokens[-1] not in stop:
                continue  # ran out of tokens before the request ended
            text = tokenizer.decode(tokens[:-1], skip_special_tokens=True).strip()
            key = normalized(text)
            if len(key.split()) < MIN_WORDS or key in seen or _overlaps(key, avoid_keys):
                continue
            seen.add(key)
            kept.append(text)
            if len(kept) == count:
                break
        if progress is not None:
            progress(len(kept), count)
    return kept


def prompt_examples(texts: list[str], tokenizer) -> list[Example]:
    """Requests as on-policy examples of the student's tokenizer: a prompt and no answer."""
    prompts = [exchange_text(tokenizer, text, "")[0] for text in texts]
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
    return [Example(text, list(p), []) for text, p in zip(texts, ids, strict=True)]


def save_prompts(path: Path, texts: list[str]) -> None:
    """The requests as the run folder keeps them: `{"prompt": ...}` per line, written atomically."""
    atomic_write_text(path, "".join(json.dumps({"prompt": text}, ensure_ascii=False) + "\n" for text in texts))


def read_prompts(path: Path) -> list[str]:
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line]
