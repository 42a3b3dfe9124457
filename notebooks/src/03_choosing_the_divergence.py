# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Choosing the divergence: mode covering vs mode seeking
#
# The distillation loss compares the teacher's distribution p with the student's q. *How* it compares them
# decides what the student does when it cannot copy the teacher exactly, which is the normal case for a student
# several times smaller than its teacher.
#
# Here the "vocabulary" is 100 tokens on a line, the teacher puts its mass on **two separate groups** of tokens
# (a bimodal distribution), and the student is a categorical distribution that can only make **one bump**
# (its logits are a parabola with a centre μ and a width σ). We fit the student by gradient descent under each
# divergence of `workbench.losses.divergence`, exactly the function the trainer calls, and look at the result.
# Runs in a few seconds.

# %%
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.losses import divergence

torch.manual_seed(0)
V = 100
positions = torch.arange(V, dtype=torch.float64)


def bump(centre: float, width: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((positions - centre) / width) ** 2)


teacher_probs = 0.6 * bump(35, 3) / bump(35, 3).sum() + 0.4 * bump(65, 4) / bump(65, 4).sum()
teacher_logits = teacher_probs.log()  # softmax(teacher_logits) == teacher_probs

figure = go.Figure(go.Bar(x=positions.tolist(), y=teacher_probs.tolist(), marker_color="#94a3b8"))
figure.update_layout(height=280, template="plotly_white", title="teacher: two modes (60% at 35, 40% at 65)",
                     xaxis_title="token", yaxis_title="probability")
figure.show()

# %% [markdown]
# ## A one-bump student
#
# The student's logits are s_i = −(i − μ)² / (2σ²); its distribution is q = softmax(s). We train μ and log σ
# with Adam on `divergence(student_logits, teacher_logits, kind=...)` for each kind the workbench offers
# (`mse` is left out: it compares raw logits, not distributions).

# %%
KINDS = {
    "forward_kl": {},
    "reverse_kl": {},
    "jsd": {"beta": 0.5},
    "skew_forward_kl": {"alpha": 0.1},
    "skew_reverse_kl": {"alpha": 0.1},
    "tvd": {},
}


