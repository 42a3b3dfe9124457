"""The app's two languages: every string the app wraps for translation has Korean, templates keep their fields,
field help exists in both, and a request's language comes from the session's switch or the browser."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench.app.i18n import SessionLanguages, browser_language, build_i18n, tr
from workbench.app.strings import KO
from workbench.app.strings_help import HELP_KO
from workbench.app.strings_library import LIBRARY_KO
from workbench.forms import FORM_FIELDS

APP = Path(__file__).resolve().parent.parent / "workbench" / "app"


def _wrapped_strings(functions: tuple[str, ...] = ("t", "tr")) -> set[str]:
    """Literal first arguments of t(...) and tr(...) calls (or of `functions`) in the app's modules."""
    found = set()
    for path in APP.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_wrapped_string_has_korean_with_the_same_fields():
    wrapped = {text for text in _wrapped_strings() if not text.startswith("learn")}
    assert len(wrapped) > 150
    in_browser = _wrapped_strings(("t",))  # translated by the browser: only KO reaches it
    missing = sorted(text for text in wrapped if text not in KO and (text in in_browser or text not in LIBRARY_KO))
    assert not missing, missing
    for english, korean in KO.items():
        assert _fields(english) == _fields(korean), english
        assert korean.strip()


def test_help_texts_exist_in_both_languages_for_every_form_field():
    from workbench.app.i18n import help_lines

    translations = build_i18n().translations_dict
    assert set(FORM_FIELDS) < set(help_lines()) and "data.tasks[].labels" in help_lines()
    for name in help_lines():
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


WORKBENCH = APP.parent


def _library_strings() -> set[str]:
    """What the library hands the app to translate: literal templates of Message(...) and text(...) calls, and the
    labels of the compatibility card's rows (_row(text, "label", ...))."""
    found = set()
    for path in WORKBENCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            literals = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
            if node.func.id in ("Message", "text") and node.args and literals[:1] == [getattr(node.args[0], "value", 0)]:
                found.add(literals[0])
            if node.func.id == "_row" and literals:
                found.add(literals[0])
    return found


def _shown_words() -> set[str]:
    """Words from library tables the app translates at display time (metric names, model labels, picker words)."""
    from workbench.analysis.comparison_plots import PANEL_TITLES, REPORT_BARS
    from workbench.analysis.compatibility import MEMORY_ROWS
    from workbench.analysis.report_card import REPORT_COLUMNS
    from workbench.app.train_view import GEN_SUMMARY
    from workbench.forms import PAIR_COLUMNS
    from workbench.runs.folder import STAGES, STATES, TRAINING_STAGES
    from workbench.runs.pool import LATEST_LABEL

    words = {title for _, title, _ in (*REPORT_COLUMNS, *REPORT_BARS, *GEN_SUMMARY)}
    words |= {unit for _, _, unit in GEN_SUMMARY if re.sub(r"{[^}]*}", "", unit).strip(" %")}  # "{:.1f} tokens"
    words |= {label for _, label in MEMORY_ROWS} | set(PANEL_TITLES) | set(PAIR_COLUMNS) | set(STATES) | {f"final student ({state})" for state in STATES}
    from workbench.analysis.plots import METRICS, NO_DATA
    from workbench.measured import TEMPLATES

    words |= {word for pair in METRICS.values() for word in pair} | {NO_DATA} | set(STAGES) | set(TRAINING_STAGES)
    return words | set(TEMPLATES) | {"metric", "teacher", "student", "distilled student", "undistilled student",
                                     "Report card", LATEST_LABEL, "undistilled:"}


def test_every_library_string_the_app_shows_has_korean_with_the_same_fields():
    library = _library_strings() | _shown_words()
    assert len(library) > 100
    missing = sorted(text for text in library if text not in KO and text not in LIBRARY_KO)
    assert not missing, missing
    for english, korean in LIBRARY_KO.items():
        assert _fields(english) == _fields(korean), english
        assert korean.strip()
    assert not set(KO) & set(LIBRARY_KO)  # one translation per text
    browser = build_i18n().translations_dict["ko"]
    assert not set(LIBRARY_KO) & set(browser)  # "text", "model"...: never swapped in the browser


