"""Writes the stored teaching notebooks from their sources (see notebook_sources.py), both editions of each, executed
and with their outputs (see notebook_outputs.py).

    make notebooks                                  # or: .venv/bin/python notebooks/build_notebooks.py [NN ...]
    .venv/bin/python notebooks/build_notebooks.py --force 02    # execute 02 even though its code did not change

A notebook is executed again only when its code cells differ from the ones its stored outputs came from (the hash in
its metadata); when only prose changed, the stored outputs are kept. The Korean edition is stored with the English
outputs: its code cells are the English ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from notebook_outputs import add_static_figures, execute, machine, strip_volatile
from notebook_sources import (
    METADATA_KEY,
    NOTEBOOK_DIR,
    code_sha256,
    english_sources,
    korean_edition,
    korean_prose_path,
    read_english,
    read_prose,
    stored_paths,
)


def build(source: Path, force: bool) -> None:
    english = read_english(source)
    english.metadata = {"kernelspec": english.metadata["kernelspec"]}
    for index, cell in enumerate(english.cells):  # stable ids and no jupytext layout hints keep the diffs small
        cell.id, cell.metadata = f"{source.stem[:2]}-{index:02d}", {}
    korean_prose = read_prose(korean_prose_path(source))
    korean_edition(english, korean_prose)  # refuses a prose file that does not fit before minutes of execution
    english_path, korean_path = stored_paths(source)
    digest = code_sha256(english)
    stored = nbformat.read(english_path, as_version=4) if english_path.is_file() else None
    if not force and stored is not None and stored.metadata.get(METADATA_KEY, {}).get("code_sha256") == digest:
        reuse_outputs(english, stored)
        print(f"{source.stem}: code unchanged, stored outputs kept", flush=True)
    else:
        print(f"{source.stem}: executing ...", flush=True)
        runtime_s = execute(english, NOTEBOOK_DIR)
        strip_volatile(english)
        figures = add_static_figures(english)
        english.metadata[METADATA_KEY] = {"code_sha256": digest, "runtime_s": round(runtime_s),
                                          "machine": machine()}
        print(f"{source.stem}: {runtime_s:.0f} s, {figures} figures", flush=True)
    for notebook, path in ((english, english_path), (korean_edition(english, korean_prose), korean_path)):
        nbformat.write(notebook, path)
        print("wrote", path.name, flush=True)


def reuse_outputs(notebook: nbformat.NotebookNode, stored: nbformat.NotebookNode) -> None:
    """Copies the stored outputs and run metadata onto `notebook`, whose code cells are the stored ones."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    stored_code = [cell for cell in stored.cells if cell.cell_type == "code"]
    for cell, old in zip(code, stored_code, strict=True):
        cell.outputs = old.outputs
    notebook.metadata[METADATA_KEY] = stored.metadata[METADATA_KEY]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers", nargs="*", help="notebook numbers to build (default: all), e.g. 02 06")
    parser.add_argument("--force", action="store_true", help="execute even when the code cells did not change")
    args = parser.parse_args(argv)
    for source in english_sources():
        if not args.numbers or source.stem[:2] in args.numbers:
            build(source, args.force)


if __name__ == "__main__":
    sys.exit(main())
