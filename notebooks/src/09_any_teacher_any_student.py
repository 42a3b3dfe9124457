# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Any teacher, any student: distillation across tokenizers
#
# Every notebook so far distils a student that reads text with the teacher's own tokenizer: the two models see the
# same tokens at the same positions, and the KD loss compares two distributions over one vocabulary, position by
# position. A student with a tokenizer of its own (smaller, or trained on its own text) breaks both: the text is cut
# into different tokens, so positions no longer pair up, and the two vocabularies are different sets of strings.
#
# This notebook takes the built-in teacher (SmolLM2-135M-Instruct, 49,152 tokens) and a fresh 4-layer student on
# `builtin:bpe-8k`, the 8,192-token byte-level BPE shipped with the workbench, and shows:
#
# - how the two tokenizers cut the same text, and which strings they share;
# - how the workbench aligns the two tokenizations into spans, and what `loss.cross_tokenizer=aligned` and
#   `loss.cross_tokenizer=uld` compare on them;
# - **bits per byte**, the score that compares models whatever their tokenizers;
# - a short training run, CE only against CE + `aligned`, and then the measured gain of `aligned` over CE only,
#   with the data regime it depends on (read from the benchmark's stored results).
#
# Measured runtime on a 2-core CPU: 58 to 96 s when nothing else ran (the stored run: 58 s), 644 s while another notebook executed beside it (load
# average about 4); the last cell prints this run's wall and CPU time. Every sentence below that a printed number can check
# is checked by an `assert` in the cell that prints it.

# %%
import os
import time

NOTEBOOK_STARTED, NOTEBOOK_CPU = time.monotonic(), time.process_time()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import math
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import plotly.graph_objects as go
import torch
from IPython.display import HTML, display
from plotly.subplots import make_subplots

import workbench
from workbench.analysis.alignment_view import alignment_html, alignment_spans
from workbench.analysis.report_card import score_own_tokenizer
from workbench.config import BUILTIN_TEACHER, DataConfig, DistillConfig
from workbench.data.splits import build_splits
from workbench.engine.cross_tokenizer import align_row, aligned_divergence, span_log_probs, uld_distance
from workbench.engine.losses import divergence
from workbench.engine.tokenizer_pairing import CrossTokenizer
from workbench.engine.trainer import train
from workbench.models.bpe import META_FILE, builtin_tokenizer_dir
from workbench.models.loading import count_parameters, load_model, load_tokenizer
from workbench.models.vocab import bits_per_byte, bytes_per_token, row_text
from workbench.runs.sinks import ListSink

