"""What a number was measured on, as the one line a run's files keep (in English) and the app shows translated.

The library writes these lines with `measured(TEMPLATE, ...)`; the app shows a stored line in the reader's language
with `parse_measured` (which template, which values) and the template's translation. Values keep their own text
(a dataset name stays a dataset name).

    measured(GENERATION, count=6, source="builtin:chat", temperature=0.7, top_p=0.9, new_tokens=32)
    -> "6 held-out prompts of builtin:chat · sampled at T 0.7, top-p 0.9, up to 32 new tokens"
"""

from __future__ import annotations

import re
import string
from functools import cache

EVAL_ROWS = "{rows} held-out rows × {tokens} tokens of {source} (teacher-forced, KL at T = 1)"
REPORT_ROWS = "{rows} held-out sequences × {tokens} tokens of {source}"
GENERATION = "{count} held-out prompts of {source} · sampled at T {temperature}, top-p {top_p}, up to {new_tokens} " \
             "new tokens"
TEMPLATES = (EVAL_ROWS, REPORT_ROWS, GENERATION)


def measured(template: str, **values: object) -> str:
    """The English line; numbers as `:g` so that a stored line reads back the same."""
    return template.format(**{k: f"{v:g}" if isinstance(v, float) else v for k, v in values.items()})


@cache
def _pattern(template: str) -> re.Pattern:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name:
            parts.append(f"(?P<{name}>.+?)")
    return re.compile("".join(parts) + "$")


def parse_measured(line: str) -> tuple[str, dict[str, str]] | None:
    """(template, values) of a line `measured` wrote, or None for any other text."""
    for template in TEMPLATES:
        match = _pattern(template).match(line or "")
        if match:
            return template, match.groupdict()
    return None
