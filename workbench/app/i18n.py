"""English and Korean in the app: static text through Gradio's I18n, dynamic text translated on the server.

Static text (labels, help lines, Markdown written at build time) is wrapped in `t("English text")`; the browser
shows it in its own language (Gradio picks the locale from the browser, and the header's language switch changes
it). The English text is the key, so a string missing from the Korean table simply stays English.

Text made while the app runs (status lines, errors) cannot be translated in the browser; handlers take a
`gr.Request` and call `tr("English {x}", lang_of(request), x=...)`. The language of a session is the one its
switch chose, else the browser's Accept-Language, else English (API clients get English).

To add a string: write it in English where it is used, wrapped in `t()` or `tr()`, and add its Korean to
`workbench.app.strings.KO` (field help texts: `strings_help.HELP_KO`, keyed by the field name). Errors and text
from the library reach the app in English; a `workbench.errors.Message` (what config validation raises) is shown
translated by `localize`, from `strings_library.LIBRARY_KO`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import lru_cache

import gradio as gr

from workbench.app.strings import KO
from workbench.app.strings_help import HELP_KO
from workbench.app.strings_library import LIBRARY_KO
from workbench.config import field_help, task_fields
from workbench.errors import Message, UserError
from workbench.forms import FORM_FIELDS
from workbench.measured import parse_measured

LANGUAGES = (("English", "en"), ("한국어", "ko"))
_HELP_PREFIX = "help:"


def _english_help() -> dict[str, str]:
    return {f"{_HELP_PREFIX}{name}": text for name, text in help_lines().items()}


def help_lines() -> dict[str, str]:
    """Every Setup control's help line in English, keyed by its field: "section.key", and "data.tasks[].key" for the
    task editor's controls."""
    lines = {name: field_help(*name.split(".")) for name in FORM_FIELDS}
    lines.update({f"data.tasks[].{f.name}": f.help for f in task_fields()})
    return lines


def _learn() -> tuple[dict[str, str], dict[str, str]]:
    """The Learn tab's titles and texts in English and Korean, keyed "learn-title:<key>" and "learn:<key>"."""
    from workbench.learn import TOPICS, topic_markdown
    from workbench.learn_ko import KO_TOPICS, topic_markdown_ko

    english, korean = {}, {}
    for item in TOPICS:
        english[f"learn-title:{item.key}"], english[f"learn:{item.key}"] = item.title, topic_markdown(item.key)
        if item.key in KO_TOPICS:
            korean[f"learn-title:{item.key}"] = KO_TOPICS[item.key][0]
            korean[f"learn:{item.key}"] = topic_markdown_ko(item.key)
    return english, korean


def build_i18n() -> gr.I18n:
    """The translations the browser uses: every Korean entry, and English for the keys that are not English text."""
    learn_en, learn_ko = _learn()
    static = {key: text for key, text in KO.items() if "{" not in key}  # templates with values are server-side only
    korean = {**static, **{f"{_HELP_PREFIX}{name}": text for name, text in HELP_KO.items()}, **learn_ko}
    english = {key: key for key in static}
    english.update(_english_help())
    english.update(learn_en)
    return gr.I18n(en=english, ko=korean)


def t(text: str):
    """Static text shown in the browser's language (the English text is the key)."""
    return gr.I18n()(text)


def help_text(name: str):
    """The help line of a config field ("section.key") in the browser's language."""
    return gr.I18n()(f"{_HELP_PREFIX}{name}")


def student_picker(runs_dir: str, undistilled: str | None = None) -> list[tuple]:
    """The student pickers' choices with their words in the browser's language (run names stay as they are)."""
    from workbench.runs.pool import student_choices

    return student_choices(runs_dir, undistilled, text=t)


def tr(text: str, lang: str, **values) -> str:
    """Text made at run time in `lang` ("en" or "ko"), with `str.format` values filled in (errors and Messages
    among them in `lang` too)."""
    template = translator(lang)(text)
    shown = {key: localize(value, lang) if isinstance(value, (Message, UserError)) else value
             for key, value in values.items()}
    return template.format(**shown) if values else template


@lru_cache(maxsize=1)
def _help_by_english() -> dict[str, str]:
    """English field help -> Korean (a library message may quote a field's help)."""
    return {text: HELP_KO[name] for name, text in help_lines().items() if name in HELP_KO}


