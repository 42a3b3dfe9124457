"""The README and the measurement pages under docs/: every link resolves, and every benchmark has one page with the
command that runs it and the JSON it wrote."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if p.name != "README.md")


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "README.md", DOCS / "screenshots" / "README.md", *PAGES],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text(encoding="utf-8")):
            broken.append(target)
    assert not broken, broken


def test_every_page_is_listed_in_the_docs_index_and_in_the_readme():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    measurements = readme[readme.index("## Measurements"):readme.index("## Troubleshooting")]
    missing = [p.name for p in PAGES if f"]({p.name})" not in index]
    unlisted = [p.name for p in PAGES if f"](docs/{p.name})" not in measurements and p.name != "performance.md"]
    assert not missing and not unlisted, (missing, unlisted)


def test_every_benchmark_has_one_page_with_its_command_and_its_json():
    from bench import LETTERS

    for letter in LETTERS.values():
        pages = [p for p in PAGES if p.name.startswith(f"bench-{letter}-")]
        assert len(pages) == 1, (letter, pages)
        text = pages[0].read_text(encoding="utf-8")
        assert f"workbench bench --only {letter}" in text, letter
        named = re.findall(r"assets/bench/[\w.-]+\.json", text)
        assert named and all((ROOT / path).is_file() for path in named), (letter, named)


def test_every_screenshot_is_shown_on_its_page():
    shots = DOCS / "screenshots"
    page = (shots / "README.md").read_text(encoding="utf-8")
    assert not [p.name for p in shots.glob("*.jpg") if f"]({p.name})" not in page]
