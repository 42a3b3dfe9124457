"""The wheel carries everything the package reads at run time: built, installed outside the checkout, it trains.

The source is copied to a temporary folder first so the build leaves nothing in the checkout; the wheel is installed
with `pip install --target` and put first on PYTHONPATH, so torch and the other dependencies come from this
environment while `workbench` comes from the wheel alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT / "workbench", source / "workbench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(work / "dist"), str(source)], check=True, timeout=300)
    (wheel,) = (work / "dist").glob("kd_workbench-*.whl")
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    return site


def _workbench(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_wheel_holds_the_package_data_and_not_the_benchmarks(installed):
    (wheel,) = installed.parent.joinpath("dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for preset in ("quick", "default", "thorough", "chat", "chat-small"):
        assert f"workbench/presets/{preset}.yaml" in names
    assert {"workbench/builtin/chat.jsonl", "workbench/builtin/chat_prompts.jsonl"} <= names
    assert not any(name.startswith("bench/") for name in names)


def test_installed_package_is_the_wheel_and_refuses_bench(installed, tmp_path):
    where = subprocess.run([sys.executable, "-c", "import workbench; print(workbench.__file__)"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True,
                           check=True)
    assert Path(where.stdout.strip()).is_relative_to(installed)
    done = _workbench(installed, tmp_path, "bench", "--only", "a")
    assert done.returncode == 2
    assert "source checkout" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_installed_wheel_trains_one_step_of_the_quick_preset(installed, tmp_path):
    done = _workbench(installed, tmp_path, "train", "--preset", "quick", "run.name=from-wheel", "train.steps=1",
                      "train.warmup_steps=0", "data.seq_len=32", "data.max_sequences=8", "train.batch_size=1",
                      "train.eval_batches=1", "train.gen_eval=false")
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "runs" / "from-wheel"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(row.get("step") == 1 and row.get("kind") == "train" for row in rows)
    assert "builtin:chat" in (run / "config.yaml").read_text()
