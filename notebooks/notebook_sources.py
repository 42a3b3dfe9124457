"""What each stored notebook is built from: its English source and, for the Korean edition, a file of Korean prose.

An English notebook `NN_name.ipynb` is the jupytext build of `src/NN_name.py` (percent format). Its Korean edition
`NN_name.ko.ipynb` is the same notebook with every Markdown cell replaced, in order, by one cell of
`src/NN_name.ko.md`, whose cells are separated by a line `<!-- cell -->`. The Korean edition therefore has no code of
its own: it runs, and is stored with, exactly the English code cells and their outputs.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import jupytext
import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parent
SOURCE_DIR = NOTEBOOK_DIR / "src"
PROSE_SEPARATOR = "<!-- cell -->"
METADATA_KEY = "kd_workbench"  # notebook metadata: code_sha256, runtime_s, machine of the stored run


def english_sources() -> list[Path]:
    return sorted(SOURCE_DIR.glob("[0-9][0-9]_*.py"))


def korean_prose_path(source: Path) -> Path:
    return source.with_name(f"{source.stem}.ko.md")


def stored_paths(source: Path) -> tuple[Path, Path]:
    """The English and the Korean notebook built from `source`."""
    return NOTEBOOK_DIR / f"{source.stem}.ipynb", NOTEBOOK_DIR / f"{source.stem}.ko.ipynb"


def read_english(source: Path) -> nbformat.NotebookNode:
    return jupytext.read(source, fmt="py:percent")


def read_prose(path: Path) -> list[str]:
    """The Markdown cells of a prose file, in order."""
    return [cell.strip("\n") for cell in path.read_text(encoding="utf-8").split(f"\n{PROSE_SEPARATOR}\n")]


def korean_edition(english: nbformat.NotebookNode, prose: list[str]) -> nbformat.NotebookNode:
    """`english` (outputs and metadata included) with its Markdown cells replaced by `prose`, one for one."""
    markdown = [cell for cell in english.cells if cell.cell_type == "markdown"]
    if len(markdown) != len(prose):
        raise ValueError(f"the English notebook has {len(markdown)} Markdown cells, the Korean prose {len(prose)}")
    korean = copy.deepcopy(english)
    for cell, text in zip((c for c in korean.cells if c.cell_type == "markdown"), prose, strict=True):
        cell.source = text
    return korean


def code_sha256(notebook: nbformat.NotebookNode) -> str:
    """A hash of the code cells' sources, in order: stored with the outputs those cells produced."""
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(code, ensure_ascii=False).encode("utf-8")).hexdigest()
