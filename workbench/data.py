"""Training text for distillation: load a dataset spec, tokenize, pack into fixed-length rows, split.

    splits = build_splits(DataConfig(dataset="builtin:chat", seq_len=256), tokenizer)
    splits.train  # LongTensor (N_train, seq_len): documents joined with EOS, cut into rows, no padding
    splits.val    # LongTensor (N_val, seq_len), held out by a seeded permutation of the packed rows

Dataset specs are read by `workbench.sources`; `builtin:chat` rows are formatted here with the tokenizer's
chat template so the student learns the same conversation format the teacher was tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from workbench.config import DataConfig
from workbench.errors import UserError
from workbench.sources import read_chat_rows, read_documents

_TOKENIZE_CHUNK = 256  # documents per tokenizer call; lets a max_sequences cap stop reading early


@dataclass
class Splits:
    train: torch.Tensor  # (N_train, seq_len) int64
    val: torch.Tensor  # (N_val, seq_len) int64
    train_index: torch.Tensor  # positions of the train rows in packed order
    val_index: torch.Tensor  # positions of the val rows in packed order
    stats: dict = field(default_factory=dict)


def format_chat(tokenizer, prompt: str, response: str) -> str:
    """One user/assistant exchange as text: the tokenizer's chat template, or a plain fallback."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return f"User: {prompt}\nAssistant: {response}"


def load_texts(dataset: str, *, text_column: str = "text", tokenizer=None) -> list[str]:
    """Documents of a dataset spec as strings; chat data is formatted with the tokenizer's chat template."""
    if dataset.strip() == "builtin:chat":
        return [format_chat(tokenizer, row["prompt"], row["response"]) for row in read_chat_rows()]
    return read_documents(dataset, text_column)


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


def pack(ids: list[int], seq_len: int, max_sequences: int | None = None) -> torch.Tensor:
    """Cut a token stream into (N, seq_len) rows; the tail shorter than seq_len is dropped."""
    count = len(ids) // seq_len
    if max_sequences is not None:
        count = min(count, max_sequences)
    return torch.tensor(ids[: count * seq_len], dtype=torch.long).view(count, seq_len)


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
    texts = load_texts(data_cfg.dataset, text_column=data_cfg.text_column, tokenizer=tokenizer)
    limit = None if data_cfg.max_sequences is None else data_cfg.max_sequences * data_cfg.seq_len
    ids, documents = token_stream(texts, tokenizer, limit)
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
    }
    return Splits(rows[train_index], rows[val_index], train_index, val_index, stats)


def preview(data_cfg: DataConfig, tokenizer, n: int = 3, *, count: int | None = None) -> list[dict]:
    """The first packed training rows as dicts (index, tokens, text) for display."""
    shown = n if count is None else count
    config = DataConfig(**{**data_cfg.__dict__, "max_sequences": max(2, (shown + 1) * 2)})
    splits = build_splits(config, tokenizer)
    return [
        {"index": int(index), "tokens": int(row.numel()), "text": tokenizer.decode(row.tolist())}
        for index, row in zip(splits.train_index[:shown], splits.train[:shown], strict=True)
    ]
