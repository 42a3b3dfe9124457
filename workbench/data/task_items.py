"""Built-in task items made from data that ships offline: the prompts of builtin:chat and the King James Bible.

    pairs, labels = chat_kind_pairs()   # classify: which kind of request a builtin:chat prompt is (story, steps,
                                        # definition, comparison: one token each for the built-in tokenizer)
    pairs = book_pairs()                # qa (extraction): "<reference> <verse> Which book ...?" -> "John"

Each pair is {"messages": [...], "answer": str}, the form `workbench.data.sources.read_pairs` gives. The book
question opens with three worked examples as earlier chat turns, which is what makes the built-in teacher answer
with a name: asked cold it writes a sentence ("This verse from the Bible is the Book ...") where a name is wanted.
The kind question is asked cold: with one worked example per kind the teacher did worse (docs/multitask.md). The labels are scored through the model's next-token distribution over the label words
(`workbench.engine.task_scores`); the book answers by exact match and token F1 of the greedy answer. The teacher's
measured scores, and the tasks it could not do, are in docs/multitask.md.
"""

from __future__ import annotations

import random
import re

from workbench.data.sources import kjv_rows, read_chat_rows

# builtin:chat's categories and the word each is answered with (one token each for the built-in tokenizer)
CHAT_KINDS = {"story": "story", "how-to": "steps", "definition": "definition", "comparison": "comparison"}
CHAT_KIND_LABELS = list(CHAT_KINDS.values())
# what a task entry needs beside its source, for each built-in source (the app's task editor fills these in)
BUILTIN_TASK_FIELDS: dict[str, dict] = {
    "builtin:chat": {"kind": "chat"},
    "builtin:kjv": {"kind": "lm"},
    "builtin:chat-kind": {"kind": "classify", "labels": CHAT_KIND_LABELS},
    "builtin:kjv-book": {"kind": "qa"},
}
BUILTIN_TASKS = ("builtin:chat-kind", "builtin:kjv-book")
KIND_QUESTION = ("Request: {text}\n\nWhat does this request ask for: a story, steps to follow, a definition or a "
                 "comparison? Answer with one word: story, steps, definition or comparison.")
BOOK_QUESTION = "{reference} {text}\n\nWhich book of the Bible is this verse from? Answer with the book's name only."
BOOK_SHOTS = (("Genesis", 1, 1), ("Matthew", 5, 3), ("Psalms", 23, 1))  # worked examples, never asked
BOOK_ITEMS = 1200
_VERSE_NUMBER = re.compile(r"\b\d+:\d+\s+")


def _turns(examples: list[tuple[str, str]]) -> list[dict]:
    return [turn for question, answer in examples
            for turn in ({"role": "user", "content": question}, {"role": "assistant", "content": answer})]


def chat_kind_pairs() -> tuple[list[dict], list[str]]:
    """(pairs, label word of each) for the 120 builtin:chat prompts of the four kinds, in file order."""
    rows = [r for r in read_chat_rows() if r["category"] in CHAT_KINDS]
    pairs = [{"messages": [{"role": "user", "content": KIND_QUESTION.format(text=r["prompt"])}],
              "answer": CHAT_KINDS[r["category"]]} for r in rows]
    return pairs, [CHAT_KINDS[r["category"]] for r in rows]


def kjv_verses() -> list[dict]:
    """Every verse row: {"testament": 1 | 2, "book": short name, "chapter", "verse", "text"}, in canonical order."""
    rows = kjv_rows("SELECT b.TestamentID, k.ShortName, b.ChapterID, b.VerseID, b.Passage1, b.Passage2 FROM Bible b "
                    "JOIN Books k ON k.BookID = b.BookID ORDER BY b.TestamentID, b.BookID, b.ChapterID, b.VerseID")
    return [{"testament": testament, "book": book, "chapter": chapter, "verse": verse,
             "text": _VERSE_NUMBER.sub("", " ".join(p for p in (first, second) if p)).strip()}
            for testament, book, chapter, verse, first, second in rows]


def _book_question(verse: dict) -> str:
    return BOOK_QUESTION.format(reference=f"{verse['book']} {verse['chapter']}:{verse['verse']}", text=verse["text"])


def book_pairs(count: int = BOOK_ITEMS, seed: int = 0) -> list[dict]:
    """A seeded sample of `count` verses (the worked examples left out), each asking which book it is from."""
    verses = kjv_verses()
    shots = [v for v in verses if (v["book"], v["chapter"], v["verse"]) in BOOK_SHOTS]
    opening = _turns([(_book_question(v), v["book"]) for v in shots])
    chosen = random.Random(seed).sample([v for v in verses if v not in shots], count)
    return [{"messages": [*opening, {"role": "user", "content": _book_question(v)}], "answer": v["book"]}
            for v in chosen]
