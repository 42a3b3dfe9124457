"""The Setup tab with a teacher and a student whose tokenizers differ, in a real browser (Chromium through
Playwright): the card's status says two tokenizers, and the alignment viewer shows coloured spans with exact
matches marked. Screenshot in test-artifacts/app-tokenizer-alignment.png."""

from __future__ import annotations

import pytest
from app_helpers import launched_app
from tiny import tiny_bpe_model_dir

pytestmark = pytest.mark.browser


def test_alignment_viewer_colours_spans_and_marks_exact_matches(tmp_path, tiny_text, browser, artifacts_dir):
    teacher = tiny_bpe_model_dir(tmp_path, tiny_text, "teacher", 300, hidden=64, seed=1)
    student = tiny_bpe_model_dir(tmp_path, tiny_text, "student", 360, hidden=32, seed=2)
    with launched_app(tmp_path, teacher, student) as demo:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(demo.local_url)
        page.get_by_text("two tokenizers").wait_for(timeout=60000)
        page.get_by_text("Tokenizer alignment").click()
        text_box = page.get_by_label("Sample text")
        text_box.fill("the king of the land said to his son: go up to the house of the lord")
        page.get_by_role("button", name="Show alignment").click()
        view = page.locator("#tokenizer-alignment")
        view.locator(".kd-span").first.wait_for(timeout=30000)
        spans = view.locator(".kd-span")
        exact = view.locator('.kd-span[data-exact="true"]')
        assert spans.count() >= 5 and 0 < exact.count() <= spans.count()
        assert exact.first.locator(".kd-exact").inner_text() == "✓"
        assert "teacher tokens per student token" in view.inner_text()
        view.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / "app-tokenizer-alignment.png"), full_page=True)
        page.close()
