"""Tiny random causal LMs and a tiny tokenizer, built offline inside the tests.

`tiny_model_dir(tmp_path, "llama")` saves a model of that family (hidden 32, 2 layers by default) with a
word-level tokenizer shared by every tiny model, so any two tiny models form a valid teacher/student pair.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

ARCHITECTURES = ("gpt2", "llama", "qwen2", "gpt_neox")
WORDS = (
    "the a an of to and in is was for on that with as it by at from this be are or his her they "
    "we you he she not but have had one all will there their what which when who said so up out "
    "if about into than them can only other new some could time these two may then do first any "
    "my now such like our over man me even most made after also did many before must through back "
    "years where much your way well down should because each just those people how too little state "
    "good very make world still own see men work long get here between both life being under never "
    "day same another know while last might us great old year off come since against go came right "
    "used take three light water land king lord god earth heaven house son"
).split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(set(WORDS)) + [str(d) for d in range(10)] + list(".,!?"))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def tiny_config(arch: str, vocab_size: int, layers: int = 2, hidden: int = 32, heads: int = 4, kv_heads: int = 2):
    common = dict(vocab_size=vocab_size, bos_token_id=2, eos_token_id=3, pad_token_id=1)
    if arch == "gpt2":
        return GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=512, **common)
    if arch == "llama":
        return LlamaConfig(
            hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv_heads, max_position_embeddings=512, tie_word_embeddings=True, **common,
        )
    if arch == "qwen2":
        return Qwen2Config(
            hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv_heads, max_position_embeddings=512, **common,
        )
    if arch == "gpt_neox":
        return GPTNeoXConfig(
            hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=heads,
            max_position_embeddings=512, **common,
        )
    raise ValueError(f"unknown tiny architecture {arch!r}")


def tiny_model_dir(
    root: Path, arch: str = "llama", layers: int = 2, hidden: int = 32, heads: int = 4, kv_heads: int = 2, seed: int = 0
) -> Path:
    """Save a tiny random model of `arch` with the shared tiny tokenizer under `root/<arch>-<layers>x<hidden>`."""
    folder = Path(root) / f"{arch}-{layers}x{hidden}-s{seed}"
    if (folder / "config.json").exists():
        return folder
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tokenizer), layers, hidden, heads, kv_heads))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_text_file(root: Path, lines: int = 200, seed: int = 0) -> Path:
    """A .txt file of random sentences drawn from the tiny vocabulary."""
    gen = torch.Generator().manual_seed(seed)
    words = list(WORDS)
    rows = []
    for _ in range(lines):
        idx = torch.randint(len(words), (int(torch.randint(5, 20, (1,), generator=gen)),), generator=gen)
        rows.append(" ".join(words[i] for i in idx.tolist()) + " .")
    path = Path(root) / "tiny.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


def tiny_pairs_file(root: Path, count: int = 60, seed: int = 0) -> Path:
    """A prompt/answer JSONL of `count` rows made of the tiny vocabulary (answers of varied length)."""
    import json
    import random

    rng = random.Random(seed)
    path = Path(root) / "pairs.jsonl"
    with path.open("w") as handle:
        for _ in range(count):
            prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) + " ?"
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + " ."
            handle.write(json.dumps({"prompt": prompt, "answer": answer}) + "\n")
    return path


def tiny_bpe_model_dir(root: Path, text: Path, name: str, vocab_size: int, hidden: int = 32, seed: int = 0) -> Path:
    """A tiny Llama with its own byte-level BPE of `vocab_size` tokens trained on `text`: two of these with
    different sizes form a teacher/student pair whose tokenizers differ."""
    from workbench.data.splits import load_texts
    from workbench.models.bpe import train_bpe
    from workbench.models.loading import load_tokenizer

    folder = Path(root) / f"{name}-bpe{vocab_size}-{hidden}-s{seed}"
    if (folder / "config.json").exists():
        return folder
    train_bpe(load_texts(str(text)), vocab_size, folder, datasets=[str(text)])
    tokenizer = load_tokenizer(str(folder))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder
