"""The sections about how the student is trained: LoRA, the training loop, on-policy sampling and the run's name."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from workbench.config.fields import REPORTERS, RUN_NAME_PATTERN, Range, Section, require, setting
from workbench.errors import Message

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
CudaIndex = Annotated[str, Field(pattern=r"^cuda:\d+$")]


class LoraConfig(Section):
    where = "lora."

    enabled: bool = setting(False, "Train LoRA adapters on the student instead of all weights.")
    r: int = setting(16, "LoRA rank: size of the low-rank update.", bounds=Range(1, 1024, slider=(1, 256, 1)))
    alpha: float = setting(32.0, "LoRA scaling numerator: the update is scaled by alpha / r.",
                           bounds=Range(0.0, 4096.0, low_open=True))
    dropout: float = setting(0.05, "Dropout on the LoRA input.",
                             bounds=Range(0.0, 1.0, high_open=True, slider=(0.0, 0.5, 0.01)))
    target_modules: list[str] = setting(
        [], "Module names to adapt (e.g. q_proj, v_proj); empty picks defaults for the architecture.")


class TrainConfig(Section):
    where = "train."

    steps: int = setting(200, "Optimizer steps.", bounds=Range(1, 10_000_000))
    batch_size: int = setting(4, "Sequences per micro-batch on each process.", bounds=Range(1, 4096))
    grad_accum: int = setting(1, "Micro-batches accumulated per optimizer step.", bounds=Range(1, 4096))
    lr: float = setting(1e-4, "Peak learning rate of AdamW.", bounds=Range(0.0, 1.0, low_open=True))
    warmup_steps: int = setting(
        10, "Linear warmup steps before cosine decay; more than train.steps warms up over all.",
        bounds=Range(0, 10_000_000))
    weight_decay: float = setting(0.0, "AdamW weight decay.", bounds=Range(0.0, 1.0))
    max_grad_norm: float = setting(1.0, "Gradient clipping norm; 0 turns clipping off.", bounds=Range(0.0))
    eval_every: int = setting(50, "Evaluate on the validation split every N steps.", bounds=Range(1))
    eval_batches: int = setting(8, "Validation micro-batches per evaluation.", bounds=Range(1))
    save_every: int = setting(100, "Write a checkpoint every N steps (and always on stop).", bounds=Range(1))
    log_every: int = setting(1, "Write a train metrics row every N steps.", bounds=Range(1))
    seed: int = setting(0, "Seed of initialisation, dropout and data order.")
    device: Literal[DEVICES] | CudaIndex = setting("auto", "auto, cpu, cuda or cuda:N.", also="cuda:N")
    precision: Literal[PRECISIONS] = setting("auto", "fp32, bf16, or auto (bf16 on GPU, fp32 on CPU).")
    teacher_cache: str | None = setting(
        None, "Folder of a teacher cache from `workbench cache-teacher`; skips the teacher.")
    freeze_embeddings: bool = setting(False, "Freeze the student's token embedding and output head.")
    gradient_checkpointing: bool = setting(False, "Recompute activations to save memory.")
    compile: bool = setting(False, "torch.compile the student (slow start, faster steps).")
    heal_init: bool = setting(
        False, "Before training, refit the layers around each gap of a student made by dropping teacher layers, by "
        "least squares toward the teacher's hidden states (student must be '<teacher>?prune=...').")
    heal_sequences: int = setting(64, "Training sequences the heal_init fit reads.", bounds=Range(1, 100_000))
    gen_eval: bool = setting(
        True, "At each evaluation, sample answers to the held-out prompts and score them against the teacher "
        "(generation quality; prompt/answer data only).")
    max_minutes: float | None = setting(
        None, "End the run this many minutes after it starts (loading and healing count; it still evaluates and "
        "saves the student, as finished); empty trains all train.steps.", bounds=Range(0.0, low_open=True))
    gen_eval_every: int = setting(
        0, "Score generation quality every N steps (and at the last step); 0 does it with every evaluation "
        "(train.eval_every).", bounds=Range(0))
    report_to: list[Literal[REPORTERS]] = setting(
        [], "Experiment trackers that also get the metrics, beside metrics.jsonl (a list; empty for none). "
        "tensorboard writes under the run's tensorboard/ folder.")


class OnPolicyConfig(Section):
    where = "onpolicy."

    lmbda: float = setting(
        0.0, "Share of training steps whose completions are sampled (on-policy) instead of read from the data; 0 "
        "trains on the data only (off-policy), 1 on samples only.", bounds=Range(0.0, 1.0))
    seq_kd: bool = setting(
        False, "Sample the completions from the teacher instead of the student (sequence-level KD).")
    max_new_tokens: int = setting(64, "Longest sampled completion, in tokens.", bounds=Range(1, 4096))
    temperature: float = setting(1.0, "Sampling temperature of the completions.",
                                 bounds=Range(0.0, 5.0, low_open=True))
    top_p: float = setting(
        1.0, "Nucleus sampling: keep the smallest set of tokens reaching this probability; 1 keeps all.",
        bounds=Range(0.0, 1.0, low_open=True))
    max_prompt_tokens: int = setting(
        256, "Prompts longer than this keep only their last tokens when sampled.", bounds=Range(8, 131072))
    teacher_prompts: int = setting(
        0, "Before training, the teacher writes this many user requests of its own (from its chat template's user "
        "turn, as in Magpie); on-policy steps draw from them and the data's prompts. 0 uses the data's prompts only.",
        bounds=Range(0, 100000))


class RunConfig(Section):
    where = "run."

    name: str | None = setting(None, "Run name (letters, digits, '_', '-', '.'); empty makes one from the time.")
    runs_dir: str = setting("runs", "Folder holding one sub-folder per run.")

    @model_validator(mode="after")
    def _name_is_a_folder(self) -> RunConfig:
        require(self.name is None or bool(RUN_NAME_PATTERN.match(self.name)), "run.name",
                Message("1-64 letters, digits, '_', '-' or '.', starting with a letter or digit (no path separators)"),
                self.name)
        return self
