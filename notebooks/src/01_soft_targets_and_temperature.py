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
# 3. how the distillation gradient shrinks as T grows (like **1/T²** once T is large), and why the loss is
#    multiplied by **T²**.
#
# Measured runtime on a 2-core CPU: 10 s when nothing else ran, 15 s while other jobs kept it busy (load
# average 14); the first run ever takes about 13 s more, to convert the teacher's weights once. The last cell
# prints this run's time. Change the prompt and the temperatures and run it again. Every sentence below that a printed number can check is checked by an
# `assert` in the cell that prints the number.

# %%
import os
import time

NOTEBOOK_STARTED, NOTEBOOK_CPU = time.monotonic(), time.process_time()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import plotly.graph_objects as go
import torch

from workbench.analysis.plots import temperature_figure, temperature_preview
from workbench.config import BUILTIN_TEACHER, load_preset
from workbench.engine.losses import divergence
from workbench.models.loading import load_model, load_tokenizer, num_layers

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
top_tokens = [token_text(i) for i in top.indices.tolist()]
assert top_tokens[0] == " wine" and {" water", " beer", " milk"} <= set(top_tokens)

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
assert ranking_kept and all(a < b for a, b in zip(entropies, entropies[1:], strict=False))

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
# teacher also says that water, beer or milk would fit (they are in its top 10 above), and that "car" or "Paris"
# would not: that is what Hinton et al. called **dark knowledge**. It sits in the probabilities of the
# non-argmax tokens, which at T = 1 are often too small to move a loss. The temperature brings them up:

# %%
argmax = int(teacher_logits.argmax())
print(f"argmax token: {token_text(argmax)!r}\n")
tail_size = {}
print("   T  mass outside argmax  tokens holding 90% of the mass  p(2nd..10th) / p(argmax)")
for temperature in TEMPERATURES:
    p_t = (teacher_logits / temperature).softmax(-1)
    sorted_p = p_t.sort(descending=True).values
    needed = int((sorted_p.cumsum(0) < 0.9).sum()) + 1
    ratio = (sorted_p[1:10] / sorted_p[0]).tolist()
    print(f"{temperature:4g}  {1 - float(p_t[argmax]):19.3f}  {needed:30d}  "
          + " ".join(f"{r:.2f}" for r in ratio))
    tail_size[temperature] = needed
assert 100 < tail_size[1.0] < 1_000 and tail_size[2.0] > 5_000 and tail_size[4.0] > 20_000  # "hundreds"

# %% [markdown]
# Look at how fast the tail grows with T. A vocabulary has tens of thousands of tokens and most of them make no
# sense after this prompt; each carries a tiny probability, but together they are many. Already at T = 1 the
# 90% of the mass is spread over hundreds of tokens; at T = 2 over more than five thousand, at T = 4 over more
# than twenty thousand, so a student trained at high T learns mainly the shape of that junk tail. For language
# models, T between 1 and 2 is the usual range. The app's presets:

# %%
PRESET_T = {name: load_preset(name).loss.temperature for name in ("default", "quick", "thorough")}
print("loss.temperature of each preset:", PRESET_T)
assert PRESET_T == {"default": 1.0, "quick": 1.0, "thorough": 2.0}

# %% [markdown]
# The `default` and `quick` presets distil at T = 1, together with the hard-label CE; `thorough` softens to
# T = 2.
#
# ## Teacher and student, side by side
#
# The setup tab of the app shows this preview for the pair you picked. Here it is for the quick preset's
# student, a copy of the teacher with 11 of its 30 layers removed (before any training).

# %%
student_spec = load_preset("quick").models.student
student = load_model(student_spec)
with torch.no_grad():
    student_logits = student(**tokenizer(PROMPT, return_tensors="pt")).logits[0, -1]  # [V]
print(student_spec, f"({num_layers(student)} of the teacher's {num_layers(teacher)} layers)")
assert num_layers(teacher) - num_layers(student) == 11
side_by_side = {}
for temperature in (1.0, 4.0):
    temperature_figure(temperature_preview(token_text, teacher_logits, student_logits, temperature)).show()
    kl = float(divergence(student_logits[None], teacher_logits[None], kind="forward_kl", temperature=temperature,
                          t2_scale=False))
    student_top = [token_text(i) for i in student_logits.topk(3).indices.tolist()]
    side_by_side[temperature] = kl
    print(f"T = {temperature:g}: KL(p_T ‖ q_T) = {kl:.2f} nats (× T² = {kl * temperature**2:.2f});",
          f"the student's top 3 tokens: {student_top}")
assert token_text(int(student_logits.argmax())) != token_text(argmax)
assert side_by_side[1.0] > 1 and side_by_side[1.0] > 5 * side_by_side[4.0]  # "over 1 nat", "several times"

# %% [markdown]
# At T = 1 the two differ clearly: the student's most likely token is not the teacher's " wine", and KL is over
# 1 nat. At T = 4 both are flattened, the bars look alike and KL is several times smaller (the ranking does not
# change with T, so the student's top tokens stay the same). Softening shrinks every logit difference, the
# student's errors with them: a higher temperature makes teacher and student *look* more alike, and the
# distillation loss and its gradient shrink accordingly. What remains at high T is the shape of the tail. That
# shrinking is the subject of the next sections; the trainer multiplies the loss by T² (the value in brackets).

