"""Shared by the app tests: a tiny-model config, a launched app on a free port, polling helpers."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

from workbench.config import DistillConfig


def tiny_config(teacher: Path, student: Path, data: Path, steps: int = 6, **train) -> DistillConfig:
    cfg = DistillConfig()
    cfg.models.teacher, cfg.models.student, cfg.data.dataset = str(teacher), str(student), str(data)
    cfg.data.seq_len = 16
    cfg.loss.temperature = 2.0
    settings = {"steps": steps, "batch_size": 2, "eval_every": 3, "save_every": 3, "warmup_steps": 0,
                "eval_batches": 2, "device": "cpu", **train}
    for key, value in settings.items():
        setattr(cfg.train, key, value)
    return cfg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def launched_app(root: Path, teacher: Path, student: Path, config: DistillConfig | None = None):
    """Build and serve the whole app on a free loopback port with the production launch options."""
    from workbench.app import build_app
    from workbench.commands.app import launch_options
    from workbench.runs.pool import ModelPool

    runs, exports = root / "runs", root / "exports"
    demo = build_app(runs_dir=str(runs), exports_dir=str(exports), teacher=str(teacher), student=str(student),
                     pool=ModelPool(max_models=4, device="cpu"), config=config)
    options = launch_options("127.0.0.1", free_port(), None, False, str(runs), str(exports))
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **options)
    try:
        yield demo
    finally:
        demo.close()


