"""One schema for a distillation run: the single source of truth for the app, the CLI and the notebooks.

`DistillConfig` nests one dataclass per concern. Every field carries its help text in
`field(metadata={"help": ...})`; construction validates ranges and raises `ValueError` naming the field
(`loss.temperature must be > 0 and <= 100, got 0`). YAML round-trips through `to_yaml` / `from_yaml`, and
`apply_overrides(cfg, ["loss.temperature=2", ...])` is what `workbench train --config x.yaml key=value` uses.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import Message, UserError

BUILTIN_TEACHER = "builtin:smollm2-135m-instruct"
# Chosen by measurement (docs/choosing-the-student.md): the 19 of the teacher's 30 layers that
# `prune=importance&layers=19` selects, spelled out so loading needs no calibration pass. 19, not 20: 20 blocks
# plus the final norm come to 0.6666685 of the teacher's non-embedding parameters, just over two thirds.
DEFAULT_STUDENT = "builtin:smollm2-135m-instruct?prune=keep&layers=0-2,6-11,18-24,27-29"

DIVERGENCE_KINDS = (
    "forward_kl",
    "reverse_kl",
    "jsd",
    "kl_mix",
    "skew_forward_kl",
    "skew_reverse_kl",
    "tvd",
    "soft_ce",
    "mse",
)
LOSS_ON_CHOICES = ("all", "answer")
REPORTERS = ("tensorboard", "wandb", "trackio", "mlflow")
CROSS_TOKENIZER_METHODS = ("aligned", "uld")
HIDDEN_KINDS = ("mse", "cosine", "ln_mse")
TASK_KINDS = ("lm", "chat", "qa", "classify")
TASK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Loader(yaml.SafeLoader):
    """YAML as PyYAML reads it, less YAML 1.1's base-60 numbers: the layer pair `3:11` stays text (not 191)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":int", ":float"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """YAML text -> Python values, with `3:11` read as text (configs, overrides and their previews all use this)."""
    return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no Python objects


class ConfigError(UserError):
    """A config value or key the schema does not accept; the message names the field."""


