"""On-policy batches: sample completions for a micro-batch of prompts, then lay prompt + completion out for scoring.

    completions = sample_completions(student, prompts, Sampling(64, 1.0, 1.0), generator, eos_ids, pad_id)
    batch = completion_batch(prompts, completions, pad_id)   # right-padded ids, targets on completion tokens only

Sampling runs without gradient, batched with left padding and a KV cache (`model.generate`), with its own
`torch.Generator` (through `sampling.SeededSampler`), so a step's samples depend on that generator's state alone;
the trainer keeps the state in its checkpoints. A completion ends at its first end-of-sequence token, which is
kept: whether to stop is part of what the teacher grades. For scoring, each row is laid out again as
[prompt, completion, pad ...] from position 0 (right padding), so no attention mask or position shift is needed
under a causal mask: real tokens never attend to the padding after them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GenerationConfig

from workbench.engine.sampling import SeededSampler


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float
    top_p: float


@dataclass
class TokenBatch:
    """Sequences to score. targets[b, i] is the token at i + 1 where that token is scored, else -100."""

    input_ids: torch.Tensor  # [B, L] int64, right-padded
    targets: torch.Tensor  # [B, L] int64

    @property
    def tokens(self) -> int:
        return int((self.targets != -100).sum())


def is_onpolicy_step(lmbda: float, seed: int, step: int) -> bool:
    """Whether optimizer step `step` samples its completions: a seeded draw per step, so resumes and every process
    agree, and a share `lmbda` of the steps does."""
    if lmbda <= 0.0:
        return False
    if lmbda >= 1.0:
        return True
    draw = torch.rand((), generator=torch.Generator().manual_seed(seed * 1_000_003 + step + 17))
    return bool(draw < lmbda)


def eos_ids(model, tokenizer) -> list[int]:
    """End-of-sequence ids: the model's generation config (one id or several) and the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return sorted(set(ids))


def pad_id(tokenizer) -> int:
    return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)


def left_pad(prompts: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, P] ids and attention mask of prompts padded on the left."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids, mask


def cut_at_eos(tokens: list[int], stop: list[int]) -> list[int]:
    """The tokens up to and including the first end-of-sequence id."""
    for index, token in enumerate(tokens):
        if token in stop:
            return tokens[: index + 1]
    return tokens


@torch.no_grad()
def sample_completions(model, prompts: list[list[int]], sampling: Sampling, generator: torch.Generator,
                       stop: list[int], pad: int) -> list[list[int]]:
    """Sampled completions (token ids, each cut after its first EOS) of `model` for each prompt, in one batch."""
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad)
    was_training = model.training
    model.eval()
    try:
        config = GenerationConfig(max_new_tokens=sampling.max_new_tokens, do_sample=False, eos_token_id=stop,
                                  pad_token_id=pad, use_cache=True)
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
                             logits_processor=[SeededSampler(sampling.temperature, sampling.top_p, generator)])
    finally:
        model.train(was_training)
    new = out[:, ids.shape[1]:].tolist()  # [B, generated]
    return [cut_at_eos(row, stop) for row in new]


def completion_batch(prompts: list[list[int]], completions: list[list[int]], pad: int) -> TokenBatch:
    """Right-padded [prompt, completion] rows with targets on the completion tokens only."""
    lengths = [len(p) + len(c) for p, c in zip(prompts, completions, strict=True)]
    width = max(lengths)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    targets = torch.full((len(prompts), width), -100, dtype=torch.long)
    for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        sequence = torch.tensor(prompt + completion, dtype=torch.long)
        ids[row, : len(sequence)] = sequence
        if completion:  # position i predicts token i + 1: the completion's tokens are predicted from P - 1 on
            targets[row, len(prompt) - 1: len(sequence) - 1] = torch.tensor(completion, dtype=torch.long)
    return TokenBatch(ids, targets)


def clip_prompt(prompt: list[int], max_tokens: int) -> list[int]:
    return prompt[-max_tokens:]
