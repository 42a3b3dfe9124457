# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Divergence 고르기: mode covering과 mode seeking
#
# 증류 손실은 교사 모델(teacher)의 분포 p와 학생 모델(student)의 분포 q를 비교합니다. *어떻게* 비교하느냐에 따라, 학생 모델이 교사 모델을 그대로
# 따라 할 수 없을 때(교사 모델보다 몇 배 작은 학생 모델이라면 이것이 보통입니다) 학생 모델이 무엇을 하는지가 정해집니다.
#
# 여기서 "vocabulary"는 한 줄로 늘어선 100개 토큰(token)이고, 교사 모델은 **서로 떨어진 두 무리**의 토큰에 확률을 나눠 줍니다
# (bimodal 분포). 학생 모델은 **봉우리 하나**만 만들 수 있는 categorical 분포입니다(logits가 중심 μ, 폭 σ인 포물선).
# trainer가 호출하는 바로 그 함수 `workbench.engine.losses.divergence`의 각 divergence로 학생 모델을 gradient descent로 맞춰 보고
# 결과를 봅니다.
#
# 측정한 실행 시간(2코어 CPU): 다른 작업이 없을 때 33초, load average 14에서 66초. 마지막 셀이 이번 실행 시간을 출력합니다. 아래 본문
# 중 출력된 숫자로 확인할 수 있는 문장은 모두 그 숫자를 출력하는 셀의 `assert`로 검사합니다.

# %%
import time

NOTEBOOK_STARTED, NOTEBOOK_CPU = time.monotonic(), time.process_time()

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.engine.losses import divergence

torch.manual_seed(0)
V = 100
positions = torch.arange(V, dtype=torch.float64)


def bump(centre: float, width: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((positions - centre) / width) ** 2)


teacher_probs = 0.6 * bump(35, 3) / bump(35, 3).sum() + 0.4 * bump(65, 4) / bump(65, 4).sum()
teacher_logits = teacher_probs.log()  # softmax(teacher_logits) == teacher_probs
teacher_mean = float((positions * teacher_probs).sum())
teacher_std = float(((positions - teacher_mean) ** 2 * teacher_probs).sum().sqrt())
print(f"teacher: mean {teacher_mean:.1f}, standard deviation {teacher_std:.1f}")

figure = go.Figure(go.Bar(x=positions.tolist(), y=teacher_probs.tolist(), marker_color="#94a3b8"))
figure.update_layout(height=280, template="plotly_white", title="teacher: two modes (60% at 35, 40% at 65)",
                     xaxis_title="token", yaxis_title="probability")
figure.show()

# %% [markdown]
# ## 봉우리 하나짜리 학생 모델을 여러 시작점에서 맞추기
#
# 학생 모델의 logits는 s_i = −(i − μ)² / (2σ²)이고 분포는 q = softmax(s)입니다. workbench가 제공하는 각 kind에 대해
# `divergence(student_logits, teacher_logits, kind=...)`를 Adam으로 최소화하여 μ와 log σ를 학습합니다(`mse`는 분포가
# 아니라 raw logits를 비교하므로 뺐습니다).
#
# 이런 학생 모델에서는 대부분의 손실에 local minimum이 여러 개 있어서, gradient descent가 어디서 끝나는지는 어디서
# 시작하느냐에 달려 있습니다. 다섯 곳(왼쪽, 각 mode 위, 골짜기에서 넓게, 오른쪽)에서 시작해, **학습에 쓴 바로 그 손실의
# 값이 가장 낮은** 결과를 남깁니다. 그 손실이 찾을 수 있는 가장 좋은 학생 모델입니다.

# %%
KINDS = {
    "forward_kl": {},
    "reverse_kl": {},
    "jsd": {"beta": 0.5},
    "skew_forward_kl": {"alpha": 0.1},
    "skew_reverse_kl": {"alpha": 0.1},
    "tvd": {},
    "soft_ce": {},
}
STARTS = [(20.0, 8.0), (35.0, 3.0), (47.0, 15.0), (65.0, 4.0), (80.0, 8.0)]  # (μ₀, σ₀)


