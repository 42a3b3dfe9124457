"""Training text for distillation: load a dataset spec, tokenize, pack into fixed-length rows, split.

    splits = build_splits(DataConfig(dataset="builtin:chat", seq_len=256), tokenizer)
    splits.train  # LongTensor (N_train, seq_len): documents joined with EOS, cut into rows, no padding
    splits.val    # LongTensor (N_val, seq_len), held out by a seeded permutation of the packed rows
    splits.train_examples, splits.heldout   # prompt/answer data: tokenized examples (on-policy prompts, held out)

Dataset specs are read by `workbench.data.sources`. Prompt/answer data (builtin:chat, files with prompt and answer
columns or a `messages` column) is formatted with `workbench.data.chat_format`, so the student learns the
conversation format the teacher was tuned on; `data.holdout_prompts` of its examples are kept out of every
training row, for scoring what the student generates. With `data.loss_on: answer` the teacher-forced terms skip
prompt tokens (`splits.train_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from workbench.config import DataConfig
from workbench.data.chat_format import exchange_text
from workbench.data.sources import read_documents, read_pairs
from workbench.errors import UserError

_TOKENIZE_CHUNK = 256  # documents per tokenizer call; lets a max_sequences cap stop reading early


@dataclass
class Example:
    """One prompt/answer example, tokenized: prompt_ids end where the model starts answering."""

    prompt: str  # the last user turn, for display
    prompt_ids: list[int]
    answer_ids: list[int]  # the answer with its end-of-turn marker


@dataclass
class Splits:
    train: torch.Tensor  # (N_train, seq_len) int64
    val: torch.Tensor  # (N_val, seq_len) int64
    train_index: torch.Tensor  # positions of the train rows in packed order
    val_index: torch.Tensor  # positions of the val rows in packed order
    stats: dict = field(default_factory=dict)
    train_mask: torch.Tensor | None = None  # (N_train, seq_len) bool: tokens the loss is taken on; None = all
    val_mask: torch.Tensor | None = None
    train_examples: list[Example] = field(default_factory=list)  # prompt/answer data only
    heldout: list[Example] = field(default_factory=list)  # examples no training row contains
    tasks: Any = None  # workbench.data.tasks.TaskSet of a multi-task run (`task_splits`)


def load_texts(dataset: str, *, text_column: str = "text", tokenizer=None) -> list[str]:
    """Documents of a dataset spec as strings; prompt/answer data is formatted as whole chat exchanges."""
    pairs = read_pairs(dataset)
    if pairs is not None:
        return ["".join(exchange_text(tokenizer, p["messages"], p["answer"])) for p in pairs]
    return read_documents(dataset, text_column)


def tokenize_examples(pairs: list[dict], tokenizer) -> list[Example]:
    """Prompt/answer pairs as token ids; prompt and answer are tokenized apart, as on-policy sampling sees them."""
    texts = [exchange_text(tokenizer, p["messages"], p["answer"]) for p in pairs]
    prompts = tokenizer([t[0] for t in texts], add_special_tokens=False)["input_ids"]
    answers = tokenizer([t[1] for t in texts], add_special_tokens=False)["input_ids"]
    return [Example(p["messages"][-1]["content"], list(pi), list(ai))
            for p, pi, ai in zip(pairs, prompts, answers, strict=True)]


def holdout_examples(examples: list[Example], count: int, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, held out): a seeded choice of `count` examples (at most a fifth of them) kept out of training."""
    count = min(count, len(examples) // 5)
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + 7)).tolist()
    held = sorted(order[:count])
    kept = sorted(order[count:])
    return [examples[i] for i in kept], [examples[i] for i in held]


def _eos_id(tokenizer) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError("models.student: its tokenizer has no EOS token, which packing puts between documents")
    return int(eos)


def token_stream(texts: list[str], tokenizer, limit: int | None = None) -> tuple[list[int], int]:
    """Token ids of the documents joined as doc EOS doc EOS ...; stops once `limit` tokens are reached.

    Returns (ids, documents used). Chat-template text already carries its special tokens as text, so no
    tokenizer-added specials are inserted.
    """
    eos = _eos_id(tokenizer)
    ids: list[int] = []
    used = 0
    for first in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = texts[first:first + _TOKENIZE_CHUNK]
        for doc_ids in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
            ids.extend(doc_ids)
            ids.append(eos)
            used += 1
            if limit is not None and len(ids) >= limit:
                return ids, used
    return ids, used


