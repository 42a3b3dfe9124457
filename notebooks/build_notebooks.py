"""Writes the stored teaching notebooks from their sources (see notebook_sources.py): both editions of each.

    make notebooks                                  # or: .venv/bin/python notebooks/build_notebooks.py [NN ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from notebook_sources import english_sources, korean_edition, korean_prose_path, read_english, read_prose, stored_paths


def build(source: Path) -> None:
    english = read_english(source)
    english.metadata = {"kernelspec": english.metadata["kernelspec"]}
    for index, cell in enumerate(english.cells):  # stable ids keep the stored diffs small
        cell.id = f"{source.stem[:2]}-{index:02d}"
    korean = korean_edition(english, read_prose(korean_prose_path(source)))
    for notebook, path in zip((english, korean), stored_paths(source), strict=True):
        nbformat.write(notebook, path)
        print("wrote", path.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers", nargs="*", help="notebook numbers to build (default: all), e.g. 02 06")
    args = parser.parse_args(argv)
    for source in english_sources():
        if not args.numbers or source.stem[:2] in args.numbers:
            build(source)


if __name__ == "__main__":
    sys.exit(main())
