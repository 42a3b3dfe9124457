"""The app in a real browser (Debian's Chromium through Playwright): the temperature preview reacts to the slider,
a quick tiny run starts from the form, curve points appear, Stop ends it, and a reload finds it again.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from app_helpers import launched_app, tiny_config
from conftest import wait_for

pytestmark = pytest.mark.browser



def _slider_number(page, label: str):
    block = page.locator(".block", has=page.get_by_text(label, exact=True)).first
    return block.locator("input[type=number]").first


def test_setup_train_stop_reload(browser, tmp_path, tiny_teacher, tiny_student, tiny_text, artifacts_dir):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, steps=100000, eval_every=20, save_every=100000)
    with launched_app(tmp_path, tiny_teacher, tiny_student, config=cfg) as demo:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(demo.local_url)
        page.get_by_text("KD Workbench", exact=False).first.wait_for()
        page.get_by_text("compatible pair").wait_for(timeout=30000)

        preview = page.locator("#temp-preview-text")
        temperature = _slider_number(page, "Temperature T")
        temperature.fill("1")
        temperature.press("Enter")
        page.wait_for_function("document.querySelector('#temp-preview-text').innerText.includes('T = 1')",
                               timeout=30000)
        before = preview.inner_text()
        temperature.fill("6")
        temperature.press("Enter")
        page.wait_for_function("document.querySelector('#temp-preview-text').innerText.includes('T = 6')",
                               timeout=15000)
        after = preview.inner_text()
        entropies = [re.findall(r"entropy ([0-9.]+)", text) for text in (before, after)]
        assert entropies[0] != entropies[1] and float(entropies[1][0]) > float(entropies[0][0])
        assert page.locator("#temp-preview-plot .bars, #temp-preview-plot .trace").count() > 0
        page.screenshot(path=str(artifacts_dir / "app-setup.png"), full_page=True)

        page.get_by_role("tab", name="Train").click()
        page.locator("#start-btn").click()
        wait_for(lambda: page.locator("#run-progress .kd-progress").get_attribute("data-state") == "running",
                 timeout=90)
        wait_for(lambda: int(page.locator("#run-progress .kd-progress").get_attribute("data-step") or 0) >= 3,
                 timeout=90)
        wait_for(lambda: page.locator("#train-plot .scatterlayer .trace").count() > 0, timeout=30)
        points = page.locator("#train-plot .scatterlayer .trace path.js-line").first.get_attribute("d") or ""
        assert points.count("L") >= 1, "the loss curve has several points"
        page.screenshot(path=str(artifacts_dir / "app-train-running.png"), full_page=True)

        page.locator("#stop-btn").click()
        wait_for(lambda: page.locator("#run-progress .kd-progress").get_attribute("data-state") == "stopped",
                 timeout=90)
        page.screenshot(path=str(artifacts_dir / "app-train-stopped.png"), full_page=True)
        run_text = page.locator("#run-status").inner_text()
        run_id = re.search(r"Run (\S+)", run_text).group(1)

        page.reload()
        page.get_by_role("tab", name="Train").click()
        wait_for(lambda: run_id in page.locator("#run-status").inner_text(), timeout=30)
        wait_for(lambda: page.locator("#train-plot .scatterlayer .trace").count() > 0, timeout=30)
        page.get_by_role("tab", name="Runs").click()
        wait_for(lambda: run_id in page.locator("#runs-table").inner_text(), timeout=20)
        page.screenshot(path=str(artifacts_dir / "app-runs.png"), full_page=True)
        page.close()