def pack(ids: list, seq_len: int, max_sequences: int | None = None, dtype=torch.long) -> torch.Tensor:
    """Cut a token stream (or its mask) into (N, seq_len) rows; the tail shorter than seq_len is dropped."""
    count = len(ids) // seq_len
    if max_sequences is not None:
        count = min(count, max_sequences)
    return torch.tensor(ids[: count * seq_len], dtype=dtype).view(count, seq_len)


def example_stream(examples: list[Example], eos: int) -> tuple[list[int], list[bool]]:
    """Examples joined as prompt answer EOS ...; the mask is True on answer tokens (the EOS separator is not)."""
    ids: list[int] = []
    mask: list[bool] = []
    for example in examples:
        ids.extend(example.prompt_ids + example.answer_ids + [eos])
        mask.extend([False] * len(example.prompt_ids) + [True] * len(example.answer_ids) + [False])
    return ids, mask


def split_rows(rows: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded choice of validation rows; returns (train_index, val_index), each in packed order."""
    count = rows.shape[0]
    val_count = min(count - 1, max(1, round(count * val_fraction)))
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    val_index = order[:val_count].sort().values
    train_index = order[val_count:].sort().values
    return train_index, val_index


def build_splits(data_cfg: DataConfig, tokenizer) -> Splits:
    """Tokenize, pack and split the dataset of `data_cfg`; same config and tokenizer give the same tensors."""
    pairs = read_pairs(data_cfg.dataset, data_cfg.prompt_column, data_cfg.answer_column)
    mask, train_examples, heldout = None, [], []
    if pairs is None:
        if data_cfg.loss_on == "answer":
            raise UserError(f"data.loss_on: 'answer' needs prompt/answer data (builtin:chat, or a file with "
                            f"{data_cfg.prompt_column!r} and {data_cfg.answer_column!r} columns or a 'messages' "
                            f"column); {data_cfg.dataset!r} is plain text, so use 'all'")
        texts = read_documents(data_cfg.dataset, data_cfg.text_column)
        limit = None if data_cfg.max_sequences is None else data_cfg.max_sequences * data_cfg.seq_len
        ids, documents = token_stream(texts, tokenizer, limit)
    else:
        examples = tokenize_examples(pairs, tokenizer)
        train_examples, heldout = holdout_examples(examples, data_cfg.holdout_prompts, data_cfg.seed)
        ids, answer_mask = example_stream(train_examples, _eos_id(tokenizer))
        documents = len(train_examples)
        if data_cfg.loss_on == "answer":
            mask = pack(answer_mask, data_cfg.seq_len, data_cfg.max_sequences, dtype=torch.bool)
    rows = pack(ids, data_cfg.seq_len, data_cfg.max_sequences)
    if rows.shape[0] < 2:
        raise UserError(
            f"data.dataset: {data_cfg.dataset!r} gives {len(ids)} tokens, too little for two sequences (train and "
            f"validation) at data.seq_len={data_cfg.seq_len}; add text or lower data.seq_len below {len(ids) // 2 + 1}"
        )
    train_index, val_index = split_rows(rows, data_cfg.val_fraction, data_cfg.seed)
    stats = {
        "documents": documents,
        "tokens": len(ids),
        "sequences": int(rows.shape[0]),
        "train_sequences": int(train_index.numel()),
        "val_sequences": int(val_index.numel()),
        "packed_tokens": int(rows.numel()),
        "dropped_tail": len(ids) - int(rows.numel()),
        "seq_len": data_cfg.seq_len,
        "heldout_prompts": len(heldout),
    }
    masks = (None, None) if mask is None else (mask[train_index], mask[val_index])
    return Splits(rows[train_index], rows[val_index], train_index, val_index, stats, *masks, train_examples, heldout)


def preview(data_cfg: DataConfig, tokenizer, n: int = 3, *, count: int | None = None) -> list[dict]:
    """The first packed training rows as dicts (index, tokens, text) for display."""
    shown = n if count is None else count
    config = DataConfig(**{**data_cfg.__dict__, "max_sequences": max(2, (shown + 1) * 2)})
    splits = build_splits(config, tokenizer)
    return [
        {"index": int(index), "tokens": int(row.numel()), "text": tokenizer.decode(row.tolist())}
        for index, row in zip(splits.train_index[:shown], splits.train[:shown], strict=True)
    ]
