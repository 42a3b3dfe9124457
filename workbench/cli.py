"""Command line: `workbench <command> ...`; each command lives in `workbench/commands/<name>.py`.

A command module defines `register(subparsers)` (adds its parser, sets `func`) and keeps the work in library
functions. A `UserError`/`ValueError` raised anywhere prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = ("inspect", "train", "eval", "cache_teacher", "generate_data", "train_tokenizer", "export", "app", "bench",
            "sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="KD Workbench: distil a teacher LM into a student.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"workbench.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        if os.environ.get("WORKBENCH_TRACEBACK"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"workbench {args.command.replace('_', '-')}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
