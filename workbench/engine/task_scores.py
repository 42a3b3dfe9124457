"""Task scores: labels scored through the model's next-token distribution, and QA answers by exact match / token F1.

    scores = label_log_probs(model, prompt_ids, label_ids)       # [N, L] float64: log p(label | prompt), summed
    free = label_log_probs(model, content_free_ids, label_ids)   # the same question about "N/A", "" and "[MASK]"
    accuracy = float((calibrated(scores, free).argmax(1) == gold).double().mean())
    token_f1("the Gospel of John", "John")                       # 0.5

A label is scored as the sum of the log-probabilities of its tokens after the prompt (teacher forcing), so a
model is never asked to write free text that string matching would have to parse; the predicted label is the one
with the highest score. `calibrated` first subtracts the model's mean score of each label on content-free inputs
(contextual calibration, Zhao et al. 2021, "Calibrate Before Use"): a small instruct model puts most of its mass
on one label whatever the text (the built-in teacher answers "story" to every request, 37.5% on 40 items of
builtin:chat-kind, 85% calibrated). QA answers are greedy generations, compared after lower-casing and dropping punctuation.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import torch
import torch.nn.functional as F

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


@torch.no_grad()
def label_log_probs(model, prompt_ids: list[list[int]], label_ids: list[list[int]], pad: int = 0,
                    batch_rows: int = 16) -> torch.Tensor:
    """[N, L] float64: Σ_t log p(label_l[t] | prompt_n, label_l[:t]) for each prompt n and label l.

    Each (prompt, label) pair is one right-padded row [prompt, label, pad ...] (no attention mask needed under a
    causal mask: real tokens never attend to the padding after them); the log-softmax is taken in float32 on the
    label positions only."""
    if all(len(label) == 1 for label in label_ids):
        return _one_token_label_log_probs(model, prompt_ids, [label[0] for label in label_ids], pad, batch_rows)
    device = next(model.parameters()).device
    pairs = [(n, lab) for n in range(len(prompt_ids)) for lab in range(len(label_ids))]
    scores = torch.zeros(len(prompt_ids), len(label_ids), dtype=torch.float64)
    for first in range(0, len(pairs), batch_rows):
        chunk = pairs[first:first + batch_rows]
        rows = [prompt_ids[n] + label_ids[lab] for n, lab in chunk]
        ids = torch.full((len(rows), max(map(len, rows))), pad, dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, :len(row)] = torch.tensor(row)
        logits = model(input_ids=ids.to(device), use_cache=False).logits  # [R, T, V]
        for r, (n, lab) in enumerate(chunk):
            start, labels = len(prompt_ids[n]), torch.tensor(label_ids[lab], device=device)
            log_probs = F.log_softmax(logits[r, start - 1:start - 1 + len(labels)].float(), dim=-1)  # [len, V]
            scores[n, lab] = float(log_probs.gather(1, labels.unsqueeze(1)).sum())
    return scores


def _one_token_label_log_probs(model, prompt_ids: list[list[int]], labels: list[int], pad: int,
                               batch_rows: int) -> torch.Tensor:
    """`label_log_probs` when every label is one token: one row per prompt, every label read at its last position
    (the same numbers as a row per label: under the causal mask that position sees the prompt alone)."""
    device = next(model.parameters()).device
    wanted = torch.tensor(labels, device=device)
    scores = torch.zeros(len(prompt_ids), len(labels), dtype=torch.float64)
    for first in range(0, len(prompt_ids), batch_rows):
        chunk = prompt_ids[first:first + batch_rows]
        ids = torch.full((len(chunk), max(map(len, chunk))), pad, dtype=torch.long)
        for r, row in enumerate(chunk):
            ids[r, :len(row)] = torch.tensor(row)
        logits = model(input_ids=ids.to(device), use_cache=False).logits  # [R, T, V]
        last = logits[torch.arange(len(chunk), device=device), torch.tensor([len(p) - 1 for p in chunk], device=device)]
        scores[first:first + len(chunk)] = F.log_softmax(last.float(), dim=-1)[:, wanted].double().cpu()
    return scores


def calibrated(scores: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Label scores [N, L] less the mean score of each label on content-free inputs [M, L]."""
    return scores - content_free.mean(0, keepdim=True)


def normalize_answer(text: str) -> list[str]:
    """Lower-cased words without punctuation (SQuAD-style, without its article removal)."""
    return _PUNCTUATION.sub(" ", text.lower()).split()


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of word precision and recall between a prediction and the gold answer (0 when either is empty)."""
    predicted, wanted = normalize_answer(prediction), normalize_answer(gold)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


@torch.no_grad()
def greedy_answers(model, prompt_ids: list[list[int]], stop: list[int], pad: int, max_new_tokens: int = 16,
                   batch_rows: int = 16) -> list[list[int]]:
    """Greedy completions (token ids, cut before the first stop id) of each prompt, left-padded in batches."""
    device = next(model.parameters()).device
    answers = []
    for first in range(0, len(prompt_ids), batch_rows):
        prompts = prompt_ids[first:first + batch_rows]
        width = max(map(len, prompts))
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, prompt in enumerate(prompts):
            ids[r, width - len(prompt):], mask[r, width - len(prompt):] = torch.tensor(prompt), 1
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=stop, pad_token_id=pad)
        for row in out[:, width:].tolist():
            cut = next((i for i, token in enumerate(row) if token in stop), len(row))
            answers.append(row[:cut])
    return answers
