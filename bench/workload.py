"""The workload every training comparison shares: the models, the packed batches, the optimizer and the schedule.

The plain reference loop and the TRL run read the same first `steps × batch_size` packed training sequences in
order, start from the same student weights and use the same AdamW + cosine schedule (no warmup) and clipping, so
their loss curves can be compared step by step.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import torch

from bench.common import BenchSettings


def load_pair(settings: BenchSettings, dtype: torch.dtype = torch.float32, attn: str | None = "sdpa"):
    """(teacher, student, tokenizer): the teacher frozen in eval mode, the student in train mode."""
    from workbench.models.loading import load_model, load_tokenizer

    teacher = load_model(settings.teacher, dtype=dtype, device=settings.device, attn_implementation=attn)
    student = load_model(settings.student, dtype=dtype, device=settings.device, attn_implementation=attn)
    teacher.eval().requires_grad_(False)
    student.train()
    return teacher, student, load_tokenizer(settings.teacher)


def data_config(settings: BenchSettings, seq_len: int | None = None, sequences: int | None = None):
    from workbench.config import DataConfig

    return DataConfig(dataset=settings.dataset, seq_len=seq_len or settings.seq_len, max_sequences=sequences)


def train_rows(settings: BenchSettings, tokenizer, count: int) -> torch.Tensor:
    """The `count` packed training sequences [count, seq_len] the workbench trainer reads first, in its order
    (seed 0, one process, no accumulation), so every tool sees the same batches at the same steps."""
    from workbench.data.splits import build_splits
    from workbench.engine.step import step_indices

    rows = build_splits(data_config(settings), tokenizer).train
    order = SimpleNamespace(train=SimpleNamespace(batch_size=settings.batch_size, grad_accum=1, seed=0))
    steps = math.ceil(count / settings.batch_size)
    indices = torch.cat([step_indices(order, rows.shape[0], step, 0, 0, 1) for step in range(steps)])
    return rows[indices[:count]].clone()


def cosine_lambda(total: int):
    """Cosine decay from the peak to 0 over `total` steps, no warmup: HF's cosine schedule and the workbench's
    are then the same curve (with warmup they differ: HF starts at lr 0, the workbench at lr / (warmup + 1)), so
    the three tools' loss curves can be compared step by step."""

    def factor(step: int) -> float:
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * step / float(max(1, total)))))

    return factor


def forward_kl_full(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Plain full-vocabulary float32 KL(p_teacher ‖ q_student) at T=1, mean over positions [B, T-1] (no chunking)."""
    student_log_probs = torch.log_softmax(student_logits[:, :-1].float(), dim=-1)
    teacher_log_probs = torch.log_softmax(teacher_logits[:, :-1].float(), dim=-1)
    per_position = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(-1)
    return per_position.mean()


def flops_per_token(model) -> dict[str, Any]:
    """Forward matmul FLOPs per generated token: 2 × (non-embedding weights + output head); attention over the
    context is left out (short contexts), so it is the ratio of per-token compute."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    head = config.vocab_size * config.hidden_size
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    tied = getattr(config, "tie_word_embeddings", False)
    non_embedding = total - embedding - (0 if tied else head)
    return {"non_embedding_params": non_embedding, "head_params": head, "flops": 2 * (non_embedding + head)}
