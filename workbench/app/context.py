"""What every tab of the app shares: where runs and exports live, the default pair, and the loaded-model pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT


def _new_pool() -> Any:
    from workbench.model_pool import ModelPool

    return ModelPool(max_models=4)


@dataclass
class AppContext:
    """Settings of one app process. `pool` loads models lazily (nothing is loaded at startup)."""

    runs_dir: str = "runs"
    exports_dir: str = "exports"
    teacher: str = BUILTIN_TEACHER
    student: str = DEFAULT_STUDENT
    pool: Any = field(default_factory=_new_pool)
    preview_cache: dict = field(default_factory=dict)
    initial_config: Any = None