torch.manual_seed(0)
WORKDIR = Path(os.environ.get("KD_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="kd-notebook-09-"))
BENCH_DIR = Path(workbench.__file__).resolve().parent.parent / "assets" / "bench"
BENCH = {name: json.loads((BENCH_DIR / f"{name}.json").read_text())
         for name in ("cross-tokenizer", "cross-tokenizer-single-pass")}
STUDENT = f"{BUILTIN_TEACHER}?fresh&layers=4&hidden=256&heads=4&tokenizer=builtin:bpe-8k"  # the benchmark's student

teacher_tokenizer = load_tokenizer(BUILTIN_TEACHER)
student_tokenizer = load_tokenizer(STUDENT)
meta = json.loads((builtin_tokenizer_dir("builtin:bpe-8k") / META_FILE).read_text())
print(f"teacher tokenizer: {len(teacher_tokenizer):,} tokens")
print(f"student tokenizer: {len(student_tokenizer):,} tokens, a {meta['kind']} trained on "
      f"{' and '.join(meta['datasets'])} ({meta['bytes']:,} bytes) by: {meta['command']}")
assert (len(teacher_tokenizer), len(student_tokenizer)) == (49_152, 8_192)

# %% [markdown]
# ## Two tokenizers, one text
#
# A token id means nothing outside its own vocabulary, but every token stands for a string of bytes.
# `workbench.models.vocab.token_bytes` turns each vocabulary into that table (byte-level BPE writes a space as `Ġ`,
# SentencePiece as `▁`; as bytes both are a space), and `shared_vocab` pairs the ids of the strings both hold.

# %%
cross = CrossTokenizer(teacher_tokenizer, student_tokenizer)
SENTENCE = "And God said, Let there be light: and there was light. Photosynthesis converts it."
for name, tokenizer, table in (("teacher", teacher_tokenizer, cross.teacher_table),
                               ("student", student_tokenizer, cross.student_table)):
    ids = tokenizer(SENTENCE, add_special_tokens=False)["input_ids"]
    print(f"{name}: {len(ids)} tokens: " + " | ".join(table[i].decode(errors="replace") for i in ids))

shared = int(cross.shared[0].numel())
teacher_share = shared / len(cross.teacher_table)
print(f"\n{shared:,} strings are in both vocabularies: {cross.vocab_share:.1%} of the student's, "
      f"{teacher_share:.1%} of the teacher's")
student_only = [text for index, text in enumerate(cross.student_table) if text and cross.student_to_teacher[index] < 0]
longest = sorted(student_only, key=len, reverse=True)[:8]
print("longest student strings the teacher does not hold:", [text.decode(errors="replace") for text in longest])
assert 0.6 < cross.vocab_share < 0.8  # "most of the student's strings" (about seven in ten)
assert 0.10 < teacher_share < 0.14  # "about one in eight of the teacher's"
assert all(len(teacher_tokenizer(text.decode(), add_special_tokens=False)["input_ids"]) > 1 for text in longest)

# %% [markdown]
# Most of the student's strings (about seven in ten) are teacher strings too, but they are only about one in eight
# of the teacher's. The longest strings only the student holds are words of its training text (the King James
# Bible) that the teacher spells in several tokens.
#
# The student's tokenizer was trained on the built-in texts, held-out rows included, so it cuts them efficiently.
# Below, the held-out rows of `builtin:kjv` that the benchmark (last section) scores on: the same packed rows of
# student tokens, read back as text.

# %%
settings = BENCH["cross-tokenizer"]["settings"]
data = DataConfig(dataset="builtin:kjv", seq_len=settings["seq_len"], max_sequences=settings["sequences"],
                  val_fraction=settings["val_fraction"])
splits = build_splits(data, student_tokenizer)
val_rows = splits.val  # [rows, seq_len] student token ids
texts = [row_text(row.tolist(), cross.student_table) for row in val_rows]
text_bytes = sum(len(text.encode()) for text in texts)
teacher_tokens = sum(len(teacher_tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
student_tokens = sum(len(student_tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
print(f"{len(texts)} held-out rows of builtin:kjv, {text_bytes:,} bytes of text")
print(f"teacher: {teacher_tokens:,} tokens ({text_bytes / teacher_tokens:.2f} bytes per token)")
print(f"student: {student_tokens:,} tokens ({text_bytes / student_tokens:.2f} bytes per token)")
assert len(teacher_tokenizer) == 6 * len(student_tokenizer) and student_tokens < teacher_tokens

# %% [markdown]
# With a vocabulary six times smaller, the student's tokenizer spells this text in fewer tokens than the teacher's
# general-purpose one: a tokenizer is fitted to the text it was trained on. Per-token numbers such as perplexity
# therefore mean different things on the two sides (see bits per byte below).
#
# ## Aligning the two tokenizations
#
# With two tokenizers the trainer spells each packed student row out as text, lets the teacher tokenize that text,
# and aligns the two token sequences by byte offsets: a **span** closes wherever both sides close a token, so each
# span covers the same text on both sides and the spans tile the text in order. A span that is one token on each
# side is an **exact match** (the same string). `workbench.analysis.alignment_view` draws the spans of a text, as the
# app's Setup tab does under *Tokenizer alignment*: student tokens above, teacher tokens below, exact matches framed
# in green with a ✓.

# %%
SAMPLE = "In the beginning God created the heaven and the earth; his lovingkindness, photosynthesis, naïvely 東京."
view = alignment_spans(teacher_tokenizer, student_tokenizer, SAMPLE)
display(HTML(alignment_html(view)))
for span in view["spans"]:
    if not span["exact"]:
        print(f"student {span['student']}  teacher {span['teacher']}")
for tokenizer, table in ((teacher_tokenizer, cross.teacher_table), (student_tokenizer, cross.student_table)):
    ids = tokenizer(SAMPLE, add_special_tokens=False)["input_ids"]
    assert b"".join(table[i] for i in ids) == SAMPLE.encode()  # each spells the text byte for byte
span_of = {word: next(span for span in view["spans"] if word in "".join(span["teacher"]))
           for word in ("beginning", "lovingkindness", "photosynthesis", "ï")}
assert span_of["beginning"]["exact"]
assert (len(span_of["lovingkindness"]["student"]), len(span_of["lovingkindness"]["teacher"])) == (1, 3)
assert len(span_of["photosynthesis"]["student"]) > len(span_of["photosynthesis"]["teacher"])
assert span_of["ï"]["student"] == ["\\xc3", "\\xaf"] and span_of["ï"]["teacher"] == ["ï"]  # two bytes, one token
assert any("\\x" in piece for span in view["spans"] for piece in span["teacher"])  # the teacher cuts 東京 too

# %% [markdown]
# Both tokenizations spell the text byte for byte (the asserts join them back), and common words are exact matches.
# *Lovingkindness*, frequent in the student's training text, is one student token against three of the teacher's;
# *photosynthesis*, rare there, is the other way round. Byte-level tokenizers may even cut inside a character: the
# student spells *ï* as its two UTF-8 bytes (drawn `\xc3` `\xaf`), the teacher as one token, and both cut the
# Japanese characters into pieces of bytes. Spans close at byte offsets, not at characters, so such a
# span is compared as a whole like any other.
#
# On the benchmark's held-out rows, how the student's tokens fall into spans. `exact_share` is what training logs
# as `eval_exact_share`: the share of the student's predicting positions whose next token is matched exactly.

# %%
KINDS = ("exact match (1 ↔ 1)", "1 student ↔ several teacher", "several student ↔ 1 teacher", "several ↔ several")
student_tokens_by_kind = dict.fromkeys(KINDS, 0)
for row in val_rows:
    aligned = align_row(row.tolist(), cross.student_lengths, cross.student_table, teacher_tokenizer,
                        cross.teacher_lengths)
    s_count = torch.bincount(torch.from_numpy(aligned.student_span), minlength=aligned.spans)
    t_count = torch.bincount(torch.from_numpy(aligned.teacher_span), minlength=aligned.spans)
    for s, t in zip(s_count.tolist(), t_count.tolist(), strict=True):
        student_tokens_by_kind[KINDS[(s > 1) * 2 + (t > 1)]] += s
total = sum(student_tokens_by_kind.values())
for kind, count in student_tokens_by_kind.items():
    print(f"{kind:30s} {count / total:6.1%} of student tokens")
exact_share = cross.align(val_rows).exact_share
logged = {row["eval_exact_share"] for row in BENCH["cross-tokenizer"]["rows"] if row["eval_exact_share"]}
print(f"exact_share {exact_share:.4f}; the benchmark logged {sorted(logged)} on the same rows")
chat_rows = build_splits(DataConfig(dataset="builtin:chat", seq_len=settings["seq_len"], max_sequences=100),
                         student_tokenizer).val
chat_share = cross.align(chat_rows).exact_share
print(f"on held-out builtin:chat rows: exact_share {chat_share:.4f}")
assert exact_share > 0.9 and logged == {exact_share}  # "more than nine in ten", the benchmark's own number
assert 0.6 < chat_share < 0.8
shares = [count / total for count in student_tokens_by_kind.values()]
go.Figure(go.Bar(x=list(KINDS), y=shares, text=[f"{share:.1%}" for share in shares], textposition="outside",
                 marker_color=["#16a34a", "#2563eb", "#f59e0b", "#dc2626"])).update_layout(
    height=320, template="plotly_white", yaxis_tickformat=".0%", yaxis_title="share of student tokens",
    title="where the student's tokens fall (held-out builtin:kjv)").show()

# %% [markdown]
# On this text more than nine student tokens in ten are exact matches (the number the benchmark logged on the same
# rows); on held-out chat text fewer do, about seven in ten.
#
# ## What `aligned` compares
#
# `loss.cross_tokenizer=aligned` (the default) compares each span in the one way that makes sense for it:
#
# - **an exact match**: the two next-token distributions at the positions predicting it, over the strings both
#   vocabularies hold (the exact id map), plus one bucket for every other string, with `loss.divergence` and
#   `loss.temperature` as usual;
# - **any other span**: the probability of its whole text, built by the chain rule on each side
#   (p(span) = Π p(token | prefix) ≤ 1), as the two-outcome distribution {span, not span}.
#
# The first span of a row has no context and is skipped. Below, the teacher and the untrained student on four
# held-out rows; then one span that is not an exact match, its probability recomputed by hand from the teacher's
# conditionals.

# %%
teacher = load_model(BUILTIN_TEACHER).eval()
student = load_model(STUDENT).eval()
print(f"teacher {count_parameters(teacher)['total'] / 1e6:.1f}M parameters, "
      f"student {count_parameters(student)['total'] / 1e6:.1f}M")
rows = val_rows[:4]
batch = cross.align(rows)
with torch.no_grad():
    teacher_logits = cross.teacher_logits(teacher, batch)  # [4, Tt, 49152]: the teacher reads its own tokens
    student_logits = student(input_ids=rows).logits  # [4, Ts, 8192]
kd, parts = aligned_divergence(student_logits, teacher_logits, rows, batch, cross.shared, t2_scale=False)
exact_count = int(batch.exact.sum())
other_count = batch.scored.numel() - exact_count
print(f"{batch.scored.numel()} scored spans: {exact_count} exact ({len(cross.shared[0]) + 1} buckets each), "
      f"{other_count} compared as {{span, not span}}")
print(f"forward KL summed: {float(parts['exact']):.1f} over exact spans, {float(kd - parts['exact']):.1f} over the "
      "others")

span_q = span_log_probs(student_logits, student_logits.logsumexp(-1), rows, batch.student_span, batch.num_spans)
span_p = span_log_probs(teacher_logits, teacher_logits.logsumexp(-1), batch.teacher_ids, batch.teacher_span,
                        batch.num_spans)
k = int(batch.scored[~batch.exact][0])  # the first scored span that is not an exact match
first_row = batch.teacher_span[0]
positions = (first_row == k).nonzero().squeeze(1).tolist()
probs = torch.softmax(teacher_logits[0], -1)
by_hand = math.prod(float(probs[j - 1, batch.teacher_ids[0, j]]) for j in positions)
pieces = [cross.teacher_table[int(batch.teacher_ids[0, j])].decode(errors="replace") for j in positions]
student_pieces = [cross.student_table[int(rows[0, i])].decode(errors="replace")
                  for i in (batch.student_span[0] == k).nonzero().squeeze(1).tolist()]
print(f"span {k}: student {student_pieces}, teacher {pieces}")
print(f"teacher p(span) = {math.exp(float(span_p[k])):.3e} (by hand: {by_hand:.3e}); "
      f"untrained student p(span) = {math.exp(float(span_q[k])):.3e}")
assert abs(math.exp(float(span_p[k])) / by_hand - 1) < 1e-4  # the chain rule, recomputed by hand
assert (span_p <= 0).all() and (span_q <= 0).all()  # every span probability is at most 1
assert exact_count > 0.9 * batch.scored.numel()  # "almost every scored span is an exact match"
assert float(parts["exact"]) > 0.99 * float(kd)  # the exact matches carry almost all of the divergence

# %% [markdown]
# On this text almost every scored span is an exact match, and here the exact matches carry almost all of the
# divergence: a whole distribution over thousands of strings says far more than the two-outcome comparison of one
# span. The chain rule, recomputed by hand from the teacher's
# conditionals, gives the span probability the loss uses.
#
# With one tokenizer every span is an exact match and the vocabularies are the same, so `aligned` is the ordinary
# KD loss: here the teacher's tokenization on both sides, and a softened copy of the teacher (its logits halved) as
# the student.

# %%
same = CrossTokenizer(teacher_tokenizer, teacher_tokenizer)
teacher_rows = torch.tensor([teacher_tokenizer(text, add_special_tokens=False)["input_ids"][:48]
                             for text in texts[:4]])
same_batch = same.align(teacher_rows)
with torch.no_grad():
    logits = teacher(input_ids=teacher_rows).logits
softened = logits / 2
one_tokenizer, _ = aligned_divergence(softened, logits, teacher_rows, same_batch, same.shared, t2_scale=False)
targets = teacher_rows.roll(-1, 1)
targets[:, -1] = -100
ordinary = divergence(softened, logits, targets, kind="forward_kl", t2_scale=False, reduction="sum")
print(f"exact share {same_batch.exact_share:.3f}; aligned {float(one_tokenizer):.4f}, ordinary forward KL "
      f"{float(ordinary):.4f}")
assert same_batch.exact_share == 1.0 and abs(float(one_tokenizer) / float(ordinary) - 1) < 1e-3

# %% [markdown]
# ## What `uld` compares
#
# `loss.cross_tokenizer=uld` is Universal Logit Distillation (ULD): at the position predicting each span's first
# token it sorts both probability vectors in decreasing order (the shorter one padded with zeros) and takes the L1
# distance between them. Sorting makes any two vocabularies comparable without pairing their strings; it also
# forgets which string had which probability. Two made-up students show what that means. At every exact-match
# position of the four rows above:
#
# - **copy** gives every shared string the teacher's probability, and spreads the teacher's mass on all other
#   strings evenly over its remaining ids;
# - **shuffled** has the same probabilities, dealt to its ids in a random order.

# %%
exact = batch.exact
exact_batch = replace(batch, scored=batch.scored[exact], student_pos=batch.student_pos[exact],
                      teacher_pos=batch.teacher_pos[exact], exact=exact[exact])
spans = int(exact.sum())
s_shared, t_shared = cross.shared
teacher_lp = torch.log_softmax(teacher_logits.flatten(0, 1)[exact_batch.teacher_pos], -1)  # [spans, 49152]
t_rest = torch.ones(teacher_lp.shape[-1], dtype=torch.bool)
t_rest[t_shared] = False
s_rest = torch.ones(len(cross.student_table), dtype=torch.bool)
s_rest[s_shared] = False
copy_rows = torch.empty(spans, len(cross.student_table))  # [spans, 8192] log-probabilities
copy_rows[:, s_shared] = teacher_lp[:, t_shared]
copy_rows[:, s_rest] = (teacher_lp[:, t_rest].logsumexp(-1) - math.log(int(s_rest.sum()))).unsqueeze(-1)
shuffled_rows = copy_rows[:, torch.randperm(copy_rows.shape[-1], generator=torch.Generator().manual_seed(0))]


def with_rows(rows_at_exact: torch.Tensor) -> torch.Tensor:
    """The untrained student's logits with the given rows at the exact-match positions."""
    out = student_logits.clone()
    out.view(-1, out.shape[-1])[exact_batch.student_pos] = rows_at_exact
    return out


students = {"untrained": student_logits, "copy": with_rows(copy_rows), "shuffled": with_rows(shuffled_rows)}
scores = {}
for name, logits in students.items():
    aligned_kl, _ = aligned_divergence(logits, teacher_logits, rows, exact_batch, cross.shared, t2_scale=False)
    uld, _ = uld_distance(logits, teacher_logits, exact_batch, t2_scale=False)
    scores[name] = {"aligned": float(aligned_kl) / spans, "uld": float(uld) / spans}
    print(f"{name:10s} aligned forward KL {scores[name]['aligned']:7.3f} nats   uld {scores[name]['uld']:.3f}"
          f"   (mean over {spans} exact spans)")
assert scores["copy"]["aligned"] < 1e-3 < 1 < scores["shuffled"]["aligned"]
assert scores["shuffled"]["aligned"] > scores["untrained"]["aligned"]
assert abs(scores["shuffled"]["uld"] / scores["copy"]["uld"] - 1) < 1e-4
assert 0.01 < scores["copy"]["uld"] < scores["untrained"]["uld"]

position = 0
top = teacher_lp[position, t_shared].topk(15).indices  # the teacher's 15 likeliest shared strings here
labels = [cross.student_table[int(s_shared[i])].decode(errors="replace").replace(" ", "␣") for i in top]
figure = make_subplots(rows=1, cols=2, subplot_titles=("probability of the teacher's likeliest shared strings",
                                                       "the same vectors sorted (what uld compares)"))
for name, row_lp, color in (("teacher", teacher_lp[position, t_shared], "#111827"),
                            ("copy", copy_rows[position, s_shared], "#16a34a"),
                            ("shuffled", shuffled_rows[position, s_shared], "#dc2626")):
    figure.add_trace(go.Bar(x=labels, y=row_lp[top].exp().tolist(), name=name, marker_color=color), row=1, col=1)
for name, row_lp, color in (("teacher", teacher_lp[position], "#111827"), ("copy", copy_rows[position], "#16a34a"),
                            ("shuffled", shuffled_rows[position], "#dc2626")):
    figure.add_trace(go.Scatter(x=list(range(1, 16)), y=row_lp.exp().sort(descending=True).values[:15].tolist(),
                                name=name, line_color=color, showlegend=False,
                                line_dash="dot" if name == "shuffled" else "solid"), row=1, col=2)
figure.update_xaxes(title_text="rank", row=1, col=2)
figure.update_yaxes(type="log", title_text="probability (log scale)", row=1, col=1)
figure.update_layout(height=380, template="plotly_white", barmode="group").show()

# %% [markdown]
# `aligned` finds the copy at distance zero from the teacher and the shuffled student further away than even the
# untrained one: it compares the probability of each string. `uld` gives the copy and the shuffled student exactly
# the same score: sorted, their vectors are the same (right panel, the two lines on top of each other), whichever
# strings the probabilities sit on. Nor is the copy at zero under `uld`: where the teacher's probability sits on
# strings the student does not have, the copy can only spread it over its own remaining ids, and sorted, that part
# of the two vectors differs.
# ULD's gradient teaches the shape of the distribution (how confident to be), not which token to predict; the
# measured results at the end of this notebook show the difference.
#
# ## Bits per byte
#
# Perplexity is per token, and the two tokenizers cut the same text into different numbers of tokens, so a
# teacher's perplexity and a student's are not in the same unit. **Bits per byte** is: the cross-entropy summed over
# the predicted tokens, in bits, divided by the UTF-8 bytes those tokens spell. Below, each model reads the first 50
# held-out rows with its own tokenizer, one row at a time (`workbench.analysis.report_card.score_own_tokenizer`,
# what the report card does for a student with another tokenizer).

# %%
scored_texts = texts[:50]  # the first 50 held-out rows: the teacher reads them in a few seconds
teacher_score = score_own_tokenizer(teacher, teacher_tokenizer, scored_texts)
untrained_score = score_own_tokenizer(student, student_tokenizer, scored_texts)
target_bytes = bytes_per_token(student_tokenizer)
predicted_bytes = sum(float(target_bytes[student_tokenizer(text, add_special_tokens=False)["input_ids"][1:]].sum())
                      for text in scored_texts)
nats = untrained_score["val_ce"] * untrained_score["val_tokens"]
uniform = math.log2(len(student_tokenizer)) * untrained_score["val_tokens"] / predicted_bytes
for name, score in (("teacher", teacher_score), ("untrained student", untrained_score)):
    print(f"{name:18s} perplexity {score['val_ppl']:9.1f} per own token   {score['val_bpb']:.3f} bits per byte "
          f"({score['val_tokens']:,} tokens predicted)")
print(f"by hand: {nats:,.0f} nats / ({math.log(2):.4f} × {predicted_bytes:,.0f} bytes) = "
      f"{bits_per_byte(nats, predicted_bytes):.3f}; a uniform guess over {len(student_tokenizer):,} tokens: "
      f"{uniform:.3f}")
assert abs(bits_per_byte(nats, predicted_bytes) / untrained_score["val_bpb"] - 1) < 1e-9
assert abs(untrained_score["val_bpb"] / uniform - 1) < 0.05  # the untrained student is nearly uniform
assert 1.0 < teacher_score["val_bpb"] < 1.5  # "a little over one bit per byte"

# %% [markdown]
# The untrained student spreads its probability almost evenly: its bits per byte is close to that of a uniform guess
# over its 8,192 tokens (log₂ 8192 = 13 bits per token, over the bytes each token spells). The teacher, reading the
# same text with its own tokenizer, needs a little over one bit per byte. Training logs `eval_bpb` on held-out rows
# the same way, and the report card and the Runs table show bits per byte beside perplexity.
#
# ## Training across tokenizers
#
# Two fresh students on `builtin:bpe-8k`, the benchmark's setup at a size this notebook can afford: CE only, and CE
# + `aligned` (CE weight 1, KD weight 1, forward KL at T = 1), with the same seed (it draws the first weights and the
# order of the rows), data and steps. The data is scarce: 100 packed rows of 64 tokens of `builtin:kjv`, 40 of them
# held out, so 40 steps of 4 rows read the 60 training rows almost three times. Both are scored at the end on all 40
# held-out rows.

# %%
TINY = {"sequences": 100, "val_fraction": 0.4, "steps": 40, "batch_size": 4, "lr": 3e-3, "seed": 0}


def tiny_run(name: str, loss: dict) -> ListSink:
    cfg = DistillConfig.from_dict({
        "models": {"teacher": BUILTIN_TEACHER, "student": STUDENT},
        "data": {"dataset": "builtin:kjv", "seq_len": 64, "max_sequences": TINY["sequences"],
                 "val_fraction": TINY["val_fraction"]},
        "loss": {"ce_weight": 1.0, "temperature": 1.0, **loss},
        "train": {"steps": TINY["steps"], "batch_size": TINY["batch_size"], "lr": TINY["lr"], "warmup_steps": 2,
                  "eval_every": TINY["steps"], "eval_batches": 10, "save_every": 10**6, "device": "cpu",
                  "precision": "fp32", "seed": TINY["seed"], "gen_eval": False},
        "run": {"runs_dir": str(WORKDIR)},
    })
    sink = ListSink()
    train(cfg, WORKDIR / name, sink)
    return sink


runs = {"CE only": tiny_run("ce-only", {"kd_weight": 0.0}),
        "CE + aligned": tiny_run("ce-aligned", {"kd_weight": 1.0, "cross_tokenizer": "aligned"})}
train_rows = TINY["sequences"] - round(TINY["sequences"] * TINY["val_fraction"])
print(f"{TINY['steps']} steps × {TINY['batch_size']} rows over {train_rows} training rows: "
      f"{TINY['steps'] * TINY['batch_size'] / train_rows:.1f} passes, lr {TINY['lr']}, seed {TINY['seed']}")
final = {name: sink.of_kind("eval")[-1] for name, sink in runs.items()}
for name, row in final.items():
    print(f"{name:13s} bits per byte {row['eval_bpb']:.4f}   aligned KL to the teacher {row['eval_kl']:.3f}   "
          f"exact share {row['eval_exact_share']:.3f}   ({row['eval_tokens']:,} held-out tokens)")
gain = final["CE + aligned"]["eval_bpb"] / final["CE only"]["eval_bpb"] - 1
print(f"CE + aligned vs CE only: {gain:+.1%} bits per byte")
late_ce = {name: statistics.fmean(row["ce"] for row in sink.of_kind("train")[-10:]) for name, sink in runs.items()}
print("CE on the training rows, mean of the last 10 steps:",
      {name: round(value, 3) for name, value in late_ce.items()})
assert gain < 0 and final["CE + aligned"]["eval_kl"] < 0.9 * final["CE only"]["eval_kl"]
assert late_ce["CE only"] < late_ce["CE + aligned"]
assert round(count_parameters(teacher)["total"] / count_parameters(student)["total"]) == 26

figure = go.Figure()
for name, color in zip(runs, ("#64748b", "#16a34a"), strict=True):
    steps = runs[name].of_kind("train")
    figure.add_trace(go.Scatter(x=[r["step"] for r in steps], y=[r["ce"] for r in steps], name=f"{name}: CE",
                                line_color=color))
steps = runs["CE + aligned"].of_kind("train")
figure.add_trace(go.Scatter(x=[r["step"] for r in steps], y=[r["kd"] for r in steps], name="CE + aligned: KD term",
                            line=dict(color="#16a34a", dash="dot")))
figure.update_layout(height=340, template="plotly_white", xaxis_title="step", yaxis_title="nats per token",
                     title="training loss terms (training rows)").show()

# %% [markdown]
# In this run the student taught by the teacher ends with fewer bits per byte on held-out text than the one trained
# on CE alone, and much closer to the teacher (the aligned KL that training logs as `eval_kl`). On the training rows
# it is the other way round: CE alone fits those few rows more closely (a lower CE over the last ten steps), and the
# held-out rows show what that is worth. It pays for that in time: every step
# also runs the teacher, which has 26 times the student's parameters (the benchmark below times the steps). One
# short run of one seed says little about the size of the gain: the next section reads the benchmark, which ran
# three seeds for 600 steps.
#
# ## The measured gain, and the data regime it depends on
#
# `bench/cross_tokenizer.py` trains the same fresh student (4 layers, hidden 256, `builtin:bpe-8k`) three ways with
# equal steps, data and seeds: CE only, CE + `aligned`, CE + `uld`, and scores each in bits per byte on the held-out
# rows of `builtin:kjv` used above. A fourth run, the same student on the teacher's own tokenizer with ordinary KD,
# times a same-tokenizer step. Its results are stored in `assets/bench/`; the cell reads both files: scarce data
# (the default: a few hundred rows read many times) and more data (read less than once).

# %%
def read_regime(result: dict) -> dict:
    """Per-seed bits per byte of each variant, their change against CE only, and the data the runs read."""
    settings = result["settings"]
    held_out = round(settings["sequences"] * settings["val_fraction"])
    train_rows = settings["sequences"] - held_out
    by_variant: dict[str, dict[int, dict]] = {}
    for row in result["rows"]:
        by_variant.setdefault(row["variant"], {})[row["seed"]] = row
    ce = by_variant["CE only"]
    passes = settings["steps"] * settings["batch_size"] / train_rows
    return {
        "label": f"{train_rows:,} training rows read {passes:.2f}×", "settings": settings, "train_rows": train_rows,
        "passes": passes,
        "bpb": {name: statistics.fmean(row["eval_bpb"] for row in rows.values())
                for name, rows in by_variant.items() if name in ("CE only", "CE + aligned", "CE + uld")},
        "gains": {name: [by_variant[name][seed]["eval_bpb"] / ce[seed]["eval_bpb"] - 1 for seed in sorted(ce)]
                  for name in ("CE + aligned", "CE + uld")},
        "step_s": {name: rows[min(rows)]["step_s"] for name, rows in by_variant.items()},
    }


regimes = {"scarce data": read_regime(BENCH["cross-tokenizer"]),
           "more data": read_regime(BENCH["cross-tokenizer-single-pass"])}
for name, regime in regimes.items():
    s = regime["settings"]
    print(f"{name}: {regime['label']} ({s['steps']} steps × {s['batch_size']} rows of {s['seq_len']} tokens), "
          f"lr {s['lr']}, seeds {s['seeds']}; scored on {s['eval_batches'] * s['batch_size']} held-out rows at most")
    for variant, bpb in regime["bpb"].items():
        gains = regime["gains"].get(variant)
        change = "" if gains is None else (f"   {statistics.fmean(gains):+.1%} vs CE only (per seed "
                                           + ", ".join(f"{g:+.1%}" for g in gains) + ")")
        print(f"   {variant:13s} {bpb:.4f} bits per byte{change}")
    step = regime["step_s"]
    print(f"   s/step: CE only {step['CE only']:.2f}, CE + aligned {step['CE + aligned']:.2f}, same-tokenizer KD "
          f"{step['same-tokenizer KD (timing)']:.2f}")
scarce, more = regimes["scarce data"], regimes["more data"]
print(f"the teacher, on the first 50 held-out rows of the scarce-data split (above): {teacher_score['val_bpb']:.3f} "
      "bits per byte")
assert (scarce["train_rows"], scarce["passes"], scarce["settings"]["steps"], more["train_rows"]) == (300, 8, 600, 2850)
assert more["passes"] < 1
assert all(-0.075 < g < -0.045 for g in scarce["gains"]["CE + aligned"])  # every seed, by 5 to 7 %
assert all(g < -0.015 for g in more["gains"]["CE + aligned"])  # every seed with more data too ...
assert 0 > statistics.fmean(more["gains"]["CE + aligned"]) > 0.5 * statistics.fmean(scarce["gains"]["CE + aligned"])
assert abs(statistics.fmean(scarce["gains"]["CE + uld"])) < 0.01 < statistics.fmean(more["gains"]["CE + uld"])
for r in regimes.values():  # an aligned step costs what a same-tokenizer KD step costs, several CE-only steps
    assert 0.8 < r["step_s"]["CE + aligned"] / r["step_s"]["same-tokenizer KD (timing)"] < 1.25
    assert r["step_s"]["CE only"] < 0.2 * r["step_s"]["CE + aligned"]
assert teacher_score["val_bpb"] < scarce["bpb"]["CE + aligned"] - 0.1 < scarce["bpb"]["CE only"] - 0.1  # far below
assert all(max(r["gains"]["CE + aligned"]) - min(r["gains"]["CE + aligned"]) > 0.01 for r in regimes.values())

figure = go.Figure()
for variant, color in (("CE + aligned", "#16a34a"), ("CE + uld", "#9333ea")):
    figure.add_trace(go.Bar(x=[r["label"] for r in regimes.values()],
                            y=[statistics.fmean(r["gains"][variant]) for r in regimes.values()],
                            name=f"{variant} (mean of seeds)", marker_color=color, opacity=0.6,
                            offsetgroup=variant))
    for index, regime in enumerate(regimes.values()):
        figure.add_trace(go.Scatter(x=[regime["label"]] * len(regime["gains"][variant]), y=regime["gains"][variant],
                                    mode="markers", marker=dict(color=color, size=9), showlegend=index == 0,
                                    name=f"{variant}, each seed", offsetgroup=variant))
figure.update_layout(height=380, template="plotly_white", barmode="group", scattermode="group",
                     yaxis_tickformat="+.0%",
                     yaxis_title="bits per byte vs CE only (lower is better)",
                     title="change against CE only, by data regime (assets/bench)").show()

# %% [markdown]
# What the two files say:
#
# - **With scarce data `aligned` beats CE only on every seed, by 5 to 7 %.** Three hundred rows read eight times is
#   the case distillation is for: CE learns only the one token each position of those rows holds, while the
#   teacher's distributions tell the student how likely every other string was there too. Both students stay far
#   from the teacher's own bits per byte: a 5-million-parameter student after 600 short steps.
# - **With more data the teacher adds less**: read less than once, 2,850 rows still show `aligned` ahead on every
#   seed, by less than half as much on average. That learning rate was picked for CE only at 150 steps and is too
#   high for it at 600, which flatters KD; the README's table of other settings measured (same code, one line a
#   setting) shows the gain shrinking further at a learning rate that suits CE only. How much the teacher adds
#   depends on how much data the student has, and one seed is not enough to read it: the change moves by a point or
#   more from one seed to the next.
# - **`uld` does not beat CE only**: level with it on scarce data, behind it with more. Its sorted comparison
#   (above) cannot tell the student which token the teacher expects.
# - **A step across tokenizers costs about what a same-tokenizer KD step costs** for a student of this size, and more
#   than five CE-only steps: the teacher's forward pass is most of it; aligning the rows adds little.
#
# ## Try
#
# - `workbench inspect builtin:smollm2-135m-instruct "builtin:smollm2-135m-instruct?fresh&layers=4&hidden=256&heads=4&tokenizer=builtin:bpe-8k"`:
#   the compatibility card of this pair (shared strings, exact share, what cannot cross two tokenizers). In the app
#   the Setup tab shows it, with the *Tokenizer alignment* of any text you type.
# - Train a third student with `tiny_run("ce-uld", {"kd_weight": 1.0, "cross_tokenizer": "uld"})`, or try
#   `"divergence": "reverse_kl"` with `aligned`.
# - `python bench/cross_tokenizer.py` reruns the scarce-data benchmark (about 45 minutes on a 2-core CPU);
#   `--sequences 3000 --val-fraction 0.05 --eval-batches 20 --lr 3e-3` the other regime.
# - `workbench train-tokenizer --data builtin:kjv --vocab-size 4096 --out my-bpe` trains a tokenizer of your own;
#   a fresh student takes it with `tokenizer=my-bpe`.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 5 minutes

# %% [markdown]
# ## References
#
# The papers behind the methods this notebook uses:
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: the logit
#   distillation loss, here the forward KL on the exact matches.
# - **Minixhofer, Vulić & Ponti (2025)**, *Universal Cross-Tokenizer Distillation via Approximate Likelihood Matching*
#   (ALM), NeurIPS 2025, arXiv:2503.20083: aligning two tokenizations into chunks that end where both end, and
#   comparing each chunk's likelihood, built by the chain rule, as a binarised divergence; `aligned` compares its
#   non-exact spans this way.
# - **Boizard et al. (2024)**, *Towards Cross-Tokenizer Distillation: the Universal Logit Distillation Loss for LLMs*
#   (ULD), arXiv:2402.12030: the L1 distance between the sorted probability vectors of teacher and student
#   (`loss.cross_tokenizer=uld`).
# - **Gao et al. (2020)**, *The Pile: An 800GB Dataset of Diverse Text for Language Modeling*, arXiv:2101.00027:
#   bits per byte as the score that compares language models whatever their tokenizers.
# - **Sennrich, Haddow & Birch (2016)**, *Neural Machine Translation of Rare Words with Subword Units*, ACL 2016,
#   arXiv:1508.07909: byte-pair encoding for tokenizers, the algorithm of both tokenizers here (byte-level, as GPT-2
#   uses it).
