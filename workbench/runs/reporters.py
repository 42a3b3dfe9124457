"""Experiment trackers chosen by `train.report_to`, beside the run's own metrics.jsonl: accelerate's trackers.

    train.report_to=tensorboard            # event files under runs/<id>/tensorboard (tensorboard --logdir runs)
    train.report_to=tensorboard,wandb      # wandb, trackio and mlflow when they are installed

Each tracker is accelerate's own (`accelerate.tracking`); this module only says what it gets. Every numeric field of
a metrics row becomes the scalar `<kind>/<field>` (train/kd, eval/eval_kl, heal/mse_after) at the row's step; the
run's log lines go to TensorBoard as text; wandb, trackio and mlflow get the run's config as `section.key`
parameters. Each tracker's package is imported only when asked for; a missing one is a `UserError` naming the field.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from workbench.errors import Message, UserError
from workbench.runs.sinks import Row, Sink

_NOT_SCALARS = ("step", "time", "kind")
PROJECT = "kd-workbench"


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


def _parameters(config: dict[str, Any]) -> dict[str, Any]:
    """The config as flat `section.key` parameters; lists as text (what every tracker takes)."""
    return {f"{section}.{key}": value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
            for section, fields in config.items() for key, value in fields.items()}


def _tracker(name: str, run_dir: Path) -> Any:
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    tracker_class = LOGGER_TYPE_TO_CLASS[name]
    if name == "tensorboard":
        return tracker_class("tensorboard", run_dir)  # writes under run_dir/tensorboard
    if name == "mlflow":
        return tracker_class(experiment_name=PROJECT, run_name=run_dir.name)
    if name == "wandb":
        return tracker_class(PROJECT, name=run_dir.name, dir=str(run_dir))
    return tracker_class(PROJECT, name=run_dir.name)


class TrackerSink(Sink):
    """One of accelerate's trackers as a sink of the run's metrics rows (the main process only holds sinks)."""

    def __init__(self, name: str, run_dir: Path, config: dict[str, Any]) -> None:
        self.name, self.tracker = name, _tracker(name, run_dir)
        self.tracker.start()
        if name != "tensorboard":  # TensorBoard's hparams would add a second event folder beside the metrics
            self.tracker.store_init_configuration(_parameters(config))

    def emit(self, row: Row) -> None:
        self.tracker.log(scalars(row), step=int(row.get("step", 0)))

    def log(self, message: str) -> None:
        if self.name == "tensorboard":
            self.tracker.log({"log": message})

    def close(self) -> None:
        self.tracker.finish()


def report_sinks(names: list[str], run_dir: Path, config: dict[str, Any]) -> list[Sink]:
    """One sink per tracker named in `train.report_to`."""
    check_reporters(names)
    return [TrackerSink(name, run_dir, config) for name in names]
