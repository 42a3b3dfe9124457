"""The attention, chat and report tabs served for real: gradio_client streaming and endpoints, and a browser pass.

The app here is the three tabs that look at a run (attention, chat, report), on tiny models with a finished run
folder, so the latest-run defaults of `/chat_compare` and `/evaluate` are exercised. The browser test drives Debian's Chromium through Playwright and
saves a screenshot of each tab under test-artifacts/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from finished_run import make_finished_run
from gradio_client import Client
from tiny import tiny_model_dir

from workbench.app.context import new_model_pool
from workbench.app.tab_attention import build_attention_tab
from workbench.app.tab_chat import build_chat_tab
from workbench.app.tab_report import build_report_tab
from workbench.runs.pool import starting_student


def build_result_tabs(ctx) -> gr.Blocks:
    with gr.Blocks(title="KD Workbench · results") as demo:
        with gr.Tab("Attention"):
            build_attention_tab(ctx)
        with gr.Tab("Chat"):
            build_chat_tab(ctx)
        with gr.Tab("Report & export"):
            build_report_tab(ctx)
    return demo


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_teacher, tiny_student, tiny_text):
    root = tmp_path_factory.mktemp("result-tabs")
    run = make_finished_run(root / "runs", tiny_teacher, tiny_student, tiny_text)
    ctx = SimpleNamespace(runs_dir=str(root / "runs"), exports_dir=str(root / "exports"), teacher=str(tiny_teacher),
                          student=str(tiny_student), pool=new_model_pool(device="cpu"))
    demo = build_result_tabs(ctx)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield SimpleNamespace(url=demo.local_url, ctx=ctx, run=run, client=Client(demo.local_url, verbose=False))
    finally:
        demo.close()


def _text(message) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def test_chat_compare_streams_every_column_with_prompt_only(served):
    job = served.client.submit("the king said", api_name="/chat_compare")
    partials: list[list[str]] = [[], [], []]
    for update in job:
        for column in range(3):
            history = update[column]
            if history and history[-1]["role"] == "assistant":
                text = _text(history[-1])
                if text and (not partials[column] or partials[column][-1] != text):
                    partials[column].append(text)
    final = job.outputs()[-1]
    for column in range(3):
        assert len(partials[column]) >= 2, f"column {column} did not stream: {partials[column]}"
        assert all(partials[column][-1].startswith(p.rstrip()) for p in partials[column])
        assert _text(final[column][0]) == "the king said"
    stats = final[3:]
    assert all("tokens" in s and "TTFT" in s and "tok/s" in s for s in stats)
    assert str(served.run) in stats[1]  # the latest finished run's student answered in the middle column
    assert served.ctx.student in stats[2]  # the undistilled student in the third


def test_chat_compare_keeps_history(served):
    first = served.client.predict("the king", api_name="/chat_compare")
    second = served.client.predict("the land", "", "latest", False, "", 0.0, 1.0, 4, 0, first[0], first[1], [],
                                   api_name="/chat_compare")
    assert [_text(m) for m in second[0] if m["role"] == "user"] == ["the king", "the land"]
    assert second[2] == [] and "not used" in second[5]


def test_evaluate_streams_the_card_as_it_fills(served):
    """Sizes of each model first, then quality, then speed, then generation: the table grows while Evaluate runs
    (it used to appear all at once at the end; then speed came with the sizes, before quality)."""
    job = served.client.submit(str(served.run), True, 0, 8, api_name="/evaluate")
    outputs = [update for update in job]
    final = job.outputs()[-1]
    tables = [table for table, *_ in job.outputs()]
    assert tables[0]["headers"] == ["metric", "teacher"]  # the teacher alone, measured before any student
    first_rows = {row[0]: row[1:] for row in tables[0]["data"]}
    assert first_rows["parameters"][0] != "–" and first_rows["val perplexity"] == ["–"]
    assert first_rows["tokens/s (batch 1)"] == ["–"]  # sizes only: speed comes after quality
    rows = [{row[0]: row[1:] for row in table["data"]} for table in tables]
    quality_first = [r for r in rows if "–" not in r["val perplexity"] and "–" in r["tokens/s (batch 1)"]]
    assert quality_first and rows.index(quality_first[0]) < len(rows) - 1, rows
    assert "Results so far" in job.outputs()[0][3] and "evaluated" in final[3] and outputs
    assert final[2]["run"] == "run-tiny" and len(tables) >= 4


def test_evaluate_says_about_how_long_each_stage_takes_from_the_runs_timings(served):
    """With the run's own timings in its metrics.jsonl, the status under the button names the stage under way and
    about how long it takes, in the reader's language (the progress bar says the same)."""
    rows = [{"kind": "train", "step": 1, "elapsed": 1.0, "time": 1010.0},
            {"kind": "eval", "step": 1, "eval_tokens": 31, "time": 1012.0},
            {"kind": "gen_eval", "step": 1, "seconds": 6.0, "gen_prompts": 4, "time": 1018.0}]
    status = json.loads((served.run / "status.json").read_text())
    (served.run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (served.run / "status.json").write_text(json.dumps({**status, "started": 1000.0}))
    try:
        english = [update[3] for update in served.client.submit(str(served.run), True, 0, 8, api_name="/evaluate")]
        korean_client = Client(served.url, verbose=False, headers={"Accept-Language": "ko-KR,ko;q=0.9"})
        korean = [update[3] for update in korean_client.submit(str(served.run), True, 0, 8, api_name="/evaluate")]
    finally:
        (served.run / "metrics.jsonl").unlink()
        (served.run / "status.json").write_text(json.dumps(status))
    assert any("under way: loading undistilled student · about" in text for text in english), english
    assert any("under way: scoring" in text and " · about " in text for text in english), english
    assert any("진행 중:" in text and "초" in text and "약 " in text for text in korean), korean
    assert "about" not in "".join(korean)


def test_undistilled_column_is_the_picked_runs_starting_point(served, tmp_path, tiny_teacher, tiny_text):
    """A run that started from another student than the app's default: its starting point answers in the third
    column (it used to be the app's default student), for the run, its student/ folder and a checkpoint."""
    other_start = tiny_model_dir(tmp_path / "models", "llama", layers=3, hidden=32, heads=4, kv_heads=2, seed=4)
    run = make_finished_run(tmp_path / "elsewhere", tiny_teacher, other_start, tiny_text, name="run-other-start")
    for picked in (run, run / "student", run / "checkpoints" / "step-5"):
        final = served.client.predict("the king", "", str(picked), True, api_name="/chat_compare")
        assert f"`{other_start}`" in final[5] and served.ctx.student not in final[5], (picked, final[5])
        assert final[2][-1]["role"] == "assistant"
    assert starting_student(served.ctx.student, "fallback") == "fallback"


def test_evaluate_and_export_endpoints_with_defaults(served):
    table, plot, card, status, samples = served.client.predict(api_name="/evaluate")
    assert card["run"] == "run-tiny" and [s["label"] for s in card["students"]] == [
        "distilled student", "undistilled student"]
    assert json.loads((served.run / "eval.json").read_text())["created"] == card["created"]
    assert table["headers"][1:] == ["teacher", "distilled student", "undistilled student"]
    assert "run-tiny" in status
    _, _, cached, status, _ = served.client.predict(api_name="/evaluate")
    assert cached["created"] == card["created"] and "from eval.json" in status
    message, download = served.client.predict(api_name="/export")
    assert "Reload check" in message and Path(download).name == "run-tiny.zip"
    assert (Path(served.ctx.exports_dir) / "run-tiny" / "model.safetensors").is_file()


def test_export_formats_and_artefact_rows_through_gradio_client(served):
    from gradio_client.exceptions import AppError

    message, download = served.client.predict(str(served.run), "", False, False, "onnx-int8", api_name="/export")
    folder = Path(served.ctx.exports_dir) / "run-tiny-onnx-int8"
    size_mb = (folder / "model-int8.onnx").stat().st_size / 2**20
    assert f"model-int8.onnx, {size_mb:.2f} MB on disk" in message and "onnxruntime" in message and download is None
    with pytest.raises(AppError, match="WordLevel"):  # the tiny tokenizer has no GGUF vocabulary: one line, no file
        served.client.predict(str(served.run), "", False, False, "gguf-q8_0", api_name="/export")
    assert not (Path(served.ctx.exports_dir) / "run-tiny-gguf-q8_0").exists()

    table, _, card, status, _ = served.client.predict(str(served.run), False, 4, 8, [str(folder)],
                                                      api_name="/evaluate")
    (row,) = [entry for entry in card["students"] if entry.get("format") == "onnx-int8"]
    assert row["runtime"].startswith("onnxruntime") and row["size_on_disk_mb"] == round(size_mb, 3)
    assert row["gen_rkl"] is not None and row["gen_tokens_per_s"] > 0
    assert table["headers"][-1] == row["label"]
    assert "measured in onnxruntime" in status and "of the teacher's size on disk" in status

    # the int8 export as the chat's third column, streaming beside the teacher and the distilled student
    result = served.client.predict("the king said", "", str(served.run), True, str(folder), 0.0, 1.0, 6, 0,
                                   api_name="/chat_compare")
    assert str(folder) in result[5] and "tok/s" in result[5] and _text(result[2][-1]).strip()


def test_export_exports_the_run_picked_for_the_report_and_names_it(served, tmp_path, tiny_teacher, tiny_student,
                                                                     tiny_text):
    """Export's default is the report's pick (it used to be the latest finished run, silently another run)."""
    picked = make_finished_run(tmp_path / "elsewhere", tiny_teacher, tiny_student, tiny_text, name="run-picked")
    message, download = served.client.predict("reported", "", True, False, "safetensors", str(picked), api_name="/export")
    assert "run **run-picked**" in message and "the student picked for the report" in message
    assert Path(download).name == "run-picked.zip" and (Path(served.ctx.exports_dir) / "run-picked").is_dir()
    checkpoint = picked / "checkpoints" / "step-5"
    message, _ = served.client.predict("reported", "", False, False, "safetensors", str(checkpoint), api_name="/export")
    assert "run **run-picked**, checkpoint **step-5**" in message
    message, _ = served.client.predict("reported", "", False, True, "safetensors", "latest", api_name="/export")
    assert "run **run-tiny**" in message and "the latest finished run" in message
    with pytest.raises(Exception, match="Run or checkpoint to export"):
        served.client.predict("reported", "", False, False, "safetensors", str(tiny_student), api_name="/export")


def _stop_a_long_answer(page, seed: str | None = None) -> None:
    """In the Chat tab: ask for a long, hot answer, wait until the columns are generating, press Stop."""
    fields = [("Max new tokens", "512"), ("Temperature", "1.5")] + ([("Seed", seed)] if seed else [])
    for name, value in fields:
        page.get_by_role("spinbutton", name=name).fill(value)
        page.get_by_role("spinbutton", name=name).press("Enter")
    page.get_by_placeholder("Ask all models…").fill("the king")
    page.get_by_role("button", name="Send").click()
    page.get_by_text("generating").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Stop").click()


@pytest.mark.browser
def test_browser_opens_each_tab_and_saves_screenshots(served, browser, artifacts_dir):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    try:
        page.goto(served.url)
        page.get_by_role("tab", name="Attention").click()
        page.get_by_role("button", name="Compare attention").click()
        page.get_by_text("(2 pairs)").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() >= 2
        page.screenshot(path=str(artifacts_dir / "results-attention.png"), full_page=True)

        page.get_by_role("tab", name="Chat").click()
        page.get_by_placeholder("Ask all models…").fill("the king said")
        page.get_by_role("button", name="Send").click()
        page.get_by_text("tok/s").first.wait_for(timeout=60_000)
        page.wait_for_function("document.querySelectorAll('.message-row, .message').length >= 6", timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts_dir / "results-chat.png"), full_page=True)
        page.get_by_role("button", name="Clear history").click()
        page.wait_for_function("!document.body.innerText.includes('the king said')", timeout=10_000)
        _stop_a_long_answer(page, seed="3")
        # the stream ends (every column stopped or finished) and the page is usable again; that Stop cuts every
        # column short is asserted without a browser in test_stop_ends_every_column (the page can lag the server)
        page.wait_for_function("!document.body.innerText.includes('generating')", timeout=60_000)
        page.screenshot(path=str(artifacts_dir / "results-chat-stopped.png"), full_page=True)
        page.get_by_role("tab", name="Report & export").click()
        page.get_by_role("button", name="Evaluate").click()
        page.get_by_text("top-1 agreement").first.wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").last.wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts_dir / "results-report.png"), full_page=True)
    finally:
        page.close()
    for name in ("attention", "chat", "report"):
        assert (artifacts_dir / f"results-{name}.png").stat().st_size > 10_000


