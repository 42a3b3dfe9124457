"""Capture and compare attention maps of a teacher and a student on one text.

    teacher_maps = capture_attention(teacher, tokenizer, "The king said ...", max_tokens=48)
    teacher_maps.maps[layer]          # [H, T, T] float32 on the CPU, row = query position, column = key position
    comparison = compare_attention(teacher, t_tok, student, s_tok, text, strategy="uniform")
    comparison.js                     # [pairs, heads] Jensen-Shannon divergence (bits) between mapped maps
    comparison.pair_maps(0, head=None)  # head-averaged teacher, student and |difference| maps of the first pair

Attention probabilities only exist with eager attention: load the models with `attn_implementation="eager"`
(`ModelPool.get(spec, attn_implementation="eager")`). Long texts are cut to `max_tokens` and the capture carries a
note saying so. When the two models have different head counts the larger side's heads are averaged in
consecutive groups (as grouped-query attention groups them) so the per-head comparison has one count; when the
counts do not divide, both sides are head-averaged. Layer pairs come from `workbench.engine.mapping.resolve_mapping`;
pairs with "emb" have no attention and are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from workbench.engine.mapping import resolve_mapping
from workbench.errors import UserError
from workbench.models.vocab import visible_token

DEFAULT_TEXT = (
    "The old king walked into the garden and said to his son: the light of the morning is good, "
    "and the water of the land will give us life for many years."
)
DEFAULT_MAX_TOKENS = 48
MAX_TOKENS_LIMIT = 256


@dataclass
class AttentionMaps:
    """Attention probabilities of every layer for one text."""

    token_ids: list[int]
    tokens: list[str]
    maps: list[torch.Tensor]  # per layer: [H, T, T]
    note: str | None = None

    @property
    def num_layers(self) -> int:
        return len(self.maps)

    @property
    def num_heads(self) -> list[int]:
        return [m.shape[0] for m in self.maps]


def tokenize_capped(tokenizer, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[list[int], str | None]:
    """Token ids of `text`, cut to `max_tokens`, and a note when the text was cut."""
    if not text or not text.strip():
        raise UserError("attention text is empty; type a sentence or two (or use the default sample)")
    if not 2 <= int(max_tokens) <= MAX_TOKENS_LIMIT:
        raise UserError(f"max tokens must be an integer in [2, {MAX_TOKENS_LIMIT}], got {max_tokens!r}")
    ids = tokenizer(text)["input_ids"]
    note = None
    if len(ids) > max_tokens:
        note = f"The text has {len(ids)} tokens; the maps show the first {int(max_tokens)}."
        ids = ids[: int(max_tokens)]
    if len(ids) < 2:
        raise UserError("attention text must have at least 2 tokens")
    return list(ids), note


@torch.no_grad()
def capture_attention(
    model, tokenizer, text: str | None = None, *, max_tokens: int = DEFAULT_MAX_TOKENS, token_ids: list[int] | None = None
) -> AttentionMaps:
    """Run the model once on `text` (or `token_ids`) and return every layer's attention map [H, T, T]."""
    note = None
    if token_ids is None:
        token_ids, note = tokenize_capped(tokenizer, text or "", max_tokens)
    device = next(model.parameters()).device
    input_ids = torch.tensor([token_ids], device=device)
    outputs = model(input_ids=input_ids, output_attentions=True, use_cache=False)
    attentions = outputs.attentions
    if not attentions or any(a is None for a in attentions):
        impl = getattr(model.config, "_attn_implementation", "unknown")
        raise UserError(
            f"the model returned no attention maps ({impl} attention); load it with attn_implementation='eager'"
        )
    maps = [a[0].detach().float().cpu() for a in attentions]  # [H, T, T]
    tokens = [f"{i} {visible_token(t)}" for i, t in enumerate(tokenizer.convert_ids_to_tokens(token_ids))]
    return AttentionMaps(token_ids=list(token_ids), tokens=tokens, maps=maps, note=note)