def student_logits(centre: torch.Tensor, log_width: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((positions - centre) / log_width.exp()) ** 2


def score(kind: str, centre: float, width: float, **options) -> float:
    """The loss `kind` of the one-bump student (μ, σ)."""
    logits = student_logits(torch.tensor(centre, dtype=torch.float64), torch.tensor(width, dtype=torch.float64).log())
    return float(divergence(logits[None], teacher_logits[None], kind=kind, **options))


def fit(kind: str, start: tuple[float, float], steps: int = 600, **options) -> tuple[float, float, float]:
    """Fit μ and σ under one divergence from (μ₀, σ₀); returns (μ, σ, final loss)."""
    centre = torch.tensor(start[0], dtype=torch.float64, requires_grad=True)
    log_width = torch.tensor(start[1], dtype=torch.float64).log().requires_grad_(True)
    optimizer = torch.optim.Adam([centre, log_width], lr=0.3)
    for _ in range(steps):
        loss = divergence(student_logits(centre, log_width)[None], teacher_logits[None], kind=kind, **options)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return centre.item(), log_width.exp().item(), score(kind, centre.item(), log_width.exp().item(), **options)


def verdict(centre: float, width: float) -> str:
    if width > 8:
        return "covers both modes"
    return f"sits on the mode at {35 if abs(centre - 35) < abs(centre - 65) else 65}"


ends = {kind: [fit(kind, start, **options) for start in STARTS] for kind, options in KINDS.items()}
fits = {kind: min(runs, key=lambda run: run[2]) for kind, runs in ends.items()}
print(f"{'kind':16s} {'best of 5 starts':>34s}   every start ends at (μ, σ)")
for kind, (centre, width, loss) in fits.items():
    print(f"{kind:16s} μ = {centre:5.1f} σ = {width:5.1f} loss {loss:.4f}   "
          + "  ".join(f"({c:.0f}, {w:.0f})" for c, w, _ in ends[kind]), f"  → {verdict(centre, width)}")
verdicts = {kind: verdict(centre, width) for kind, (centre, width, _) in fits.items()}
assert verdicts["forward_kl"] == verdicts["soft_ce"] == "covers both modes"
assert all(verdicts[kind] == "sits on the mode at 35" for kind in
           ("reverse_kl", "jsd", "skew_forward_kl", "skew_reverse_kl", "tvd"))
assert all(abs(c - teacher_mean) < 0.5 and abs(w - teacher_std) < 0.3 for c, w, _ in ends["forward_kl"])
assert {verdict(c, w) for c, w, _ in ends["reverse_kl"]} == {"sits on the mode at 35", "sits on the mode at 65"}
for kind in ("jsd", "skew_forward_kl", "skew_reverse_kl", "tvd"):  # covering is only a local minimum for these
    assert any(verdict(c, w) == "covers both modes" and loss > fits[kind][2] for c, w, loss in ends[kind]), kind
entropy = float(-(teacher_probs * teacher_probs.log()).sum())
assert abs(fits["soft_ce"][2] - fits["forward_kl"][2] - entropy) < 1e-3

# %%
def student_probs(centre: float, width: float) -> torch.Tensor:
    return student_logits(torch.tensor(centre), torch.tensor(width).log()).softmax(-1)


figure = make_subplots(rows=2, cols=4, subplot_titles=list(fits), shared_yaxes=True,
                       vertical_spacing=0.14, horizontal_spacing=0.03)
for index, (centre, width, _) in enumerate(fits.values()):
    row, col = index // 4 + 1, index % 4 + 1
    figure.add_trace(go.Bar(x=positions.tolist(), y=teacher_probs.tolist(), marker_color="#cbd5e1",
                            name="teacher", showlegend=index == 0), row=row, col=col)
    figure.add_trace(go.Scatter(x=positions.tolist(), y=student_probs(centre, width).tolist(), mode="lines",
                                line=dict(color="#dc2626", width=3), name="student", showlegend=index == 0),
                     row=row, col=col)
figure.update_layout(height=520, template="plotly_white", title="the best one-bump student under each divergence")
figure.show()

# %% [markdown]
# 결과가 보여 주는 것(위에 출력된 판정이 같은 내용을 말로 하고, assert가 이를 검사합니다):
#
# - **forward_kl** KL(p‖q)는 교사 모델에는 확률이 있는데 학생 모델에는 거의 없는 곳에서 커집니다. 그래서 학생 모델은 **두
#   mode를 모두 덮도록** 넓게 퍼지고, 교사 모델이 거의 아무것도 두지 않는 골짜기에 봉우리를 둡니다. 어느 시작점에서든
#   같은 곳, 즉 교사 모델의 평균(0.6·35 + 0.4·65 = 47)과 퍼짐에서 끝납니다.
# - **soft_ce** −Σ p log q는 forward KL에 교사 모델의 엔트로피(상수)를 더한 것입니다. 같은 학생 모델이 나오고, 손실 값만
#   정확히 H(p)만큼 큽니다. gradient는 forward KL과 같고 기록되는 값만 다릅니다.
# - **reverse_kl** KL(q‖p)는 *학생 모델*에는 확률이 있는데 교사 모델에는 거의 없는 곳에서 커집니다. 그래서 학생 모델은 **mode
#   하나를 골라** 거기에 딱 맞춥니다. 어느 쪽을 고를지는 시작점에 달려 있고, 더 큰 35의 mode가 손실이 더 낮습니다.
# - **jsd**(β = 0.5), **skew_forward_kl**과 **skew_reverse_kl**(α = 0.1), **tvd**는 모두 덮는 쪽의 local minimum이
#   있습니다. 골짜기에서 넓게 시작하면 넓은 채로 남습니다(tvd는 두 mode 사이에서 끝납니다). 그러나 가장 좋은 학생 모델은
#   **mode 하나 위에** 있습니다. 네 손실 모두 상대 분포에 확률이 없는 곳의 벌점에 상한이 있어서(jsd와 skew 계열은
#   혼합 분포 덕분에, tvd는 많아야 전체 확률 질량만 세므로), mode 하나를 버리는 비용이 제한되고, 큰 mode 위의 뾰족한
#   봉우리 하나가 둘을 덮는 넓은 봉우리보다 쌉니다.
#
# 언어 모델에서 덮는다(covering)는 것은 교사 모델이 그럴듯하다고 보는 모든 이어짐에 학생 모델이 확률을 나눠 준다는
# 뜻입니다(다양하지만 때로 흐릿함). 찾는다(seeking)는 것은 교사 모델의 주된 이어짐에 집중한다는 뜻입니다(또렷하지만 덜
# 다양함). 어느 쪽이 늘 옳은 것은 아니어서 workbench에서 고를 수 있게 했습니다. 실제 학생 모델은 시작점 하나(초기화)에서
# 학습하므로, 덮는 쪽 같은 local minimum에서 끝날 수도 있습니다.

# %% [markdown]
# ## 시작점이 도착점을 정한다
#
# 이 학생 모델에서 forward KL은 (μ/σ², 1/σ²)의 볼록(convex) 함수여서 어디서 시작하든 같은 곳에서 끝납니다. 다른
# 손실은 그렇지 않습니다. 아래는 시작 중심을 20에서 80까지 바꿨을 때(시작 σ는 모두 8) 최종 중심 μ입니다.

# %%
sweep_starts = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
final_centres = {kind: [fit(kind, (start, 8.0), **KINDS[kind])[0] for start in sweep_starts]
                 for kind in ("forward_kl", "reverse_kl", "jsd", "tvd")}
figure = go.Figure()
for kind, centres in final_centres.items():
    figure.add_trace(go.Scatter(x=sweep_starts, y=centres, mode="lines+markers", name=kind))
for mode in (35, 65):
    figure.add_hline(y=mode, line_dash="dot", line_color="#94a3b8")
figure.update_layout(height=360, template="plotly_white", xaxis_title="starting centre μ₀",
                     yaxis_title="final centre μ", title="where the student ends up (dotted: the teacher's modes)")
figure.show()
for kind, centres in final_centres.items():
    print(f"{kind:11s}", " ".join(f"{c:5.1f}" for c in centres))
assert max(final_centres["forward_kl"]) - min(final_centres["forward_kl"]) < 1
assert all(min(abs(c - 35), abs(c - 65)) < 1 for c in final_centres["reverse_kl"])

# %% [markdown]
# ## 각 학생 모델을 다른 척도로 재 보기
#
# 가장 좋은 학생 모델 각각을 모든 divergence로 잰 표입니다(행: 학습에 쓴 kind, 열: 척도). 대각선은 각 학생 모델을 자기
# 손실로 잰 값입니다. 열을 따라 내려 읽으면 치른 대가가 보입니다. mode 하나에 앉은 학생 모델은 forward KL이 매우 크고(다른
# mode에 확률을 거의 주지 않으므로), 덮는 학생 모델은 reverse KL이 더 큽니다(골짜기에 확률을 두므로).

# %%
table = {trained: {kind: score(kind, centre, width, **options) for kind, options in KINDS.items()}
         for trained, (centre, width, _) in fits.items()}
print(f"{'trained with':16s}" + "".join(f"{kind:>16s}" for kind in KINDS))
for trained, row in table.items():
    print(f"{trained:16s}" + "".join(f"{value:16.3f}" for value in row.values()))
for kind in KINDS:  # no other student beats a loss's own best student under that loss
    assert table[kind][kind] <= min(row[kind] for row in table.values()) + 1e-3, kind
assert table["reverse_kl"]["forward_kl"] > 10 * table["forward_kl"]["forward_kl"]
assert table["forward_kl"]["reverse_kl"] > 3 * table["reverse_kl"]["reverse_kl"]

# %% [markdown]
# ## JSD의 β: forward KL에서 reverse KL까지
#
# jsd(β) = β·KL(p‖m) + (1−β)·KL(q‖m), m = βp + (1−β)q입니다. 양 끝에서 workbench는 보통의 KL을 계산합니다. **β = 0이면
# 정확히 KL(p‖q), β = 1이면 KL(q‖p)**입니다. 끝에 가까우면 식 자체의 값이 작습니다. β = 0 근처에서는 m ≈ q이므로 손실이
# ≈ **β·KL(p‖q)**이고, β = 1 근처에서는 ≈ **(1−β)·KL(q‖p)**입니다. 그래서 손실(과 gradient)은 양 끝에서 뛰어오릅니다.
# β = 0.01이면 최솟값의 위치는 forward KL과 같지만 값은 100배 작습니다(기록된 손실은 β가 다르면 서로 비교할 수
# 없습니다. Adam은 step 크기를 다시 맞추지만 plain SGD는 그렇지 않습니다). 아래는 β마다 (다섯 시작점 중) 가장 좋은
# 학생 모델, 그리고 덮는 학생 모델에 대한 손실을 β·KL(p‖q), (1−β)·KL(q‖p)와 나란히 보인 것입니다.

# %%
BETAS = [0.0, 0.01, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]
cover = fits["forward_kl"][:2]
by_beta = {beta: min((fit("jsd", start, beta=beta) for start in STARTS), key=lambda run: run[2]) for beta in BETAS}
print("   β   best student           jsd(covering)  β·KL(p‖q)  (1−β)·KL(q‖p)")
for beta, (centre, width, _) in by_beta.items():
    value = score("jsd", *cover, beta=beta)
    print(f"{beta:4g}   μ = {centre:4.1f} σ = {width:4.1f}   {value:13.4f}  {beta * score('forward_kl', *cover):9.4f}"
          f"  {(1 - beta) * score('reverse_kl', *cover):13.4f}")
assert score("jsd", *cover, beta=0.0) == score("forward_kl", *cover)
assert score("jsd", *cover, beta=1.0) == score("reverse_kl", *cover)
assert abs(score("jsd", *cover, beta=0.01) / (0.01 * score("forward_kl", *cover)) - 1) < 0.05
assert abs(score("jsd", *cover, beta=0.99) / (0.01 * score("reverse_kl", *cover)) - 1) < 0.5
assert all(verdict(*by_beta[beta][:2]) == "covers both modes" for beta in (0.0, 0.01, 0.1, 0.2))
assert all(verdict(*by_beta[beta][:2]) == "sits on the mode at 35" for beta in (0.3, 0.5, 0.7, 0.9, 0.99, 1.0))

figure = go.Figure(go.Scatter(x=BETAS, y=[width for _, width, _ in by_beta.values()], mode="lines+markers"))
figure.update_layout(height=300, template="plotly_white", xaxis_title="β", yaxis_title="σ of the best student",
                     title="jsd(β): wide (covering) for small β, narrow (one mode) from β ≈ 0.3 on")
figure.show()

# %% [markdown]
# 이 교사 모델에서 가장 좋은 jsd 학생 모델은 β = 0.2까지는 두 mode를 덮고, β = 0.3부터는 mode 하나에 앉습니다. 양 끝
# 근처의 값은 β·KL(p‖q)와 (1−β)·KL(q‖p)를 따릅니다(뒤의 것은 덜 정확합니다. 덮는 학생 모델은 reverse KL의 최솟값
# 위치에 있지 않기 때문입니다).
#
# ## 학생 모델이 교사 모델을 *따라 할 수 있을* 때
#
# 완전히 자유로운 학생 모델(토큰마다 logit 하나)이라면 모든 divergence의 최솟값이 교사 모델 자신으로 같으므로, 선택의
# 영향이 훨씬 작습니다. 균등 분포에서 시작해 똑같이 Adam 40 step 뒤의 모습입니다.

# %%
figure = go.Figure(go.Bar(x=positions.tolist(), y=teacher_probs.tolist(), marker_color="#cbd5e1", name="teacher"))
valley = teacher_probs < 1e-3  # tokens the teacher all but rules out
part_way = {}
uniform_ruled_out = float(valley.double().mean())
for kind in ("forward_kl", "reverse_kl", "tvd"):
    free = torch.zeros(V, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([free], lr=0.1)
    for _ in range(40):
        loss = divergence(free[None], teacher_logits[None], kind=kind, **KINDS[kind])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    q = free.detach().softmax(-1)
    part_way[kind] = (float(q[valley].sum()), float(q[60:71].sum()))
    figure.add_trace(go.Scatter(x=positions.tolist(), y=q.tolist(), mode="lines", name=f"{kind} after 40 steps"))
figure.update_layout(height=340, template="plotly_white", title="a free student part-way through training",
                     xaxis_title="token", yaxis_title="probability")
figure.show()
print(f"teacher: mass on the tokens it rules out {float(teacher_probs[valley].sum()):.3f}, "
      f"on the mode at 65 {float(teacher_probs[60:71].sum()):.3f}")
for kind, (ruled_out, second_mode) in part_way.items():
    print(f"{kind:11s} mass on the tokens the teacher rules out {ruled_out:.3f}, on the mode at 65 {second_mode:.3f}")
print(f"(the uniform start puts {uniform_ruled_out:.3f} on the tokens the teacher rules out)")
assert all(ruled_out < 0.1 * uniform_ruled_out for ruled_out, _ in part_way.values())
assert all(abs(second_mode - float(teacher_probs[60:71].sum())) < 0.02 for _, second_mode in part_way.values())

# %% [markdown]
# 세 학생 모델 모두 교사 모델이 배제한 토큰에서 확률 질량을 10분의 9 넘게 옮겼고, 두 번째 mode의 몫은 교사 모델과 2%p
# 이내로 맞췄습니다. 차이는 세부에 있습니다(여기서는 reverse KL이 배제된 토큰에 가장 많이 남깁니다). Mode seeking과
# covering은 교사 모델을 따라 할 수 *없는* 학생 모델의 이야기입니다.
#
# **해 보기:** 교사 모델의 두 mode를 더 가깝게(40과 55) 옮기고 다시 실행해 보세요. 가장 좋은 jsd 학생 모델이 여전히 mode
# 하나에 앉을까요? skew 계열의 `alpha`를 0.5로 하거나, `divergence`에 `temperature=2`를 넘겨(교사 모델을 먼저 평평하게
# 만듭니다) 어떤 kind의 판정이 바뀌는지 보세요.
#
# 앱에서는 Setup 탭의 **Divergence**, **β (JSD)**, **α (skew)**입니다. 다음: `04_layer_mapping.ko.ipynb`에서는
# 교사 모델의 내부 layer까지 맞춥니다.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 3 minutes

# %% [markdown]
# ## 참고 문헌
#
# 이 노트북이 쓰는 방법과 관찰은 아래 논문에서 왔습니다.
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: forward KL(그리고
#   soft target에 대한 cross-entropy, `soft_ce`)로 하는 증류의 출처입니다.
# - **Gu et al. (2024)**, *MiniLLM: Knowledge Distillation of Large Language Models*, ICLR 2024, arXiv:2306.08543: mode
#   seeking 성질 때문에 언어 모델 증류에 reverse KL을 쓴 연구입니다.
# - **Agarwal et al. (2024)**, *On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes*
#   (GKD), ICLR 2024, arXiv:2306.13649: forward KL과 reverse KL 사이를 오가는 일반화된 Jensen–Shannon divergence jsd(β)의 출처입니다.
# - **Ko et al. (2024)**, *DistiLLM: Towards Streamlined Distillation for Large Language Models*, ICML 2024,
#   arXiv:2402.03898: 두 번째 인자에 가중치 α의 혼합 분포를 넣는 skew KL과 skew reverse KL의 출처입니다.
# - **Wen et al. (2023)**, *f-Divergence Minimization for Sequence-Level Knowledge Distillation*, ACL 2023,
#   arXiv:2307.15190: total variation distance(`tvd`)를 포함한 여러 f-divergence로 하는 증류입니다.
