"""The README's architecture drawing is the import contract's layer list (pyproject.toml, `[tool.importlinter]`)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    # the README writes workbench.x : workbench.y as "x, y" and workbench.x | workbench.y as "x | y"
    return [layer.replace("workbench.", "").replace(" : ", ", ") for layer in layers]


def _drawn_layers() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Architecture"):]
    block = section[section.index("```\n") + 4:]
    block = block[:block.index("```")]
    return [re.split(r"\s{2,}", line)[0] for line in block.splitlines() if line and not line.startswith(" ")]


def test_the_readme_draws_the_contracts_layers_in_order():
    assert _drawn_layers() == _contract_layers()


def test_every_package_and_top_level_module_has_a_layer():
    layered = {name for layer in _contract_layers() for name in re.split(r", | \| ", layer)}
    package = ROOT / "workbench"
    present = {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    assert present == layered
