import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tiny import tiny_model_dir, tiny_pairs_file, tiny_text_file  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_teacher(tiny_root) -> Path:
    """A 4-layer tiny Llama; pairs with `tiny_student` (same tokenizer)."""
    return tiny_model_dir(tiny_root, "llama", layers=4, hidden=64, heads=4, kv_heads=2, seed=1)


@pytest.fixture(scope="session")
def tiny_student(tiny_root) -> Path:
    return tiny_model_dir(tiny_root, "llama", layers=2, hidden=32, heads=4, kv_heads=2, seed=2)


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory) -> Path:
    return tiny_text_file(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory) -> Path:
    """Prompt/answer rows in the tiny vocabulary, for on-policy training and generation quality."""
    return tiny_pairs_file(tmp_path_factory.mktemp("tiny-pairs"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium; `make test` installs it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):
    """Poll `predicate` until it returns something truthy and return that value; AssertionError after `timeout` s.
    The one polling loop of the suite (a server, a subprocess or a run folder catching up)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(every)


@pytest.fixture(scope="module")
def browser():
    """Chromium through Playwright, one per test module; tests open their own pages or contexts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
