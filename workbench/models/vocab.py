"""Vocabularies as byte strings: what each token id spells, the ids two tokenizers share, padded logits widths.

    table = token_bytes(tokenizer)          # list[bytes]: table[id] is the text of token `id` as UTF-8 bytes
    student_ids, teacher_ids = shared_vocab(student_table, teacher_table)    # the exact id map (same bytes)
    width = padded_width(teacher_tok, student_tok, teacher_width, student_width)   # the tokenizer's real ids
    compare_tokenizers(teacher_tok, student_tok)["problem"]   # None when the two are one tokenizer

Byte strings make two tokenizers comparable whatever their conventions (byte-level BPE's `Ġ`, SentencePiece's `▁`
and `<0x0A>`), and they are what bits per byte counts. Perplexity and bits per byte, the two readings of a
cross-entropy, live here too.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import torch

from workbench.errors import Message, UserError

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
# what a token's invisible characters look like in a label (a tokenizer piece or decoded text)
_VISIBLE = str.maketrans({" ": "␣", "Ġ": "␣", "▁": "␣", "\n": "↵", "Ċ": "↵", "\t": "⇥", "\r": "␍"})


def visible_token(token: str) -> str:
    """A token as a label a reader can see: spaces, newlines and tabs drawn as ␣ ↵ ⇥, an empty token as ∅."""
    return str(token).translate(_VISIBLE) or "∅"


@lru_cache(maxsize=1)
def _byte_level_decoding() -> dict[str, int]:
    """The inverse of byte-level BPE's byte -> printable character table (the GPT-2 scheme)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "ByteLevel" in repr(backend.decoder)


def token_bytes(tokenizer) -> list[bytes]:
    """table[id] = the bytes token `id` stands for; added and special tokens are their literal text."""
    size = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
    added = {index: token.content for index, token in tokenizer.added_tokens_decoder.items()}
    byte_level = _is_byte_level(tokenizer)
    decoding = _byte_level_decoding()
    table: list[bytes] = []
    for index, piece in enumerate(pieces):
        if index in added:
            table.append(added[index].encode())
        elif piece is None:
            table.append(b"")
        elif byte_level:
            table.append(bytes(decoding[c] for c in piece if c in decoding))
        elif match := _BYTE_TOKEN.match(piece):
            table.append(bytes([int(match.group(1), 16)]))
        else:
            table.append(piece.replace("▁", " ").encode())
    return table


def shared_vocab(student_table: list[bytes], teacher_table: list[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact id map: (student ids [K], teacher ids [K]) of the non-empty byte strings both vocabularies hold.

    Where one side spells a string with several ids, its lowest id is used; identical tables map every id."""
    if student_table == teacher_table:
        every = torch.arange(len(student_table))
        return every, every.clone()
    teacher_index: dict[bytes, int] = {}
    for index, text in enumerate(teacher_table):
        if text:
            teacher_index.setdefault(text, index)
    seen: set[bytes] = set()
    student_ids, teacher_ids = [], []
    for index, text in enumerate(student_table):
        if text and text in teacher_index and text not in seen:
            seen.add(text)
            student_ids.append(index)
            teacher_ids.append(teacher_index[text])
    return torch.tensor(student_ids, dtype=torch.long), torch.tensor(teacher_ids, dtype=torch.long)


def logits_width(model) -> int:
    """Rows of the output layer: the width of the model's logits (often padded past the tokenizer's ids)."""
    return int(model.get_output_embeddings().weight.shape[0])


def padded_width(tokenizer, teacher_width: int, student_width: int) -> int | None:
    """With one tokenizer and logits of different widths: the tokenizer's id count to slice both to; else None."""
    if teacher_width == student_width:
        return None
    real = len(tokenizer)
    if real > min(teacher_width, student_width):
        raise UserError(
            f"the tokenizer has {real} ids but the logits are {teacher_width} (teacher) and {student_width} (student) "
            "wide; a model whose logits are narrower than its tokenizer cannot be distilled"
        )
    return real


def bytes_per_token(tokenizer) -> torch.Tensor:
    """[V] float64: UTF-8 bytes each token id stands for (bits per byte divides by their sum)."""
    return torch.tensor([len(text) for text in token_bytes(tokenizer)], dtype=torch.float64)


def perplexity(mean_ce: float) -> float:
    """exp(mean next-token CE), capped at exp(50) so a diverged model reads as a huge number, not inf."""
    return math.exp(min(mean_ce, 50.0))


def bits_per_byte(nats: float, byte_count: float) -> float:
    """Cross-entropy summed in nats over predicted tokens, per byte of the text they spell, in bits."""
    return nats / (math.log(2.0) * max(byte_count, 1.0))


def utf8_window(data: bytes) -> tuple[int, int]:
    """(lo, hi) such that data[lo:hi] drops a character cut off at either end of a packed row."""
    lo = 0
    while lo < min(len(data), 3) and data[lo] & 0xC0 == 0x80:
        lo += 1
    hi = len(data)
    for back in range(1, min(4, hi - lo) + 1):
        lead = data[hi - back]
        if lead & 0xC0 == 0x80:
            continue
        need = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
        if need > back:
            hi -= back
        break
    return lo, hi


def row_text(ids: list[int], table: list[bytes]) -> str:
    """The text a packed row of token ids spells, without a character cut off at either end."""
    data = b"".join(table[i] for i in ids)
    lo, hi = utf8_window(data)
    return data[lo:hi].decode("utf-8", errors="replace")


PROBE_TEXTS = (
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b  # 3.14159, 42, 2026-11-28",
    "Ünïcödé: naïve café, 東京, emoji 🙂 and   extra   spaces.",
    "In the beginning God created the heaven and the earth.",
)


def compare_tokenizers(teacher_tokenizer, student_tokenizer) -> dict:
    """Whether two tokenizers are the same: equal vocabularies and equal ids for every probe text."""
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    result = {
        "identical": True,
        "teacher_vocab": len(teacher_vocab),
        "student_vocab": len(student_vocab),
        "problem": None,
    }
    if teacher_vocab != student_vocab:
        only_t = len(set(teacher_vocab.items()) - set(student_vocab.items()))
        result.update(
            identical=False,
            problem=f"vocabularies differ ({len(teacher_vocab)} vs {len(student_vocab)} "
            f"tokens, {only_t} teacher token/id pairs missing from the student)",
        )
        return result
    for text in PROBE_TEXTS:
        teacher_ids = teacher_tokenizer(text, add_special_tokens=False)["input_ids"]
        student_ids = student_tokenizer(text, add_special_tokens=False)["input_ids"]
        if teacher_ids != student_ids:
            result.update(
                identical=False,
                problem=f"same vocabulary but the probe {text[:30]!r} tokenizes differently "
                f"({teacher_ids[:6]}... vs {student_ids[:6]}...)",
            )
            return result
    return result


def tokenizer_mismatch_error(problem: str) -> UserError:
    """The error of the teacher cache, which needs one tokenizer, for a pair whose tokenizers differ."""
    return UserError(Message(
        "teacher and student tokenizers are not the same: {problem}. The teacher cache stores the teacher's "
        "predictions over the student's tokens, so it needs one tokenizer; distil this pair with the live teacher "
        "(leave train.teacher_cache empty), which aligns the two tokenizations (loss.cross_tokenizer)",
        problem=problem))


def check_tokenizers(teacher_tokenizer, student_tokenizer) -> None:
    """Raise a UserError that says what to do when the teacher and student tokenizers differ."""
    problem = compare_tokenizers(teacher_tokenizer, student_tokenizer)["problem"]
    if problem:
        raise tokenizer_mismatch_error(problem)