def _group_heads(maps: torch.Tensor, groups: int) -> torch.Tensor:
    """[H, T, T] -> [groups, T, T], averaging consecutive heads."""
    heads = maps.shape[0]
    return maps.reshape(groups, heads // groups, *maps.shape[1:]).mean(dim=1)


def align_heads(student_map: torch.Tensor, teacher_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str | None]:
    """Bring [Hs, T, T] and [Ht, T, T] to one head count; returns both and a note when heads were merged."""
    hs, ht = student_map.shape[0], teacher_map.shape[0]
    if hs == ht:
        return student_map, teacher_map, None
    if ht % hs == 0:
        return student_map, _group_heads(teacher_map, hs), f"teacher heads averaged in groups of {ht // hs}"
    if hs % ht == 0:
        return _group_heads(student_map, ht), teacher_map, f"student heads averaged in groups of {hs // ht}"
    note = f"head counts {hs} and {ht} do not divide: both sides head-averaged"
    return student_map.mean(0, keepdim=True), teacher_map.mean(0, keepdim=True), note


def _xlogy_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return torch.where(p > 0, p * (torch.log2(p.clamp_min(1e-30)) - torch.log2(q.clamp_min(1e-30))), 0.0)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in bits (0..1) between distributions along the last dim: [..., K] -> [...]."""
    p, q = p.double(), q.double()
    m = 0.5 * (p + q)
    return (0.5 * _xlogy_bits(p, m).sum(-1) + 0.5 * _xlogy_bits(q, m).sum(-1)).clamp_min(0.0).float()


def entropy_bits(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits along the last dim: [..., K] -> [...]."""
    p = p.double()
    return (-torch.where(p > 0, p * torch.log2(p.clamp_min(1e-30)), 0.0).sum(-1)).float()


def head_js(student_map: torch.Tensor, teacher_map: torch.Tensor) -> torch.Tensor:
    """Per-head JS divergence, averaged over query rows 1..T-1 (row 0 attends to itself only): [H]."""
    return js_divergence(student_map[:, 1:], teacher_map[:, 1:]).mean(-1)


def head_entropy(maps: torch.Tensor) -> torch.Tensor:
    """Per-head attention entropy in bits, averaged over query rows 1..T-1: [H]."""
    return entropy_bits(maps[:, 1:]).mean(-1)


@dataclass
class AttentionComparison:
    """Teacher and student maps of one text, the mapped layer pairs, and per-pair/per-head summaries."""

    tokens: list[str]
    pairs: list[tuple[int, int]]
    teacher: AttentionMaps
    student: AttentionMaps
    js: torch.Tensor  # [P, H'] after head alignment
    teacher_entropy: torch.Tensor  # [P, Ht]
    student_entropy: torch.Tensor  # [P, Hs]
    notes: list[str] = field(default_factory=list)

    @property
    def pair_labels(self) -> list[str]:
        return [f"student {s} ↔ teacher {t}" for s, t in self.pairs]

    @property
    def aligned_heads(self) -> int:
        return int(self.js.shape[1])

    def pair_maps(self, pair_index: int, head: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(teacher, student, |teacher - student|) maps [T, T] of one pair, head-averaged or for an aligned head."""
        if not 0 <= pair_index < len(self.pairs):
            raise UserError(f"layer pair must be in 0..{len(self.pairs) - 1}, got {pair_index}")
        s, t = self.pairs[pair_index]
        student_map, teacher_map, _ = align_heads(self.student.maps[s], self.teacher.maps[t])
        if head is None:
            teacher_2d, student_2d = teacher_map.mean(0), student_map.mean(0)
        else:
            if not 0 <= head < student_map.shape[0]:
                raise UserError(f"head must be in 0..{student_map.shape[0] - 1} for this pair, got {head}")
            teacher_2d, student_2d = teacher_map[head], student_map[head]
        return teacher_2d, student_2d, (teacher_2d - student_2d).abs()

    def summary(self) -> dict:
        """Plain numbers for tables and JSON: mean JS and entropies per pair."""
        return {
            "tokens": len(self.tokens),
            "pairs": [
                {
                    "student": s,
                    "teacher": t,
                    "js_mean": float(self.js[i].mean()),
                    "teacher_entropy_mean": float(self.teacher_entropy[i].mean()),
                    "student_entropy_mean": float(self.student_entropy[i].mean()),
                }
                for i, (s, t) in enumerate(self.pairs)
            ],
            "notes": self.notes,
        }


def _same_tokens(teacher_tokenizer, student_tokenizer, token_ids: list[int], text: str) -> None:
    student_ids = student_tokenizer(text)["input_ids"][: len(token_ids)]
    if list(student_ids) != list(token_ids):
        raise UserError(
            "teacher and student tokenize the text differently, so their attention maps cannot be compared "
            "position by position; pick a student with the teacher's tokenizer"
        )


def compare_attention(
    teacher,
    teacher_tokenizer,
    student,
    student_tokenizer,
    text: str,
    *,
    strategy: str = "uniform",
    custom_pairs: list[str] | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    source: list[int] | None = None,
) -> AttentionComparison:
    """Capture both models on the same tokens and compare every mapped layer pair (emb pairs skipped)."""
    token_ids, cap_note = tokenize_capped(teacher_tokenizer, text, max_tokens)
    _same_tokens(teacher_tokenizer, student_tokenizer, token_ids, text)
    teacher_maps = capture_attention(teacher, teacher_tokenizer, token_ids=token_ids)
    student_maps = capture_attention(student, student_tokenizer, token_ids=token_ids)
    mapping = resolve_mapping(strategy, custom_pairs, student_maps.num_layers, teacher_maps.num_layers, source)
    pairs = [(int(s), int(t)) for s, t in mapping if s != "emb" and t != "emb"]
    notes = [cap_note] if cap_note else []
    if len(pairs) < len(mapping):
        notes.append("pairs with 'emb' have no attention map and are not shown")
    if not pairs:
        raise UserError("the layer mapping has no decoder-layer pairs to compare (only emb:emb)")
    js_rows, head_notes = [], set()
    for s, t in pairs:
        student_map, teacher_map, note = align_heads(student_maps.maps[s], teacher_maps.maps[t])
        js_rows.append(head_js(student_map, teacher_map))
        if note:
            head_notes.add(note)
    notes.extend(sorted(head_notes))
    return AttentionComparison(
        tokens=teacher_maps.tokens,
        pairs=pairs,
        teacher=teacher_maps,
        student=student_maps,
        js=torch.stack(js_rows),
        teacher_entropy=torch.stack([head_entropy(teacher_maps.maps[t]) for _, t in pairs]),
        student_entropy=torch.stack([head_entropy(student_maps.maps[s]) for s, _ in pairs]),
        notes=notes,
    )


def uniform_entropy_bits(tokens: int) -> float:
    """Mean entropy of a uniform causal map over rows 1..T-1: the upper bound of `head_entropy`."""
    return sum(math.log2(i + 1) for i in range(1, tokens)) / max(tokens - 1, 1)
