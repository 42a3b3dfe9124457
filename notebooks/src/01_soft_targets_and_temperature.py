# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Soft targets and temperature
#
# A teacher language model does not only say *which* token comes next: it gives a probability to every token in
# its vocabulary. Knowledge distillation trains the student on that whole distribution (the **soft targets**)
# instead of the single token that the text happens to contain (the **hard label**).
#
# In this notebook, on the real built-in teacher (SmolLM2-135M-Instruct, offline, CPU):
#
# 1. what the **temperature** T does to the teacher's next-token distribution;
# 2. the **dark knowledge**: how much the teacher says through the tokens it did *not* rank first;
# 3. why the distillation gradient shrinks like **1/T²**, and what the **T² scaling** in the loss restores.
#
# Runs in well under a minute on a laptop CPU. Change the prompt and the temperatures and run it again.

# %%
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import plotly.graph_objects as go
import torch

from workbench.config import BUILTIN_TEACHER, load_preset
from workbench.losses import divergence
from workbench.models import load_model, load_tokenizer
from workbench.plots import temperature_figure, temperature_preview

torch.manual_seed(0)
teacher = load_model(BUILTIN_TEACHER)
tokenizer = load_tokenizer(BUILTIN_TEACHER)
print(BUILTIN_TEACHER, f"{sum(p.numel() for p in teacher.parameters()) / 1e6:.0f}M parameters,",
      f"vocabulary of {teacher.config.vocab_size} tokens")

# %% [markdown]
# ## The teacher's next-token distribution
#
# We feed a prompt and read the logits z (one number per vocabulary token) at the last position.
# The distribution at temperature T is **p_T = softmax(z / T)**. T = 1 is the model as it is.

# %%
PROMPT = "She opened the fridge and took out a bottle of"

with torch.no_grad():
    teacher_logits = teacher(**tokenizer(PROMPT, return_tensors="pt")).logits[0, -1]  # [V]


def token_text(token_id: int) -> str:
    return repr(tokenizer.decode([token_id]))[1:-1]


probs = teacher_logits.softmax(-1)
top = probs.topk(10)
for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True):
    print(f"{token_text(i):>12}  {p:.3f}")

# %% [markdown]
# ## Temperature flattens the distribution
#
# Dividing the logits by T > 1 shrinks the gaps between them, so probability flows from the top token to the
# others; T < 1 sharpens it. Below, the teacher's 12 most likely tokens at four temperatures.

# %%
TEMPERATURES = (0.5, 1.0, 2.0, 4.0)
top_ids = teacher_logits.topk(12).indices.tolist()
labels = [token_text(i) for i in top_ids]

figure = go.Figure()
for temperature in TEMPERATURES:
    p_t = (teacher_logits / temperature).softmax(-1)
    figure.add_trace(go.Bar(x=labels, y=p_t[top_ids].tolist(), name=f"T = {temperature:g}"))
figure.update_layout(barmode="group", height=380, template="plotly_white", yaxis_title="probability",
                     title=f"next token after “{PROMPT} …”")
figure.show()

# %% [markdown]
# The ranking is the same at every temperature (softmax keeps the order of the logits); only how much of the
# ranking is *visible* changes. The entropy grows with T, from a near one-hot distribution towards uniform over
# the whole vocabulary (log V nats):

# %%
grid = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8]
entropies = []
for temperature in grid:
    log_p = (teacher_logits / temperature).log_softmax(-1)
    entropies.append(float(-(log_p.exp() * log_p).sum()))
ranking_kept = all(
    torch.equal((teacher_logits / t).softmax(-1).topk(50).indices, teacher_logits.topk(50).indices) for t in grid
)
print("top-50 ranking identical at every T:", ranking_kept)

figure = go.Figure(go.Scatter(x=grid, y=entropies, mode="lines+markers", name="entropy"))
figure.add_hline(y=float(torch.log(torch.tensor(float(teacher_logits.numel())))), line_dash="dot",
                 annotation_text="uniform (log V)")
figure.update_layout(height=320, template="plotly_white", xaxis_title="temperature T",
                     yaxis_title="entropy (nats)", title="entropy of the teacher's next-token distribution")
figure.show()

# %% [markdown]
# ## Dark knowledge
#
# The hard label of this prompt might be "wine". A student trained on it learns *wine* and nothing else. The
# teacher also says that water, beer or milk would fit, and that "car" or "Paris" would not: that is
# what Hinton et al. called **dark knowledge**. It sits in the probabilities of the non-argmax tokens, which at
# T = 1 are often too small to move a loss. The temperature brings them up:

# %%
argmax = int(teacher_logits.argmax())
print(f"argmax token: {token_text(argmax)!r}\n")
print("   T  mass outside argmax  tokens holding 90% of the mass  p(2nd..10th) / p(argmax)")
for temperature in TEMPERATURES:
    p_t = (teacher_logits / temperature).softmax(-1)
    sorted_p = p_t.sort(descending=True).values
    needed = int((sorted_p.cumsum(0) < 0.9).sum()) + 1
    ratio = (sorted_p[1:10] / sorted_p[0]).tolist()
    print(f"{temperature:4g}  {1 - float(p_t[argmax]):19.3f}  {needed:30d}  "
          + " ".join(f"{r:.2f}" for r in ratio))

