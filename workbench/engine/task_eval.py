"""Per-task evaluation of a multi-task run: one set of numbers per task in every eval row (`row["tasks"]`).

    {"kind": {"kind": "classify", "ppl": 3.1, "acc": 0.71, "teacher_acc": 0.74, "chance": 0.25, "items": 23},
     "book": {"kind": "qa", "ppl": 2.0, "em": 0.41, "f1": 0.55, "teacher_em": 0.6, "teacher_f1": 0.7, "items": 64},
     "chat": {"kind": "chat", "ppl": 9.8}}

Every task gets the student's perplexity on its validation rows (the tokens its loss is taken on); a classify task
adds accuracy on its held-out items, labels scored through the next-token distribution and calibrated on
content-free inputs (`acc`; `acc_raw` uncalibrated; `workbench.engine.task_scores`); a qa task adds exact match and token F1 of greedy answers. The teacher's scores
on the same items are computed once per run (the teacher does not change) and kept in `TrainingState.task_cache`.
"""

from __future__ import annotations

import torch

from workbench.data.tasks import TaskData
from workbench.engine.onpolicy import eos_ids, pad_id
from workbench.engine.scores import ce_sum, next_token_targets
from workbench.engine.task_scores import calibrated, exact_match, greedy_answers, label_log_probs, token_f1
from workbench.models.vocab import perplexity

QA_NEW_TOKENS = 16


def _task_ppl(model, task: TaskData, rows: int, batch: int, chunk_size: int | None) -> float:
    """Perplexity of `model` on the first `rows` validation rows of a task, on the tokens its loss is taken on."""
    device = next(model.parameters()).device
    ce, count = 0.0, 0
    for first in range(0, min(rows, task.val.shape[0]), batch):
        ids = task.val[first:first + batch]
        mask = task.val_mask[first:first + batch] if task.val_mask is not None else None
        targets = next_token_targets(ids, mask).to(device)
        ce += ce_sum(model(input_ids=ids.to(device), use_cache=False).logits, targets, chunk_size)
        count += int((targets != -100).sum())
    return perplexity(ce / max(count, 1))


def classify_accuracy(model, task: TaskData, pad: int) -> tuple[float, float]:
    """(calibrated, raw) share of held-out items whose gold label has the highest summed log-probability after the
    (whole) prompt; calibrated: less each label's mean score on the task's content-free prompts."""
    scores = label_log_probs(model, [e.prompt_ids for e in task.heldout], task.label_ids, pad)
    free = label_log_probs(model, task.content_free, task.label_ids, pad)
    gold = torch.tensor(task.gold)
    return tuple(float((s.argmax(1) == gold).double().mean()) for s in (calibrated(scores, free), scores))


def qa_scores(model, tokenizer, task: TaskData) -> tuple[float, float]:
    """(exact match, token F1) of greedy answers to the held-out items (whole prompts), against their gold answers."""
    answers = greedy_answers(model, [e.prompt_ids for e in task.heldout], eos_ids(model, tokenizer), pad_id(tokenizer), QA_NEW_TOKENS)
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True).strip()  # noqa: E731
    pairs = [(decode(a), decode(e.answer_ids)) for a, e in zip(answers, task.heldout, strict=True)]
    count = max(len(pairs), 1)
    return sum(exact_match(p, g) for p, g in pairs) / count, sum(token_f1(p, g) for p, g in pairs) / count


def held_out_scores(model, tokenizer, task: TaskData) -> dict[str, float]:
    """acc (classify) or em and f1 (qa) of `model` on a task's held-out items; {} for other kinds or none held out."""
    if not task.heldout:
        return {}
    if task.config.kind == "classify":
        return dict(zip(("acc", "acc_raw"), classify_accuracy(model, task, pad_id(tokenizer)), strict=True))
    if task.config.kind == "qa":
        return dict(zip(("em", "f1"), qa_scores(model, tokenizer, task), strict=True))
    return {}


@torch.no_grad()
def task_eval(student, teacher, tokenizer, tasks: list[TaskData], *, rows: int, batch: int, chunk_size: int | None,
              teacher_cache: dict) -> dict[str, dict]:
    """One dict of numbers per task (see the module docstring); the student is put in eval mode and back."""
    was_training = student.training
    student.eval()
    try:
        out = {}
        for task in tasks:
            name = task.config.name
            scores = {"kind": task.config.kind, "ppl": _task_ppl(student, task, rows, batch, chunk_size),
                      **held_out_scores(student, tokenizer, task)}
            if len(scores) > 2:
                scores["items"] = len(task.heldout)
            if task.config.kind == "classify":
                scores["chance"] = 1.0 / len(task.label_ids)
            if teacher is not None and name not in teacher_cache:
                teacher_cache[name] = held_out_scores(teacher, tokenizer, task)
            scores.update({f"teacher_{k}": v for k, v in teacher_cache.get(name, {}).items()})
            out[name] = scores
        return out
    finally:
        student.train(was_training)

