# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Layer mapping: hidden states (FitNets) and attention (MiniLM)
#
# The logit divergence teaches the student *what* to predict. Two further ideas also teach it *how*, from the
# teacher's inner layers; the first is as old as logit distillation (2015), the second came five years later (2020):
#
# - **hidden-state matching** (FitNets, Romero et al. 2015): a student layer's output should look like a teacher
#   layer's output. When the student is narrower, a small trained **projector** maps its width to the teacher's.
# - **attention transfer**: a student layer's attention maps should look like a teacher layer's. The workbench's
#   `loss.attn_loss=kl` is the KL divergence between the two attention distributions (after the softmax), the
#   loss MiniLM (Wang et al. 2020) puts on attention distributions. MiniLM transfers only the teacher's **last**
#   layer: its self-attention distributions and its value relations (scaled dot products between the values);
#   here the attention distributions alone are matched at every mapped pair of layers. TinyBERT (Jiao et al.
#   2020) used an MSE on the attention scores before the softmax instead.
#
# Both need a **layer mapping**: which teacher layer each student layer learns from. We look at the mapping strategies, at
# what the hidden-state distances measure on real hidden states, then train a freshly initialised 4-layer
# student for a few steps with KD alone, with hidden-state matching, and with attention transfer as well, and
# compare all three on held-out text and by their attention maps.
#
# Measured runtime on a 2-core CPU: 33 to 70 s when nothing else ran (the stored run: 58 s), 593 s at load average 10 to 14 (other jobs kept
# the machine busy the whole time). The last cell prints this run's
# wall and CPU time. Every
# sentence below that a printed number can check is checked by an `assert` in the cell that prints it.

# %%
import os
import time

NOTEBOOK_STARTED, NOTEBOOK_CPU = time.monotonic(), time.process_time()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tempfile
from pathlib import Path

import plotly.graph_objects as go
import torch

from workbench.analysis.attention import compare_attention, uniform_entropy_bits
from workbench.analysis.comparison_plots import attention_figure
from workbench.analysis.plots import mapping_figure, overlay_figure
from workbench.analysis.report_card import score_quality
from workbench.config import BUILTIN_TEACHER, apply_overrides, load_preset
from workbench.data.splits import build_splits
from workbench.engine.capture import LayerCapture
from workbench.engine.losses import hidden_state_loss
from workbench.engine.mapping import Projectors, describe_mapping, resolve_mapping
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.models.loading import count_parameters, load_model, load_tokenizer, num_layers
from workbench.runs.folder import RunFolder, read_metrics

