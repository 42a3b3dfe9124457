"""`workbench sweep`: train a list of students with one recipe and one budget, then draw their frontier.

    workbench sweep --builtin width --preset chat                      # 4 width-pruned students of the teacher
    workbench sweep --builtin depth --preset chat train.steps=30 --jobs 2
    workbench sweep --name mine --students "builtin:smollm2-135m-instruct?prune=importance&mlp=510" \\
        "builtin:smollm2-135m-instruct?prune=importance&layers=15" --preset chat
    workbench sweep --name mine --score-only                           # score again what has finished

The sweep lives in runs/<name>/ (sweep.json, recipe.yaml, one ordinary run folder per student, frontier.json and
frontier.html). Running the same command again reuses finished students and resumes a stopped or killed one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.config import BUILTIN_TEACHER
from workbench.errors import UserError
from workbench.runs.sweep import BUILTIN_SWEEPS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="Train several students with one recipe, score them and the teacher alike, draw the frontier.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--builtin", choices=tuple(BUILTIN_SWEEPS), default=None,
                        help="A built-in list of students of the teacher at about 0.8, 0.63, 0.5 and 0.37 of its "
                             "non-embedding parameters: depth only, width only, or both.")
    parser.add_argument("--students", nargs="+", default=None, help="Student specs (instead of --builtin).")
    parser.add_argument("--name", default=None, help="Sweep folder name under run.runs_dir (default: the --builtin "
                                                     "kind, else 'sweep').")
    parser.add_argument("--config", default=None, help="Recipe YAML (models.student is replaced by each student).")
    parser.add_argument("--preset", default=None, help="Start the recipe from a preset (e.g. chat).")
    parser.add_argument("--jobs", type=int, default=1, help="Students trained at once (separate processes).")
    parser.add_argument("--score-only", action="store_true", help="Do not train; score the finished students.")
    parser.add_argument("--no-score", action="store_true", help="Train only; score later with --score-only.")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides of the recipe, e.g. train.steps=30.")
    parser.set_defaults(func=run)


def run(args) -> int:
    from workbench.analysis.frontier import format_frontier, frontier_figure, score_sweep
    from workbench.commands.train import resolve_config
    from workbench.runs.sweep import builtin_students, create_sweep, load_sweep, train_sweep

    name = args.name or args.builtin or "sweep"
    recipe = resolve_config(args.config, args.preset, args.overrides)
    runs_dir = Path(recipe.run.runs_dir)
    if args.score_only and not (args.builtin or args.students):
        path = load_sweep(runs_dir / name).path
    else:
        if bool(args.builtin) == bool(args.students):
            raise UserError("sweep: give either --builtin KIND or --students SPEC ...")
        teacher = recipe.models.teacher or BUILTIN_TEACHER
        students = builtin_students(args.builtin, teacher) if args.builtin else list(args.students)
        path = create_sweep(runs_dir, name, recipe, students).path
    print(path, flush=True)
    if not args.score_only:
        states = train_sweep(path, jobs=args.jobs, log=lambda line: print(line, flush=True))
        failed = {slug: state for slug, state in states.items() if state != "finished"}
        if failed:
            print(f"workbench sweep: not finished: {failed}; run the same command again to resume", flush=True)
    if args.no_score:
        return 0
    frontier = score_sweep(path, log=lambda line: print(line, flush=True))
    frontier_figure(frontier).write_html(path / "frontier.html", include_plotlyjs=True)
    print(format_frontier(frontier), flush=True)
    print(f"frontier: {path / 'frontier.json'} and {path / 'frontier.html'}", flush=True)
    return 0
