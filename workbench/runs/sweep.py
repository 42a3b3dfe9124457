"""A compression sweep: one recipe and one budget, a list of students, each trained as an ordinary run folder.

    plan = create_sweep("runs", "width", recipe_cfg, students=builtin_students("width", teacher))
    train_sweep(plan.path, jobs=1)     # trains what is missing, resumes what stopped, reuses what finished

The sweep folder `<runs_dir>/<name>/` holds `sweep.json` (the recipe, the budget and the students) and one run
folder per student, named by its slug (`layers24-mlp760`). Each student trains in its own `python -m workbench
train` process, so a crash or a kill loses at most the steps since its last checkpoint: running the sweep again
resumes that student and keeps the finished ones. With `jobs` > 1 several students train at once, each holding a
device slot of its own (`KD_WORKBENCH_DEVICE_SLOT`) instead of queueing on the one device lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.config import DistillConfig
from workbench.errors import Message, UserError
from workbench.models.derive import parse_spec
from workbench.runs.folder import RunFolder, atomic_write_text, pid_alive

SWEEP_FILE = "sweep.json"
RECIPE_FILE = "recipe.yaml"

# Students of the built-in teacher (30 layers, MLP 1536, 9 heads in 3 key/value groups, hidden 576; 106.2 M
# non-embedding parameters) at about 0.8, 0.63, 0.5 and 0.37 of its non-embedding parameters (each at most that
# share): whole layers only, width only (MLP channels, then heads), and both.
BUILTIN_SWEEPS = {
    "depth": ("prune=importance&layers=24", "prune=importance&layers=19", "prune=importance&layers=15",
              "prune=importance&layers=11"),
    "width": ("prune=importance&mlp=1120", "prune=importance&mlp=784", "prune=importance&mlp=510",
              "prune=importance&mlp=416&heads=6"),
    "both": ("prune=importance&layers=27&mlp=1304", "prune=importance&layers=24&mlp=1104",
             "prune=importance&layers=24&mlp=760", "prune=importance&layers=20&mlp=608"),
}


@dataclass(frozen=True)
class SweepStudent:
    slug: str
    spec: str


@dataclass(frozen=True)
class SweepPlan:
    path: Path
    recipe: DistillConfig
    students: tuple[SweepStudent, ...]

    @property
    def name(self) -> str:
        return self.path.name

    def run_dir(self, student: SweepStudent) -> Path:
        return self.path / student.slug


def builtin_students(kind: str, teacher: str) -> list[str]:
    if kind not in BUILTIN_SWEEPS:
        raise UserError(Message("sweep --builtin must be one of {kinds}, got {kind!r}", kinds=", ".join(BUILTIN_SWEEPS),
                                kind=kind))
    return [f"{teacher}?{query}" for query in BUILTIN_SWEEPS[kind]]


def student_slug(spec: str) -> str:
    """A folder name that says what a student keeps: `layers24-mlp760`, `keep0-2,6-29`, `fresh-layers4-hidden256`."""
    parsed = parse_spec(spec)
    if parsed.derivation is None:
        return "base"
    parts = ["fresh"] if parsed.derivation == "fresh" else [] if parsed.method == "importance" else [parsed.method]
    parts += [f"{key}{value}" for key, value in parsed.params.items()]
    return "-".join(parts).replace("/", "_").replace(",", "_")


def create_sweep(runs_dir: str | Path, name: str, recipe: DistillConfig, students: list[str]) -> SweepPlan:
    """Write (or find again) the sweep folder; an existing sweep of that name must have the same recipe and
    students, so that rerunning a command resumes it rather than mixing two sweeps."""
    if not name or "/" in name or name.startswith("."):
        raise UserError(Message("sweep --name must be a plain folder name, got {name!r}", name=name))
    if not students:
        raise UserError(Message("a sweep needs at least one student spec"))
    slugs = [student_slug(spec) for spec in students]
    if len(set(slugs)) != len(slugs):
        raise UserError(Message("sweep students must differ; got {students}", students=", ".join(students)))
    path = Path(runs_dir) / name
    recipe_dict = recipe.to_dict()
    recipe_dict["models"]["student"] = None
    recipe_dict["run"]["name"] = None
    wanted = {"recipe": recipe_dict, "students": [{"slug": s, "spec": p} for s, p in zip(slugs, students, strict=True)]}
    sweep_file = path / SWEEP_FILE
    if sweep_file.is_file():
        found = json.loads(sweep_file.read_text())
        if {k: found.get(k) for k in wanted} != wanted:
            raise UserError(Message("sweep {path!r} exists with another recipe or other students; choose another "
                                    "--name, or rerun it with the same settings to resume it", path=str(path)))
    else:
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_file, json.dumps({**wanted, "created": time.time()}, indent=1))
    recipe.save(path / RECIPE_FILE)
    return load_sweep(path)


def load_sweep(path: str | Path) -> SweepPlan:
    path = Path(path)
    sweep_file = path / SWEEP_FILE
    if not sweep_file.is_file():
        raise UserError(Message("{path!r} is not a sweep folder (no sweep.json)", path=str(path)))
    found = json.loads(sweep_file.read_text())
    recipe = DistillConfig.load(path / RECIPE_FILE)
    return SweepPlan(path, recipe, tuple(SweepStudent(s["slug"], s["spec"]) for s in found["students"]))


def list_sweeps(runs_dir: str | Path) -> list[Path]:
    """Sweep folders under `runs_dir`, newest first."""
    root = Path(runs_dir)
    found = [p.parent for p in root.glob(f"*/{SWEEP_FILE}")] if root.is_dir() else []
    return sorted(found, key=lambda p: (p / SWEEP_FILE).stat().st_mtime, reverse=True)


def student_state(plan: SweepPlan, student: SweepStudent) -> str:
    """missing, finished, running, or resumable (stopped, failed or killed with a checkpoint to go on from)."""
    run = RunFolder(plan.run_dir(student))
    if not run.config_path.is_file():
        return "missing"
    state = run.read_status().get("state")
    if state == "finished":
        return "finished"
    if state in ("running", "stopping", "queued") and not run.read_status().get("stale") and _alive(run):
        return "running"
    return "resumable" if run.latest_checkpoint() else "restart"


def _alive(run: RunFolder) -> bool:
    return pid_alive(run.read_status().get("pid"))


def _command(plan: SweepPlan, student: SweepStudent, state: str) -> list[str]:
    base = [sys.executable, "-m", "workbench", "train"]
    if state == "resumable":
        return [*base, "--resume", str(plan.run_dir(student))]
    return [*base, "--config", str(plan.path / RECIPE_FILE), f"models.student={student.spec}",
            f"run.runs_dir={plan.path}", f"run.name={student.slug}"]


def child_env(slot: int, jobs: int, environ: dict[str, str] | None = None, cores: int | None = None
              ) -> dict[str, str]:
    """The environment of one student's training process: with several jobs, a device slot of its own and an equal
    share of the CPU cores for its threads (unless OMP_NUM_THREADS is set already), so the jobs do not oversubscribe
    the cores and each student sees the same machine."""
    env = dict(os.environ if environ is None else environ)
    env["KD_WORKBENCH_DEVICE_SLOT"] = str(slot) if jobs > 1 else ""
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (cores or os.cpu_count() or 1) // jobs))
    return env


def train_sweep(path: str | Path, *, jobs: int = 1, log=print) -> dict[str, str]:
    """Train every student of the sweep that has not finished, `jobs` at a time; returns {slug: final state}."""
    plan = load_sweep(path)
    if jobs < 1:
        raise UserError(Message("sweep --jobs must be at least 1, got {jobs}", jobs=jobs))
    pending = []
    for student in plan.students:
        state = student_state(plan, student)
        if state == "finished":
            log(f"sweep {plan.name}: {student.slug} finished before; reused")
        elif state == "running":
            raise UserError(Message("sweep {name}: {slug} is training in another process; wait for it or stop it",
                                    name=plan.name, slug=student.slug))
        else:
            pending.append((student, state))
    running: dict[int, tuple[SweepStudent, subprocess.Popen]] = {}
    total = len(plan.students)
    while pending or running:
        free = [slot for slot in range(jobs) if slot not in running]
        while pending and free:
            student, state = pending.pop(0)
            slot = free.pop(0)
            if state == "restart":  # killed before its first checkpoint: nothing to resume from
                shutil.rmtree(plan.run_dir(student))
            done = sum(student_state(plan, s) == "finished" for s in plan.students)
            log(f"sweep {plan.name}: training {student.slug} ({done + 1 + len(running)}/{total}, "
                f"{'resumed' if state == 'resumable' else 'new'}): {student.spec}")
            env = child_env(slot, jobs)
            with open(plan.path / f"{student.slug}.log", "ab") as out:
                running[slot] = (student, subprocess.Popen(_command(plan, student, state), stdout=out,
                                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                           env=env))
        for slot, (student, process) in list(running.items()):
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            del running[slot]
            log(f"sweep {plan.name}: {student.slug} ended ({student_state(plan, student)})")
    return {s.slug: RunFolder(plan.run_dir(s)).read_status().get("state", "missing") for s in plan.students}