torch.manual_seed(0)
WORKDIR = Path(os.environ.get("KD_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="kd-notebook-04-"))
STUDENT = f"{BUILTIN_TEACHER}?fresh&layers=4&hidden=288&heads=9&kv_heads=3&intermediate=768&seed=1"

teacher = load_model(BUILTIN_TEACHER, attn_implementation="eager")
student = load_model(STUDENT, attn_implementation="eager")
tokenizer = load_tokenizer(BUILTIN_TEACHER)
for name, model in (("teacher", teacher), ("student", student)):
    c = model.config
    print(f"{name}: {num_layers(model)} layers, width {c.hidden_size}, {c.num_attention_heads} heads, "
          f"{count_parameters(model)['total'] / 1e6:.1f}M parameters")

# %% [markdown]
# ## Mapping strategies
#
# `workbench.engine.mapping.resolve_mapping(strategy, pairs, student_layers, teacher_layers)` turns a strategy into
# (student layer, teacher layer) pairs; `"emb"` is the embedding output.
#
# - **uniform**: student layer i ↔ teacher layer round((i + 1) · L_t / L_s) − 1, the same relative depth;
# - **last**: only the last layer of each;
# - **custom**: your own `student:teacher` pairs.

# %%
S_LAYERS, T_LAYERS = num_layers(student), num_layers(teacher)
strategies = {
    "uniform": resolve_mapping("uniform", None, S_LAYERS, T_LAYERS),
    "last": resolve_mapping("last", None, S_LAYERS, T_LAYERS),
    "custom": resolve_mapping("custom", ["emb:emb", "1:9", "3:20"], S_LAYERS, T_LAYERS),
}
for name, pairs in strategies.items():
    print(f"{name:8s}", pairs)
print(describe_mapping(strategies["custom"], S_LAYERS, T_LAYERS)["pairs"][0])
mapping_figure(strategies["uniform"], S_LAYERS, T_LAYERS).update_layout(title="uniform mapping").show()

# %% [markdown]
# A pair that does not exist is refused with a message that says what would be accepted, the same message the
# app shows next to the mapping table (the cell fails if the pair is accepted):

# %%
try:
    resolve_mapping("custom", ["3:30"], S_LAYERS, T_LAYERS)
except UserError as error:
    print("UserError:", error)
else:
    raise AssertionError(f"the pair 3:30 was accepted, but the teacher's layers are 0 to {T_LAYERS - 1}")

# %% [markdown]
# ## What the hidden-state distances measure
#
# The student is 288 wide, the teacher 576, so their hidden states cannot be compared directly.
# `workbench.engine.mapping.Projectors` holds one `Linear(288 → 576)` per mapped pair; it is trained with the student
# and thrown away at export. Below, the hidden states exactly as the trainer sees them: each mapped block's
# output captured with `workbench.engine.capture.LayerCapture` (before the model's final norm, for both models), the
# student's passed through its (untrained) projector. For each pair: the three distances of `loss.hidden_loss`,
# the mse without the first position, the share of the mse that comes from the first position alone, and how
# much larger the teacher's state is at the first position than elsewhere.

# %%
pairs = strategies["uniform"]
projectors = Projectors(pairs, student.config.hidden_size, teacher.config.hidden_size)
print(f"{len(pairs)} projectors, {sum(p.numel() for p in projectors.parameters()):,} parameters")

TEXT = "The cat sat on the mat because the mat was warm, and the dog watched the cat from the door."
ids = tokenizer(TEXT, return_tensors="pt").input_ids
later = torch.ones(ids.shape, dtype=torch.bool)
later[:, 0] = False  # every position but the first
distances = {}
with torch.no_grad(), LayerCapture(teacher, [t for _, t in pairs], []) as t_cap, \
        LayerCapture(student, [s for s, _ in pairs], []) as s_cap:
    teacher(input_ids=ids)
    student(input_ids=ids)
    print("pair        mse  mse w/o 1st  1st's share   cosine  ln_mse   teacher |h| 1st / median")
    for s, t in pairs:
        projected, target = projectors((s, t), s_cap.hidden[s]), t_cap.hidden[t]  # [1, T, 576] each
        per_position = (projected - target).square().mean(-1)[0]  # [T]
        norms = target.norm(dim=-1)[0]  # [T]
        row = {kind: float(hidden_state_loss(projected, target, kind)) for kind in ("mse", "cosine", "ln_mse")}
        row |= {"mse_later": float(hidden_state_loss(projected, target, "mse", later)),
                "first_share": float(per_position[0] / per_position.sum()),
                "norm_ratio": float(norms[0] / norms[1:].median())}
        distances[(s, t)] = row
        print(f"{s} → {t:2d} {row['mse']:10.1f} {row['mse_later']:12.2f} {row['first_share']:12.1%} "
              f"{row['cosine']:8.3f} {row['ln_mse']:7.3f} {row['norm_ratio']:26.0f}")
middle = [distances[pair] for pair in pairs[1:-1]]  # teacher layers 14 and 22
assert all(row["first_share"] > 0.99 and row["norm_ratio"] > 50 and row["mse"] > 100 * row["mse_later"] for row in middle)
assert all(row["first_share"] > 5 / ids.shape[1] for row in distances.values())  # 5 times a fair 1/T share
assert all(0.8 < row["cosine"] < 1.2 and 1.5 < row["ln_mse"] < 2.5 for row in distances.values())
assert sum(row["mse"] for row in distances.values()) > 10_000

# %% [markdown]
# Three things to see:
#
# - The random projections are not aligned at all: cosine distance ≈ 1 and ln_mse ≈ 2 (= 2·(1 − correlation),
#   no correlation) for every pair.
# - In the middle of the teacher (layers 14 and 22) its hidden state at the **first position** is more than 50
#   times larger than at the other positions: the "massive activations" that decoder LLMs put on their first
#   token (Sun et al. 2024). Plain **mse** there is more than 99% that one position, and over a hundred times
#   what it is without it: an mse-trained student would spend its effort on copying one huge vector. In the
#   first and last pairs the effect is smaller, but the first position still holds more than five times its
#   fair share (1/T) of the mse.
# - **cosine** and **ln_mse** weigh every position the same, so they measure the whole sequence. ln_mse is the
#   mse after a layer norm without parameters on both sides (each state centred and scaled to unit variance),
#   so its size stays between 0 and 4 whatever the layer: it is 2·(1 − correlation), twice the cosine distance
#   taken after removing each state's mean. `loss.hidden_skip_first=true` leaves the first position out of any of
#   the three.
#
# ## Attention maps before training
#
# `workbench.analysis.attention.compare_attention` runs both models on the same tokens and compares each mapped pair of
# layers, head by head (both have 9 heads here; with different head counts the maps are averaged over heads
# first, as the attention loss does). JS is the Jensen–Shannon divergence between the rows of the two maps, in
# bits: 0 means identical, 1 completely different.

# %%
before = compare_attention(teacher, tokenizer, student, tokenizer, TEXT, strategy="uniform")
uniform_bits = uniform_entropy_bits(len(before.tokens))
print(f"mean attention entropy (bits; a uniform causal map has {uniform_bits:.2f})")
summary = before.summary()["pairs"]
for row in summary:
    print(f"  student {row['student']}: {row['student_entropy_mean']:.2f}   "
          f"teacher {row['teacher']}: {row['teacher_entropy_mean']:.2f}")
assert all(row["student_entropy_mean"] > 0.95 * uniform_bits for row in summary)
assert all(row["teacher_entropy_mean"] < 0.7 * uniform_bits for row in summary)
attention_figure(before, pair_index=S_LAYERS - 1).update_layout(title="before: last student layer").show()

# %% [markdown]
# A randomly initialised student attends almost uniformly to the past (its entropy is within 5% of the uniform
# bound); the teacher's heads are much sharper and look at specific tokens (the previous token, the start of the
# text, repeated words).
#
# ## Three short runs: KD, + hidden states, + attention
#
# All three start from the same fresh student with the same data, steps and learning rate over the uniform
# mapping; only the loss differs:
#
# | run | loss |
# |---|---|
# | `kd` | KL to the teacher's logits |
# | `kd+hidden` | the same + hidden-state matching (ln_mse, first position left out) |
# | `kd+hidden+attn` | the same + attention transfer (KL between attention maps, MiniLM's) |

# %%
COMMON = [
    f"models.student={STUDENT}", "mapping.strategy=uniform", "loss.kd_weight=1", "loss.ce_weight=0",
    "loss.temperature=2",
    "data.seq_len=32", "data.max_sequences=240",
    "train.steps=30", "train.lr=0.003", "train.warmup_steps=3", "train.eval_every=10", "train.eval_batches=2",
    "train.save_every=1000", "train.device=cpu", "train.gen_eval=false",
]
HIDDEN = ["loss.hidden_weight=1", "loss.hidden_loss=ln_mse", "loss.hidden_skip_first=true"]
runs = {"kd": [], "kd+hidden": HIDDEN, "kd+hidden+attn": HIDDEN + ["loss.attn_weight=1", "loss.attn_loss=kl"]}
run_dirs = {name: WORKDIR / name.replace("+", "-") for name in runs}
for name, extra in runs.items():
    started = time.monotonic()
    result = train(apply_overrides(load_preset("quick"), COMMON + extra), run_dirs[name])
    print(f"{name:15s} {result['state']} after {result['step']} steps in {time.monotonic() - started:.0f} s")
metrics = {name: read_metrics(RunFolder(path).metrics_path) for name, path in run_dirs.items()}
last = {name: [row for row in rows if row["kind"] == "train"][-1] for name, rows in metrics.items()}
for name, row in last.items():
    print(f"{name:15s} last step: kd {row['kd']:.2f}  hidden {row['hidden']:.2f}  attn {row['attn']:.3f}")
assert 0 < last["kd+hidden"]["hidden"] < last["kd+hidden"]["kd"]
print(sorted(p.name for p in run_dirs["kd+hidden+attn"].iterdir()))
overlay_figure(metrics, "eval_kl").update_layout(title="validation KL(teacher ‖ student)").show()

# %% [markdown]
# `projectors.safetensors` in a run folder holds the trained projectors; `student/` is the student alone, an
# ordinary model. With ln_mse the hidden term (summed over the 4 pairs) stays below the KD term, on the same
# scale, so a weight of 1 is a sensible start (the printed last-step terms). With plain mse it would be tens of
# thousands (the table above).
#
# ## How good is each student?
#
# Scored on the held-out split with `workbench.analysis.report_card.score_quality` (the report card's quality columns):
# KL from the teacher, perplexity, and how often the student's top token is the teacher's.

# %%
val_ids = build_splits(apply_overrides(load_preset("quick"), COMMON).data, tokenizer).val
trained = {name: load_model(str(RunFolder(path).student_dir), attn_implementation="eager")
           for name, path in run_dirs.items()}
scores = dict(zip(["teacher", *runs], score_quality(teacher, list(trained.values()), val_ids, batch_size=4),
                  strict=True))
print(f"{'run':15s} {'KL to teacher':>14s} {'val ppl':>9s} {'top-1 agreement':>16s}   ({val_ids.numel()} tokens)")
for name in runs:
    row = scores[name]
    print(f"{name:15s} {row['kl_teacher_student']:14.3f} {row['val_ppl']:9.0f} {row['top1_agreement']:16.1%}")
kl = {name: scores[name]["kl_teacher_student"] for name in runs}
assert all(scores[name]["val_ppl"] > 1000 and scores[name]["top1_agreement"] < 0.2 for name in runs)
assert kl["kd+hidden+attn"] < kl["kd+hidden"] < kl["kd"]

# %% [markdown]
# ## Attention maps after training

# %%
after = {name: compare_attention(teacher, tokenizer, model, tokenizer, TEXT, strategy="uniform")
         for name, model in trained.items()}
attention_figure(after["kd+hidden+attn"], pair_index=S_LAYERS - 1).update_layout(
    title="after kd+hidden+attn: last student layer").show()

labels = before.pair_labels
figure = go.Figure(go.Bar(x=labels, y=before.js.mean(1).tolist(), name="before", marker_color="#94a3b8"))
for name, color in zip(runs, ("#f59e0b", "#16a34a", "#2563eb"), strict=True):
    figure.add_trace(go.Bar(x=labels, y=after[name].js.mean(1).tolist(), name=name, marker_color=color))
figure.update_layout(barmode="group", height=360, template="plotly_white", yaxis_title="mean JS divergence (bits)",
                     title="how far each student layer's attention is from its teacher layer (lower = closer)")
figure.show()
js = {name: [float(after[name].js[i].mean()) for i in range(len(labels))] for name in runs}
for index, label in enumerate(labels):
    print(f"{label}: before {float(before.js[index].mean()):.3f}   "
          + "   ".join(f"{name} {js[name][index]:.3f}" for name in runs))
closer = sum(js["kd+hidden+attn"][i] < min(js["kd"][i], js["kd+hidden"][i]) for i in range(len(labels)))
print(f"with the attention term, {closer} of {len(labels)} student layers are closer to their teacher layer "
      "than in either run without it")
mean_js = {name: sum(values) / len(values) for name, values in js.items()} | {"before": float(before.js.mean())}
print("mean JS over the pairs:", {name: round(value, 3) for name, value in mean_js.items()})
assert closer == len(labels)
assert mean_js["kd"] > mean_js["before"] and mean_js["kd+hidden"] > mean_js["before"]
assert mean_js["kd+hidden+attn"] < mean_js["before"]

# %% [markdown]
# What the two measurements say, for this budget:
#
# - **Quality**: after 30 steps all three fresh students are still poor (perplexity over a thousand, and the
#   teacher's top token in fewer than one position in five). Adding the hidden term lowered the KL to the
#   teacher a little, and adding the attention term lowered it further; these are small steps on a long road,
#   not a finished student.
# - **Attention**: only the run with the attention term moved the maps towards the teacher's, in every mapped
#   layer; with KD alone, or KD and hidden states, 30 steps left them on average further from the teacher's
#   than at the start. Over a long run the logits would shape attention too; the attention term gets there
#   sooner, which is why it helps most for students that start far from the teacher (fresh ones, or a
#   different width).
#
# **Try:** `loss.hidden_loss=mse` with `loss.hidden_skip_first=false` and watch the hidden term's size next to
# the KD term; a larger `loss.attn_weight`; map every student layer to the teacher's last layers
# (`mapping.strategy=custom`, `mapping.pairs=["0:26","1:27","2:28","3:29"]`). In the app these are **Mapping
# strategy**, the pair table and the weights on the Setup tab, and the **Attention** tab shows the same comparison
# for any run.
#
# Next: `05_lora_student_tradeoffs.ipynb`.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 5 minutes

# %% [markdown]
# ## References
#
# The papers behind the methods and findings this notebook uses:
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: the logit
#   distillation term (`kd`) that every run here keeps.
# - **Romero et al. (2015)**, *FitNets: Hints for Thin Deep Nets*, ICLR 2015, arXiv:1412.6550: matching intermediate
#   hidden states through a trained projector (hints).
# - **Jiao et al. (2020)**, *TinyBERT: Distilling BERT for Natural Language Understanding*, Findings of EMNLP 2020,
#   arXiv:1909.10351: layer-to-layer transfer of hidden states and attention (an MSE on the attention scores before the
#   softmax).
# - **Wang et al. (2020)**, *MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained
#   Transformers*, NeurIPS 2020, arXiv:2002.10957: transfers the teacher's last layer only: its self-attention
#   distributions (with a KL, the loss of `loss.attn_loss=kl`) and its value relations.
# - **Sun et al. (2024)**, *Massive Activations in Large Language Models*, COLM 2024, arXiv:2402.17762: the huge hidden
#   state that decoder LLMs put on the first position.