@dataclass(frozen=True)
class Range:
    """The numbers a field accepts, [low, high] with either end open or absent; `slider` is (min, max, step) of the
    app's slider where the field has one (a narrower, comfortable range; typed values may go beyond it)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    slider: tuple[float, float, float] | None = None

    def accepts(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self, integer: bool) -> Message:
        """'an integer in [1, 1024]', '> 0 and <= 100', '>= 0': the accepted values in words."""
        low, high = (None if x is None else f"{x:g}" if x != int(x) else str(int(x)) for x in (self.low, self.high))
        if integer and low is not None and high is not None and not (self.low_open or self.high_open):
            return Message("an integer in [{low}, {high}]", low=low, high=high)
        ends = [f"{'>' if self.low_open else '>='} {low}"] * (low is not None)
        ends += [f"{'<' if self.high_open else '<='} {high}"] * (high is not None)
        bounds = Message("{low} and {high}", low=ends[0], high=ends[1]) if len(ends) == 2 else ends[0]
        return Message("an integer {bounds}", bounds=bounds) if integer else Message("{bounds}", bounds=bounds)


WEIGHT = Range(0.0, 1000.0)


def _help(text: str, *, choices: tuple[str, ...] | None = None, bounds: Range | None = None,
          also: tuple[str, str] | None = None) -> dict[str, Any]:
    """Field metadata: help text, and the accepted choices or range; validation, the app's dropdowns and sliders,
    CLI help and the README table all read them from here. `also` = (words, regex) accepts more than the choices
    (train.device: cuda:N)."""
    return {"help": text, "choices": choices, "bounds": bounds, "also": also}


def accepted(f: dataclasses.Field, integer: bool = False) -> Message | str:
    """The values a field accepts, in words ('' when its type says it all)."""
    choices, bounds, also = f.metadata.get("choices"), f.metadata.get("bounds"), f.metadata.get("also")
    if choices:
        words = ", ".join([*choices, *([also[0]] if also else [])])
        return Message("any of {choices}" if str(f.type).startswith("list") else "one of {choices}", choices=words)
    return bounds.describe(integer) if bounds else ""


def _check_declared(section: Any) -> None:
    """Check every field of a section against its declared choices and range; the error names the field."""
    name = type(section).__name__.removesuffix("Config").lower()
    for f in dataclasses.fields(section):
        value, choices, bounds = getattr(section, f.name), f.metadata.get("choices"), f.metadata.get("bounds")
        if value is None:
            continue
        also = f.metadata.get("also")
        for item in value if isinstance(value, list) and choices else [value] if choices else []:
            ok = item in choices or bool(also and re.fullmatch(also[1], str(item)))
            _require(ok, f"{name}.{f.name}", accepted(f), item)
        if bounds:
            _require(bounds.accepts(value), f"{name}.{f.name}", bounds.describe(isinstance(value, int)), value)


def _invalid(name: str | Message, accepted: Message, value: Any) -> ConfigError:
    return ConfigError(Message("{name} must be {accepted}, got {value!r}", name=name, accepted=accepted, value=value))


def _require(condition: bool, name: str | Message, accepted: Message, value: Any) -> None:
    if not condition:
        raise _invalid(name, accepted, value)


@dataclass
class ModelsConfig:
    teacher: str = field(
        default=BUILTIN_TEACHER,
        metadata=_help("Teacher model spec: builtin:NAME, a Hugging Face hub id, or a local folder."),
    )
    student: str = field(
        default=DEFAULT_STUDENT,
        metadata=_help(
            "Student model spec: like the teacher, plus derivations such as BASE?prune=even&layers=10 "
            "or BASE?fresh&layers=4&hidden=256 (see README, 'Model specs')."
        ),
    )
    trust_remote_code: bool = field(
        default=False, metadata=_help("Run model code shipped with a hub repo. Off unless you trust the repo.")
    )
    allow_pickle: bool = field(
        default=False,
        metadata=_help("Allow loading pickle-based weight files (.bin/.pt). Off: only safetensors is loaded."),
    )

    def __post_init__(self) -> None:
        _require(bool(self.teacher and self.teacher.strip()), "models.teacher", Message("a non-empty model spec"), self.teacher)
        _require(bool(self.student and self.student.strip()), "models.student", Message("a non-empty model spec"), self.student)


@dataclass
class TaskConfig:
    """One task of a multi-task run (`data.tasks`); errors name it as data.tasks[NAME].FIELD."""

    name: str = field(default="", metadata=_help("Task name (letters, digits, '_', '-', '.'): metrics carry it."))
    source: str = field(default="builtin:chat", metadata=_help(
        "Where the task's rows come from: any data.dataset spec, or the built-in tasks builtin:chat-kind (classify) and builtin:kjv-book (qa)."))
    kind: str = field(default="chat", metadata=_help(
        "lm (plain text), chat (prompt/answer, scored by perplexity), qa (prompt/short answer, scored by exact match "
        "and token F1) or classify (text + label from a label set, scored by accuracy).", choices=TASK_KINDS))
    weight: float = field(default=1.0, metadata=_help(
        "Sampling weight: the share of each batch's rows drawn from this task is weight / sum of weights.",
        bounds=Range(0.0, 1000.0, low_open=True)))
    ce_weight: float | None = field(default=None, metadata=_help(
        "This task's CE weight on its gold answers or labels; empty takes loss.ce_weight.", bounds=WEIGHT))
    kd_weight: float | None = field(default=None, metadata=_help(
        "This task's KD weight on the teacher; empty takes loss.kd_weight.", bounds=WEIGHT))
    text_column: str = field(default="text", metadata=_help("Column of the text (lm, classify)."))
    label_column: str = field(default="label", metadata=_help("Column of the gold label (classify)."))
    labels: list[str] = field(default_factory=list, metadata=_help(
        "The label set (classify): the words the model's next-token distribution is scored over."))
    prompt: str = field(default="{text}", metadata=_help(
        "Question of a classify task, with {text} where the row's text goes."))
    holdout: int = field(default=64, metadata=_help(
        "Items kept out of training for this task's score (qa, classify); at most a fifth.",
        bounds=Range(0, 10_000)))

    def __post_init__(self) -> None:
        where = f"data.tasks[{self.name or '?'}]"
        _require(bool(TASK_NAME_PATTERN.match(self.name or "")), f"{where}.name",
                 Message("1-32 letters, digits, '_', '-' or '.', starting with a letter or digit"), self.name)
        _require(bool(self.source and self.source.strip()), f"{where}.source", Message("a non-empty dataset spec"),
                 self.source)
        for f in dataclasses.fields(self):
            value, choices, bounds = getattr(self, f.name), f.metadata.get("choices"), f.metadata.get("bounds")
            if choices:
                _require(value in choices, f"{where}.{f.name}", accepted(f), value)
            if bounds and value is not None:
                _require(bounds.accepts(value), f"{where}.{f.name}", bounds.describe(isinstance(value, int)), value)
        if self.kind == "classify":
            _require(bool(self.label_column and self.label_column.strip()), f"{where}.label_column",
                     Message("the column holding each row's label (classify)"), self.label_column)
            _require(bool(self.labels) and all(str(x).strip() for x in self.labels), f"{where}.labels",
                     Message("a non-empty list of label words (classify), e.g. [story, steps, definition, comparison]"), self.labels)
            _require(len(set(self.labels)) == len(self.labels), f"{where}.labels",
                     Message("distinct label words"), self.labels)
            _require("{text}" in self.prompt, f"{where}.prompt", Message("a question holding {{text}}"), self.prompt)

    def weights(self, loss: LossConfig) -> tuple[float, float]:
        """(ce_weight, kd_weight) of this task: its own, or the run's loss weights where it leaves them empty."""
        ce = loss.ce_weight if self.ce_weight is None else self.ce_weight
        return ce, loss.kd_weight if self.kd_weight is None else self.kd_weight