def student_logits(centre: torch.Tensor, log_width: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((positions - centre) / log_width.exp()) ** 2


def fit(kind: str, start: float = 40.0, steps: int = 600, **options) -> tuple[float, float, list[float]]:
    """Fit μ and σ under one divergence from μ = start, σ = 8; returns (μ, σ, loss per step)."""
    centre = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    log_width = torch.tensor(8.0, dtype=torch.float64).log().requires_grad_(True)
    optimizer = torch.optim.Adam([centre, log_width], lr=0.3)
    losses = []
    for _ in range(steps):
        loss = divergence(student_logits(centre, log_width)[None], teacher_logits[None], kind=kind, **options)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return centre.item(), log_width.exp().item(), losses


fits = {kind: fit(kind, **options) for kind, options in KINDS.items()}
for kind, (centre, width, losses) in fits.items():
    verdict = "covers both modes" if width > 8 else f"sits on the mode at {round(centre)}"
    print(f"{kind:16s} μ = {centre:5.1f}  σ = {width:5.1f}  final loss {losses[-1]:.4f}   {verdict}")

# %%
def student_probs(centre: float, width: float) -> torch.Tensor:
    return student_logits(torch.tensor(centre), torch.tensor(width).log()).softmax(-1)


figure = make_subplots(rows=2, cols=3, subplot_titles=list(fits), shared_yaxes=True,
                       vertical_spacing=0.14, horizontal_spacing=0.04)
for index, (centre, width, _) in enumerate(fits.values()):
    row, col = index // 3 + 1, index % 3 + 1
    figure.add_trace(go.Bar(x=positions.tolist(), y=teacher_probs.tolist(), marker_color="#cbd5e1",
                            name="teacher", showlegend=index == 0), row=row, col=col)
    figure.add_trace(go.Scatter(x=positions.tolist(), y=student_probs(centre, width).tolist(), mode="lines",
                                line=dict(color="#dc2626", width=3), name="student", showlegend=index == 0),
                     row=row, col=col)
figure.update_layout(height=520, template="plotly_white", title="the best one-bump student under each divergence")
figure.show()

# %% [markdown]
# What the pictures show (the printed verdicts above say the same in words):
#
# - **forward_kl** KL(p‖q) is large wherever the teacher has mass and the student has little, so the student
#   stretches to **cover both modes**, and puts its peak in the valley where the teacher puts almost nothing.
#   Its optimum matches the teacher's mean (0.6·35 + 0.4·65 = 47) and spread.
# - **reverse_kl** KL(q‖p) is large wherever the *student* has mass and the teacher has little, so the student
#   **picks one mode** and fits it tightly, ignoring the other.
# - **jsd** mixes both directions against the average m = βp + (1−β)q; because m always contains some of q,
#   the penalty for mass in the valley is bounded, and here it covers like forward KL.
# - **skew_forward_kl** behaves like forward KL. **skew_reverse_kl** compares q with (1−α)p + αq: the α·q part
#   caps the penalty for mass where p has none, so even a small α turns reverse KL's mode seeking into covering
#   here. That cap is what keeps skew kinds stable when the teacher gives a token almost nothing.
# - **tvd** only counts the mass that is in the wrong place, and stays bounded by 1; whether it settles on a
#   mode depends on where it starts (next section).
#
# For a language model, covering means the student spreads probability over every continuation the teacher
# finds plausible (diverse, sometimes vague); seeking means it commits to the teacher's main continuation
# (sharp, less diverse). Neither is right in general, which is why the workbench lets you pick.

# %% [markdown]
# ## Mode seeking depends on where you start
#
# Forward KL with this student is convex in (μ/σ², 1/σ²): whatever the start, it ends at the same place (the
# student's mean and spread match the teacher's). Reverse KL is not: it has one local minimum per mode and
# falls into one of them depending on where it starts. Below, the final centre μ for several starting centres
# (each starting with σ = 8).

# %%
starts = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
figure = go.Figure()
for kind in ("forward_kl", "reverse_kl", "jsd", "tvd"):
    ends = [fit(kind, start=start, **KINDS[kind])[0] for start in starts]
    figure.add_trace(go.Scatter(x=starts, y=ends, mode="lines+markers", name=kind))
for mode in (35, 65):
    figure.add_hline(y=mode, line_dash="dot", line_color="#94a3b8")
figure.update_layout(height=360, template="plotly_white", xaxis_title="starting centre μ₀",
                     yaxis_title="final centre μ", title="where the student ends up (dotted: the teacher's modes)")
figure.show()

# %% [markdown]
# ## How each student scores on the other measures
#
# Each fitted student, measured with every divergence (rows: the kind it was trained with). Reading down a
# column shows the price paid: a mode-seeking student has a huge forward KL (it gives the other mode almost no
# probability), a mode-covering one a larger reverse KL (it puts mass in the valley).

# %%
print(f"{'trained with':16s}" + "".join(f"{kind:>17s}" for kind in KINDS))
for trained, (centre, width, _) in fits.items():
    logits = student_logits(torch.tensor(centre), torch.tensor(width).log())[None]
    scores = [float(divergence(logits, teacher_logits[None], kind=kind, **options)) for kind, options in KINDS.items()]
    print(f"{trained:16s}" + "".join(f"{score:17.3f}" for score in scores))

# %% [markdown]
# ## When the student *can* copy the teacher
#
# With a fully flexible student (one free logit per token) every divergence has the same minimum, the teacher
# itself, so the choice matters much less. It still changes the path: forward KL first fills in every token the
# teacher likes; reverse KL first removes mass from tokens the teacher dislikes. After the same 40 steps from a
# uniform start:

# %%
figure = go.Figure(go.Bar(x=positions.tolist(), y=teacher_probs.tolist(), marker_color="#cbd5e1", name="teacher"))
for kind in ("forward_kl", "reverse_kl", "tvd"):
    free = torch.zeros(V, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([free], lr=0.1)
    for _ in range(40):
        loss = divergence(free[None], teacher_logits[None], kind=kind, **KINDS[kind])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    figure.add_trace(go.Scatter(x=positions.tolist(), y=free.detach().softmax(-1).tolist(), mode="lines",
                                name=f"{kind} after 40 steps"))
figure.update_layout(height=340, template="plotly_white", title="a free student part-way through training",
                     xaxis_title="token", yaxis_title="probability")
figure.show()

# %% [markdown]
# **Try:** move the teacher's modes closer together (40 and 55) and rerun: the mode-covering student then looks
# fine. Set `beta` of jsd to 0.1 or 0.9, or `alpha` of the skew kinds to 0.5. A temperature T > 1 (`temperature=`
# in `divergence`) flattens the teacher first, which makes every kind more covering.
#
# In the app these are **Divergence**, **β (JSD)** and **α (skew)** on the Setup tab. Next:
# `04_layer_mapping.ipynb` matches the teacher's inner layers as well.
