"""Every tab in a real browser (Debian's Chromium through Playwright) in both languages: a ko-KR browser gets
Korean, an en-US browser English, and the switch changes it (kept after a reload). In Korean, a run started from the
Train tab shows its stages, its eval chart has perplexity on a log axis and agreement on its own, and when it
finishes the Chat tab's student picker offers it (its label in Korean) without a refresh. The library's text (the
compatibility card, a config error, the report card's metric names) reads Korean too. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import re

import pytest
from app_helpers import launched_app, tiny_config
from conftest import wait_for
from finished_run import make_finished_run

# (artifact name, tab in English, tab in Korean, a text only the English tab shows, the same in Korean)
TABS = (
    ("setup", "Setup", "설정", "Sample prompt for the preview", "미리 보기용 예시 prompt"),
    ("train", "Train", "학습", "Log scale for the loss terms", "손실 항을 로그 스케일로"),
    ("runs", "Runs", "실행 기록", "Config fields that differ", "서로 다른 설정 항목"),
    ("chat", "Chat", "채팅", "Also the undistilled student", "증류 전 학생 모델도 함께"),
    ("attention", "Attention", "Attention", "Compare attention", "Attention 비교"),
    ("report", "Report & export", "리포트·내보내기", "Student to report", "평가할 학생 모델"),
    ("learn", "Learn", "배우기", "Pruning and healing", "Pruning(layer 잘라 내기)과 healing"),
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_teacher, tiny_student, tiny_text):
    root = tmp_path_factory.mktemp("browser-i18n")
    make_finished_run(root / "runs", tiny_teacher, tiny_student, tiny_text)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, steps=12, eval_every=4, save_every=4)
    with launched_app(root, tiny_teacher, tiny_student, config=cfg) as demo:
        yield demo



def _open(browser, url: str, locale: str):
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.get_by_text("KD Workbench").first.wait_for()
    return context, page


@pytest.mark.parametrize("locale,lang", [("ko-KR", "ko"), ("en-US", "en")])
def test_every_tab_speaks_the_browsers_language(served, browser, artifacts_dir, locale, lang):
    context, page = _open(browser, served.local_url, locale)
    for name, tab_en, tab_ko, text_en, text_ko in TABS:
        page.get_by_role("tab", name=tab_ko if lang == "ko" else tab_en, exact=True).click()
        page.get_by_text(text_ko if lang == "ko" else text_en, exact=True).first.wait_for(timeout=20_000)
        assert page.get_by_text(text_en if lang == "ko" else text_ko, exact=True).count() == 0, name
        page.wait_for_timeout(800)
        page.screenshot(path=str(artifacts_dir / f"app-{name}-{lang}.png"), full_page=True)
    context.close()
    for name, *_ in TABS:
        assert (artifacts_dir / f"app-{name}-{lang}.png").stat().st_size > 10_000


def test_the_switch_changes_the_language_and_a_reload_keeps_it(served, browser, artifacts_dir):
    context, page = _open(browser, served.local_url, "en-US")
    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_text("Log scale for the loss terms").wait_for()
    page.locator("#lang-switch").get_by_text("한국어").click()
    page.get_by_text("손실 항을 로그 스케일로").wait_for(timeout=10_000)
    wait_for(lambda: "실행" in page.locator("#run-status").inner_text(), timeout=20)  # redrawn by the server
    page.reload()
    page.get_by_text("KD Workbench").first.wait_for()
    page.get_by_role("tab", name="학습", exact=True).click()
    page.get_by_text("손실 항을 로그 스케일로").wait_for(timeout=10_000)
    wait_for(lambda: "완료" in page.locator("#run-status").inner_text(), timeout=20)  # server-side text too
    page.screenshot(path=str(artifacts_dir / "app-switched-to-ko.png"), full_page=True)
    context.close()


def test_the_switch_redraws_the_servers_text_both_ways_and_a_reload_keeps_it(served, browser, artifacts_dir):
    """The compatibility card, its badge and the next-token plot follow the switch (they used to stay in the
    first language), and a Korean browser that chose English gets English from the server after a reload."""
    context, page = _open(browser, served.local_url, "ko-KR")
    card, badge = page.locator("#pair-card"), page.locator("#card-status")
    plot_title = "() => document.querySelector('#temp-preview-plot .js-plotly-plot')?._fullLayout?.title?.text || ''"

    def english() -> bool:
        return ("architecture" in card.inner_text() and "구조" not in card.inner_text()
                and "compatible pair" in badge.inner_text() and "next-token" in page.evaluate(plot_title))

    def korean() -> bool:
        return ("구조" in card.inner_text() and "architecture" not in card.inner_text()
                and "compatible pair" not in badge.inner_text() and "next-token" not in page.evaluate(plot_title)
                and page.evaluate(plot_title) != "")

    wait_for(korean, timeout=60)
    page.locator("#lang-switch").get_by_text("English").click()
    wait_for(english, timeout=60)
    page.screenshot(path=str(artifacts_dir / "app-setup-switched-to-en.png"), full_page=True)
    page.reload()
    page.get_by_text("KD Workbench").first.wait_for()
    wait_for(lambda: "architecture" in card.inner_text() or "구조" in card.inner_text(), timeout=60)
    page.wait_for_timeout(1500)
    assert english(), card.inner_text()[:200]
    page.locator("#lang-switch").get_by_text("한국어").click()
    wait_for(korean, timeout=60)
    context.close()


def test_a_korean_run_shows_stages_honest_axes_and_refreshes_the_pickers(served, browser, artifacts_dir):
    context, page = _open(browser, served.local_url, "ko-KR")
    page.get_by_role("tab", name="학습", exact=True).click()
    status = page.locator("#run-status")

    def watched() -> str | None:
        found = re.findall(r"실행 (\S+)", status.inner_text())  # "Run NAME" used to stay English
        return found[0] if found else None

    before = wait_for(watched, timeout=20)
    page.locator("#start-btn").click()
    wait_for(lambda: watched() not in (None, before), timeout=30, every=0.1)
    assert "대기 중" in status.inner_text() or "실행 중" in status.inner_text()  # the first render is Korean too
    progress = page.locator("#run-progress .kd-progress")
    stages = set()
    wait_for(lambda: (stages.add(progress.get_attribute("data-stage")), progress.get_attribute("data-state"))[1]
             == "finished", timeout=150, every=0.2)
    assert stages & {"queued", "starting", "loading data", "loading student", "loading teacher", "first step"}, stages
    page.wait_for_function("document.querySelector('#train-plot .js-plotly-plot')?.data?.length > 4",
                           timeout=20_000)
    layout = page.evaluate("""() => {
        const plot = document.querySelector('#train-plot .js-plotly-plot');
        const byName = Object.fromEntries(plot.data.map((trace) => [trace.name, trace.yaxis]));
        return {layout: plot._fullLayout, byName};
    }""")
    ppl_axis = layout["byName"]["학생 모델 perplexity"].replace("y", "yaxis")
    top1_axis = layout["byName"]["top-1 일치율"].replace("y", "yaxis")
    assert layout["layout"][ppl_axis]["type"] == "log" and ppl_axis != top1_axis
    assert layout["layout"][top1_axis]["range"] == [0, 1]
    run_id = watched()
    page.screenshot(path=str(artifacts_dir / "app-train-finished-ko.png"), full_page=True)
    page.get_by_role("tab", name="채팅", exact=True).click()
    page.get_by_label("증류한 학생 모델").click()  # no refresh pressed: the picker already offers the new run
    page.get_by_role("option", name=f"{run_id} · 최종 학생 모델 (완료)").wait_for(timeout=10_000)
    context.close()


def test_korean_setup_and_report_show_the_librarys_text_in_korean(served, browser, artifacts_dir):
    """The compatibility card, a config error (command preview and gr.Error) and the report card's metric names."""
    context, page = _open(browser, served.local_url, "ko-KR")
    card = page.locator("#pair-card")
    wait_for(lambda: "구조" in card.inner_text(), timeout=30)
    assert "architecture" not in card.inner_text() and "학습 메모리" in card.inner_text()
    box = page.get_by_label("최대 시퀀스 수 (0 = 전부)")
    box.fill("1")
    box.press("Enter")
    expected = "data.max_sequences 값이 맞지 않습니다: 1. 받는 값: 정수, >= 2"
    wait_for(lambda: expected in page.locator("#command-preview").inner_text(), timeout=20)
    page.get_by_role("button", name="YAML 저장").click()
    page.locator(".toast-body", has_text=expected).first.wait_for(timeout=10_000)  # the gr.Error, in Korean
    title = page.locator(".toast-body", has_text=expected).first.locator(".toast-title")
    shown = title.evaluate("(node) => getComputedStyle(node, '::before').content + ' ' + getComputedStyle(node).fontSize")
    assert shown == '"오류" 0px', shown  # the toast's title used to read "Error"; CSS writes the Korean over it
    page.screenshot(path=str(artifacts_dir / "app-setup-error-ko.png"))
    box.fill("0")
    box.press("Enter")
    page.get_by_role("tab", name="리포트·내보내기", exact=True).click()
    page.get_by_role("button", name="평가", exact=True).click()
    table = page.locator("#report-table")
    status = page.locator("#report-status")
    wait_for(lambda: "검증 perplexity" in table.inner_text() and "동안 평가" in status.inner_text(), timeout=180)
    assert "지표" in table.inner_text() and "교사 모델" in table.inner_text() and "val perplexity" not in table.inner_text()
    hidden_rows = page.evaluate("""() => [...document.querySelectorAll('#report-table *')]
        .filter((el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowY))
        .map((el) => el.scrollHeight - el.clientHeight).filter((hidden) => hidden > 2).length""")
    assert hidden_rows == 0 and "속도 향상" in table.inner_text()  # size and speed rows in view, no inner scroll
    report = page.locator("#report-status").inner_text()
    assert re.search(r"\d{4}년 \d+월 \d+일", report) and not re.search(r"\d{4}-\d\d-\d\dT\d", report), report
    assert "held-out 시퀀스" in report and " sequences " not in report, report  # the "measured on" line
    page.screenshot(path=str(artifacts_dir / "app-report-ko.png"), full_page=True)
    context.close()


