"""Writes the teaching notebooks (without outputs) from their sources in `notebooks/src/*.py`.

    .venv/bin/python notebooks/build_notebooks.py            # rewrite every notebook
    .venv/bin/python notebooks/build_notebooks.py --figure   # also redraw assets/figures/soft_targets.png

A source is a plain Python file split into cells by `# %%` lines; a `# %% [markdown]` cell holds Markdown
written as `# ` comment lines. Edit the sources, never the .ipynb files by hand, then run this script. The README figure needs
kaleido and a Chromium (`BROWSER_PATH=/usr/bin/chromium` when it is not found on its own).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
FIGURE_PATH = HERE.parent / "assets" / "figures" / "soft_targets.png"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def parse_cells(text: str) -> list[tuple[str, str]]:
    """(kind, source) pairs of a percent-format source; kind is "md" or "code"."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("md" if "[markdown]" in line else "code", []))
        elif cells:
            kind, lines = cells[-1]
            lines.append((line[2:] if line.startswith("# ") else line.removeprefix("#")) if kind == "md" else line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells if any(s.strip() for s in lines)]


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook from (kind, source) pairs, kind "md" or "code"."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = KERNEL
    notebook.metadata["language_info"] = {"name": "python"}
    make = {"md": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    notebook.cells = [make[kind](source) for kind, source in cells]
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{name[:2]}-{index:02d}"
    nbformat.validate(notebook)
    return notebook


def write_all() -> list[Path]:
    written = []
    for source in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        path = HERE / f"{source.stem}.ipynb"
        nbformat.write(build(source.stem, parse_cells(source.read_text(encoding="utf-8"))), path)
        written.append(path)
    return written


def draw_readme_figure(path: Path = FIGURE_PATH) -> Path:
    """The README figure: the built-in teacher's next-token distribution softened at several temperatures."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import plotly.graph_objects as go
    import torch

    from workbench.config import BUILTIN_TEACHER
    from workbench.models import load_model, load_tokenizer
    from workbench.plots import softened_distribution

    prompt = "She opened the fridge and took out a bottle of"
    teacher, tokenizer = load_model(BUILTIN_TEACHER), load_tokenizer(BUILTIN_TEACHER)
    with torch.no_grad():
        logits = teacher(**tokenizer(prompt, return_tensors="pt")).logits[0, -1]
    top = logits.topk(10).indices.tolist()
    labels = [tokenizer.decode([i]).strip() or "␣" for i in top]
    figure = go.Figure()
    for temperature, color in ((0.5, "#94a3b8"), (1.0, "#2563eb"), (2.0, "#f59e0b"), (4.0, "#dc2626")):
        probs = softened_distribution(logits, temperature)
        figure.add_trace(go.Bar(x=labels, y=[probs[i] for i in top], name=f"T = {temperature:g}", marker_color=color))
    figure.update_layout(
        barmode="group", width=900, height=380, template="plotly_white",
        title=f"Built-in teacher, next token after “{prompt} …”: softmax(logits / T)",
        yaxis=dict(title="probability (log scale)", type="log"),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
        margin=dict(l=60, r=20, t=80, b=50),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_image(path, scale=2)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figure", action="store_true", help="also redraw the README figure (needs kaleido)")
    args = parser.parse_args()
    for path in write_all():
        print(f"wrote {path.relative_to(HERE.parent)}")
    if args.figure:
        print(f"wrote {draw_readme_figure().relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
