"""What a student generates, measured against its teacher: the numbers that teacher-forced perplexity cannot show.

    quality = generation_quality(student, teacher, tokenizer, heldout_examples, label="24 held-out prompts of ...")
    quality.numbers    # {"gen_rkl", "gen_teacher_nll", "gen_rep4", "gen_empty", "gen_len", "gen_prompts", ...}
    token_disagreement(student, teacher, tokenizer, "Why is the sky blue?", "Because ...")  # [{piece, rkl}, ...]

The student answers each held-out prompt by sampling (EVAL_SAMPLING: T 0.7, top-p 0.9, 64 new tokens, a fixed
seed), then both models score that answer:
- gen_rkl: sequence-level reverse KL on the student's own samples, the mean over answer tokens of
  log p_student(y) − log p_teacher(y) (nats per token; 0 for the teacher itself). The samples are drawn at T 0.7 /
  top-p 0.9, so this is the protocol's estimate, not the exact KL of the T = 1 distributions;
- gen_teacher_nll: the teacher's negative log-likelihood per answer token (how plausible the teacher finds it);
- gen_rep4: the share of the answers' token 4-grams that repeat an earlier 4-gram of the same answer (loops);
- gen_empty: the share of answers with fewer than 3 tokens (the end-of-turn token not counted);
- gen_len: the mean answer length in tokens (end-of-turn not counted).
Answer tokens for the two log-likelihood numbers include the end-of-turn token when the model produced it: when to
stop is part of the answer. Per-token disagreement is the full reverse KL(q‖p) between the two next-token
distributions at each answer token, at T = 1.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from workbench.engine.losses import kl_rows
from workbench.engine.onpolicy import Sampling, TokenBatch, completion_batch, eos_ids, pad_id, sample_completions
from workbench.measured import GENERATION, measured

EVAL_SAMPLING = Sampling(max_new_tokens=64, temperature=0.7, top_p=0.9)
EVAL_SEED = 1234
EMPTY_BELOW = 3  # answers of fewer tokens count as empty
SCORE_ROWS = 4  # rows scored per forward pass (bounds the [rows, L, V] logits held at once)
GEN_KEYS = ("gen_rkl", "gen_teacher_nll", "gen_rep4", "gen_empty", "gen_len")


@dataclass
class GenQuality:
    gen_rkl: float
    gen_teacher_nll: float
    gen_rep4: float
    gen_empty: float
    gen_len: float
    gen_prompts: int
    measured_on: str

    def to_dict(self) -> dict:
        return asdict(self)


def protocol_label(count: int, source: str, sampling: Sampling = EVAL_SAMPLING) -> str:
    """What the numbers were measured on, in one line."""
    return measured(GENERATION, count=count, source=source, temperature=float(sampling.temperature),
                    top_p=float(sampling.top_p), new_tokens=sampling.max_new_tokens)


def repeated_ngram_share(sequences: list[list[int]], n: int = 4) -> float:
    """Share of the n-grams (over all sequences) that repeat an earlier n-gram of the same sequence."""
    total = repeats = 0
    for tokens in sequences:
        seen: set[tuple[int, ...]] = set()
        for start in range(len(tokens) - n + 1):
            gram = tuple(tokens[start:start + n])
            total += 1
            repeats += gram in seen
            seen.add(gram)
    return repeats / total if total else 0.0


def strip_stop(tokens: list[int], stop: list[int]) -> list[int]:
    return tokens[:-1] if tokens and tokens[-1] in stop else tokens


def common_log_probs(student_rows: torch.Tensor, teacher_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 log-softmax of [n, V] student and teacher logits over their common width (padded vocabularies: the
    tokenizer's ids come first), on the student's device."""
    width = min(student_rows.shape[-1], teacher_rows.shape[-1])
    log_q = F.log_softmax(student_rows[..., :width].float(), dim=-1)
    return log_q, F.log_softmax(teacher_rows[..., :width].float(), dim=-1).to(log_q.device)


