# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Layer mapping: hidden states (FitNets) and attention (TinyBERT)
#
# The logit divergence teaches the student *what* to predict. Two older ideas also teach it *how*, from the
# teacher's inner layers:
#
# - **hidden-state matching** (FitNets, Romero et al. 2015): a student layer's output should look like a teacher
#   layer's output. When the student is narrower, a small trained **projector** maps its width to the teacher's.
# - **attention transfer** (TinyBERT, Jiao et al. 2020): a student layer's attention maps should look like a
#   teacher layer's.
#
# Both need a **layer mapping**: which teacher layer each student layer learns from. We look at the presets,
# then train a freshly initialised 4-layer student for a few steps with and without the attention term, and
# compare its attention maps with the teacher's before and after. About a minute on a laptop CPU.

# %%
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tempfile
from pathlib import Path

import plotly.graph_objects as go
import torch

from workbench.attention import compare_attention, uniform_entropy_bits
from workbench.config import BUILTIN_TEACHER, apply_overrides, load_preset
from workbench.errors import UserError
from workbench.inspect_plots import attention_figure
from workbench.losses import hidden_state_loss
from workbench.mapping import Projectors, describe_mapping, hidden_state_index, resolve_mapping
from workbench.models import count_parameters, load_model, load_tokenizer, num_layers
from workbench.plots import mapping_figure, training_figure
from workbench.runs import RunFolder, read_metrics
from workbench.trainer import train

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
# ## Mapping presets
#
# `workbench.mapping.resolve_mapping(preset, pairs, student_layers, teacher_layers)` turns a preset into
# (student layer, teacher layer) pairs; `"emb"` is the embedding output.
#
# - **uniform**: student layer i ↔ teacher layer round((i + 1) · L_t / L_s) − 1, the same relative depth;
# - **last**: only the last layer of each;
# - **custom**: your own `student:teacher` pairs.

# %%
S_LAYERS, T_LAYERS = num_layers(student), num_layers(teacher)
presets = {
    "uniform": resolve_mapping("uniform", None, S_LAYERS, T_LAYERS),
    "last": resolve_mapping("last", None, S_LAYERS, T_LAYERS),
    "custom": resolve_mapping("custom", ["emb:emb", "1:9", "3:20"], S_LAYERS, T_LAYERS),
}
for name, pairs in presets.items():
    print(f"{name:8s}", pairs)
print(describe_mapping(presets["custom"], S_LAYERS, T_LAYERS)["pairs"][0])
mapping_figure(presets["uniform"], S_LAYERS, T_LAYERS).update_layout(title="uniform mapping").show()

# %% [markdown]
# A pair that does not exist is refused with a message that says what would be accepted, the same message the
# app shows next to the mapping table:

# %%
try:
    resolve_mapping("custom", ["3:30"], S_LAYERS, T_LAYERS)
except UserError as error:
    print("UserError:", error)

# %% [markdown]
# ## Hidden states need a projector
#
# The student is 288 wide, the teacher 576, so their hidden states cannot be compared directly.
# `workbench.mapping.Projectors` holds one `Linear(288 → 576)` per mapped pair; it is trained with the student
# and thrown away at export. Before training, the projected student states are far from the teacher's:

# %%
pairs = presets["uniform"]
projectors = Projectors(pairs, student.config.hidden_size, teacher.config.hidden_size)
print(f"{len(pairs)} projectors, {sum(p.numel() for p in projectors.parameters()):,} parameters")

TEXT = "The cat sat on the mat because the mat was warm, and the dog watched the cat from the door."
ids = tokenizer(TEXT, return_tensors="pt").input_ids
with torch.no_grad():
    teacher_hidden = teacher(ids, output_hidden_states=True).hidden_states  # (L_t + 1) × [1, T, 576]
    student_hidden = student(ids, output_hidden_states=True).hidden_states  # (L_s + 1) × [1, T, 288]
    for s, t in pairs:
        projected = projectors((s, t), student_hidden[hidden_state_index(s)])  # [1, T, 576]
        target = teacher_hidden[hidden_state_index(t)]
        print(f"student {s} → teacher {t}: mse {float(hidden_state_loss(projected, target, 'mse')):8.3f}   "
              f"cosine distance {float(hidden_state_loss(projected, target, 'cosine')):.3f}")

# %% [markdown]
# Two things to see: the random projections are not aligned at all (cosine distance ≈ 1), and the **mse** of
# the middle teacher layers is enormous. LLM hidden states carry a few huge "massive activation" dimensions, so
# raw mse there would drown every other loss term; the scale-free **cosine** distance (`loss.hidden_loss`) is
# the safer choice, and the one used below.
#
# ## Attention maps before training
#
# `workbench.attention.compare_attention` runs both models on the same tokens and compares each mapped pair of
# layers, head by head (both have 9 heads here; with different head counts the maps are averaged over heads
# first, as the attention loss does). JS is the Jensen–Shannon divergence between the rows of the two maps, in
# bits: 0 means identical, 1 completely different.