def translator(lang: str) -> Callable[[str], str]:
    """English text -> the same text in `lang` (English where no translation exists)."""
    if lang != "ko":
        return str
    return lambda text: KO.get(text) or LIBRARY_KO.get(text) or _help_by_english().get(text) or text


def localize(value: object, lang: str) -> str:
    """An error or message from the library as text in `lang`: a `Message` (also the one a UserError carries) is
    rendered from its translated template; anything else is shown as it is."""
    message = value.message if isinstance(value, UserError) else value
    return message.render(translator(lang)) if isinstance(message, Message) else str(value)


def localize_measured(line: str | None, lang: str) -> str:
    """A stored "measured on" line (written from a `workbench.measured` template) in `lang`; other text as it is."""
    parsed = parse_measured(line or "")
    if parsed is None:
        return line or ""
    template, values = parsed
    return tr(template, lang, **values)


def shown_time(stamp: str | None, lang: str) -> str:
    """A stored ISO time ("2026-12-06T07:01:08") as a reader writes it: "2026-12-06 07:01" or "2026년 12월 6일
    07:01"; anything else as it is."""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(:\d{2})?", str(stamp or ""))
    if not match:
        return str(stamp or "?")
    year, month, day, hour, minute, _ = match.groups()
    if lang == "ko":
        return f"{year}년 {int(month)}월 {int(day)}일 {hour}:{minute}"
    return f"{year}-{month}-{day} {hour}:{minute}"


class SessionLanguages:
    """The language each browser session chose with the switch (session hash -> "en" | "ko")."""

    def __init__(self) -> None:
        self._chosen: dict[str, str] = {}
        self._lock = threading.Lock()

    def choose(self, request: gr.Request | None, lang: str) -> str:
        lang = lang if lang in dict(LANGUAGES).values() else "en"
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                self._chosen[session] = lang
        return lang

    def of(self, request: gr.Request | None) -> str:
        session = getattr(request, "session_hash", None)
        with self._lock:
            if session in self._chosen:
                return self._chosen[session]
        return browser_language(request)


def browser_language(request: gr.Request | None) -> str:
    """"ko" when the request's Accept-Language prefers Korean over English, else "en"."""
    headers = getattr(request, "headers", None) or {}
    accepted = str(headers.get("accept-language") or "").lower()
    for part in accepted.split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("ko"):
            return "ko"
        if tag.startswith("en"):
            return "en"
    return "en"


LANGS = SessionLanguages()


def lang_of(request: gr.Request | None) -> str:
    return LANGS.of(request)


# Switching language in the browser: Gradio's locale store lives in its `core` module, which exports
# `changeLocale`; importing the already-loaded module by its URL gives the same store. The choice is kept in
# localStorage so a reload keeps it.
SWITCH_JS = """
async (lang) => {
  const url = performance.getEntriesByType('resource').map((e) => e.name)
    .find((name) => /\\/assets\\/core-[^/]*\\.js$/.test(name));
  if (lang && url) { (await import(url)).changeLocale(lang); }
  if (lang) { localStorage.setItem('kd-lang', lang); document.documentElement.dataset.kdLang = lang; }
  return lang;
}
"""
LOAD_JS = """
async () => {
  const stored = localStorage.getItem('kd-lang');
  const lang = stored || ((navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en');
  if (stored) {
    const url = performance.getEntriesByType('resource').map((e) => e.name)
      .find((name) => /\\/assets\\/core-[^/]*\\.js$/.test(name));
    if (url) { (await import(url)).changeLocale(stored); }
  }
  document.documentElement.dataset.kdLang = lang;
  return lang;
}
"""


def toast_css() -> str:
    """Gradio's toast shows its type ("Error") as its title whatever gr.Error's `title` says; in Korean (the
    `data-kd-lang` the language scripts set on the page) CSS writes the translated word in its place."""
    word = translator("ko")("Error")
    return (f'html[data-kd-lang="ko"] .toast-title.error {{ font-size: 0; }}\n'
            f'html[data-kd-lang="ko"] .toast-title.error::before {{ content: "{word}"; font-size: var(--text-md); }}\n')


def language_switch() -> gr.Radio:
    """The header's language switch (its events are wired in `build_app`)."""
    return gr.Radio(list(LANGUAGES), value=None, show_label=False, container=False, elem_id="lang-switch",
                    scale=0, min_width=200)