def reverse_kl_rows(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """KL(q‖p) per row of [n, V] log-probabilities: the per-token disagreement shown in the app."""
    return kl_rows(log_q, log_p).clamp(min=0)


def _forward_logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    return model(input_ids=input_ids.to(device), use_cache=False).logits


@torch.no_grad()
def score_tokens(student, teacher, batch: TokenBatch, autocast=contextlib.nullcontext) -> list[dict[str, list[float]]]:
    """Per row: the student's and the teacher's log-probability of each target token and the per-token reverse
    KL(q‖p) at T = 1 there. `teacher` may be None (student numbers only)."""
    rows = []
    for first in range(0, batch.input_ids.shape[0], SCORE_ROWS):
        ids = batch.input_ids[first:first + SCORE_ROWS]
        targets = batch.targets[first:first + SCORE_ROWS]
        with autocast():
            s_logits = _forward_logits(student, ids)
            t_logits = _forward_logits(teacher, ids) if teacher is not None else None
        for row in range(ids.shape[0]):
            where = (targets[row] != -100).nonzero().squeeze(1)
            y = targets[row, where].to(s_logits.device)
            student_rows = s_logits[row, where.to(s_logits.device)]  # [n, V]
            if t_logits is None:
                log_q = F.log_softmax(student_rows.float(), dim=-1)
                rows.append({"student": log_q.gather(-1, y[:, None]).squeeze(-1).tolist()})
                continue
            log_q, log_p = common_log_probs(student_rows, t_logits[row, where.to(t_logits.device)])
            rows.append({"student": log_q.gather(-1, y[:, None]).squeeze(-1).tolist(),
                         "teacher": log_p.gather(-1, y[:, None]).squeeze(-1).tolist(),
                         "rkl": reverse_kl_rows(log_q, log_p).tolist()})
    return rows


def sample_answers(model, tokenizer, prompts: list[list[int]], sampling: Sampling = EVAL_SAMPLING,
                   seed: int = EVAL_SEED, autocast=contextlib.nullcontext) -> list[list[int]]:
    """Answers (token ids, end-of-turn kept when produced) of `model` to each prompt, with a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    with autocast():
        return sample_completions(model, prompts, sampling, generator, eos_ids(model, tokenizer), pad_id(tokenizer))


def quality_of(prompts: list[list[int]], answers: list[list[int]], scores: list[dict], stop: list[int],
               label: str) -> GenQuality:
    """The generation-quality numbers from sampled answers and their per-token scores."""
    tokens = sum(len(s["student"]) for s in scores)
    rkl = sum(a - b for s in scores for a, b in zip(s["student"], s["teacher"], strict=True))
    nll = -sum(b for s in scores for b in s["teacher"])
    bare = [strip_stop(a, stop) for a in answers]
    return GenQuality(
        gen_rkl=rkl / max(tokens, 1), gen_teacher_nll=nll / max(tokens, 1), gen_rep4=repeated_ngram_share(bare),
        gen_empty=sum(len(b) < EMPTY_BELOW for b in bare) / max(len(bare), 1),
        gen_len=sum(len(b) for b in bare) / max(len(bare), 1), gen_prompts=len(prompts), measured_on=label,
    )


def generation_quality(student, teacher, tokenizer, prompts: list[list[int]], label: str, *,
                       sampling: Sampling = EVAL_SAMPLING, seed: int = EVAL_SEED,
                       autocast=contextlib.nullcontext) -> tuple[GenQuality, list[list[int]], list[dict]]:
    """(numbers, the student's answers, per-answer scores) on `prompts` (token ids ending where answers begin)."""
    answers = sample_answers(student, tokenizer, prompts, sampling, seed, autocast)
    scores = score_tokens(student, teacher, completion_batch(prompts, answers, pad_id(tokenizer)), autocast)
    return quality_of(prompts, answers, scores, eos_ids(student, tokenizer), label), answers, scores


def token_pieces(tokenizer, tokens: list[int]) -> list[str]:
    """Each token's own text, for colouring an answer token by token."""
    return [tokenizer.decode([t]) for t in tokens]


def sample_row(tokenizer, prompt: str, answer: list[int], score: dict, step: int, source: str) -> dict:
    """The `sample` metrics row: one answer with each token's reverse KL to the teacher."""
    return {"kind": "sample", "step": step, "source": source, "prompt": prompt,
            "tokens": token_pieces(tokenizer, answer), "rkl": [round(v, 4) for v in score.get("rkl", [])]}


def token_disagreement(student, teacher, tokenizer, prompt: str, answer: str,
                       history: list[dict] | None = None) -> list[dict]:
    """[{piece, rkl}] for each token of `answer` as the student's reply to `prompt` (chat-formatted the way
    training formats it): how far the student's next-token distribution is from the teacher's there."""
    from workbench.data.chat_format import prompt_text

    prompt_ids = tokenizer(prompt_text(tokenizer, prompt, history), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if not answer_ids:
        return []
    (score,) = score_tokens(student, teacher, completion_batch([prompt_ids], [answer_ids], pad_id(tokenizer)))
    return [{"piece": piece, "rkl": value}
            for piece, value in zip(token_pieces(tokenizer, answer_ids), score["rkl"], strict=True)]


def card_generation(teacher, students: list, tokenizer, heldout: list, dataset: str) -> dict:
    """Generation quality of the teacher and each student for the report card: {"models": [numbers per model,
    teacher first], "measured_on", "samples": the first answers of every model}. Held-out prompts of the data when
    it has them, else those of builtin:chat (and the label says so)."""
    from workbench.config import DataConfig
    from workbench.data.splits import build_splits

    if not heldout:
        dataset = "builtin:chat"
        heldout = build_splits(DataConfig(dataset=dataset, seq_len=64), tokenizer).heldout
    prompts = [e.prompt_ids for e in heldout]
    label = protocol_label(len(prompts), dataset)
    models, answers_of = [], []
    for model in [teacher, *students]:
        quality, answers, _ = generation_quality(model, teacher, tokenizer, prompts, label)
        models.append(quality.to_dict())
        answers_of.append(answers)
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True).strip()  # noqa: E731
    samples = [{"prompt": heldout[i].prompt, "answers": [decode(a[i]) for a in answers_of]}
               for i in range(min(3, len(prompts)))]
    return {"models": models, "measured_on": label, "samples": samples}
