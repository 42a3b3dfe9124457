"""`workbench train`: distil a student into a new run folder, a prepared one, or resume a stopped one.

    workbench train --preset quick                                   # new run under runs/, prints its folder
    workbench train --config run.yaml loss.temperature=2 train.steps=500
    workbench train --run-dir runs/my-run                            # a folder prepared by the app (queued)
    workbench train --resume runs/my-run                             # continue exactly where it stopped
    accelerate launch --num_processes 2 -m workbench train --config run.yaml run.name=two-procs

A progress bar (stderr) shows step, loss terms, tokens/s and ETA; log lines also go to the run's run.log.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from workbench.config import DistillConfig, apply_overrides, field_reference, load_preset, preset_names
from workbench.errors import UserError
from workbench.runs.folder import RunFolder, checkpoint_step, new_run_id
from workbench.runs.sinks import ProgressSink


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="Distil a teacher into a student (new run, prepared run folder, or --resume).",
        description=__doc__,
        epilog=field_reference(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None, help="Run config YAML.")
    parser.add_argument("--preset", default=None, help=f"Start from a preset: {', '.join(preset_names())}.")
    parser.add_argument("--run-dir", default=None, help="Train a prepared run folder (config.yaml + queued status).")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="Resume a run from its last checkpoint.")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. loss.temperature=2.")
    parser.set_defaults(func=run)


def resolve_config(config: str | None, preset: str | None, overrides: list[str]) -> DistillConfig:
    if config and preset:
        raise UserError("pass either --config or --preset, not both")
    cfg = DistillConfig.load(config) if config else load_preset(preset) if preset else DistillConfig()
    return apply_overrides(cfg, list(overrides))


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def _prepare_new_run(cfg: DistillConfig) -> RunFolder:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not cfg.run.name:
        raise UserError("run.name is required with several processes (all must write the same run folder)")
    run = RunFolder(Path(cfg.run.runs_dir) / new_run_id(cfg.run.name))
    if _is_main_process():
        if run.status_path.exists():
            raise UserError(f"run.name: {run.path} already exists; pick another name or use --resume {run.path}")
        run.path.mkdir(parents=True, exist_ok=True)
        cfg.save(run.config_path)
        run.update_status(state="queued", created=time.time(), pid=os.getpid(), step=0,
                          total_steps=cfg.train.steps)
    return run


def _stdout_is(path: Path) -> bool:
    try:
        return path.exists() and os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(path))
    except (OSError, ValueError):
        return False


def run(args) -> int:
    from workbench.engine.preflight import preflight
    from workbench.engine.step import NonFiniteLoss
    from workbench.engine.trainer import train

    chosen = [name for name in ("run_dir", "resume") if getattr(args, name)]
    if len(chosen) > 1 or (chosen and (args.config or args.preset)):
        raise UserError("use one of: --config/--preset (new run), --run-dir DIR, --resume DIR")
    if chosen:
        run_folder = RunFolder(Path(getattr(args, chosen[0])))
        if not run_folder.config_path.is_file():
            raise UserError(f"{run_folder.path} is not a run folder (no config.yaml)")
        cfg = apply_overrides(DistillConfig.load(run_folder.config_path), list(args.overrides))
        if args.overrides:
            preflight(cfg, run_folder.path.parent, new_run=False)
    else:
        cfg = resolve_config(args.config, args.preset, args.overrides)
        preflight(cfg, new_run=_is_main_process())  # before any run folder exists; rank 0 creates it
        run_folder = _prepare_new_run(cfg)
    main = _is_main_process()
    if main:
        print(run_folder.path, flush=True)
        if cfg.models.trust_remote_code:
            print("workbench train: warning: models.trust_remote_code is on; code shipped with the models will run",
                  file=sys.stderr, flush=True)
    latest = run_folder.latest_checkpoint() if args.resume else None
    initial = checkpoint_step(latest) if latest else 0
    sink = None
    if main:
        log_file = None if _stdout_is(run_folder.log_path) else run_folder.log_path
        sink = ProgressSink(total=cfg.train.steps, initial=initial, log_file=log_file)
    try:
        result = train(cfg, run_folder.path, sink, resume=bool(args.resume))
    except NonFiniteLoss as exc:
        print(f"workbench train: error: {exc}", file=sys.stderr)
        return 1
    if main:
        print(f"{result['state']} at step {result['step']}: {run_folder.path}", flush=True)
    return 0