@dataclass
class DataConfig:
    dataset: str = field(
        default="builtin:chat",
        metadata=_help(
            "Training text: builtin:chat, builtin:kjv, a local .txt/.jsonl/.csv/.parquet file or folder, "
            "or a datasets hub id."
        ),
    )
    text_column: str = field(default="text", metadata=_help("Column holding the text in JSONL/CSV/parquet data."))
    seq_len: int = field(default=256, metadata=_help("Tokens per packed training sequence.",
                                                     bounds=Range(8, 131072, slider=(8, 2048, 8))))
    val_fraction: float = field(default=0.05, metadata=_help(
        "Share of packed sequences held out for validation.",
        bounds=Range(0.0, 0.5, low_open=True, high_open=True, slider=(0.01, 0.45, 0.01))))
    max_sequences: int | None = field(
        default=None, metadata=_help("Cap on packed sequences (train + validation); 0 or empty for all.",
                                     bounds=Range(2))
    )
    seed: int = field(default=0, metadata=_help("Seed of the deterministic train/validation split."))
    prompt_column: str = field(
        default="prompt", metadata=_help("Column holding the prompt in prompt/answer JSONL/CSV/parquet data.")
    )
    answer_column: str = field(
        default="answer", metadata=_help("Column holding the answer in prompt/answer data ('response' also works).")
    )
    loss_on: str = field(
        default="all",
        metadata=_help("Tokens the teacher-forced terms are taken on: all, or answer (prompt tokens masked; "
                       "prompt/answer data only).", choices=LOSS_ON_CHOICES),
    )
    tasks: list[TaskConfig] = field(default_factory=list, metadata=_help(
        "Several tasks in one run (README, 'Multi-task distillation'): each with a source, kind, sampling weight "
        "and loss weights; empty trains on data.dataset alone."))
    holdout_prompts: int = field(
        default=24,
        metadata=_help("Prompts of prompt/answer data kept out of training, to score what the student generates "
                       "(generation quality); 0 keeps none.", bounds=Range(0, 10_000)),
    )

    def __post_init__(self) -> None:
        _require(bool(self.dataset and self.dataset.strip()), "data.dataset", Message("a non-empty dataset spec"), self.dataset)
        if self.max_sequences == 0:
            self.max_sequences = None
        _check_declared(self)
        self.tasks = [t if isinstance(t, TaskConfig) else _build(TaskConfig, t, _item_name("data.tasks", i, t) + ".")
                      for i, t in enumerate(self.tasks or [])]
        names = [t.name for t in self.tasks]
        twice = sorted({n for n in names if names.count(n) > 1})
        _require(not twice, Message("data.tasks[{name}].name", name=twice[0] if twice else ""),
                 Message("a name no other task has"), twice[0] if twice else None)


