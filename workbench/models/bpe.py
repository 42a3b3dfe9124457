"""Byte-level BPE tokenizers: train one on any texts (`workbench train-tokenizer` reads dataset specs), and the
built-in ones shipped inside the package.

    workbench train-tokenizer --data builtin:kjv --data builtin:chat --vocab-size 8192 --out DIR
    load_tokenizer("builtin:smollm2-135m-instruct?fresh&layers=4&hidden=256&heads=4&tokenizer=builtin:bpe-8k")

A trained tokenizer is a folder `transformers` reads (tokenizer.json, tokenizer_config.json) plus
`workbench-tokenizer.json`, which records the data, the sizes and the command that made it. It spells every text
byte for byte (no normaliser, no added prefix space), has the special tokens <|endoftext|>, <|im_start|> and
<|im_end|> (end of sequence), and a ChatML chat template, so chat data is formatted the way the built-in teacher's is.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

from workbench.errors import UserError

BUILTIN_TOKENIZERS = ("bpe-8k",)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
EOS_TOKEN = "<|im_end|>"
META_FILE = "workbench-tokenizer.json"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def is_builtin_tokenizer(source: str) -> bool:
    return source.startswith("builtin:") and source.removeprefix("builtin:") in BUILTIN_TOKENIZERS


def builtin_tokenizer_dir(source: str) -> Path:
    """The package folder of a built-in tokenizer (`builtin:bpe-8k`)."""
    name = source.removeprefix("builtin:")
    if name not in BUILTIN_TOKENIZERS:
        raise UserError(f"tokenizer {source!r}: unknown; built-in tokenizers: builtin:{', builtin:'.join(BUILTIN_TOKENIZERS)}")
    folder = Path(str(resources.files("workbench") / "assets" / "tokenizers" / name))
    if not (folder / "tokenizer.json").is_file():
        raise UserError(f"tokenizer {source!r}: {folder} is missing from the installed package; reinstall it")
    return folder


def train_bpe(texts: list[str], vocab_size: int, out_dir: str | Path, *, datasets: list[str] = (),
              min_frequency: int = 2, command: str | None = None) -> dict:
    """Train a byte-level BPE of `vocab_size` tokens (special tokens included) on `texts`, the documents of
    `datasets` (recorded in the meta, which is returned)."""
    import tokenizers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not 256 + len(SPECIAL_TOKENS) < vocab_size <= 1_000_000:
        raise UserError(f"--vocab-size must be in [{257 + len(SPECIAL_TOKENS)}, 1000000], got {vocab_size}")
    if not texts:
        raise UserError("--data: give at least one dataset spec with text (builtin:kjv, builtin:chat, a file, ...)")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS_TOKEN, pad_token="<|endoftext|>",
                                        additional_special_tokens=[SPECIAL_TOKENS[1]])
    tokenizer.chat_template = CHAT_TEMPLATE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    meta = {
        "kind": "byte-level BPE",
        "vocab_size": len(tokenizer),
        "datasets": list(datasets),
        "documents": len(texts),
        "bytes": sum(len(text.encode()) for text in texts),
        "min_frequency": min_frequency,
        "special_tokens": list(SPECIAL_TOKENS),
        "tokenizers_version": tokenizers.__version__,
        "command": command,
        "created": time.strftime("%Y-%m-%d"),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta
