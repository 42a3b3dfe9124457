"""Comparison (k): multi-task distillation against single-task training, four students at equal budget.

All four start from the `multitask` preset (its student, healing, divergence, lr, batch, rows and seed) and train for
the same steps and minutes; only the tasks and their loss weights differ:

* chat KD: the chat task alone, KD only (what the `chat` preset teaches);
* tasks CE: the classification and QA tasks alone, CE on their gold labels and answers only (fine-tuning: no teacher,
  so no healing either);
* tasks KD + CE: the two tasks alone with the preset's loss mix (CE on the gold answers plus KD on the teacher);
* mix: the preset itself (chat, half of the rows, and the two tasks).

Then every student, and the teacher, is scored alike on every task's held-out items (`workbench.engine.task_eval`:
accuracy for the classification task, token F1 and exact match for the QA task) and on the chat task's held-out
prompts (`workbench.engine.genquality`: reverse KL on the student's own answers, repeated 4-grams, empty answers).
The targets are the issue's: the mix within 2 points of the best single-task student on each task and within 0.1
nats/token of the chat-only student's reverse KL; reported as they come out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import BenchSettings, isolated, target
from workbench.config import DEFAULT_STUDENT

VARIANTS = {  # name: (tasks it trains on, per-task loss weights (ce, kd) or None for the preset's)
    "chat KD": (("chat",), None),
    "tasks CE": (("kind", "book"), (1.0, 0.0)),
    "tasks KD+CE": (("kind", "book"), None),
    "mix": (("chat", "kind", "book"), None),
}
TASK_SCORE = {"kind": "acc", "book": "f1"}  # the headline score of each task (a share, 0 to 1)
POINTS = 0.02  # "within 2 points" of the best single-task student
NATS = 0.1  # "within 0.1 nats/token" of the chat-only student
QUICK = {"data": {"seq_len": 64, "max_sequences": 60, "holdout_prompts": 4}, "task_holdout": 6}


def preset_dict(cfg: BenchSettings) -> dict[str, Any]:
    """The `multitask` preset as a dict, with the bench's pair and device (and tiny data in --quick)."""
    from workbench.config import load_preset

    data = load_preset("multitask").to_dict()
    # the preset's own student unless --student named another (the bench's default student is the `default` preset's)
    student = data["models"]["student"] if cfg.student == DEFAULT_STUDENT else cfg.student
    data["models"].update(teacher=cfg.teacher, student=student)
    data["train"].update(device=cfg.device, gen_eval=False)
    if cfg.quick:
        data["data"].update(QUICK["data"])
        for task in data["data"]["tasks"]:
            task["holdout"] = QUICK["task_holdout"]
        data["train"].update(heal_init=False, precision="fp32", eval_batches=1, warmup_steps=0)
    return data


def variant_config(cfg: BenchSettings, name: str, steps: int, minutes: float | None, runs_dir: Path):
    """The DistillConfig of one of the four students."""
    from workbench.config import DistillConfig

    data = preset_dict(cfg)
    names, weights = VARIANTS[name]
    tasks = [task for task in data["data"]["tasks"] if task["name"] in names]
    if weights is not None:
        for task in tasks:
            task["ce_weight"], task["kd_weight"] = weights
        data["train"]["heal_init"] = False  # healing fits the student to the teacher: distillation, not fine-tuning
    data["data"]["tasks"] = tasks
    data["train"].update(steps=steps, max_minutes=minutes, eval_every=steps, save_every=steps)
    data["run"].update(runs_dir=str(runs_dir), name=name.replace(" ", "-").replace("+", "-"))
    return DistillConfig.from_dict(data)


def score_model(model, teacher, tokenizer, tasks, chat_prompts: list, label: str) -> dict[str, Any]:
    """Every task's held-out score and the generation numbers on the held-out chat prompts (none for the teacher)."""
    from workbench.engine.genquality import generation_quality
    from workbench.engine.task_eval import held_out_scores

    numbers: dict[str, Any] = {task.config.name: held_out_scores(model, tokenizer, task) for task in tasks
                               if task.config.name in TASK_SCORE}
    if teacher is not None and chat_prompts:
        quality, _, _ = generation_quality(model, teacher, tokenizer, chat_prompts, label)
        numbers["chat"] = {key: round(value, 4) for key, value in quality.to_dict().items() if key.startswith("gen_")
                           and isinstance(value, float)}
    return numbers


def train_and_score(settings: dict[str, Any], steps: int, minutes: float | None) -> dict[str, Any]:
    """Trains the four students one after another, then scores them and the teacher on the same items."""
    import torch

    from workbench.config import DistillConfig
    from workbench.data.tasks import build_tasks
    from workbench.engine.trainer import train
    from workbench.models.loading import load_model, load_tokenizer

    cfg = BenchSettings.from_dict(settings)
    runs_dir = Path(cfg.work_dir) / "multitask"
    students = {}
    for name in VARIANTS:
        config = variant_config(cfg, name, steps, minutes, runs_dir)
        run_dir = runs_dir / config.run.name
        train(config, run_dir)
        students[name] = run_dir
    full = DistillConfig.from_dict(preset_dict(cfg))
    tokenizer = load_tokenizer(cfg.teacher)
    tasks = build_tasks(full.data, tokenizer, full.train.seed).tasks
    chat_prompts = [example.prompt_ids for task in tasks if task.config.name == "chat" for example in task.heldout]
    teacher = load_model(cfg.teacher).to(cfg.device).eval()
    label = f"{len(chat_prompts)} held-out prompts of the chat task"
    with torch.no_grad():
        scores = {"teacher": score_model(teacher, None, tokenizer, tasks, [], label)}
        for name, run_dir in students.items():
            model = load_model(str(run_dir / "student")).to(cfg.device).eval()
            scores[name] = score_model(model, teacher, tokenizer, tasks, chat_prompts, label)
            scores[name]["steps"] = _last_step(run_dir)
    items = {task.config.name: len(task.heldout) for task in tasks}
    return {"steps": steps, "minutes": minutes, "scores": scores, "held_out_items": items, "chat_on": label}


def _last_step(run_dir: Path) -> int | None:
    from workbench.runs.folder import RunFolder

    return RunFolder(run_dir).read_status().get("step")


def summarize(scores: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets from the four students' scores."""
    targets = []
    mix = scores["mix"]
    for task, key in TASK_SCORE.items():
        best = max(scores[name][task].get(key, 0.0) for name in ("tasks CE", "tasks KD+CE"))
        targets.append(target(f"(k) mix − best single-task student, {task} {key} (points)",
                              mix[task].get(key, 0.0) - best, -POINTS,
                              why="the mix spends half its rows on chat: fewer task rows at equal budget"))
    chat_only = scores["chat KD"]["chat"]["gen_rkl"]
    targets.append(target("(k) mix − chat-only student, reverse KL on held-out chat prompts (nats/token)",
                          mix["chat"]["gen_rkl"] - chat_only, NATS, at_most=True,
                          why="the mix spends half its rows on the two tasks: fewer chat rows at equal budget"))
    return targets


def run(settings: BenchSettings) -> dict[str, Any]:
    from workbench.config import load_preset

    preset = load_preset("multitask").train
    steps = 2 if settings.quick else preset.steps
    minutes = None if settings.quick else float(settings.extra.get("minutes") or preset.max_minutes)
    result = isolated(settings, __name__, "train_and_score", settings=settings.to_dict(), steps=steps,
                      minutes=minutes)
    if "error" in result:
        return {**result, "targets": []}
    return {**result, "targets": summarize(result["scores"])}