# %%
before = compare_attention(teacher, tokenizer, student, tokenizer, TEXT, preset="uniform")
print(f"mean attention entropy (bits; a uniform causal map has {uniform_entropy_bits(len(before.tokens)):.2f})")
for row in before.summary()["pairs"]:
    print(f"  student {row['student']}: {row['student_entropy_mean']:.2f}   "
          f"teacher {row['teacher']}: {row['teacher_entropy_mean']:.2f}")
attention_figure(before, pair_index=S_LAYERS - 1).update_layout(title="before: last student layer").show()

# %% [markdown]
# A randomly initialised student attends almost uniformly to the past (its entropy is close to the uniform
# bound); the teacher's heads are sharper and look at specific tokens (the previous token, the start of the
# text, repeated words).
#
# ## Two short runs: with and without the attention term
#
# The loss is `kd_weight · KL + hidden_weight · hidden + attn_weight · attention` over the uniform mapping. Both
# runs start from the same fresh student with the same data and steps; only `loss.attn_weight` differs. The
# attention term is weighted up so that it is not drowned by the KD term, which is large for a fresh student.

# %%
COMMON = [
    f"models.student={STUDENT}", "mapping.preset=uniform",
    "loss.kd_weight=0.2", "loss.hidden_weight=0.5", "loss.hidden_loss=cosine",
    "data.seq_len=32", "data.max_sequences=240",
    "train.steps=30", "train.lr=0.003", "train.warmup_steps=3", "train.eval_every=10", "train.eval_batches=2",
    "train.save_every=1000", "train.device=cpu",
]
runs = {"without attention term": "loss.attn_weight=0", "with attention term": "loss.attn_weight=5"}
for name, weight in runs.items():
    result = train(apply_overrides(load_preset("quick"), COMMON + [weight]), WORKDIR / name.replace(" ", "-"))
    print(name, result["state"], "after", result["step"], "steps")
run = RunFolder(WORKDIR / "with-attention-term")
print(sorted(p.name for p in run.path.iterdir()))
training_figure(read_metrics(run.metrics_path), title="fresh student: KD + hidden + attention").show()

# %% [markdown]
# `projectors.safetensors` in the run folder holds the trained projectors; `student/` is the student alone,
# an ordinary model.
#
# ## Attention maps after training

# %%
after = {}
for name in runs:
    trained = load_model(str(RunFolder(WORKDIR / name.replace(" ", "-")).student_dir), attn_implementation="eager")
    after[name] = compare_attention(teacher, tokenizer, trained, tokenizer, TEXT, preset="uniform")
attention_figure(after["with attention term"], pair_index=S_LAYERS - 1).update_layout(
    title="after, with the attention term: last student layer").show()

labels = before.pair_labels
figure = go.Figure(go.Bar(x=labels, y=before.js.mean(1).tolist(), name="before", marker_color="#94a3b8"))
for name, color in zip(runs, ("#f59e0b", "#2563eb"), strict=True):
    figure.add_trace(go.Bar(x=labels, y=after[name].js.mean(1).tolist(), name=name, marker_color=color))
figure.update_layout(barmode="group", height=360, template="plotly_white", yaxis_title="mean JS divergence (bits)",
                     title="how far each student layer's attention is from its teacher layer (lower = closer)")
figure.show()
for index, label in enumerate(labels):
    print(f"{label}: before {float(before.js[index].mean()):.3f}   "
          + "   ".join(f"{name} {float(after[name].js[index].mean()):.3f}" for name in runs))
closer = sum(float(after["with attention term"].js[i].mean()) < float(before.js[i].mean()) for i in range(len(labels)))
print(f"with the attention term, {closer} of {len(labels)} student layers moved closer to their teacher layer")

# %% [markdown]
# With the attention term the student's maps move towards the teacher's; without it, 30 steps of KD and hidden
# matching do not teach the student where to look. Over a long run the logits alone would shape attention too,
# but the attention term gets there far sooner, which is why it helps most for students that start far from
# the teacher (fresh ones, or a different width).
#
# **Try:** a smaller `loss.attn_weight` (1) and see when KD drowns it; map every student layer to
# the teacher's last layers (`mapping.preset=custom`, `mapping.pairs=["0:26","1:27","2:28","3:29"]`); use
# `loss.hidden_loss=mse` and watch how large that term is next to the others. In the app these are
# **Mapping preset**, the pair table and the weights on the Setup tab, and the **Attention** tab shows the same
# comparison for any run.
#
# Next: `05_lora_student_tradeoffs.ipynb`.