# %% [markdown]
# Look at how fast the tail grows with T. A vocabulary has tens of thousands of tokens and most of them make no
# sense after this prompt; each carries a tiny probability, but together they are many. Past T ≈ 2 the
# softened distribution spends most of its mass on that junk tail (see the count of tokens holding 90% of the
# mass), so a student trained at high T learns mainly the tail's shape. For language models, T between 1 and 2
# is the usual range, and the app's presets use T = 2.
#
# ## Teacher and student, side by side
#
# The setup tab of the app shows this preview for the pair you picked. Here it is for the quick preset's
# student, a copy of the teacher with 11 of its 30 layers removed (before any training). At T = 1 the two
# look alike at the top; at T = 4 the differences in the tail, which the student has to learn, become visible.

# %%
student_spec = load_preset("quick").models.student
student = load_model(student_spec)
with torch.no_grad():
    student_logits = student(**tokenizer(PROMPT, return_tensors="pt")).logits[0, -1]  # [V]
print(student_spec)
for temperature in (1.0, 4.0):
    temperature_figure(temperature_preview(token_text, teacher_logits, student_logits, temperature)).show()

# %% [markdown]
# ## Why the gradient shrinks like 1/T²
#
# The distillation loss with forward KL at temperature T is KL(p_T ‖ q_T) with q_T = softmax(s / T) for the
# student logits s. Its gradient with respect to the student logits is
#
# $$\frac{\partial}{\partial s}\,\mathrm{KL}(p_T \,\|\, q_T) = \frac{1}{T}\,(q_T - p_T).$$
#
# One factor 1/T comes from the chain rule through s / T. The other comes from q_T − p_T itself: for large T,
# softmax(z / T) ≈ (1 + (z − z̄) / T) / V, so q_T − p_T ≈ ((s − s̄) − (z − z̄)) / (T·V). Together the gradient
# falls like **1/T²**. Training at T = 4 without a correction would take 16 times smaller steps than at T = 1.
#
# We check this numerically with autograd on `workbench.losses.divergence`, the very function the trainer uses,
# with the real student and teacher logits from above:

# %%
def kd_gradient(temperature: float, t2_scale: bool) -> torch.Tensor:
    student_z = student_logits.clone().requires_grad_(True)
    loss = divergence(student_z[None], teacher_logits[None], kind="forward_kl", temperature=temperature,
                      t2_scale=t2_scale)
    loss.backward()
    return student_z.grad


T = 4.0
by_formula = ((student_logits / T).softmax(-1) - (teacher_logits / T).softmax(-1)) / T
print("autograd vs formula, largest difference:", float((kd_gradient(T, False) - by_formula).abs().max()))

# %%
sweep = [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32]
raw = [float(kd_gradient(t, t2_scale=False).norm()) for t in sweep]
scaled = [float(kd_gradient(t, t2_scale=True).norm()) for t in sweep]
difference = (student_logits - student_logits.mean()) - (teacher_logits - teacher_logits.mean())
high_t_limit = float(difference.norm()) / teacher_logits.numel()

figure = go.Figure()
figure.add_trace(go.Scatter(x=sweep, y=raw, mode="lines+markers", name="KL(p_T‖q_T): no scaling"))
figure.add_trace(go.Scatter(x=sweep, y=scaled, mode="lines+markers", name="T² · KL(p_T‖q_T)"))
figure.add_trace(go.Scatter(x=sweep, y=[raw[0] / t**2 for t in sweep], mode="lines", line_dash="dot",
                            name="reference ∝ 1/T²"))
figure.add_hline(y=high_t_limit, line_dash="dash", annotation_text="logit-matching limit |Δz − mean| / V")
figure.update_layout(height=400, template="plotly_white", xaxis=dict(type="log", title="temperature T"),
                     yaxis=dict(type="log", title="‖gradient w.r.t. student logits‖"),
                     title="size of the distillation gradient as T grows")
figure.show()
for t, r, s in zip(sweep, raw, scaled, strict=True):
    print(f"T = {t:4g}   raw {r:.2e}   raw·T² {r * t * t:.2e}   with t2_scale {s:.2e}")

# %% [markdown]
# Without scaling, the gradient falls by about four orders of magnitude between T = 1 and T = 32, along the 1/T²
# reference once T is past a few. With **T² scaling** (`loss.t2_scale`, on by default) it levels off at a
# constant: the gradient of matching the centred logits directly (divided by V). That is Hinton's observation
# that distillation at high temperature becomes logit matching, and it is why you can change T in the app
# without retuning the learning rate.
#
# **Try:** another prompt; T = 8 and T = 0.5 in the first figure; `kind="reverse_kl"` or `kind="jsd"` in
# `kd_gradient` (the 1/T² law holds for them too).
#
# Next: `02_distil_the_builtin_teacher.ipynb` trains a student with these soft targets.
