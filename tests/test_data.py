"""Data loading, packing and splitting (workbench.data.splits / workbench.data.sources) with the tiny tokenizer."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_tokenizer

from workbench.config import DataConfig
from workbench.data.sources import read_chat_rows
from workbench.data.splits import build_splits, load_texts, preview, token_stream
from workbench.errors import UserError

SIMPLE_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s>{% endfor %}"
    "{% if add_generation_prompt %}<s> assistant{% endif %}"
)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _rows_in_packed_order(splits) -> torch.Tensor:
    rows = torch.empty(splits.stats["sequences"], splits.train.shape[1], dtype=torch.long)
    rows[splits.train_index] = splits.train
    rows[splits.val_index] = splits.val
    return rows


def test_packing_is_exact_prefix_of_token_stream(tiny_text, tok):
    cfg = DataConfig(dataset=str(tiny_text), seq_len=32, val_fraction=0.2)
    splits = build_splits(cfg, tok)
    stream, _ = token_stream(load_texts(str(tiny_text)), tok)
    rows = _rows_in_packed_order(splits)
    assert rows.flatten().tolist() == stream[: rows.numel()]
    assert splits.stats["dropped_tail"] == len(stream) - rows.numel() < cfg.seq_len
    assert splits.train.dtype == torch.long and splits.val.shape[1] == 32
    assert splits.val.shape[0] == round(splits.stats["sequences"] * 0.2)


def test_documents_are_separated_by_eos(tmp_path, tok):
    for name, words in (("a.txt", "the king"), ("b.txt", "the lord"), ("c.txt", "water land")):
        (tmp_path / name).write_text((words + " ") * 20)
    splits = build_splits(DataConfig(dataset=str(tmp_path), seq_len=8, val_fraction=0.1), tok)
    flat = _rows_in_packed_order(splits).flatten().tolist()
    eos_positions = [i for i, t in enumerate(flat) if t == tok.eos_token_id]
    assert eos_positions == [40, 81]  # 40 words per document, then EOS (third EOS falls in the dropped tail)
    assert splits.stats["documents"] == 3 and splits.stats["tokens"] == 123


def test_split_is_deterministic_and_seed_dependent(tiny_text, tok):
    first = build_splits(DataConfig(dataset=str(tiny_text), seq_len=16, seed=3), tok)
    again = build_splits(DataConfig(dataset=str(tiny_text), seq_len=16, seed=3), tok)
    other = build_splits(DataConfig(dataset=str(tiny_text), seq_len=16, seed=4), tok)
    assert torch.equal(first.train, again.train) and torch.equal(first.val, again.val)
    assert not torch.equal(first.val_index, other.val_index)
    assert set(first.train_index.tolist()).isdisjoint(first.val_index.tolist())


def test_max_sequences_caps_rows(tiny_text, tok):
    splits = build_splits(DataConfig(dataset=str(tiny_text), seq_len=16, max_sequences=10), tok)
    assert splits.stats["sequences"] == 10 == splits.train.shape[0] + splits.val.shape[0]


def _write_tables(folder, texts):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "d.jsonl").write_text("".join(json.dumps({"body": t, "id": i}) + "\n" for i, t in enumerate(texts)))
    (folder / "d.csv").write_text("id,body\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts)))
    pq.write_table(pa.table({"body": texts, "id": list(range(len(texts)))}), folder / "d.parquet")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_table_files_read_the_text_column(tmp_path, suffix):
    texts = ["the king said so", "water and land", "one old man, two sons"]
    _write_tables(tmp_path, texts)
    assert load_texts(str(tmp_path / f"d{suffix}"), text_column="body") == texts
    with pytest.raises(UserError, match=r"data.text_column.*'text'.*columns found: .*body"):
        load_texts(str(tmp_path / f"d{suffix}"))


def test_folder_reads_every_supported_file(tmp_path, tok):
    texts = ["the king said so", "water and land"]
    _write_tables(tmp_path, texts)
    (tmp_path / "notes.md").write_text("ignored")
    assert load_texts(str(tmp_path), text_column="body") == texts * 3  # csv, jsonl, parquet in path order
    (tmp_path / "plain.txt").write_text("the lord")
    with pytest.raises(UserError, match="data.text_column"):
        load_texts(str(tmp_path))  # the table files have no 'text' column


def test_txt_file_is_one_document(tiny_text):
    assert load_texts(str(tiny_text)) == [tiny_text.read_text()]


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("empty.txt", b"  \n", "is empty"),
        ("blob.txt", b"\x00\x01\x02binary", "looks binary"),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "not UTF-8"),
        ("data.pdf", b"%PDF", "unsupported file type"),
        ("bad.jsonl", b"{not json\n", "line 1 .* is not JSON"),
    ],
)
def test_bad_files_raise_user_errors(tmp_path, name, content, pattern):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=f"data.dataset.*{pattern}"):
        load_texts(str(path))


def test_missing_paths_and_unknown_builtins(tmp_path):
    with pytest.raises(UserError, match="data.dataset: no such file"):
        load_texts(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match="data.dataset: unknown built-in"):
        load_texts("builtin:wiki")
    with pytest.raises(UserError, match="holds no"):
        load_texts(str(tmp_path))


@pytest.mark.timeout(30)  # a retried download would run for minutes
def test_hub_id_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="data.dataset: hub dataset 'someone/some-corpus'"):
        load_texts("someone/some-corpus")


def test_too_little_text_names_seq_len(tmp_path, tok):
    (tmp_path / "short.txt").write_text("the king said")
    with pytest.raises(UserError, match="data.seq_len=64"):
        build_splits(DataConfig(dataset=str(tmp_path / "short.txt"), seq_len=64), tok)


def test_preview_decodes_training_rows(tiny_text, tok):
    rows = preview(DataConfig(dataset=str(tiny_text), seq_len=16), tok, n=2)
    assert len(rows) == 2 and all(r["tokens"] == 16 and r["text"].strip() for r in rows)


def test_builtin_chat_has_300_rows_and_uses_chat_template(tok):
    rows = read_chat_rows()
    assert len(rows) >= 300 and all(r["response"].strip() for r in rows)
    assert len({r["category"] for r in rows}) >= 8
    templated = tiny_tokenizer()
    templated.chat_template = SIMPLE_TEMPLATE
    texts = load_texts("builtin:chat", tokenizer=templated)
    assert texts[0] == f"<s> user {rows[0]['prompt']} </s><s> assistant {rows[0]['response']} </s>"
    plain = load_texts("builtin:chat", tokenizer=tok)
    assert plain[0] == f"User: {rows[0]['prompt']}\nAssistant: {rows[0]['response']}"


@pytest.mark.slow
def test_builtin_chat_with_real_chat_template():
    from workbench.models.loading import load_tokenizer

    real = load_tokenizer("builtin:smollm2-135m-instruct")
    text = load_texts("builtin:chat", tokenizer=real)[0]
    assert text.startswith("<|im_start|>") and "<|im_start|>assistant\n" in text and text.rstrip().endswith("<|im_end|>")
    splits = build_splits(DataConfig(dataset="builtin:chat", seq_len=128), real)
    assert splits.stats["heldout_prompts"] == 24 and len(splits.heldout) == 24
    assert splits.stats["documents"] == len(read_chat_rows()) - 24 and (splits.train == real.eos_token_id).any()


def test_builtin_kjv_starts_with_genesis(tok):
    chapters = load_texts("builtin:kjv")
    assert chapters[0].startswith("In the beginning God created the heavens and the earth.")
    assert "And God said, Let there be light: and there was light." in chapters[0]
    assert len(chapters) == 1189 and "1:1" not in chapters[0]
    assert chapters[-1].rstrip().endswith("Amen.")


def test_prompt_answer_files_and_messages(tmp_path, tok):
    import json

    from workbench.data.sources import read_pairs

    rows = [{"prompt": "the king", "answer": "the lord of the land"}, {"prompt": "a man", "answer": "one son"}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = read_pairs(str(tmp_path / "p.jsonl"))
    assert pairs == [{"messages": [{"role": "user", "content": "the king"}], "answer": "the lord of the land"},
                     {"messages": [{"role": "user", "content": "a man"}], "answer": "one son"}]
    chats = [{"messages": [{"role": "system", "content": "be good"}, {"role": "user", "content": "the king"},
                           {"role": "assistant", "content": "the lord"}]}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chats))
    (pair,) = read_pairs(str(tmp_path / "m.jsonl"))
    assert pair["answer"] == "the lord" and [m["role"] for m in pair["messages"]] == ["system", "user"]
    (tmp_path / "r.csv").write_text("question,response\nthe king,the lord\n")
    assert read_pairs(str(tmp_path / "r.csv"), prompt_column="question")[0]["answer"] == "the lord"
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "plain"}) + "\n")
    assert read_pairs(str(tmp_path / "t.jsonl")) is None and read_pairs("builtin:kjv") is None


def test_loss_on_answer_masks_prompt_tokens_and_holdout_is_kept_out(tiny_pairs, tok, tiny_text):
    cfg = DataConfig(dataset=str(tiny_pairs), seq_len=16, loss_on="answer", holdout_prompts=6)
    splits = build_splits(cfg, tok)
    assert len(splits.heldout) == 6 and len(splits.train_examples) == 54
    stream = [t for e in splits.train_examples for t in e.prompt_ids + e.answer_ids + [tok.eos_token_id]]
    answer = [m for e in splits.train_examples for m in [False] * len(e.prompt_ids) + [True] * len(e.answer_ids)
              + [False]]
    packed = torch.cat([splits.train, splits.val]).flatten().tolist()
    assert sorted(packed) == sorted(stream[: len(packed)])  # held-out examples never enter a row
    masks = torch.cat([splits.train_mask, splits.val_mask]).flatten().tolist()
    assert sum(masks) == sum(answer[: len(packed)]) and 0 < sum(masks) < len(masks)
    for row, mask in zip(splits.train, splits.train_mask, strict=True):  # answers never include a user prompt word
        assert "?" not in tok.decode(row[mask].tolist())
    with pytest.raises(UserError, match="data.loss_on: 'answer' needs prompt/answer data"):
        build_splits(DataConfig(dataset=str(tiny_text), seq_len=16, loss_on="answer"), tok)