# %% [markdown]
# ## Why the gradient shrinks like 1/T²
#
# The distillation loss with forward KL at temperature T is KL(p_T ‖ q_T) with q_T = softmax(s / T) for the
# student logits s. Its gradient with respect to the student logits is
#
# $$\frac{\partial}{\partial s}\,\mathrm{KL}(p_T \,\|\, q_T) = \frac{1}{T}\,(q_T - p_T).$$
#
# One factor 1/T comes from the chain rule through s / T. The other comes from q_T − p_T itself, but only once
# T is large: then softmax(z / T) ≈ (1 + (z − z̄) / T) / V, so q_T − p_T ≈ ((s − s̄) − (z − z̄)) / (T·V), and the
# gradient falls like **1/T²**. That is a limit, not a rule for small T: between T = 1 and T = 4 the gradient
# falls by however much q_T − p_T happens to shrink, which depends on the two distributions.
#
# We check this numerically with autograd on `workbench.engine.losses.divergence`, the very function the trainer uses,
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
gap = float((kd_gradient(T, False) - by_formula).abs().max())
print("autograd vs formula, largest difference:", gap)
assert gap < 1e-8

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
fall_1_to_4 = raw[0] / raw[sweep.index(4)]
print(f"raw gradient, T = 1 → 4: {fall_1_to_4:.0f}× smaller (1/T² would say 16×); "
      f"high-T limit {high_t_limit:.2e}, with t2_scale at T = 32 {scaled[-1]:.2e}")
assert fall_1_to_4 > 50
assert all(abs(s / high_t_limit - 1) < 0.1 for t, s in zip(sweep, scaled, strict=True) if t >= 8)
assert raw[0] / raw[-1] > 10_000

# %% [markdown]
# Without scaling, the gradient falls by four orders of magnitude between T = 1 and T = 32. From T = 1 to 4 it
# falls far more than 16×, because at T = 1 the student's errors on the top tokens dominate and softening
# removes most of them; only past T ≈ 8 does it run along the 1/T² reference. With **T² scaling**
# (`loss.t2_scale`, on by default) it levels off at a constant: the gradient of matching the centred logits
# directly (divided by V). That is Hinton's observation that distillation at high temperature becomes logit
# matching.
#
# ## Why multiply by T²?
#
# Not for the learning rate. Adam and AdamW divide each step by a running estimate of the gradient's own size,
# so multiplying the whole loss by a constant hardly changes the steps:

# %%
def adam_steps(loss_scale: float, steps: int = 5) -> torch.Tensor:
    student_z = student_logits.clone().requires_grad_(True)
    optimizer = torch.optim.AdamW([student_z], lr=1e-2)
    for _ in range(steps):
        loss = loss_scale * divergence(student_z[None], teacher_logits[None], kind="forward_kl", temperature=4.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return student_z.detach() - student_logits


plain, times_16 = adam_steps(1.0), adam_steps(16.0)
relative = float((plain - times_16).norm() / plain.norm())
print(f"5 AdamW steps on KL vs on 16·KL: the updates differ by {relative:.1%} of their size")
assert relative < 0.02  # only Adam's eps, added to the tiny per-logit gradients, tells the two apart

# %% [markdown]
# Hinton et al. give the reason: the soft-target term is usually *added* to the hard-label cross-entropy, whose
# gradient does not depend on T. Multiplying the soft term by T² keeps the balance between the two terms
# roughly unchanged when you change T. Below, the size of each term's gradient with respect to the student's
# logits, for the hard label " wine" (the CE is taken at T = 1, as the trainer does):

# %%
ce_logits = student_logits.clone().requires_grad_(True)
torch.nn.functional.cross_entropy(ce_logits[None], torch.tensor([argmax])).backward()
ce_norm = float(ce_logits.grad.norm())
balance = {t: (r / ce_norm, s / ce_norm) for t, r, s in zip(sweep, raw, scaled, strict=True) if t in (2, 4, 8, 16)}
for t, (without, with_t2) in balance.items():
    print(f"T = {t:2g}: KD gradient / CE gradient = {without:.1e} without T², {with_t2:.2f} with T²")
assert balance[2][0] / balance[16][0] > 100 and balance[2][1] / balance[16][1] < 5

# %% [markdown]
# Without T² the KD term's share falls by more than two orders of magnitude between T = 2 and T = 16, so
# changing T would silently turn a KD + CE run into a CE run; with T² the ratio changes by less than 5×. In the
# app this is the balance of **KD weight** and **CE weight**: with `loss.t2_scale` on, a change of T leaves that
# balance roughly where you set it.
#
# **Try:** another prompt; T = 8 and T = 0.5 in the first figure; `kind="reverse_kl"` or `kind="jsd"` in
# `kd_gradient` (does the high-T limit hold for them too?).
#
# Next: `02_distil_the_builtin_teacher.ipynb` trains a student with these soft targets.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 5 minutes

# %% [markdown]
# ## References
#
# The papers behind the methods and findings this notebook uses:
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: soft targets,
#   temperature, dark knowledge, the T² factor and the high-T limit in which distillation becomes logit matching.
