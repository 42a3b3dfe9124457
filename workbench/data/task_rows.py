"""What one task of `data.tasks` reads from its source, by kind; errors name the task and the field.

    texts, pairs, gold = read_task(task)   # lm: (texts, None, []); chat / qa: (None, pairs, []);
                                           # classify: (None, pairs whose answer is the label word, gold indices)

Classify rows become prompt/answer pairs: the task's question (`prompt`, with {text}; builtin:chat-kind brings its
own) and the label word as the answer, so training takes CE on the gold label and KD on the teacher's distribution at the label position.
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import TaskConfig
from workbench.data.sources import _RECORD_READERS, _folder_files, read_documents, read_pairs
from workbench.data.task_items import KIND_QUESTION, book_pairs, chat_kind_pairs
from workbench.errors import Message, UserError


def _records(task: TaskConfig) -> list[dict]:
    """{"text", "label"} rows of a classify task's JSONL/CSV/parquet file or folder."""
    path = Path(task.source).expanduser()
    if not path.exists():
        raise UserError(Message("data.tasks[{name}].source: a classify task reads builtin:chat-kind or a "
                                "JSONL/CSV/parquet file or folder; {source!r} is neither", name=task.name,
                                source=task.source))
    records = []
    for file in _folder_files(path) if path.is_dir() else [path]:
        reader = _RECORD_READERS.get(file.suffix.lower())
        if reader is None:
            raise UserError(Message("data.tasks[{name}].source: {file} is not JSONL, CSV or parquet", name=task.name,
                                    file=file.name))
        rows, columns = reader(file)
        for column, field_name in ((task.text_column, "text_column"), (task.label_column, "label_column")):
            if column not in columns:
                raise UserError(Message("data.tasks[{name}].{field}: {file} has no column {column!r}; columns "
                                        "found: {found}", name=task.name, field=field_name, file=file.name,
                                        column=column, found=", ".join(columns) or Message("none")))
        records += [{"text": str(r[task.text_column]), "label": str(r[task.label_column]).strip()} for r in rows
                    if r.get(task.text_column) is not None and r.get(task.label_column) is not None]
    return records


def _classify_pairs(task: TaskConfig) -> tuple[list[dict], list[int]]:
    if task.source == "builtin:chat-kind":
        pairs, labels = chat_kind_pairs()
    else:
        records = _records(task)
        pairs = [{"messages": [{"role": "user", "content": task.prompt.format(text=r["text"])}], "answer": r["label"]}
                 for r in records]
        labels = [r["label"] for r in records]
    outside = sorted(set(labels) - set(task.labels))
    if outside:
        raise UserError(Message("data.tasks[{name}].labels: the data holds labels outside the label set: {outside} "
                                "(the set is {labels})", name=task.name, outside=", ".join(outside[:5]),
                                labels=", ".join(task.labels)))
    return pairs, [task.labels.index(label) for label in labels]


CONTENT_FREE = ("N/A", "", "[MASK]")  # texts that say nothing, for calibrating label scores


def content_free_pairs(task: TaskConfig) -> list[dict]:
    """A classify task's question about each content-free text (the answer: its first label, unused)."""
    question = KIND_QUESTION if task.source == "builtin:chat-kind" else task.prompt
    return [{"messages": [{"role": "user", "content": question.format(text=text)}], "answer": task.labels[0]}
            for text in CONTENT_FREE]


def read_task(task: TaskConfig) -> tuple[list[str] | None, list[dict] | None, list[int]]:
    """(plain texts, prompt/answer pairs, gold label indices) of a task; exactly one of the first two is set."""
    if task.kind == "classify":
        return (None, *_classify_pairs(task))
    if task.source == "builtin:kjv-book":
        pairs = book_pairs()
    elif task.kind == "lm":
        return read_documents(task.source, task.text_column), None, []
    else:
        pairs = read_pairs(task.source)
    if pairs is None:
        raise UserError(Message("data.tasks[{name}].kind: {kind} needs prompt/answer data (builtin:chat, "
                                "builtin:kjv-book, or a file with prompt and answer columns); {source!r} is plain "
                                "text, so use kind lm", name=task.name, kind=task.kind, source=task.source))
    return None, pairs, []

