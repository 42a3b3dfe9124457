"""A model's scores on the held-out items of the built-in tasks, beside what chance and a majority guess give.

    python -m workbench.engine.task_measure [MODEL_SPEC]   # default: the built-in teacher; prints JSON

The items are those a multi-task run holds out (data.seed 0); docs/multitask.md quotes the
built-in teacher's numbers.
"""

from __future__ import annotations

from collections import Counter

import torch

from workbench.config import DataConfig
from workbench.data.task_items import CHAT_KIND_LABELS
from workbench.data.tasks import build_task
from workbench.engine.task_eval import held_out_scores
from workbench.engine.task_scores import exact_match
from workbench.models.loading import load_model, load_tokenizer


def builtin_task_scores(spec: str, seed: int = 0) -> dict[str, dict]:
    """A model's scores on the held-out items of the built-in tasks (builtin:chat-kind, builtin:kjv-book), as a
    multi-task run with data.seed `seed` holds them out, with what chance gives on the same items."""
    tokenizer, model = load_tokenizer(spec), load_model(spec).eval()
    data = DataConfig(seed=seed, tasks=[
        {"name": "kind", "source": "builtin:chat-kind", "kind": "classify", "labels": CHAT_KIND_LABELS},
        {"name": "book", "source": "builtin:kjv-book", "kind": "qa"}])
    out = {}
    for config in data.tasks:
        task = build_task(config, data, tokenizer)
        with torch.no_grad():
            scores = held_out_scores(model, tokenizer, task)
        if config.kind == "classify":
            scores["chance"] = 1.0 / len(task.label_ids)
            scores["majority"] = Counter(task.gold).most_common(1)[0][1] / len(task.gold)
        else:  # the most common book of the training items, answered every time
            common = Counter(tokenizer.decode(e.answer_ids, skip_special_tokens=True).strip() for e in task.examples)
            guess = common.most_common(1)[0][0]
            gold = [tokenizer.decode(e.answer_ids, skip_special_tokens=True).strip() for e in task.heldout]
            scores["majority_em"] = sum(exact_match(guess, g) for g in gold) / len(gold)
        out[config.name] = {**scores, "items": len(task.heldout), "model": spec, "source": config.source}
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(builtin_task_scores(sys.argv[1] if len(sys.argv) > 1 else "builtin:smollm2-135m-instruct"),
                     indent=1))