@pytest.mark.browser
def test_browser_chat_stop_leaves_no_column_generating(served, browser, artifacts_dir):
    """Stop in the page: every column ends `stopped` (or finished), none stays "generating" (a cancelled stream used
    to leave its last "generating" line in every column for good)."""
    import time

    teacher, _ = served.ctx.pool.get(served.ctx.teacher)  # the pool's own copy: a slow step, as a real model's
    slow = teacher.register_forward_pre_hook(lambda *_: time.sleep(0.4))
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    try:
        page.goto(served.url)
        page.get_by_role("tab", name="Chat").click()
        _stop_a_long_answer(page)
        page.wait_for_timeout(3000)
        text = page.locator("body").inner_text()
        page.screenshot(path=str(artifacts_dir / "results-chat-stop.png"), full_page=True)
    finally:
        slow.remove()
        page.close()
    assert "generating" not in text and "stopped" in text
    assert text.count("tok/s") >= 3


@pytest.mark.browser
def test_browser_empty_prompt_is_one_toast_not_three_error_badges(served, browser, artifacts_dir):
    """An empty prompt is refused with a toast naming the prompt; the three chat columns stay as they were (each
    used to show an "Error" badge beside the toast). The page also says that each column keeps its conversation."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    try:
        page.goto(served.url)
        page.get_by_role("tab", name="Chat").click()
        page.get_by_role("button", name="Send").click()
        page.locator(".toast-body", has_text="prompt is empty").first.wait_for(timeout=20_000)
        page.wait_for_timeout(1500)
        badges = page.evaluate("""() => [...document.querySelectorAll('.block')]
            .filter((block) => block.querySelector('.bubble-wrap, [role=log], .chatbot'))
            .filter((block) => /\\bError\\b/.test(block.innerText)).length""")
        history_note = page.get_by_text("keeps its own conversation").count()
        page.screenshot(path=str(artifacts_dir / "results-chat-empty-prompt.png"), full_page=True)
    finally:
        page.close()
    assert badges == 0
    assert history_note == 1


def test_stop_ends_every_column(served):
    from workbench.app.tab_chat import StopBoard, chat_compare_fn

    board = StopBoard()
    stream = chat_compare_fn(served.ctx, board)("the king", max_new_tokens=400, temperature=1.0)
    next(stream)
    assert board.stop("api") == 1  # calls without a browser session share the "api" key
    final = list(stream)[-1]
    stats = final[3:]
    assert all("stopped" in s for s in stats)
    assert all(int(re.search(r"(\d+) tokens? ·", s).group(1)) < 400 for s in stats)  # "1 token" when stopped at once


def test_the_report_table_before_any_evaluation_says_what_to_press():
    """It used to show bare column headers "1 2 3"; drawn on load in the reader's language, never over a card."""
    import pandas as pd

    from workbench.app.tab_report import empty_table

    korean = SimpleNamespace(headers={"accept-language": "ko-KR,ko;q=0.9"}, session_hash="report-ko")
    assert empty_table(pd.DataFrame(columns=["1", "2", "3"])) == {
        "headers": ["metric"], "data": [["(press Evaluate: the report card appears here)"]]}
    assert empty_table(None, korean)["headers"] == ["지표"]
    card = pd.DataFrame([["parameters", "134,515,008"]], columns=["metric", "teacher"])
    assert empty_table(card) == gr.skip()  # a card on the page stays
