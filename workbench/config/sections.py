"""The sections about what is distilled: the models, the data (and its tasks), the loss and the layer mapping."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import field_validator, model_validator

from workbench.config.fields import (
    BUILTIN_TEACHER,
    CROSS_TOKENIZER_METHODS,
    DEFAULT_STUDENT,
    DIVERGENCE_KINDS,
    HIDDEN_KINDS,
    LOSS_ON_CHOICES,
    MAPPING_STRATEGIES,
    TASK_KINDS,
    TASK_NAME_PATTERN,
    WEIGHT,
    Range,
    Section,
    require,
    setting,
)
from workbench.errors import Message

ATTENTION_KINDS = ("kl", "mse")
_PAIR = re.compile(r"^(emb|\d+):(emb|\d+)$")


def _filled(value: str | None) -> bool:
    return bool(value and value.strip())


class ModelsConfig(Section):
    where = "models."

    teacher: str = setting(BUILTIN_TEACHER,
                           "Teacher model spec: builtin:NAME, a Hugging Face hub id, or a local folder.")
    student: str = setting(DEFAULT_STUDENT,
                           "Student model spec: like the teacher, plus derivations such as BASE?prune=even&layers=10 "
                           "or BASE?fresh&layers=4&hidden=256 (see README, 'Model specs').")
    trust_remote_code: bool = setting(False,
                                      "Run model code shipped with a hub repo. Off unless you trust the repo.")
    allow_pickle: bool = setting(
        False, "Allow loading pickle-based weight files (.bin/.pt). Off: only safetensors is loaded.")

    @model_validator(mode="after")
    def _specs_given(self) -> ModelsConfig:
        for key in ("teacher", "student"):
            require(_filled(getattr(self, key)), f"models.{key}", Message("a non-empty model spec"), getattr(self, key))
        return self


class TaskConfig(Section):
    """One task of a multi-task run (`data.tasks`); errors name it as data.tasks[NAME].FIELD."""

    @classmethod
    def _where(cls, data: Any) -> str:
        name = data.get("name") if isinstance(data, dict) else None
        return f"data.tasks[{name if isinstance(name, str) and name else '?'}]."

    name: str = setting("", "Task name (letters, digits, '_', '-', '.'): metrics carry it.")
    source: str = setting("builtin:chat",
                          "Where the task's rows come from: any data.dataset spec, or the built-in tasks "
                          "builtin:chat-kind (classify) and builtin:kjv-book (qa).")
    kind: Literal[TASK_KINDS] = setting(
        "chat", "lm (plain text), chat (prompt/answer, scored by perplexity), qa (prompt/short answer, scored by "
        "exact match and token F1) or classify (text + label from a label set, scored by accuracy).")
    weight: float = setting(1.0, "Sampling weight: the share of each batch's rows drawn from this task is weight / "
                                 "sum of weights.", bounds=Range(0.0, 1000.0, low_open=True))
    ce_weight: float | None = setting(
        None, "This task's CE weight on its gold answers or labels; empty takes loss.ce_weight.", bounds=WEIGHT)
    kd_weight: float | None = setting(
        None, "This task's KD weight on the teacher; empty takes loss.kd_weight.", bounds=WEIGHT)
    text_column: str = setting("text", "Column of the text (lm, classify).")
    label_column: str = setting("label", "Column of the gold label (classify).")
    labels: list[str] = setting(
        [], "The label set (classify): the words the model's next-token distribution is scored over.")
    prompt: str = setting("{text}", "Question of a classify task, with {text} where the row's text goes.")
    holdout: int = setting(64, "Items kept out of training for this task's score (qa, classify); at most a fifth.",
                           bounds=Range(0, 10_000))

    @model_validator(mode="after")
    def _consistent(self) -> TaskConfig:
        where = f"data.tasks[{self.name or '?'}]"
        require(bool(TASK_NAME_PATTERN.match(self.name or "")), f"{where}.name",
                Message("1-32 letters, digits, '_', '-' or '.', starting with a letter or digit"), self.name)
        require(_filled(self.source), f"{where}.source", Message("a non-empty dataset spec"), self.source)
        if self.kind == "classify":
            require(_filled(self.label_column), f"{where}.label_column",
                    Message("the column holding each row's label (classify)"), self.label_column)
            require(bool(self.labels) and all(str(x).strip() for x in self.labels), f"{where}.labels",
                    Message("a non-empty list of label words (classify), e.g. [story, steps, definition, comparison]"),
                    self.labels)
            require(len(set(self.labels)) == len(self.labels), f"{where}.labels", Message("distinct label words"),
                    self.labels)
            require("{text}" in self.prompt, f"{where}.prompt", Message("a question holding {{text}}"), self.prompt)
        return self

    def weights(self, loss: LossConfig) -> tuple[float, float]:
        """(ce_weight, kd_weight) of this task: its own, or the run's loss weights where it leaves them empty."""
        ce = loss.ce_weight if self.ce_weight is None else self.ce_weight
        return ce, loss.kd_weight if self.kd_weight is None else self.kd_weight