@dataclass
class LossConfig:
    kind: str = field(
        default="forward_kl",
        metadata=_help("Logit divergence between teacher and student.", choices=DIVERGENCE_KINDS),
    )
    temperature: float = field(default=2.0, metadata=_help(
        "Softens both distributions: p = softmax(logits / T). 1 leaves them as they are.",
        bounds=Range(0.0, 100.0, low_open=True, slider=(0.1, 10.0, 0.1))))
    beta: float = field(default=0.5, metadata=_help(
        "Reverse-KL share of jsd and kl_mix: 0 is forward KL, 1 is reverse KL. jsd changes steeply near 0 and 1: "
        "β = 0.05 can give 25× less than β = 0, so move it in small steps there; kl_mix is linear in β.",
        bounds=Range(0.0, 1.0, slider=(0.0, 1.0, 0.05))))
    alpha: float = field(default=0.1, metadata=_help(
        "Skew of the skewed KL kinds: how much of the other side to mix in.",
        bounds=Range(0.0, 1.0, slider=(0.0, 1.0, 0.05))))
    t2_scale: bool = field(
        default=True, metadata=_help("Multiply the divergence by T² so its gradient keeps its size as T grows.")
    )
    ce_weight: float = field(default=0.0, metadata=_help("Weight of the hard-label cross-entropy on the data.",
                                                         bounds=WEIGHT))
    kd_weight: float = field(default=1.0, metadata=_help("Weight of the logit divergence to the teacher.",
                                                         bounds=WEIGHT))
    hidden_weight: float = field(default=0.0, metadata=_help("Weight of hidden-state matching between mapped layers.",
                                                             bounds=WEIGHT))
    hidden_loss: str = field(
        default="ln_mse",  # chosen by measurement (docs/hidden-states.md): plain mse is ~10^4 x the KD term
        metadata=_help("Hidden-state distance: mse, cosine, or ln_mse (mse after a layer norm without parameters).",
                       choices=HIDDEN_KINDS),
    )
    hidden_skip_first: bool = field(
        default=False, metadata=_help("Leave the first position out of hidden-state matching (its massive activations).")
    )
    attn_weight: float = field(default=0.0, metadata=_help("Weight of attention-map transfer between mapped layers.",
                                                           bounds=WEIGHT))
    attn_loss: str = field(
        default="kl", metadata=_help("Attention-map distance: kl or mse.", choices=("kl", "mse"))
    )
    chunk_size: int | None = field(
        default=1024,
        metadata=_help("Positions per chunk of the divergence (bounds memory); empty computes all at once.",
                       bounds=Range(1)),
    )
    cross_tokenizer: str = field(
        default="aligned",
        metadata=_help(
            "When teacher and student tokenizers differ: aligned (spans aligned by text offsets; exact matches "
            "compare distributions over the shared strings, other spans their chain-rule probabilities) or uld "
            "(sorted probabilities compared per aligned position).",
            choices=CROSS_TOKENIZER_METHODS,
        ),
    )

    def __post_init__(self) -> None:
        _check_declared(self)
        total = self.ce_weight + self.kd_weight + self.hidden_weight + self.attn_weight
        _require(total > 0, Message("loss weights"), Message("not all zero (set loss.kd_weight or loss.ce_weight > 0)"), total)


