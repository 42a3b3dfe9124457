"""Metrics sinks for experiment trackers, chosen by `train.report_to`, beside the run's own metrics.jsonl.

    train.report_to=tensorboard            # event files under runs/<id>/tensorboard (tensorboard --logdir runs)
    train.report_to=tensorboard,wandb      # wandb, trackio and mlflow when they are installed

Every numeric field of a metrics row becomes the scalar `<kind>/<field>` (train/kd, eval/eval_kl, heal/mse_after)
at the row's step. Each tracker is imported only when asked for; a missing one is a `UserError` naming the field.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from workbench.errors import Message, UserError
from workbench.runs.sinks import Row, Sink

_NOT_SCALARS = ("step", "time", "kind")


def scalars(row: Row, prefix: str | None = None) -> dict[str, float]:
    """{"<kind>/<field>": value} for the numeric fields of a metrics row; nested mappings (a multi-task eval row's
    `tasks`) give "<kind>/tasks/<task>/<field>"."""
    prefix = prefix or row.get("kind", "metrics")
    out = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(scalars(value, f"{prefix}/{key}"))
        elif key not in _NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}/{key}"] = float(value)
    return out


def check_reporters(names: list[str]) -> None:
    """Refuse a tracker whose package is not installed, before anything runs (each package has its tracker's name)."""
    for name in names:
        if importlib.util.find_spec(name) is None:
            raise UserError(Message("train.report_to: {name} is not installed; pip install {name} or remove it "
                                    "from train.report_to", name=name))


class TensorBoardSink(Sink):
    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def emit(self, row: Row) -> None:
        for tag, value in scalars(row).items():
            self.writer.add_scalar(tag, value, global_step=int(row.get("step", 0)), walltime=row.get("time"))
        self.writer.flush()

    def log(self, message: str) -> None:
        self.writer.add_text("log", message)

    def close(self) -> None:
        self.writer.close()


class TrackerSink(Sink):
    """wandb and trackio share one API (init, log with a step, finish); mlflow is adapted to it."""

    def __init__(self, name: str, run_id: str, run_dir: Path, config: dict[str, Any]) -> None:
        self.name = name
        self.module = importlib.import_module(name)
        if name == "mlflow":
            self.module.start_run(run_name=run_id)
            self.module.log_params({f"{section}.{key}": value for section, fields in config.items()
                                    for key, value in fields.items()})
        elif name == "wandb":
            self.module.init(project="kd-workbench", name=run_id, dir=str(run_dir), config=config)
        else:
            self.module.init(project="kd-workbench", name=run_id, config=config)

    def emit(self, row: Row) -> None:
        values, step = scalars(row), int(row.get("step", 0))
        if self.name == "mlflow":
            self.module.log_metrics(values, step=step)
        else:
            self.module.log(values, step=step)

    def close(self) -> None:
        if self.name == "mlflow":
            self.module.end_run()
        else:
            self.module.finish()


def report_sinks(names: list[str], run_dir: Path, config: dict[str, Any]) -> list[Sink]:
    """One sink per tracker named in `train.report_to`."""
    check_reporters(names)
    return [TensorBoardSink(run_dir / "tensorboard") if name == "tensorboard"
            else TrackerSink(name, run_dir.name, run_dir, config) for name in names]
