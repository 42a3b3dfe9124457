"""The alignment of two tokenizations of one text, for people: the spans cross-tokenizer distillation compares.

    view = alignment_spans(teacher_tokenizer, student_tokenizer, "In the beginning ...")
    html = alignment_html(view)     # one box per span: student tokens above, teacher tokens below

Each span is one piece of the text that both tokenizations cover exactly. An exact match (one token on each side,
the same string) compares whole next-token distributions; any other span compares the probability of its text.
"""

from __future__ import annotations

import html

import numpy as np

from workbench.engine.cross_tokenizer import align_row, exact_spans
from workbench.models.vocab import token_bytes

PALETTE = ("#dbeafe", "#fde68a", "#e9d5ff", "#fecaca", "#bbf7d0", "#fed7aa")
SAMPLE_TEXT = "In the beginning God created the heaven and the earth. Photosynthesis converts light, naïvely 東京."


def _pieces(ends: np.ndarray, text_bytes: bytes) -> list[str]:
    """Each token's text as it appears in the text; a token holding part of a character shows its bytes (\\xe6)."""
    starts = np.concatenate([[0], ends[:-1]]) if len(ends) else ends
    return [text_bytes[start:end].decode("utf-8", errors="backslashreplace") for start, end in zip(starts, ends, strict=True)]


def alignment_spans(teacher_tokenizer, student_tokenizer, text: str) -> dict:
    """{"spans": [{"student": [str], "teacher": [str], "exact": bool}], "exact_share", "teacher_per_student"}."""
    student_table, teacher_table = token_bytes(student_tokenizer), token_bytes(teacher_tokenizer)
    student_ids = student_tokenizer(text, add_special_tokens=False)["input_ids"]
    row = align_row(student_ids, np.array([len(t) for t in student_table]), student_table, teacher_tokenizer,
                    np.array([len(t) for t in teacher_table]))
    data = row.text.encode()
    student_pieces, teacher_pieces = _pieces(row.student_ends, data), _pieces(row.teacher_ends, data)
    exact = exact_spans(row)
    spans = [{"student": [], "teacher": [], "exact": bool(exact[k])} for k in range(row.spans)]
    for piece, span in zip(student_pieces, row.student_span.tolist(), strict=True):
        spans[span]["student"].append(piece)
    for piece, span in zip(teacher_pieces, row.teacher_span.tolist(), strict=True):
        spans[span]["teacher"].append(piece)
    return {"spans": spans, "student_tokens": len(student_ids), "teacher_tokens": len(row.teacher_ids),
            "exact_share": int(exact.sum()) / max(len(student_ids), 1),
            "teacher_per_student": len(row.teacher_ids) / max(len(student_ids), 1)}


def _token(piece: str) -> str:
    shown = piece.replace(" ", "·").replace("\n", "↵").replace("\t", "→") or "∅"
    return f'<span class="kd-tok">{html.escape(shown)}</span>'


def alignment_html(view: dict) -> str:
    """Span boxes in text order: background colour per span, a solid green frame and ✓ on exact matches."""
    boxes = []
    for index, span in enumerate(view["spans"]):
        colour = PALETTE[index % len(PALETTE)]
        frame = "2px solid #16a34a" if span["exact"] else "1px dashed #6b7280"
        mark = '<span class="kd-exact">✓</span>' if span["exact"] else ""
        boxes.append(
            f'<span class="kd-span" style="background:{colour};border:{frame}" '
            f'data-exact="{str(span["exact"]).lower()}">'
            f'<span class="kd-side">{"".join(_token(p) for p in span["student"])}{mark}</span>'
            f'<span class="kd-side">{"".join(_token(p) for p in span["teacher"])}</span></span>'
        )
    summary = (f"<p><b>{len(view['spans'])}</b> spans; student {view['student_tokens']} tokens (top row), teacher "
               f"{view['teacher_tokens']} (bottom row); <b>{view['exact_share']:.0%}</b> of student tokens match "
               f"exactly (✓, green frame); {view['teacher_per_student']:.2f} teacher tokens per student token.</p>")
    style = ("<style>.kd-align{display:flex;flex-wrap:wrap;gap:4px;font-family:monospace;font-size:0.9em}"
             ".kd-span{display:inline-flex;flex-direction:column;padding:2px 4px;border-radius:4px}"
             ".kd-side{white-space:nowrap;color:#111827}.kd-tok{padding:0 2px}"
             ".kd-tok+.kd-tok{border-left:1px solid #9ca3af}.kd-exact{color:#16a34a;font-weight:700;margin-left:2px}"
             "</style>")
    return f'{style}{summary}<div class="kd-align">{"".join(boxes)}</div>'