def test_config_errors_read_in_the_readers_language():
    from workbench.app.i18n import localize
    from workbench.engine.mapping import parse_pairs
    from workbench.errors import UserError
    from workbench.forms import form_to_config

    with pytest.raises(UserError) as bad_temperature:
        form_to_config({"loss.temperature": -1.0})
    english, korean = localize(bad_temperature.value, "en"), localize(bad_temperature.value, "ko")
    assert english == str(bad_temperature.value) == "loss.temperature must be > 0 and <= 100, got -1.0"
    assert korean == "loss.temperature 값이 맞지 않습니다: -1.0. 받는 값: > 0 이고 <= 100"
    with pytest.raises(UserError) as bad_kind:
        form_to_config({"loss.divergence": "cosine"})
    assert localize(bad_kind.value, "ko").endswith("중 하나") and "forward_kl" in localize(bad_kind.value, "ko")
    with pytest.raises(UserError) as empty:
        form_to_config({"data.dataset": None})
    assert "값이 비어 있습니다" in localize(empty.value, "ko") and HELP_KO["data.dataset"] in localize(empty.value, "ko")
    with pytest.raises(UserError) as out_of_range:
        parse_pairs(["9:1"], 4, 8)
    shown = localize(out_of_range.value, "ko")
    assert shown.startswith("mapping.pairs: 학생 모델 layer 9: 범위 밖입니다") and "0..3" in shown and "0..7" in shown
    assert tr("Preview needs both models: {error}", "ko", error=out_of_range.value).endswith(shown)
    assert localize(ValueError("plain"), "ko") == "plain"


def test_compatibility_card_and_report_card_in_korean(tiny_teacher, tiny_student):
    from workbench.analysis.compatibility import compatibility_card, format_compatibility
    from workbench.app.i18n import translator
    from workbench.app.tab_report import _table, shown_card

    card = compatibility_card(str(tiny_teacher), str(tiny_student), batch=2, seq_len=32)
    english, korean = format_compatibility(card), format_compatibility(card, translator("ko"))
    assert "architecture" in english and "구조" in korean and "architecture" not in korean
    assert len(english.splitlines()) == len(korean.splitlines())

    card_labels = {node.args[1].value for node in ast.walk(ast.parse((WORKBENCH / "analysis" / "compatibility.py").read_text()))
                   if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_row"
                   and isinstance(node.args[1], ast.Constant)}
    for label in card_labels:  # values line up: every label fits the 18-column label field (Hangul counts two)
        assert sum(2 if "가" <= char <= "힣" else 1 for char in translator("ko")(label)) < 18, label
    shown = next(line for line in korean.splitlines() if line.startswith("  최대 위치 수"))
    assert sum(2 if "가" <= char <= "힣" else 1 for char in shown[:shown.index("512")]) == 20
    assert next(line for line in english.splitlines() if "max positions" in line).index("512") == 20
    # in the app the card is a table: each label in its own cell, so Korean lines up whatever the font
    from workbench.analysis.compatibility import card_html

    table_ko = card_html(card, translator("ko"))
    assert "<td>최대 위치 수</td><td>512</td>" in table_ko and "max positions" not in table_ko
    assert table_ko.count("<tr>") == len([line for line in korean.splitlines() if line.strip()])
    entry = {"label": "teacher", "val_ppl": 12.5, "top1_agreement": 1.0}
    report = {"teacher": entry, "students": [{**entry, "label": "student (checkpoint-20)"},
                                             {**entry, "label": "undistilled student"}]}
    table = _table(shown_card(report, "ko"), "ko")
    assert table["headers"] == ["지표", "교사 모델", "학생 모델 (checkpoint-20)", "증류 전 학생 모델"]
    assert ["검증 perplexity", "12.50", "12.50", "12.50"] in table["data"]
    assert _table(shown_card(report, "en"), "en")["headers"][:2] == ["metric", "teacher"]


def _latin_words(text: str, *names: str) -> list[str]:
    for name in names:
        text = text.replace(name, "")
    return re.findall(r"[A-Za-z]{2,}", text)


def test_preflight_refusals_read_in_korean(tiny_teacher, tiny_student, tmp_path):
    from engine_helpers import tiny_config
    from tiny import WORDS

    from workbench.app.context import user_error
    from workbench.app.i18n import localize
    from workbench.engine.preflight import preflight
    from workbench.errors import UserError

    few = tmp_path / "few.txt"
    few.write_text(" ".join(WORDS[:5]), encoding="utf-8")
    too_long = tiny_config(tiny_teacher, tiny_student, few, data={"seq_len": 1024})
    with pytest.raises(UserError) as refused:
        preflight(too_long, tmp_path / "runs")
    assert str(refused.value) == "data.seq_len must be <= 512 (the teacher's max_position_embeddings), got 1024"
    korean = localize(refused.value, "ko")
    assert korean == "data.seq_len은 512 이하여야 합니다 (교사 모델의 max_position_embeddings). 입력: 1024"
    assert user_error(refused.value, "ko").message == korean
    with pytest.raises(UserError) as too_little:
        preflight(tiny_config(tiny_teacher, tiny_student, few, data={"seq_len": 64}), tmp_path / "runs")
    korean = localize(too_little.value, "ko")
    assert korean.startswith(f"data.dataset: {str(few)!r}에서 토큰 ") and korean.endswith("텍스트를 더 넣으세요")
    assert not _latin_words(korean, repr(str(few)), "data.dataset", "data.seq_len"), korean
    assert str(too_little.value).startswith(f"data.dataset: {str(few)!r} gives ")
    bad_spec = tiny_config(tiny_teacher, f"{tiny_student}?prune=even&layers=0", few)
    with pytest.raises(UserError) as refused_spec:
        preflight(bad_spec, tmp_path / "runs")
    assert "layers는 양의 정수여야 합니다. 입력: '0'. 받는 형식: BASE" in localize(refused_spec.value, "ko")
    assert localize(refused_spec.value, "ko").startswith(f"models.student: 모델 spec '{tiny_student}?prune=even")


