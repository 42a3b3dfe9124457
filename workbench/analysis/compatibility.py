"""Compatibility card: what a teacher/student pair is made of and whether it can be distilled as is.

`model_summary(spec)` reads only configs (parameters are counted on a weightless "meta" model), so the card of the
built-in pair takes seconds. `compatibility_card(teacher, student, batch, seq_len)` adds tokenizer identity, the parameter
ratio and a training-memory estimate; `format_compatibility` renders either card as text (the CLI and the app share it).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import torch

from workbench.engine.tokenizer_pairing import cross_tokenizer_summary
from workbench.errors import UserError
from workbench.models.derive import format_index_list, parse_spec
from workbench.models.loading import count_parameters, load_config, load_tokenizer, resolve_layers, tokenizer_source
from workbench.models.vocab import PROBE_TEXTS, compare_tokenizers

FLOAT32_BYTES = 4


def _tie_as_configured(model, config) -> None:
    """Tie the output head to the input embedding where the config says so, as loading does.

    `from_config` normally ties them, but transformers' loading contexts (`no_init_weights`, `no_tie_weights`) patch
    `PreTrainedModel` for the whole process: a model loading in another thread (the app's model pool) can leave this
    meta model untied, and its embedding would be counted twice (162.8 M instead of 134.5 M for the built-in
    teacher). Assigning the parameter does not go through the patched methods.
    """
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if not getattr(text_config, "tie_word_embeddings", False):
        return
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    if head is None or embedding is None or head.weight is embedding.weight:
        return
    if head.weight.shape == embedding.weight.shape:
        head.weight = embedding.weight


def model_summary(spec: str, *, trust_remote_code: bool = False) -> dict:
    """Architecture and sizes of the model a spec names, from its config (no weights are read)."""
    from transformers import AutoModelForCausalLM

    parsed = parse_spec(spec)
    config = load_config(parsed, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    _tie_as_configured(model, config)
    heads = config.num_attention_heads
    card = {
        "spec": parsed.text,
        "architecture": (getattr(config, "architectures", None) or [type(model).__name__])[0],
        "model_type": config.model_type,
        "params": count_parameters(model),
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "intermediate": getattr(config, "intermediate_size", None)
        or getattr(config, "n_inner", None)
        or 4 * config.hidden_size,
        "heads": heads,
        "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads,
        "vocab": config.vocab_size,
        "max_positions": getattr(config, "max_position_embeddings", None),
        "derivation": parsed.derivation,
        "kept_layers": None,
    }
    if parsed.derivation == "prune":
        base = load_config(parsed.base, trust_remote_code=trust_remote_code)
        keep = resolve_layers(parsed, base_layers=base.num_hidden_layers, trust_remote_code=trust_remote_code)
        card["kept_layers"] = format_index_list(keep)
        card["base_layers"] = base.num_hidden_layers
        card["pruned"] = _pruned_axes(base, config)
        with torch.device("meta"):
            base_model = AutoModelForCausalLM.from_config(base, trust_remote_code=trust_remote_code)
        card["base_non_embedding"] = count_parameters(base_model)["non_embedding"]
    return card


def _pruned_axes(base, config) -> list[tuple[str, int, int]]:
    """(axis, base size, pruned size) for each axis a prune spec made smaller."""
    axes = [("layers", base.num_hidden_layers, config.num_hidden_layers)]
    for axis, key in (("MLP", "intermediate_size"), ("heads", "num_attention_heads"), ("hidden", "hidden_size")):
        if getattr(base, key, None) is not None:
            axes.append((axis, getattr(base, key), getattr(config, key)))
    return [axis for axis in axes if axis[1] != axis[2]]


def training_memory(teacher: dict, student: dict, batch: int, seq_len: int) -> dict:
    """Rough bytes for one fp32 training step of the student with a frozen teacher (full fine-tuning, AdamW).

    Activations count what each student layer keeps for backward with fused (sdpa) attention: residual, norm
    outputs, q/k/v, attention and MLP projections. Logits count the student's logits, log-probs and their gradient,
    plus the teacher's logits and probabilities; a chunked divergence lowers the last two but not the first.
    """
    tokens = batch * seq_len
    s_params, s_trainable = student["params"]["total"], student["params"]["trainable"]
    kv_width = student["kv_heads"] * student["head_dim"]
    per_layer = tokens * (6 * student["hidden"] + 2 * kv_width + 4 * student["intermediate"])
    estimate = {
        "student_weights": s_params * FLOAT32_BYTES,
        "student_grads": s_trainable * FLOAT32_BYTES,
        "optimizer_states": 2 * s_trainable * FLOAT32_BYTES,
        "teacher_weights": teacher["params"]["total"] * FLOAT32_BYTES,
        "activations": student["layers"] * per_layer * FLOAT32_BYTES,
        "logits": tokens * (3 * student["vocab"] + 2 * teacher["vocab"]) * FLOAT32_BYTES,
    }
    estimate["total"] = sum(estimate.values())
    return estimate


def compatibility_card(
    teacher: str, student: str, batch: int = 8, seq_len: int = 256, *, trust_remote_code: bool = False
) -> dict:
    """Both model cards plus tokenizer identity, parameter ratios and a training-memory estimate."""
    if batch < 1 or seq_len < 1:
        raise UserError(f"batch and seq_len must be >= 1, got batch={batch} seq_len={seq_len}")
    teacher_card = model_summary(teacher, trust_remote_code=trust_remote_code)
    student_card = model_summary(student, trust_remote_code=trust_remote_code)
    teacher_tok = load_tokenizer(teacher, trust_remote_code=trust_remote_code)
    same = tokenizer_source(teacher) == tokenizer_source(student)
    student_tok = teacher_tok if same else load_tokenizer(student, trust_remote_code=trust_remote_code)
    t_params, s_params = teacher_card["params"], student_card["params"]
    tokenizer = compare_tokenizers(teacher_tok, student_tok)
    if not tokenizer["identical"]:
        tokenizer["cross"] = cross_tokenizer_summary(teacher_tok, student_tok, PROBE_TEXTS)
    elif teacher_card["vocab"] != student_card["vocab"]:
        tokenizer["padded"] = {"teacher": teacher_card["vocab"], "student": student_card["vocab"],
                               "real_ids": len(student_tok)}
    return {
        "teacher": teacher_card,
        "student": student_card,
        "tokenizer": tokenizer,
        "param_ratio": s_params["total"] / t_params["total"],
        "non_embedding_ratio": s_params["non_embedding"] / max(t_params["non_embedding"], 1),
        "batch": batch,
        "seq_len": seq_len,
        "memory": training_memory(teacher_card, student_card, batch, seq_len),
    }


def _human(count: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= scale:
            return f"{count / scale:.2f} {suffix}{unit}".rstrip()
    return f"{count:.0f} {unit}".rstrip()


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


@dataclass(frozen=True)
class Row:
    """One labelled line of the card (label already translated); `str()` aligns it for a terminal, `card_html`
    puts it in a table (a browser's monospace font does not draw Korean at exactly two columns)."""

    label: str
    value: str
    indent: int = 2

    def __str__(self) -> str:
        width = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in self.label)
        return " " * self.indent + self.label + " " * max(18 - width, 1) + self.value


def _row(text: Callable[[str], str], label: str, value: str, indent: int = 2) -> Row:
    return Row(text(label), value, indent)


def _format_model(title: str, card: dict, text: Callable[[str], str]) -> list[str | Row]:
    params = card["params"]
    layers = str(card["layers"])
    if card.get("kept_layers"):
        layers += text(" (keeps {kept} of {base})").format(kept=card["kept_layers"], base=card["base_layers"])
    return [
        f"{text(title)}: {card['spec']}",
        _row(text, "architecture", f"{card['architecture']} ({card['model_type']})"),
        _row(text, "parameters", text("{total} total, {trainable} trainable, {non_embedding} non-embedding").format(
            total=_human(params["total"]), trainable=_human(params["trainable"]),
            non_embedding=_human(params["non_embedding"]))),
        _row(text, "layers", layers),
        *_pruned_line(card, text),
        _row(text, "hidden", f"{card['hidden']} (MLP {card['intermediate']})"),
        _row(text, "attention heads", text("{query} query, {kv} key/value (head dim {dim})").format(
            query=card["heads"], kv=card["kv_heads"], dim=card["head_dim"])),
        _row(text, "vocabulary", str(card["vocab"])),
        _row(text, "max positions", str(card["max_positions"])),
    ]


def _pruned_line(card: dict, text: Callable[[str], str]) -> list[Row]:
    if not card.get("pruned"):
        return []
    axes = ", ".join(f"{text(axis)} {before} → {after}" for axis, before, after in card["pruned"])
    share = card["params"]["non_embedding"] / card["base_non_embedding"]
    return [_row(text, "pruned", text("{axes}; non-embedding {before} → {after} ({share} of the base)").format(
        axes=axes, before=_human(card["base_non_embedding"]), after=_human(card["params"]["non_embedding"]),
        share=f"{share:.3f}"))]


def _tokenizer_notes(tok: dict, text: Callable[[str], str]) -> list[str | Row]:
    if "padded" in tok:
        padded = tok["padded"]
        return [_row(text, "logits widths", text(
            "differ (teacher {teacher}, student {student}): distilled over the tokenizer's {real} real ids, the "
            "padding rows are left out").format(teacher=padded["teacher"], student=padded["student"],
                                                real=padded["real_ids"]))]
    if "cross" not in tok:
        return []
    cross = tok["cross"]
    return [
        _row(text, "shared vocabulary", text("{shared} strings: {student_share} of the student's, {teacher_share} of "
                                             "the teacher's").format(shared=cross["shared"],
                                                                     student_share=f"{cross['student_share']:.1%}",
                                                                     teacher_share=f"{cross['teacher_share']:.1%}")),
        _row(text, "token ratio", text("{ratio} teacher tokens per student token on the probe texts; {exact} of "
                                       "student tokens matched by one teacher token").format(
            ratio=f"{cross['teacher_per_student']:.2f}", exact=f"{cross['exact_share']:.1%}")),
        _row(text, "methods", text("logit KD across tokenizers (loss.cross_tokenizer: aligned, the default, or uld) "
                                   "and CE apply;")),
        Row("", text("hidden-state and attention terms and the teacher cache need one tokenizer")),
    ]


MEMORY_ROWS = (("student_weights", "student weights"), ("student_grads", "student grads"),
               ("optimizer_states", "optimizer states"), ("teacher_weights", "teacher weights"),
               ("activations", "activations"), ("logits", "logits"))


def format_compatibility(card: dict, text: Callable[[str], str] = str) -> str:
    """Text rendering of a `model_summary` or a `compatibility_card`; `text` translates its words (the app's Korean)."""
    return "\n".join(str(line) for line in card_lines(card, text))


def card_html(card: dict, text: Callable[[str], str] = str) -> str:
    """The same lines as a table (the app): headings across both columns, each row's label in its own cell."""
    cells = []
    for line in card_lines(card, text):
        if isinstance(line, Row):
            pad = f' style="padding-left:{line.indent * 0.5:g}em"' if line.indent > 2 else ""
            cells.append(f"<tr><td{pad}>{html.escape(line.label)}</td><td>{html.escape(line.value)}</td></tr>")
        elif line:
            cells.append(f'<tr><th colspan="2">{html.escape(line)}</th></tr>')
    return f'<table class="kd-card">{"".join(cells)}</table>'


def card_lines(card: dict, text: Callable[[str], str] = str) -> list[str | Row]:
    """The card as headings (str) and labelled rows (Row), in order; "" separates the sections."""
    if "teacher" not in card:
        return _format_model("model", card, text)
    lines = _format_model("teacher", card["teacher"], text) + [""]
    lines += _format_model("student", card["student"], text) + ["", text("pair")]
    tok = card["tokenizer"]
    same = text("identical (same vocabulary, same ids for probe texts)")
    lines.append(_row(text, "tokenizers", same if tok["identical"] else text("DIFFERENT: {problem}").format(
        problem=tok["problem"])))
    lines += _tokenizer_notes(tok, text)
    lines.append(_row(text, "parameter ratio", text("{total} total, {non_embedding} non-embedding (student / teacher)")
                      .format(total=f"{card['param_ratio']:.3f}", non_embedding=f"{card['non_embedding_ratio']:.3f}")))
    memory = card["memory"]
    lines.append(_row(text, "training memory", text("~{total} for batch {batch} x {seq_len} tokens (fp32, AdamW)")
                      .format(total=_gib(memory["total"]), batch=card["batch"], seq_len=card["seq_len"])))
    lines += [_row(text, label, _gib(memory[key]), indent=4) for key, label in MEMORY_ROWS]
    return lines


def pruning_candidates(teacher: str, layers: int) -> list[str]:
    """Depth-pruned students of `teacher` worth comparing: even, contiguous drops, importance, first/last layers."""
    keep = (2 * layers - 1) // 3  # under two thirds of the blocks: with the final norm, 2L/3 blocks are just over
    short = layers // 2
    specs = [teacher, f"{teacher}?prune=even&layers={keep}", f"{teacher}?prune=importance&layers={keep}"]
    block = layers - keep
    for start in sorted(
        {1, (layers - block) // 4, (layers - block) // 2, 3 * (layers - block) // 4, layers - block - 1}
    ):
        specs.append(f"{teacher}?prune=drop&block={start}-{start + block - 1}")
    specs += [
        f"{teacher}?prune=importance&layers={short}",
        f"{teacher}?prune=keep&layers=0-{short - 2},{layers - 1}",
        f"{teacher}?prune=keep&layers=0-{keep - 1}",
    ]
    return list(dict.fromkeys(specs))


def rank_pruning(
    teacher: str, specs: list[str], val_ids: torch.Tensor, *, trust_remote_code: bool = False
) -> list[dict]:
    """Undistilled validation perplexity of each spec on `val_ids` [N, T], best first (teacher included as given).

    Rows: spec, kept layer list, layers, non-embedding parameters and their share of the teacher's, perplexity.
    """
    from workbench.models.derive import model_perplexity
    from workbench.models.loading import load_model, num_layers

    teacher_non_emb = model_summary(teacher, trust_remote_code=trust_remote_code)["params"]["non_embedding"]
    rows = []
    for spec in specs:
        model = load_model(spec, trust_remote_code=trust_remote_code)
        parsed = parse_spec(spec)
        kept = None
        if parsed.derivation == "prune":
            base_layers = load_config(parsed.base, trust_remote_code=trust_remote_code).num_hidden_layers
            kept = format_index_list(resolve_layers(parsed, base_layers=base_layers))
        non_emb = count_parameters(model)["non_embedding"]
        rows.append(
            {
                "spec": spec,
                "kept_layers": kept,
                "layers": num_layers(model),
                "non_embedding": non_emb,
                "share": non_emb / teacher_non_emb,
                "perplexity": model_perplexity(model, val_ids),
            }
        )
        del model
    return sorted(rows, key=lambda row: row["perplexity"])


def format_ranking(rows: list[dict]) -> str:
    """A Markdown table of `rank_pruning` rows."""
    lines = ["| spec | kept layers | layers | non-emb params (share) | val ppl |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| `{row['spec']}` | {row['kept_layers'] or 'all'} | {row['layers']} | "
            f"{_human(row['non_embedding'])} ({row['share']:.2f}) | {row['perplexity']:,.1f} |"
        )
    return "\n".join(lines)