def test_korean_chat_reads_korean_and_says_the_models_answer_in_english(served, browser, artifacts_dir):
    context, page = _open(browser, served.local_url, "ko-KR")
    page.get_by_role("tab", name="채팅", exact=True).click()
    wait_for(lambda: "내장 모델은 영어만 배웠습니다" in page.locator("body").inner_text(), timeout=20)
    prompt = page.get_by_label("프롬프트")
    prompt.fill("the king said")
    page.get_by_role("button", name="보내기", exact=True).click()
    wait_for(lambda: page.locator("body").inner_text().count("tok/s") >= 3, timeout=60)
    page.wait_for_timeout(1000)
    text = page.locator("body").inner_text()
    assert "토큰" in text and not re.search(r"\d tokens", text) and "Prompt" not in text
    assert "0 = greedy (" in text and "not used" not in text
    label_bottom, first_message_top = page.evaluate("""() => {
        const chat = document.querySelector('.kd-chat');
        // a long answer scrolls the column (its title stays on top, as in any Gradio chatbot): measure at rest
        chat.querySelectorAll('*').forEach((el) => {
            if (['auto', 'scroll'].includes(getComputedStyle(el).overflowY)) el.scrollTop = 0; });
        const label = chat.querySelector('[data-testid="block-label"], label');
        const message = chat.querySelector('.message');
        return [label.getBoundingClientRect().bottom, message.getBoundingClientRect().top];
    }""")
    assert first_message_top >= label_bottom  # the question bubble is no longer hidden under the column title
    page.screenshot(path=str(artifacts_dir / "app-chat-ko.png"), full_page=True)
    context.close()