def test_mapping_and_cross_tokenizer_refusals_read_in_korean(tiny_teacher, tiny_student, tiny_text):
    from engine_helpers import tiny_config

    from workbench.app.i18n import localize
    from workbench.engine.mapping import resolve_mapping
    from workbench.engine.tokenizer_pairing import _refuse_across_tokenizers
    from workbench.errors import UserError

    with pytest.raises(UserError) as no_layers:
        resolve_mapping("uniform", None, 0, 4)
    assert str(no_layers.value) == "mapping needs at least one student layer, got 0"
    assert localize(no_layers.value, "ko") == "매핑에는 학생 모델 층이 하나 이상 필요합니다. 입력: 0"
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, loss={"hidden_weight": 0.5})
    with pytest.raises(UserError) as crossed:
        _refuse_across_tokenizers(cfg, "vocabularies differ")
    assert str(crossed.value).startswith("loss.hidden_weight must be 0: hidden states are compared position by "
                                         "position, and the teacher and student tokenizers differ")
    korean = localize(crossed.value, "ko")
    assert not _latin_words(korean, "vocabularies differ", "loss.hidden_weight", "loss.cross_tokenizer=aligned",
                            "hidden state", "logit"), korean


def test_korean_help_names_every_choice_the_english_help_names():
    """A Korean help line that lists choices lists all of them (it once said "mse 또는 cosine", the default being
    ln_mse)."""
    from workbench.config import field_choices, field_help, field_spec

    for name in FORM_FIELDS:
        if not field_spec(name).choices:
            continue
        english = field_help(*name.split("."))
        named = [c for c in field_choices(name) if re.search(rf"\b{re.escape(c)}\b", english)]
        if len(named) == len(field_choices(name)):
            missing = [c for c in named if not re.search(rf"(?<![\w]){re.escape(c)}(?![a-z_])", HELP_KO[name])]
            assert not missing, (name, missing, HELP_KO[name])


def test_text_made_at_run_time_reads_korean():
    """The lines a Korean reader used to meet in English: what numbers were measured on, the time of an evaluation,
    the chat stats line, the error toast's title, the run status line."""
    from workbench.analysis.generation import GenerationStats
    from workbench.app.context import user_error
    from workbench.app.i18n import localize_measured, shown_time, translator
    from workbench.engine.genquality import protocol_label
    from workbench.measured import EVAL_ROWS, REPORT_ROWS, measured

    lines = [protocol_label(6, "builtin:chat"), measured(EVAL_ROWS, rows=4, tokens=64, source="data/x.jsonl"),
             measured(REPORT_ROWS, rows=16, tokens=256, source="builtin:chat")]
    for line in lines:
        korean = localize_measured(line, "ko")
        assert "held-out" in korean and not re.search(r"\b(of|tokens|sampled|up to)\b", korean), korean
        assert localize_measured(line, "en") == line
    assert "builtin:chat" in localize_measured(lines[0], "ko") and "T 0.7" in localize_measured(lines[0], "ko")
    assert localize_measured("something else", "ko") == "something else"
    assert shown_time("2026-12-06T07:01:08", "ko") == "2026년 12월 6일 07:01"
    assert shown_time("2026-12-06T07:01:08", "en") == "2026-12-06 07:01"
    stats = GenerationStats(tokens=12, ttft_s=0.2, tokens_per_s=30.0, stopped=True)
    assert stats.line(translator("ko")) == "TTFT 0.20 s · 30.0 tok/s · 토큰 12개 · 중지됨"
    assert stats.line() == "TTFT 0.20 s · 30.0 tok/s · 12 tokens · stopped"
    assert "생성 중" in GenerationStats(tokens=1).line(translator("ko"))
    # a finished answer of one token has no speed to wait for (it used to read "… tok/s · 1 tokens", as if running)
    one = GenerationStats(tokens=1, ttft_s=0.4, finished=True)
    assert one.line() == "TTFT 0.40 s · – tok/s · 1 token" and one.line(translator("ko")).endswith("토큰 1개")
    assert user_error("x", "ko").title == "오류" and user_error("x", "en").title == "Error"
    assert tr("Run **{run}**", "ko", run="r1") == "실행 **r1**"
