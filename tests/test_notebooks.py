"""Executes every teaching notebook top to bottom on the venv's Python kernel and fails on any error.

The notebooks use the real built-in teacher (offline) and train tiny-budget runs, so these tests are slow (tens of
seconds each on a 2-core CPU). Every claim their prose makes about a printed number is an `assert` in the cell that
prints it, so executing them also checks the prose. Runs the notebooks write go to a temporary folder
(KD_NOTEBOOK_WORKDIR). The stored .ipynb files must be what `make notebooks` builds from notebooks/src: the English
source through jupytext, the Korean edition from the same cells with the Korean prose file's Markdown.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from workbench.config import field_help
from workbench.errors import UserError
from workbench.learn import TOPICS, learn_markdown, topic, topic_markdown

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOK_DIR))
import notebook_sources as sources  # noqa: E402

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))  # English editions and their Korean ones (*.ko.ipynb)
ENGLISH = [path for path in NOTEBOOKS if not path.stem.endswith(".ko")]
SOURCES = sources.english_sources()
KERNEL_NAME = "kd-workbench-tests"
# a hang guard, not a timed assertion: each notebook runs in under 4 minutes on a quiet 2-core CPU; with three test
# suites sharing the 2 cores, the slowest took 536 s
NOTEBOOK_LIMIT_S = 1800
# OpenMP threads that spin while they wait for work take their cores from every other process: with two other
# suites' kernels spinning beside it, notebook 06 (2 to 3 minutes quiet) took 1,797 s, and 465 s once they slept.
# A kernel whose threads sleep while they wait keeps about its fair share under load, and costs about 15 % of its
# speed on a quiet machine.
KERNEL_WAIT_POLICY = "PASSIVE"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A Jupyter data folder holding a kernelspec that runs this interpreter (the venv's python)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL_NAME, "language": "python"}))
    return root


def test_every_notebook_is_listed_with_both_editions():
    names = [path.stem for path in ENGLISH]
    assert [name[:2] for name in names] == [f"{number:02d}" for number in range(1, len(names) + 1)], names
    assert len(names) >= 6
    assert sorted(path.stem for path in NOTEBOOKS) == sorted(names + [f"{name}.ko" for name in names])
    assert names == [source.stem for source in SOURCES]


def _cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_stored_notebooks_are_the_build_of_their_sources(source: Path):
    built = sources.read_english(source)
    assert built.metadata["kernelspec"]["name"] == "python3"
    editions = (built, sources.korean_edition(built, sources.read_prose(sources.korean_prose_path(source))))
    for notebook, stored in zip(editions, sources.stored_paths(source), strict=True):
        assert stored.is_file(), f"{stored.name} missing: run `make notebooks`"
        assert _cells(nbformat.read(stored, as_version=4)) == _cells(notebook), f"{stored.name} is stale: run `make notebooks`"


def test_korean_edition_takes_every_code_cell_from_the_english_source_and_needs_one_prose_cell_per_markdown_cell():
    english = sources.read_english(SOURCES[0])
    prose = sources.read_prose(sources.korean_prose_path(SOURCES[0]))
    korean = sources.korean_edition(english, prose)
    assert [c for c in _cells(korean) if c[0] == "code"] == [c for c in _cells(english) if c[0] == "code"]
    assert [text for kind, text in _cells(korean) if kind == "markdown"] == prose != [
        text for kind, text in _cells(english) if kind == "markdown"]
    with pytest.raises(ValueError, match="Markdown cells"):
        sources.korean_edition(english, prose[:-1])


@pytest.mark.parametrize("english", ENGLISH, ids=[path.stem[:2] for path in ENGLISH])
def test_korean_edition_runs_the_same_code_with_korean_prose(english: Path):
    korean = nbformat.read(english.with_name(f"{english.stem}.ko.ipynb"), as_version=4)
    original = nbformat.read(english, as_version=4)
    assert [c for c in _cells(korean) if c[0] == "code"] == [c for c in _cells(original) if c[0] == "code"]
    prose = [cell.source for cell in korean.cells if cell.cell_type == "markdown"]
    assert len(prose) == sum(cell.cell_type == "markdown" for cell in original.cells)
    for text in prose:  # every prose cell is written in Korean, not left in English
        hangul = sum("\uac00" <= ch <= "\ud7a3" for ch in text)
        assert hangul > 0.1 * sum(ch.isalpha() for ch in text), text[:80]


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_LIMIT_S)  # a time limit, not a timed assertion
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem[:2] + path.stem[-3:] * path.stem.endswith(".ko")
                                                  for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, kernel_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(kernel_dir), os.environ.get("JUPYTER_PATH", "")]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("KD_NOTEBOOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("OMP_WAIT_POLICY", KERNEL_WAIT_POLICY)  # read by the kernel's OpenMP when torch loads
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=NOTEBOOK_LIMIT_S, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors
    figures = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
               if "application/vnd.plotly.v1+json" in out.get("data", {})]
    assert figures, f"{path.name} drew no plotly figure"


def _check_command(command: str) -> None:
    from workbench.cli import build_parser
    from workbench.commands.train import resolve_config

    args = build_parser().parse_args(command.split()[1:])
    assert resolve_config(args.config, args.preset, args.overrides).data.tasks


def test_every_explanation_points_to_an_existing_notebook_and_real_fields():
    assert {"temperature", "divergences", "weights", "mapping", "lora"} <= {item.key for item in TOPICS}
    for item in TOPICS:
        if not item.notebook:  # a topic without a notebook names the command that runs it, and that command parses
            assert item.try_it in topic_markdown(item.key)
            _check_command(item.try_it)
            continue
        assert (NOTEBOOK_DIR / item.notebook).is_file(), item.notebook
        assert item.notebook in topic_markdown(item.key)
        for name in item.fields:
            section, key = name.split(".")
            assert field_help(section, key)
    assert all(item.title in learn_markdown() for item in TOPICS)
    with pytest.raises(UserError, match="temperature"):
        topic("nope")


def test_learn_tab_renders_every_topic_in_the_app_in_both_languages(tmp_path):
    from workbench.app import build_app
    from workbench.app.i18n import build_i18n
    from workbench.learn_ko import KO_TOPICS, topic_markdown_ko

    demo = build_app(runs_dir=tmp_path / "runs", exports_dir=tmp_path / "exports")
    texts = [str(block.value) for block in demo.blocks.values() if type(block).__name__ == "Markdown"]
    tabs = [str(block.label) for block in demo.blocks.values() if type(block).__name__ == "Tab"]
    assert any('"Learn"' in label for label in tabs)
    translations = build_i18n().translations_dict
    for item in TOPICS:
        assert any(f'"learn:{item.key}"' in text for text in texts), item.key
        assert translations["en"][f"learn:{item.key}"] == topic_markdown(item.key)
        korean = translations["ko"][f"learn:{item.key}"]
        assert korean == topic_markdown_ko(item.key) and (item.notebook or item.try_it) in korean
        assert sum("\uac00" <= ch <= "\ud7a3" for ch in korean) > 100, item.key  # written in Korean
    assert set(KO_TOPICS) == {item.key for item in TOPICS}
    assert {"pruning", "metrics", "onpolicy", "multitask"} <= set(KO_TOPICS)
    korean = topic_markdown_ko("multitask")
    assert all(word in korean for word in ("교사 모델", "학생 모델", "토큰", "Multi-task"))