@dataclass
class MappingConfig:
    preset: str = field(
        default="uniform",
        metadata=_help(
            "Which teacher layer each student layer learns from: uniform, last, source (a pruned student's layer "
            "and the teacher layer it was copied from), or custom pairs.",
            choices=("uniform", "last", "source", "custom"),
        ),
    )
    pairs: list[str] = field(
        default_factory=list,
        metadata=_help("Custom pairs 'student:teacher' (0-based layers, 'emb' for the embedding output)."),
    )

    def __post_init__(self) -> None:
        _check_declared(self)
        if isinstance(self.pairs, str):
            self.pairs = [p.strip() for p in self.pairs.split(",") if p.strip()]
        pair_re = re.compile(r"^(emb|\d+):(emb|\d+)$")
        for pair in self.pairs:
            _require(bool(pair_re.match(str(pair))), "mapping.pairs", Message("items like '3:11' or 'emb:emb'"), pair)
        _require(
            self.preset != "custom" or bool(self.pairs),
            "mapping.pairs",
            Message("at least one pair when mapping.preset is custom"),
            self.pairs,
        )


@dataclass
class LoraConfig:
    enabled: bool = field(default=False, metadata=_help("Train LoRA adapters on the student instead of all weights."))
    r: int = field(default=16, metadata=_help("LoRA rank: size of the low-rank update.",
                                              bounds=Range(1, 1024, slider=(1, 256, 1))))
    alpha: float = field(default=32.0, metadata=_help("LoRA scaling numerator: the update is scaled by alpha / r.",
                                                      bounds=Range(0.0, 4096.0, low_open=True)))
    dropout: float = field(default=0.05, metadata=_help(
        "Dropout on the LoRA input.", bounds=Range(0.0, 1.0, high_open=True, slider=(0.0, 0.5, 0.01))))
    target_modules: list[str] = field(
        default_factory=list,
        metadata=_help("Module names to adapt (e.g. q_proj, v_proj); empty picks defaults for the architecture."),
    )

    def __post_init__(self) -> None:
        _check_declared(self)
        if isinstance(self.target_modules, str):
            self.target_modules = [m.strip() for m in self.target_modules.split(",") if m.strip()]


