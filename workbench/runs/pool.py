"""Loaded models shared by the app's chat, attention and report tabs: a small thread-safe LRU cache.

    pool = ModelPool(max_models=4)
    model, tokenizer = pool.get("runs/run-1")                        # a run folder: its final student
    model, tokenizer = pool.get("runs/run-1/checkpoints/step-50")    # a checkpoint's student weights
    model, tokenizer = pool.get(BUILTIN_TEACHER, attn_implementation="eager")

Besides model specs (`workbench.models.loading`), `get` accepts a run folder (its `student/`, else its latest complete
checkpoint) and a checkpoint folder (the trainer's `state.pt` loaded over the run's starting student, LoRA weights
merged). Entries are keyed by the resolved location, the weights' modification time and the load options, so a
student rewritten in place is loaded afresh. A model evicted while a thread still uses
it stays alive until that thread lets go of it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.errors import UserError
from workbench.runs.folder import RunFolder, run_of

WEIGHT_SUFFIXES = (".safetensors", ".bin")
# from_pretrained patches process-wide state while it builds a model (meta-device init), so two loads in two
# threads can corrupt each other: loads run one at a time; generation on loaded models runs in parallel.
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class ResolvedSpec:
    """What to load for a spec: a model spec or folder, and optionally a checkpoint's weights to load over it."""

    load_spec: str
    label: str = ""
    checkpoint_state: str | None = None  # a trainer checkpoint's state.pt, loaded over `load_spec`
    run_config: str | None = None  # the run's config.yaml (says whether the checkpoint holds LoRA weights)

    @property
    def stamp_path(self) -> str:
        return self.checkpoint_state or self.load_spec


def _has_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir())


def _is_run(folder: Path) -> bool:
    return (folder / "config.yaml").is_file() and not (folder / "config.json").is_file()


def _run_of_checkpoint(checkpoint: Path) -> Path | None:
    run = run_of(checkpoint) if checkpoint.parent.name == "checkpoints" else None
    return run.path if run is not None else None


def _base_student_spec(run_dir: Path) -> str:
    from workbench.config import DistillConfig

    return DistillConfig.load(run_dir / "config.yaml").models.student


def starting_student(spec: str, default_student: str) -> str:
    """The student a run started from (its config's `models.student`) when `spec` is a run folder, the run's
    student/ folder or one of its checkpoints; `default_student` for any other spec."""
    spec = str(spec or "").strip()
    path = Path(spec).expanduser()
    if not spec or "?" in spec or not path.is_dir():
        return default_student
    if _is_run(path):
        return _base_student_spec(path)
    if path.name == "student" and _is_run(path.parent):
        return _base_student_spec(path.parent)
    run = _run_of_checkpoint(path)
    return _base_student_spec(run) if run is not None else default_student


def resolve_checkpoint(checkpoint: Path) -> ResolvedSpec:
    """The student weights of a checkpoint folder: the trainer's `state.pt` (trained weights over the run's starting
    student; LoRA weights are merged when loaded), or a checkpoint saved as a model folder."""
    run = _run_of_checkpoint(checkpoint)
    if (checkpoint / "state.pt").is_file() and run is not None:
        return ResolvedSpec(_base_student_spec(run), label=str(checkpoint),
                            checkpoint_state=str((checkpoint / "state.pt").resolve()),
                            run_config=str((run / "config.yaml").resolve()))
    if _has_model(checkpoint):
        return ResolvedSpec(str(checkpoint.resolve()), label=str(checkpoint))
    raise UserError(f"checkpoint {str(checkpoint)!r} has no student weights (state.pt inside a run, or a model folder)")


def resolve_spec(spec: str) -> ResolvedSpec:
    """Turn a run folder or checkpoint path into the student it holds; other specs pass through unchanged."""
    spec = str(spec).strip()
    if not spec:
        raise UserError("model spec is empty; give builtin:NAME, a model folder, a run folder or a checkpoint folder")
    path = Path(spec).expanduser()
    if "?" in spec or not path.is_dir():
        return ResolvedSpec(spec, label=spec)
    if _is_run(path):
        run = RunFolder(path)
        if run.student_dir.is_dir() and _has_model(run.student_dir):
            return ResolvedSpec(str(run.student_dir.resolve()), label=spec)
        latest = run.latest_checkpoint()
        if latest is None:
            raise UserError(f"run {path.name!r} has no student yet (no student/ folder and no complete checkpoint)")
        return resolve_checkpoint(latest)
    if (path / "COMPLETE").exists() or _run_of_checkpoint(path) is not None:
        return resolve_checkpoint(path)
    return ResolvedSpec(str(path.resolve()), label=spec)


def _weights_stamp(location: str) -> float:
    folder = Path(location)
    if folder.is_file():
        return folder.stat().st_mtime
    if not folder.is_dir():
        return 0.0
    stamps = [p.stat().st_mtime for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES or p.name == "config.json"]
    return max(stamps, default=0.0)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_resolved(resolved: ResolvedSpec, *, device: str, dtype: torch.dtype, attn_implementation: str | None):
    """Load the model and tokenizer of a resolved spec; checkpoint LoRA weights are merged: the result is a plain model."""
    from workbench.models.loading import load_model, load_tokenizer

    with _LOAD_LOCK:
        model = load_model(resolved.load_spec, dtype=dtype, device=device, attn_implementation=attn_implementation)
        if resolved.checkpoint_state:
            model = _apply_checkpoint_state(model, resolved)
        tokenizer_source = resolved.load_spec
        return model, load_tokenizer(tokenizer_source)


