"""Multi-task data: each task of `data.tasks` packed on its own, and a seeded mixture that fills each batch by weight.

    tasks = build_tasks(data_cfg, tokenizer)          # TaskSet: every task's rows side by side, one row tensor
    rows, task_ids = tasks.rows.indices(step, start, count, global_batch)

Every task's rows are packed like `data.dataset`'s (`workbench.data.splits`) at the same `data.seq_len`, then
concatenated, so a batch is a plain [B, L] tensor whose rows each belong to one task (`row_task`). A step's task
draw comes from a generator seeded by (train.seed, step) alone, as `is_onpolicy_step` does, so a resumed run and
every process agree; within a task the rows follow that task's own seeded order, epoch after epoch, from the
number of its rows the earlier steps used (replayed from the draws, so nothing extra goes into checkpoints).
On-policy steps draw prompts from the tasks that have them (chat, qa, classify), never from `lm` tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from workbench.config import DataConfig, TaskConfig
from workbench.data.splits import (
    Example,
    Splits,
    example_stream,
    holdout_examples,
    pack,
    split_rows,
    token_stream,
    tokenize_examples,
)
from workbench.data.task_rows import content_free_pairs, read_task
from workbench.errors import Message, UserError

PROMPT_KINDS = ("chat", "qa", "classify")


class TaskMixture:
    """Seeded draws of tasks by weight, and of rows within each task, for any step (exact resume).

    `sizes[k]` rows of task k sit at `offsets[k]` ... in the concatenated tensor; tasks of weight 0 are never drawn."""

    def __init__(self, sizes: list[int], weights: list[float], seed: int, salt: int = 29) -> None:
        if not any(w > 0 and n > 0 for w, n in zip(weights, sizes, strict=True)):
            raise ValueError("a mixture needs a task with rows and a weight > 0")
        self.sizes, self.seed, self.salt = sizes, seed, salt
        self.weights = torch.tensor([w if n > 0 else 0.0 for w, n in zip(weights, sizes, strict=True)],
                                    dtype=torch.float64)
        self.offsets = torch.tensor([0, *sizes]).cumsum(0)[:-1]
        self._used: list[torch.Tensor] = [torch.zeros(len(sizes), dtype=torch.long)]  # rows used before step i
        self._orders: dict[tuple[int, int], torch.Tensor] = {}

    def draw(self, step: int, global_batch: int) -> torch.Tensor:
        """[global_batch] task ids of one step's rows, from (seed, step) alone."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step * 7 + self.salt)
        return torch.multinomial(self.weights, global_batch, replacement=True, generator=generator)

    def _used_before(self, step: int, global_batch: int) -> torch.Tensor:
        while len(self._used) <= step:
            counts = torch.bincount(self.draw(len(self._used) - 1, global_batch), minlength=len(self.sizes))
            self._used.append(self._used[-1] + counts)
        return self._used[step]

    def _order(self, task: int, epoch: int) -> torch.Tensor:
        key = (task, epoch)
        if key not in self._orders:
            if len(self._orders) > 64:
                self._orders.clear()
            generator = torch.Generator().manual_seed(self.seed * 100_003 + task * 7_919 + epoch)
            self._orders[key] = torch.randperm(self.sizes[task], generator=generator)
        return self._orders[key]

    def indices(self, step: int, start: int, count: int, global_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows in the concatenated tensor, their task ids) of positions start ... start + count of a step of
        `global_batch` rows (a process's micro-batch, laid out as `step_indices` lays it out)."""
        tasks = self.draw(step, global_batch)
        used = self._used_before(step, global_batch)
        rows = torch.empty(global_batch, dtype=torch.long)
        for task in tasks.unique().tolist():
            where = (tasks == task).nonzero().squeeze(1)
            drawn = used[task] + torch.arange(where.numel())  # how many of the task's rows came before each
            size = self.sizes[task]
            for epoch in (drawn // size).unique().tolist():
                chosen = drawn // size == epoch
                rows[where[chosen]] = self._order(task, epoch)[drawn[chosen] % size] + self.offsets[task]
        return rows[start:start + count], tasks[start:start + count]


@dataclass
class TaskData:
    """One task's packed rows and held-out items."""

    config: TaskConfig
    train: torch.Tensor  # (N_train, seq_len) int64
    val: torch.Tensor  # (N_val, seq_len) int64
    train_mask: torch.Tensor | None
    val_mask: torch.Tensor | None
    examples: list[Example] = field(default_factory=list)  # prompt tasks: training examples (on-policy prompts)
    heldout: list[Example] = field(default_factory=list)  # items of the task's score, in no training row
    gold: list[int] = field(default_factory=list)  # classify: index of each held-out item's label
    label_ids: list[list[int]] = field(default_factory=list)  # classify: token ids of each label word
    content_free: list[list[int]] = field(default_factory=list)  # classify: the question about "N/A", "", "[MASK]"


@dataclass
class TaskSet:
    """Every task's data side by side: concatenated rows (`train` in task order, `val` in a seeded shuffle, with
    `row_task` / `val_task`), the prompt tasks' examples (`examples`, `example_task`), and the mixtures that draw from them."""

    tasks: list[TaskData]
    train: torch.Tensor
    val: torch.Tensor
    train_mask: torch.Tensor | None
    val_mask: torch.Tensor | None
    row_task: torch.Tensor  # [N_train] task id of each train row
    val_task: torch.Tensor  # [N_val]
    examples: list[Example]
    example_task: torch.Tensor  # [N_examples]
    rows: TaskMixture
    prompts: TaskMixture | None  # None when no task has prompts

    @property
    def names(self) -> list[str]:
        return [t.config.name for t in self.tasks]


def _packed(task: TaskConfig, data_cfg: DataConfig, tokenizer, texts: list[str] | None,
            examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(rows, mask or None) of one task: lm text packed whole; prompt tasks packed as prompt answer EOS with the
    loss on answer tokens (chat: only with data.loss_on answer)."""
    if texts is not None:
        limit = None if data_cfg.max_sequences is None else data_cfg.max_sequences * data_cfg.seq_len
        return pack(token_stream(texts, tokenizer, limit)[0], data_cfg.seq_len, data_cfg.max_sequences), None
    ids, answer_mask = example_stream(examples, int(tokenizer.eos_token_id))
    rows = pack(ids, data_cfg.seq_len, data_cfg.max_sequences)
    if task.kind == "chat" and data_cfg.loss_on == "all":
        return rows, None
    return rows, pack(answer_mask, data_cfg.seq_len, data_cfg.max_sequences, dtype=torch.bool)


def build_task(task: TaskConfig, data_cfg: DataConfig, tokenizer) -> TaskData:
    """Read, tokenize, hold out, pack and split one task."""
    texts, pairs, gold = read_task(task)
    examples, heldout, gold_held, label_ids, free = [], [], [], [], []
    if pairs is not None:
        examples = tokenize_examples(pairs, tokenizer)
        order = list(range(len(examples)))
        # a chat task keeps data.holdout_prompts prompts out (the generation numbers' prompts, as a one-task run does)
        count = data_cfg.holdout_prompts if task.kind == "chat" else task.holdout
        kept, held = holdout_examples(order, count, data_cfg.seed)
        examples, heldout = [examples[i] for i in kept], [examples[i] for i in held]
        gold_held = [gold[i] for i in held] if gold else []
        if task.kind == "classify":
            label_ids = [tokenizer(label, add_special_tokens=False)["input_ids"] for label in task.labels]
            free = [e.prompt_ids for e in tokenize_examples(content_free_pairs(task), tokenizer)]
    rows, mask = _packed(task, data_cfg, tokenizer, texts, examples)
    if rows.shape[0] < 2:
        raise UserError(Message("data.tasks[{name}].source: {source!r} gives too little text for two sequences "
                                "(train and validation) at data.seq_len={seq_len}", name=task.name,
                                source=task.source, seq_len=data_cfg.seq_len))
    train_index, val_index = split_rows(rows, data_cfg.val_fraction, data_cfg.seed)
    masks = (None, None) if mask is None else (mask[train_index], mask[val_index])
    return TaskData(task, rows[train_index], rows[val_index], *masks, examples, heldout, gold_held, label_ids, free)


def _concat_masks(parts: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor | None:
    if all(mask is None for _, mask in parts):
        return None
    return torch.cat([torch.ones_like(rows, dtype=torch.bool) if mask is None else mask for rows, mask in parts])


def build_tasks(data_cfg: DataConfig, tokenizer, seed: int) -> TaskSet:
    """Every task of `data_cfg.tasks`, concatenated, with the row and prompt mixtures seeded by `seed`."""
    tasks = [build_task(task, data_cfg, tokenizer) for task in data_cfg.tasks]
    ids = lambda rows: torch.cat([torch.full((r.shape[0],), k, dtype=torch.long) for k, r in enumerate(rows)])  # noqa: E731
    weights = [t.config.weight for t in tasks]
    prompt_weights = [w if t.config.kind in PROMPT_KINDS else 0.0 for w, t in zip(weights, tasks, strict=True)]
    example_sizes = [len(t.examples) if t.config.kind in PROMPT_KINDS else 0 for t in tasks]
    with_prompts = any(w > 0 and n > 0 for w, n in zip(prompt_weights, example_sizes, strict=True))
    val_mask = _concat_masks([(t.val, t.val_mask) for t in tasks])
    # validation rows shuffled (seeded), so the run's first eval_batches rows hold every task, not the first one
    shuffle = torch.randperm(sum(t.val.shape[0] for t in tasks), generator=torch.Generator().manual_seed(seed))
    return TaskSet(
        tasks,
        torch.cat([t.train for t in tasks]), torch.cat([t.val for t in tasks])[shuffle],
        _concat_masks([(t.train, t.train_mask) for t in tasks]), None if val_mask is None else val_mask[shuffle],
        ids([t.train for t in tasks]), ids([t.val for t in tasks])[shuffle],
        [e for t, n in zip(tasks, example_sizes, strict=True) for e in t.examples[:n]],
        torch.cat([torch.full((n,), k, dtype=torch.long) for k, n in enumerate(example_sizes)]),
        TaskMixture([t.train.shape[0] for t in tasks], weights, seed),
        TaskMixture(example_sizes, prompt_weights, seed, salt=31) if with_prompts else None,
    )


def task_splits(data_cfg: DataConfig, tokenizer, seed: int) -> Splits:
    """The `Splits` the trainer reads, of every task of `data_cfg.tasks` (`Splits.tasks` holds the TaskSet)."""
    tasks = build_tasks(data_cfg, tokenizer, seed)
    stats = {"tasks": {t.config.name: {"train_sequences": int(t.train.shape[0]), "val_sequences": int(t.val.shape[0]),
                                       "heldout": len(t.heldout)} for t in tasks.tasks},
             "train_sequences": int(tasks.train.shape[0]), "val_sequences": int(tasks.val.shape[0]),
             "seq_len": data_cfg.seq_len}
    heldout = [example for task in tasks.tasks if task.config.kind == "chat" for example in task.heldout]
    return Splits(tasks.train, tasks.val, torch.arange(tasks.train.shape[0]), torch.arange(tasks.val.shape[0]), stats,
                  tasks.train_mask, tasks.val_mask, tasks.examples, heldout, tasks)
