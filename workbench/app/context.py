"""What every tab of the app shares: where runs and exports live, the default pair, and the loaded-model pool."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from workbench.app.i18n import localize, tr
from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT

# where a person types a prompt: the built-in pair read and write English only
ENGLISH_ONLY = ("The built-in models learned English only: they answer in English, and a prompt in another language "
                "(Korean too) gets a garbled answer.")


def user_error(message: object, lang: str = "en") -> gr.Error:
    """The error to raise for something the user can fix: shown in the page in `lang` (for a library error that
    carries a translatable Message), and one line in English in the app's log instead of gradio's traceback."""
    print(f"workbench app: {(str(message).splitlines() or ['error'])[0]}", file=sys.stderr, flush=True)
    return gr.Error(localize(message, lang), title=tr("Error", lang), print_exception=False)


def new_model_pool(device: str | None = None) -> Any:
    """The app's model pool; exported GGUF / ONNX folders load in their own runtime, so a chat column can hold the
    model a phone would run."""
    from workbench.analysis.artefacts import is_artefact, load_artefact
    from workbench.runs.pool import ModelPool

    return ModelPool(max_models=4, device=device, is_artefact=is_artefact,
                     load_artefact=lambda spec: load_artefact(spec)[:2])


@dataclass
class AppContext:
    """Settings of one app process. `pool` loads models lazily (nothing is loaded at startup)."""

    runs_dir: str = "runs"
    exports_dir: str = "exports"
    teacher: str = BUILTIN_TEACHER
    student: str = DEFAULT_STUDENT
    pool: Any = field(default_factory=new_model_pool)
    preview_cache: dict = field(default_factory=dict)
    initial_config: Any = None