@dataclass
class TrainConfig:
    steps: int = field(default=200, metadata=_help("Optimizer steps.", bounds=Range(1, 10_000_000)))
    batch_size: int = field(default=4, metadata=_help("Sequences per micro-batch on each process.",
                                                      bounds=Range(1, 4096)))
    grad_accum: int = field(default=1, metadata=_help("Micro-batches accumulated per optimizer step.",
                                                      bounds=Range(1, 4096)))
    lr: float = field(default=1e-4, metadata=_help("Peak learning rate of AdamW.",
                                                   bounds=Range(0.0, 1.0, low_open=True)))
    warmup_steps: int = field(
        default=10, metadata=_help("Linear warmup steps before cosine decay; more than train.steps warms up over all.",
                                   bounds=Range(0, 10_000_000)),
    )
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay.", bounds=Range(0.0, 1.0)))
    max_grad_norm: float = field(default=1.0, metadata=_help("Gradient clipping norm; 0 turns clipping off.",
                                                             bounds=Range(0.0)))
    eval_every: int = field(default=50, metadata=_help("Evaluate on the validation split every N steps.",
                                                       bounds=Range(1)))
    eval_batches: int = field(default=8, metadata=_help("Validation micro-batches per evaluation.", bounds=Range(1)))
    save_every: int = field(default=100, metadata=_help("Write a checkpoint every N steps (and always on stop).",
                                                        bounds=Range(1)))
    log_every: int = field(default=1, metadata=_help("Write a train metrics row every N steps.", bounds=Range(1)))
    seed: int = field(default=0, metadata=_help("Seed of initialisation, dropout and data order."))
    device: str = field(
        default="auto",
        metadata=_help("auto, cpu, cuda or cuda:N.", choices=("auto", "cpu", "cuda"), also=("cuda:N", r"cuda:\d+")),
    )
    precision: str = field(
        default="auto",
        metadata=_help("fp32, bf16, or auto (bf16 on GPU, fp32 on CPU).", choices=("auto", "fp32", "bf16")),
    )
    teacher_cache: str | None = field(
        default=None, metadata=_help("Folder of a teacher cache from `workbench cache-teacher`; skips the teacher.")
    )
    freeze_embeddings: bool = field(
        default=False, metadata=_help("Freeze the student's token embedding and output head.")
    )
    gradient_checkpointing: bool = field(default=False, metadata=_help("Recompute activations to save memory."))
    compile: bool = field(default=False, metadata=_help("torch.compile the student (slow start, faster steps)."))
    heal_init: bool = field(default=False, metadata=_help(
        "Before training, refit the layers around each gap of a student made by dropping teacher layers, by least "
        "squares toward the teacher's hidden states (student must be '<teacher>?prune=...')."))
    heal_sequences: int = field(default=64, metadata=_help("Training sequences the heal_init fit reads.",
                                                           bounds=Range(1, 100_000)))
    gen_eval: bool = field(
        default=True,
        metadata=_help("At each evaluation, sample answers to the held-out prompts and score them against the "
                       "teacher (generation quality; prompt/answer data only)."),
    )
    max_minutes: float | None = field(
        default=None,
        metadata=_help("End the run this many minutes after it starts (loading and healing count; it still evaluates "
                       "and saves the student, as finished); empty trains all train.steps.",
                       bounds=Range(0.0, low_open=True)),
    )
    gen_eval_every: int = field(
        default=0,
        metadata=_help("Score generation quality every N steps (and at the last step); 0 does it with every "
                       "evaluation (train.eval_every).", bounds=Range(0)),
    )
    report_to: list[str] = field(default_factory=list, metadata=_help(
        "Experiment trackers that also get the metrics, beside metrics.jsonl (a list; empty for none). "
        "tensorboard writes under the run's tensorboard/ folder.", choices=REPORTERS))

    def __post_init__(self) -> None:
        _check_declared(self)


@dataclass
class OnPolicyConfig:
    lmbda: float = field(
        default=0.0,
        metadata=_help("Share of training steps whose completions are sampled (on-policy) instead of read from the "
                       "data; 0 trains on the data only (off-policy), 1 on samples only.", bounds=Range(0.0, 1.0)),
    )
    seq_kd: bool = field(
        default=False,
        metadata=_help("Sample the completions from the teacher instead of the student (sequence-level KD)."),
    )
    max_new_tokens: int = field(default=64, metadata=_help("Longest sampled completion, in tokens.",
                                                           bounds=Range(1, 4096)))
    temperature: float = field(default=1.0, metadata=_help("Sampling temperature of the completions.",
                                                           bounds=Range(0.0, 5.0, low_open=True)))
    top_p: float = field(default=1.0, metadata=_help("Nucleus sampling: keep the smallest set of tokens reaching "
                                                        "this probability; 1 keeps all.",
                                                        bounds=Range(0.0, 1.0, low_open=True)))
    max_prompt_tokens: int = field(
        default=256, metadata=_help("Prompts longer than this keep only their last tokens when sampled.",
                                    bounds=Range(8, 131072))
    )
    teacher_prompts: int = field(
        default=0, metadata=_help("Before training, the teacher writes this many user requests of its own (from its "
                                  "chat template's user turn, as in Magpie); on-policy steps draw from them and the "
                                  "data's prompts. 0 uses the data's prompts only.", bounds=Range(0, 100000))
    )

    def __post_init__(self) -> None:
        _check_declared(self)


