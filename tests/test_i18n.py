"""The app's two languages: every string the app wraps for translation has Korean, templates keep their fields,
field help exists in both, and a request's language comes from the session's switch or the browser."""

from __future__ import annotations

import ast
import string
from pathlib import Path
from types import SimpleNamespace

from workbench.app.i18n import SessionLanguages, browser_language, build_i18n, tr
from workbench.app.strings import HELP_KO, KO
from workbench.forms import FORM_FIELDS

APP = Path(__file__).resolve().parent.parent / "workbench" / "app"


def _wrapped_strings() -> set[str]:
    """Literal first arguments of t(...) and tr(...) calls in the app's modules."""
    found = set()
    for path in APP.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("t", "tr")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_wrapped_string_has_korean_with_the_same_fields():
    wrapped = {text for text in _wrapped_strings() if not text.startswith("learn")}
    assert len(wrapped) > 150
    missing = sorted(text for text in wrapped if text not in KO)
    assert not missing, missing
    for english, korean in KO.items():
        assert _fields(english) == _fields(korean), english
        assert korean.strip()


def test_help_texts_exist_in_both_languages_for_every_form_field():
    translations = build_i18n().translations_dict
    for name in FORM_FIELDS:
        assert translations["en"][f"help:{name}"], name
        assert name in HELP_KO and translations["ko"][f"help:{name}"] == HELP_KO[name]
    assert "25배" in HELP_KO["loss.beta"] and "25×" in translations["en"]["help:loss.beta"]
    assert not any("{" in key for key in translations["ko"] if not key.startswith(("learn", "help:")))


def test_server_side_text_follows_the_session_language():
    assert tr("step {step} / {total} · {fraction}", "ko", step=3, total=20, fraction="15%") == "단계 3 / 20 · 15%"
    assert tr("step {step} / {total} · {fraction}", "en", step=3, total=20, fraction="15%") == "step 3 / 20 · 15%"
    assert tr("a string nobody translated", "ko") == "a string nobody translated"
    korean_browser = SimpleNamespace(headers={"accept-language": "ko-KR,ko;q=0.9,en;q=0.8"}, session_hash="a")
    english_browser = SimpleNamespace(headers={"accept-language": "en-US,en;q=0.9"}, session_hash="b")
    assert browser_language(korean_browser) == "ko" and browser_language(english_browser) == "en"
    assert browser_language(None) == "en"  # API clients
    languages = SessionLanguages()
    assert languages.of(korean_browser) == "ko"
    languages.choose(korean_browser, "en")
    assert languages.of(korean_browser) == "en" and languages.of(english_browser) == "en"
    languages.choose(english_browser, "ko")
    assert languages.of(english_browser) == "ko"
    assert languages.choose(english_browser, "xx") == "en"
