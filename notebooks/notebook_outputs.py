"""Executes a notebook and makes its outputs fit to store: no volatile metadata, no paths of the machine that ran it,
and every plotly figure also as a small PNG image for viewers that run no JavaScript.

The kernel is this interpreter (the venv's python, the package importable as it is here), offline, with the runs the
notebooks write in a temporary folder (KD_NOTEBOOK_WORKDIR) that is deleted afterwards.
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import re
import site
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNEL_NAME = "kd-workbench-build"
CELL_LIMIT_S = 3600  # a cell may take many times its quiet runtime on a machine busy with other work
PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Progress bars and tqdm's "IProgress not found" only add noise (and timings that change every run) to stored outputs.
QUIET = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONWARNINGS": "ignore:IProgress not found"}
PNG_COLORS = 128  # a palette image keeps the stored notebooks small; charts and heatmaps stay readable


def execute(notebook: nbformat.NotebookNode, notebook_dir: Path) -> float:
    """Runs every cell in place (raises on the first failing cell); returns the wall time in seconds."""
    with tempfile.TemporaryDirectory(prefix="kd-notebook-") as scratch:
        spec_dir = Path(scratch) / "jupyter" / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL_NAME,
                                                          "language": "python"}))
        workdir = Path(scratch) / "runs"
        workdir.mkdir()
        environment = {"JUPYTER_PATH": str(Path(scratch) / "jupyter"), "HF_HUB_OFFLINE": "1",
                       "KD_NOTEBOOK_WORKDIR": str(workdir), "PLOTLY_RENDERER": "plotly_mimetype", **QUIET}
        saved = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)
        try:
            client = NotebookClient(notebook, timeout=CELL_LIMIT_S, kernel_name=KERNEL_NAME, record_timing=False,
                                    resources={"metadata": {"path": str(notebook_dir)}})
            started = time.monotonic()
            client.execute()
            elapsed = time.monotonic() - started
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        scrub_paths(notebook, {str(workdir): "runs", scratch: "scratch"})
    return elapsed


def scrub_paths(notebook: nbformat.NotebookNode, replacements: dict[str, str]) -> None:
    """Replaces this machine's folders in every output text: the ones given, the package's, the interpreter's, home."""
    root = str(Path(__file__).resolve().parent.parent)
    folders = {**replacements, **{path: "site-packages" for path in site.getsitepackages()},
               sys.prefix: "venv", sys.base_prefix: "python", root: ".", str(Path.home()): "~"}
    pattern = re.compile("|".join(re.escape(folder) for folder in sorted(folders, key=len, reverse=True)))
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = pattern.sub(lambda match: folders[match.group(0)], output.text)
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str):
                    output.data[mime] = pattern.sub(lambda match: folders[match.group(0)], value)


def strip_volatile(notebook: nbformat.NotebookNode) -> None:
    """Drops what changes from run to run without the outputs changing (execution counts, cell and output metadata,
    the kernel's language_info) and joins consecutive stream outputs into one, as a terminal shows them."""
    notebook.metadata.pop("language_info", None)
    for cell in notebook.cells:
        cell.metadata = {}
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        cell.outputs = joined_streams(cell.outputs)
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = None
            if "metadata" in output:
                output.metadata = {}


def joined_streams(outputs: list) -> list:
    """Consecutive stream outputs of the same name as one, each line as a terminal leaves it after carriage returns."""
    joined = []
    for output in outputs:
        if joined and output.output_type == "stream" and joined[-1].output_type == "stream" \
                and joined[-1].name == output.name:
            joined[-1].text += output.text
        else:
            joined.append(output)
    for output in joined:
        if output.output_type == "stream":
            output.text = "\n".join(line.rsplit("\r", 1)[-1] for line in output.text.split("\n"))
    return joined


def add_static_figures(notebook: nbformat.NotebookNode) -> int:
    """Adds a PNG beside every plotly figure (kaleido, needs a Chromium); returns how many."""
    import warnings

    import kaleido
    import plotly.io as pio

    figures = [output for cell in notebook.cells for output in cell.get("outputs", [])
               if PLOTLY_MIME in output.get("data", {})]
    if not figures:
        return 0
    kaleido.start_sync_server(silence_warnings=True)
    try:
        for output in figures:
            figure = pio.from_json(json.dumps(output.data[PLOTLY_MIME]))
            width, height = figure.layout.width or 900, figure.layout.height or 450
            with warnings.catch_warnings():  # plotly warns that the running server ignores its per-call options
                warnings.simplefilter("ignore", UserWarning)
                png = pio.to_image(figure, format="png", width=width, height=height)
            output.data["image/png"] = base64.b64encode(palette_png(png)).decode("ascii")
    finally:
        kaleido.stop_sync_server()
    return len(figures)


def palette_png(png: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=PNG_COLORS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def machine() -> str:
    """The machine in words, e.g. '2-core Intel(R) Xeon(R) CPU @ 2.20GHz, Linux'."""
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    return f"{os.cpu_count()}-core {model or 'CPU'}, {platform.system()}"