@dataclass
class RunConfig:
    name: str | None = field(
        default=None, metadata=_help("Run name (letters, digits, '_', '-', '.'); empty makes one from the time.")
    )
    runs_dir: str = field(default="runs", metadata=_help("Folder holding one sub-folder per run."))

    def __post_init__(self) -> None:
        _require(
            self.name is None or bool(RUN_NAME_PATTERN.match(self.name)),
            "run.name",
            Message("1-64 letters, digits, '_', '-' or '.', starting with a letter or digit (no path separators)"),
            self.name,
        )


@dataclass
class DistillConfig:
    models: ModelsConfig = field(default_factory=ModelsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    onpolicy: OnPolicyConfig = field(default_factory=OnPolicyConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        _require(
            not (self.train.teacher_cache and self.onpolicy.lmbda > 0),
            "onpolicy.lmbda",
            Message("0 when train.teacher_cache is set (a cache holds the teacher's logits on the data, not on samples)"),
            self.onpolicy.lmbda,
        )
        _require(
            self.onpolicy.teacher_prompts == 0 or (self.onpolicy.lmbda > 0 and not self.data.tasks),
            "onpolicy.teacher_prompts",
            Message("0 unless on-policy steps run on one dataset (onpolicy.lmbda > 0 and no data.tasks): only "
                    "on-policy steps use prompts without answers"),
            self.onpolicy.teacher_prompts,
        )
        for task in self.data.tasks:
            ce, kd = task.weights(self.loss)
            _require(ce + kd + self.loss.hidden_weight + self.loss.attn_weight > 0, f"data.tasks[{task.name}].kd_weight",
                     Message("> 0 where ce_weight is 0 (the task would teach nothing)"), kd)
        _require(not (self.data.tasks and self.train.teacher_cache), "train.teacher_cache",
                 Message("empty with data.tasks (a cache holds the teacher's logits on data.dataset only)"),
                 self.train.teacher_cache)
        uses_layers = self.loss.hidden_weight > 0 or self.loss.attn_weight > 0
        _require(
            not (uses_layers and self.mapping.preset == "custom" and not self.mapping.pairs),
            "mapping.pairs",
            Message("at least one pair when a hidden or attention weight is set"),
            self.mapping.pairs,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DistillConfig:
        return _build(cls, data or {}, prefix="")

    @classmethod
    def from_yaml(cls, text: str) -> DistillConfig:
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = Message(" at line {line}, column {column}", line=mark.line + 1, column=mark.column + 1) if mark else ""
            raise ConfigError(Message("config YAML could not be parsed{where}: {problem}", where=where,
                                      problem=getattr(exc, "problem", exc))) from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(Message("config YAML must be a mapping of sections, got {kind}",
                                      kind=type(data).__name__))
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> DistillConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        return cls.from_yaml(path.read_text(encoding="utf-8"))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _item_name(name: str, index: int, value: Any) -> str:
    """How an error names a list item: data.tasks[chat] by its name where it has one, else data.tasks[0]."""
    label = value.get("name") if isinstance(value, dict) else None
    return f"{name}[{label if isinstance(label, str) and label else index}]"


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Check and convert a YAML/override value to the field's declared type; errors name the field."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise _invalid(name, Message("a list"), value)
        return [_coerce(v, args[0], _item_name(name, i, v)) if args else v for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.strip().lower() in ("true", "yes", "on", "1")
        raise _invalid(name, Message("true or false"), value)
    if tp is int:
        if isinstance(value, bool):
            raise _invalid(name, Message("an integer"), value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _invalid(name, Message("an integer"), value)
    if tp is float:
        if isinstance(value, bool):
            raise _invalid(name, Message("a number"), value)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _invalid(name, Message("a number"), value)
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise _invalid(name, Message("text"), value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _invalid(name, Message("a mapping of fields"), value)
        return _build(tp, value, prefix=name + ".")
    raise ConfigError(f"{name}: unsupported type {_type_name(tp)}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        section = prefix.rstrip(".") or "config"
        raise ConfigError(Message("unknown key {key} in {section}; accepted: {keys}", key=prefix + unknown[0],
                                  section=section, keys=", ".join(sorted(known))))
    kwargs = {key: _coerce(value, hints[key], prefix + key) for key, value in data.items()}
    return cls(**kwargs)


def apply_overrides(cfg: DistillConfig, overrides: list[str]) -> DistillConfig:
    """Return a new config with `section.key=value` overrides applied (values parsed as YAML scalars)."""
    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. loss.temperature=2.0)")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if len(parts) != 2 or parts[0] not in data:
            raise ConfigError(
                f"unknown key {dotted.strip()!r}; accepted sections: {', '.join(data)} (as section.key=value)"
            )
        section, key = parts
        if key not in data[section]:
            raise ConfigError(
                f"unknown key {dotted.strip()}; accepted in {section}: {', '.join(data[section])}"
            )
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        data[section][key] = value
    return DistillConfig.from_dict(data)


def field_spec(name: str) -> dataclasses.Field:
    """The dataclass field of "section.key" (its metadata holds help, choices and bounds)."""
    section, _, key = name.partition(".")
    section_cls = typing.get_type_hints(DistillConfig).get(section)
    for f in dataclasses.fields(section_cls) if section_cls else ():
        if f.name == key:
            return f
    raise KeyError(name)


def field_help(section: str, key: str) -> str:
    """The help text of `section.key`, for UI tooltips and CLI help."""
    return field_spec(f"{section}.{key}").metadata.get("help", "")


def field_choices(name: str) -> list[str]:
    """The choices a "section.key" field declares (what the app's dropdown or radio offers)."""
    return list(field_spec(name).metadata["choices"])


def field_slider(name: str) -> dict[str, float]:
    """minimum, maximum and step of the app's slider for "section.key"."""
    low, high, step = field_spec(name).metadata["bounds"].slider
    return {"minimum": low, "maximum": high, "step": step}


def _fields() -> list[tuple[str, dataclasses.Field, Any, str]]:
    """(name, field, default, accepted values in words) of every config field, in schema order."""
    defaults = DistillConfig().to_dict()
    return [(f"{section}.{f.name}", f, defaults[section][f.name], accepted(f, str(f.type).startswith("int")))
            for section, cls in typing.get_type_hints(DistillConfig).items() for f in dataclasses.fields(cls)]


def config_table() -> str:
    """The README's table of every config field: default, accepted values and meaning, from the schema."""
    lines = ["| field | default | accepts | meaning |", "|---|---|---|---|"]
    for name, f, default, accepts in _fields():
        lines.append(f"| `{name}` | {_shown(default)} | {accepts} | {f.metadata.get('help', '')} |")
        if name == "data.tasks":
            lines += [f"| `data.tasks[].{t.name}` | {_shown(d)} | {accepted(t, str(t.type).startswith('int'))} | "
                      f"{t.metadata.get('help', '')} |"
                      for t, d in zip(dataclasses.fields(TaskConfig), task_defaults().values(), strict=True)]
    return "\n".join(lines)


def _shown(default: Any) -> str:
    return "(none)" if default in (None, [], "") else f"`{default}`"


def task_defaults() -> dict[str, Any]:
    """Each TaskConfig field's default, in schema order."""
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(TaskConfig)}


def field_reference() -> str:
    """Every config key with its default and accepted values, for `workbench train --help`."""
    rows = []
    for name, _, default, accepts in _fields():
        rows.append(f"  {name}={default if default not in (None, []) else ''}" + (f"  ({accepts})" if accepts else ""))
    return "config keys (section.key=value) with their defaults:\n" + "\n".join(rows)


# The presets ship inside the package (workbench/presets/NAME.yaml): a new preset is one more YAML file there.
PRESETS_DIR = importlib.resources.files("workbench") / "presets"


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in PRESETS_DIR.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> DistillConfig:
    preset = PRESETS_DIR / f"{name}.yaml"
    if not preset.is_file():
        raise ConfigError(f"preset {name!r} does not exist; available: {', '.join(preset_names())}")
    return DistillConfig.from_yaml(preset.read_text(encoding="utf-8"))