def _apply_checkpoint_state(model, resolved: ResolvedSpec):
    """Load a trainer checkpoint's weights into the starting student; LoRA weights are merged into it."""
    from workbench.config import DistillConfig

    state = torch.load(resolved.checkpoint_state, map_location="cpu", weights_only=True)["model"]
    cfg = DistillConfig.load(resolved.run_config)
    if not cfg.lora.enabled:
        model.load_state_dict(state, strict=True)
        return model.eval()
    from workbench.models.lora import wrap_lora

    model = wrap_lora(model, cfg.lora)
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise UserError(f"checkpoint {resolved.label!r} does not fit the run's LoRA student: "
                        f"unexpected weights such as {result.unexpected_keys[0]}")
    return model.merge_and_unload().eval()


class ModelPool:
    """Thread-safe LRU of (model, tokenizer) pairs; at most `max_models` stay loaded."""

    def __init__(self, max_models: int = 4, *, device: str | None = None, dtype: torch.dtype | None = None,
                 is_artefact: Callable[[str], bool] | None = None,
                 load_artefact: Callable[[str], tuple[Any, Any]] | None = None):
        """`is_artefact` / `load_artefact`: how to recognise and load specs this layer knows nothing about (the
        app passes the exported GGUF / ONNX folders of workbench.analysis.artefacts); they run on their runtime's
        device, whatever `device` says."""
        if max_models < 1:
            raise UserError(f"max_models must be >= 1, got {max_models}")
        self.max_models = max_models
        self.device = device or default_device()
        self.dtype = dtype or torch.float32
        self.is_artefact, self.load_artefact = is_artefact, load_artefact
        self._entries: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()
        self._loading: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def _key(self, resolved: ResolvedSpec, attn_implementation: str | None) -> tuple:
        stamp = _weights_stamp(resolved.stamp_path)
        return (resolved.load_spec, resolved.checkpoint_state, stamp, attn_implementation, self.device, str(self.dtype))

    def get(self, spec: str, *, attn_implementation: str | None = None) -> tuple[Any, Any]:
        """The loaded (model, tokenizer) for `spec`, loading it (once, even when asked from several threads)."""
        if self.is_artefact is not None and self.load_artefact is not None and self.is_artefact(spec):
            folder = str(Path(spec).expanduser().resolve())
            stamp = max((p.stat().st_mtime for p in Path(folder).iterdir()), default=0.0)  # a re-export reloads
            return self._cached((folder, None, stamp, None, "artefact"), lambda: self.load_artefact(folder))
        resolved = resolve_spec(spec)
        return self._cached(self._key(resolved, attn_implementation), lambda: load_resolved(
            resolved, device=self.device, dtype=self.dtype, attn_implementation=attn_implementation))

    def _cached(self, key: tuple, load: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key]
            loaded = load()
            with self._lock:
                self._entries[key] = loaded
                self._loading.pop(key, None)
                while len(self._entries) > self.max_models:
                    self._entries.popitem(last=False)
            return loaded

    def loaded(self) -> list[str]:
        """Labels of the models held now, least recently used first."""
        with self._lock:
            return [f"{k[0]} (exported artefact)" if k[-1] == "artefact" else
                    f"{k[1] or k[0]} ({k[3] or 'default'} attention)" for k in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def training_active(runs_dir: str | Path | None) -> bool:
    """True when a run under `runs_dir` is queued, running or stopping (its process shares this machine)."""
    from workbench.runs.folder import ACTIVE_STATES, list_runs

    return bool(runs_dir) and any(run.read_status().get("state") in ACTIVE_STATES for run in list_runs(runs_dir))


def limit_app_threads(runs_dir: str | Path | None = None) -> int:
    """Set this process's torch threads for inference: half the cores while a run trains beside it (so both make
    progress and the run is not starved), all cores otherwise. The training process keeps its own setting."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // 2) if training_active(runs_dir) else cores
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


LATEST = "latest"
LATEST_LABEL = "Latest finished run's student (the default student if none)"


def latest_finished_run(runs_dir: str | Path) -> RunFolder | None:
    """The newest run whose state is finished and that has a final student."""
    from workbench.runs.folder import list_runs

    for run in list_runs(runs_dir):
        if run.read_status().get("state") == "finished" and run.student_dir.is_dir() and _has_model(run.student_dir):
            return run
    return None


def resolve_choice(value: str | None, runs_dir: str | Path, default_student: str) -> str:
    """A picker value as a spec: 'latest' (or empty) becomes the latest finished run, else the default student."""
    value = (value or "").strip()
    if value in ("", LATEST):
        run = latest_finished_run(runs_dir)
        return str(run.path) if run else default_student
    return value


def student_choices(runs_dir: str | Path, undistilled: str | None = None,
                    text: Callable[[str], Any] = str) -> list[tuple[str, str]]:
    """(label, spec) pairs for pickers: the latest-run shortcut, the undistilled student, every run's final student
    and each of its complete checkpoints, newest run first. `text` translates the words of a label (the app's
    browser-side translation); run, checkpoint and model names stay as they are."""
    from workbench.runs.folder import list_runs

    choices = [(text(LATEST_LABEL), LATEST)]
    if undistilled:
        choices.append((text("undistilled:") + f" {undistilled}", undistilled))
    for run in list_runs(runs_dir):
        state = run.read_status().get("state", "?")
        if run.student_dir.is_dir() and _has_model(run.student_dir):
            choices.append((f"{run.run_id} · " + text(f"final student ({state})"), str(run.path)))
        for checkpoint in reversed(run.checkpoints()):
            choices.append((f"{run.run_id} · {checkpoint.name}", str(checkpoint)))
    return choices