class DataConfig(Section):
    where = "data."

    dataset: str = setting("builtin:chat",
                           "Training text: builtin:chat, builtin:kjv, a local .txt/.jsonl/.csv/.parquet file or "
                           "folder, or a datasets hub id.")
    text_column: str = setting("text", "Column holding the text in JSONL/CSV/parquet data.")
    seq_len: int = setting(256, "Tokens per packed training sequence.", bounds=Range(8, 131072, slider=(8, 2048, 8)))
    val_fraction: float = setting(0.05, "Share of packed sequences held out for validation.",
                                  bounds=Range(0.0, 0.5, low_open=True, high_open=True, slider=(0.01, 0.45, 0.01)))
    max_sequences: int | None = setting(None, "Cap on packed sequences (train + validation); 0 or empty for all.",
                                        bounds=Range(2))
    seed: int = setting(0, "Seed of the deterministic train/validation split.")
    prompt_column: str = setting("prompt", "Column holding the prompt in prompt/answer JSONL/CSV/parquet data.")
    answer_column: str = setting("answer",
                                 "Column holding the answer in prompt/answer data ('response' also works).")
    loss_on: Literal[LOSS_ON_CHOICES] = setting(
        "all", "Tokens the teacher-forced terms are taken on: all, or answer (prompt tokens masked; prompt/answer "
        "data only).")
    tasks: list[TaskConfig] = setting(
        [], "Several tasks in one run (README, 'Multi-task distillation'): each with a source, kind, sampling weight "
        "and loss weights; empty trains on data.dataset alone.")
    holdout_prompts: int = setting(
        24, "Prompts of prompt/answer data kept out of training, to score what the student generates (generation "
        "quality); 0 keeps none.", bounds=Range(0, 10_000))

    @field_validator("max_sequences", mode="before")
    @classmethod
    def _zero_is_all(cls, value: Any) -> Any:
        return None if value == 0 and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        require(_filled(self.dataset), "data.dataset", Message("a non-empty dataset spec"), self.dataset)
        names = [t.name for t in self.tasks]
        twice = sorted({n for n in names if names.count(n) > 1})
        require(not twice, Message("data.tasks[{name}].name", name=twice[0] if twice else ""),
                Message("a name no other task has"), twice[0] if twice else None)
        return self


class LossConfig(Section):
    where = "loss."
    renamed = {"kind": "divergence"}

    divergence: Literal[DIVERGENCE_KINDS] = setting("forward_kl", "Logit divergence between teacher and student.")
    temperature: float = setting(2.0, "Softens both distributions: p = softmax(logits / T). 1 leaves them as they are.",
                                 bounds=Range(0.0, 100.0, low_open=True, slider=(0.1, 10.0, 0.1)))
    beta: float = setting(
        0.5, "Reverse-KL share of jsd and kl_mix: 0 is forward KL, 1 is reverse KL. jsd changes steeply near 0 and 1: "
        "β = 0.05 can give 25× less than β = 0, so move it in small steps there; kl_mix is linear in β.",
        bounds=Range(0.0, 1.0, slider=(0.0, 1.0, 0.05)))
    alpha: float = setting(0.1, "Skew of the skewed KL kinds: how much of the other side to mix in.",
                           bounds=Range(0.0, 1.0, slider=(0.0, 1.0, 0.05)))
    t2_scale: bool = setting(True, "Multiply the divergence by T² so its gradient keeps its size as T grows.")
    ce_weight: float = setting(0.0, "Weight of the hard-label cross-entropy on the data.", bounds=WEIGHT)
    kd_weight: float = setting(1.0, "Weight of the logit divergence to the teacher.", bounds=WEIGHT)
    hidden_weight: float = setting(0.0, "Weight of hidden-state matching between mapped layers.", bounds=WEIGHT)
    # ln_mse chosen by measurement (docs/hidden-states.md): plain mse is ~10^4 x the KD term
    hidden_loss: Literal[HIDDEN_KINDS] = setting(
        "ln_mse", "Hidden-state distance: mse, cosine, or ln_mse (mse after a layer norm without parameters).")
    hidden_skip_first: bool = setting(
        False, "Leave the first position out of hidden-state matching (its massive activations).")
    attn_weight: float = setting(0.0, "Weight of attention-map transfer between mapped layers.", bounds=WEIGHT)
    attn_loss: Literal[ATTENTION_KINDS] = setting("kl", "Attention-map distance: kl or mse.")
    chunk_size: int | None = setting(
        1024, "Positions per chunk of the divergence (bounds memory); empty computes all at once.", bounds=Range(1))
    cross_tokenizer: Literal[CROSS_TOKENIZER_METHODS] = setting(
        "aligned", "When teacher and student tokenizers differ: aligned (spans aligned by text offsets; exact matches "
        "compare distributions over the shared strings, other spans their chain-rule probabilities) or uld "
        "(sorted probabilities compared per aligned position).")

    @model_validator(mode="after")
    def _teaches_something(self) -> LossConfig:
        total = self.ce_weight + self.kd_weight + self.hidden_weight + self.attn_weight
        require(total > 0, Message("loss weights"), Message("not all zero (set loss.kd_weight or loss.ce_weight > 0)"),
                total)
        return self


class MappingConfig(Section):
    where = "mapping."
    renamed = {"preset": "strategy"}

    strategy: Literal[MAPPING_STRATEGIES] = setting(
        "uniform", "Which teacher layer each student layer learns from: uniform, last, source (a pruned student's "
        "layer and the teacher layer it was copied from), or custom pairs.")
    pairs: list[str] = setting([], "Custom pairs 'student:teacher' (0-based layers, 'emb' for the embedding output).")

    @model_validator(mode="after")
    def _pairs_read(self) -> MappingConfig:
        for pair in self.pairs:
            require(bool(_PAIR.match(pair)), "mapping.pairs", Message("items like '3:11' or 'emb:emb'"), pair)
        require(self.strategy != "custom" or bool(self.pairs), "mapping.pairs",
                Message("at least one pair when mapping.strategy is custom"), self.pairs)
        return self
