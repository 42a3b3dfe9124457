"""The stored notebooks carry the outputs of their current code: executed by `make notebooks`, with the hash of the
code cells that produced the outputs in their metadata, figures also as PNG images, nothing volatile and no path of
the machine that ran them. The README's notebook table states each stored run's time and machine.

Executing the notebooks is tests/test_notebooks.py's job; these tests only read the stored files.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOK_DIR))
import notebook_outputs as outputs  # noqa: E402
import notebook_sources as sources  # noqa: E402

SOURCES = sources.english_sources()
README = (NOTEBOOK_DIR.parent / "README.md").read_text(encoding="utf-8")
MACHINE_PATH = re.compile(r"(?<![\w.~])/(tmp|home|root|work|usr|opt|var|private|Users)/|[A-Za-z]:\\\\")


def _code_outputs(notebook) -> list:
    return [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem[:2] for path in SOURCES])
def test_stored_outputs_come_from_the_current_code_of_both_editions(source: Path):
    digest = sources.code_sha256(sources.read_english(source))
    english, korean = (nbformat.read(path, as_version=4) for path in sources.stored_paths(source))
    for notebook in (english, korean):
        run = notebook.metadata.get(sources.METADATA_KEY, {})
        assert run.get("code_sha256") == digest, f"{source.stem}: outputs of other code; run `make notebooks`"
        assert run["runtime_s"] > 0 and run["machine"]
    assert _code_outputs(korean) == _code_outputs(english)


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")), ids=lambda path: path.stem)
def test_stored_notebook_is_executed_without_errors_volatile_metadata_or_machine_paths(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert set(notebook.metadata) == {"kernelspec", sources.METADATA_KEY}
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert sum(bool(cell.outputs) for cell in code) > len(code) / 2, "stored without outputs: run `make notebooks`"
    assert "notebook ran in" in code[-1].outputs[-1].text
    assert all(cell.execution_count is None for cell in code) and not [cell for cell in notebook.cells if cell.metadata]
    every = [output for cell in code for output in cell.outputs]
    assert not [output for output in every if output.output_type == "error"]
    figures = [output for output in every if outputs.PLOTLY_MIME in output.get("data", {})]
    assert figures and all(output.data["image/png"] for output in figures), "a figure has no static image"
    assert not MACHINE_PATH.search(path.read_text(encoding="utf-8")), "a stored output names this machine's folders"


def test_readme_table_gives_each_notebook_its_stored_runtime_and_the_machine():
    runs = [nbformat.read(sources.stored_paths(source)[0], as_version=4).metadata[sources.METADATA_KEY]
            for source in SOURCES]
    for source, run in zip(SOURCES, runs, strict=True):
        row = next(line for line in README.splitlines() if line.startswith(f"| `{source.stem}`"))
        assert f"| {run['runtime_s']} s |" in row, row
    for machine in {run["machine"] for run in runs}:
        assert machine in README
    assert f"{sum(run['runtime_s'] for run in runs) / 60:.0f} minutes" in README


def test_outputs_are_cleaned_of_paths_progress_redraws_and_split_streams(tmp_path: Path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print()")])
    notebook.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"runs are written under {tmp_path}/lmbda-0\n"),
        nbformat.v4.new_output("stream", name="stdout", text="steps:  10%\rsteps: 100%\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": str(Path.home() / "x")}, execution_count=3)]
    notebook.cells[0].execution_count = 3
    outputs.scrub_paths(notebook, {str(tmp_path): "runs"})
    outputs.strip_volatile(notebook)
    stream, result = notebook.cells[0].outputs
    assert stream.text == "runs are written under runs/lmbda-0\nsteps: 100%\n"
    assert result.data["text/plain"] == "~/x" and result.execution_count is None is notebook.cells[0].execution_count


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem[:2] for path in SOURCES])
def test_every_notebook_credits_its_methods_in_a_references_cell_in_both_editions(source: Path):
    english, korean = (nbformat.read(path, as_version=4) for path in sources.stored_paths(source))
    for notebook, title in ((english, "## References"), (korean, "## 참고 문헌")):
        (cell,) = [c for c in notebook.cells if c.cell_type == "markdown" and c.source.startswith(title)]
        assert re.search(r"\(\d{4}\)", cell.source), f"{source.stem}: a references cell names no dated source"
