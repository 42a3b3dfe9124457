# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Soft target과 Temperature
#
# 교사 모델(teacher)인 언어 모델은 다음 토큰(token)이 *무엇인지*만 알려 주지 않습니다. vocabulary의 모든 토큰에 확률을 줍니다.
# 지식 증류(knowledge distillation)는 텍스트에 실제로 나온 토큰 하나(**hard label**) 대신 이 출력 분포 전체(**soft
# target**)로 학생 모델(student)을 학습시킵니다.
#
# 이 노트북에서는 실제 내장 교사 모델(SmolLM2-135M-Instruct, 오프라인, CPU)로 다음을 살펴봅니다.
#
# 1. **Temperature** T가 교사 모델의 다음 토큰 분포를 어떻게 바꾸는지
# 2. **Dark knowledge**: 교사 모델이 1등으로 꼽지 *않은* 토큰들을 통해 얼마나 많은 정보를 주는지
# 3. T가 커질수록 증류 손실의 gradient가 어떻게 줄어드는지(T가 충분히 크면 **1/T²**에 비례), 그리고 손실에 왜
#    **T²**를 곱하는지
#
# 측정한 실행 시간(2코어 CPU): 다른 작업이 없을 때 10초, 다른 작업으로 바쁠 때(load average 14) 15초입니다. 맨 처음
# 실행할 때는 교사 모델 가중치를 한 번 변환하느라 13초쯤 더 걸립니다. 마지막 셀이 이번 실행 시간을 출력합니다. 프롬프트와 temperature를 바꿔 다시 실행해 보세요. 아래 본문 중 출력된 숫자로 확인할 수
# 있는 문장은 모두 그 숫자를 출력하는 셀의 `assert`로 검사합니다.

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
# ## 교사 모델의 다음 토큰 분포
#
# 프롬프트를 넣고 마지막 위치의 logits z(vocabulary 토큰마다 숫자 하나)를 읽습니다.
# Temperature T에서의 분포는 **p_T = softmax(z / T)** 입니다. T = 1이 모델 그대로의 분포입니다.

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
# ## Temperature는 분포를 평평하게 만든다
#
# logits를 T > 1로 나누면 logit 사이의 간격이 줄어들어, 확률이 1등 토큰에서 나머지 토큰으로 옮겨 갑니다. T < 1이면
# 반대로 더 뾰족해집니다. 아래는 네 가지 temperature에서 교사 모델이 가장 높게 본 12개 토큰입니다.

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
# 순위는 어떤 temperature에서도 같습니다(softmax는 logits의 순서를 바꾸지 않습니다). 달라지는 것은 그 순위가 얼마나
# *뚜렷하게* 드러나느냐입니다. 엔트로피는 T와 함께 커져서, 거의 one-hot인 분포에서 vocabulary 전체에 고르게 퍼진 분포(log V
# nats) 쪽으로 갑니다.

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
# 이 프롬프트의 hard label이 "wine"이라고 합시다. 이것으로 학습한 학생 모델은 *wine*만 배우고 그 밖에는 아무것도 배우지
# 않습니다. 교사 모델은 water, beer, milk도 어울린다는 것(위 top 10에 들어 있습니다), 그리고 "car"나 "Paris"는 어울리지
# 않는다는 것도 함께 말해 줍니다. Hinton 등은 이것을 **dark knowledge**라고 불렀습니다. 이 정보는 1등이 아닌
# 토큰들의 확률에 들어 있는데, T = 1에서는 대개 너무 작아서 손실에 거의 영향을 주지 못합니다. Temperature를 올리면
# 이 확률들이 커집니다.

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
assert tail_size[1.0] > 100 and tail_size[2.0] > 5_000 and tail_size[4.0] > 20_000

# %% [markdown]
# T에 따라 꼬리가 얼마나 빨리 커지는지 보세요. vocabulary에는 토큰이 수만 개 있고, 대부분은 이 프롬프트 뒤에 오면
# 말이 되지 않습니다. 하나하나의 확률은 아주 작지만 모이면 큽니다. T = 1에서도 확률 질량의 90%가 수백 개 토큰에 퍼져
# 있고, T = 2에서는 5천 개 이상, T = 4에서는 2만 개 이상에 퍼집니다. 그래서 높은 T로 학습한 학생 모델은 주로 이 쓸모없는
# 꼬리의 모양을 배우게 됩니다. 언어 모델에서는 보통 T를 1에서 2 사이로 둡니다. 앱의 preset 값은 다음과 같습니다.

# %%
PRESET_T = {name: load_preset(name).loss.temperature for name in ("default", "quick", "thorough")}
print("loss.temperature of each preset:", PRESET_T)
assert PRESET_T == {"default": 1.0, "quick": 1.0, "thorough": 2.0}

# %% [markdown]
# `default`와 `quick` preset은 hard label의 CE Loss와 함께 T = 1로 증류하고, `thorough`는 T = 2로 분포를 부드럽게
# 합니다.
#
# ## 교사 모델과 학생 모델 나란히 보기
#
# 앱의 Setup 탭은 고른 교사·학생 모델 쌍에 대해 이 미리보기를 보여 줍니다. 여기서는 quick preset의 학생 모델, 즉 교사 모델의
# 30개 layer 중 11개를 뺀 복사본(학습 전)으로 봅니다.

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
assert side_by_side[1.0] > 5 * side_by_side[4.0]

# %% [markdown]
# T = 1에서는 둘의 차이가 뚜렷합니다. 학생 모델이 가장 높게 본 토큰은 교사 모델의 " wine"이 아니고, KL은 1 nat이
# 넘습니다. T = 4에서는 둘 다 평평해져서 막대가 비슷해 보이고 KL은 몇 배 작아집니다(순위는 T에 따라 바뀌지 않으므로
# 학생 모델의 상위 토큰은 그대로입니다). 분포를 부드럽게 하면 logit 차이가 모두 줄어들고 학생 모델의 오차도 함께
# 줄어듭니다. 즉 temperature가 높을수록 교사 모델과 학생 모델이 *비슷해 보이고*, 증류 손실과 그 gradient도 그만큼
# 작아집니다. 높은 T에서 남는 것은 꼬리의 모양입니다. 이렇게 줄어드는 것이 다음 절들의 주제이며, trainer는 손실에
# T²를 곱합니다(괄호 안의 값).

# %% [markdown]
# ## Gradient는 왜 1/T²처럼 줄어드는가
#
# Temperature T에서 forward KL을 쓰는 증류 손실은 KL(p_T ‖ q_T)이고, 여기서 q_T = softmax(s / T), s는 학생 모델의
# logits입니다. 학생 모델의 logits에 대한 gradient는
#
# $$\frac{\partial}{\partial s}\,\mathrm{KL}(p_T \,\|\, q_T) = \frac{1}{T}\,(q_T - p_T)$$
#
# 입니다. 1/T 하나는 s / T를 거치는 chain rule에서 나옵니다. 다른 하나는 q_T − p_T 자체에서 나오는데, T가 충분히 클
# 때만 그렇습니다. 그때는 softmax(z / T) ≈ (1 + (z − z̄) / T) / V 이므로 q_T − p_T ≈ ((s − s̄) − (z − z̄)) / (T·V)
# 이고, gradient는 **1/T²**처럼 줄어듭니다. 이것은 극한에서의 법칙이지 작은 T에서의 규칙이 아닙니다. T = 1에서 4
# 사이에서 gradient가 얼마나 줄어드는지는 q_T − p_T가 얼마나 줄어드느냐에 달려 있고, 그것은 두 분포에 따라 다릅니다.
#
# trainer가 실제로 쓰는 함수 `workbench.engine.losses.divergence`에 autograd를 적용해, 위의 실제 학생 모델과 교사 모델의 logits로
# 숫자를 확인해 봅니다.

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
# Scaling이 없으면 gradient는 T = 1에서 T = 32 사이에 네 자릿수(10⁴배) 줄어듭니다. T = 1에서 4까지는 16배보다 훨씬
# 많이 줄어드는데, T = 1에서는 상위 토큰에서의 학생 모델 오차가 gradient를 지배하고 분포를 부드럽게 하면 그 대부분이
# 사라지기 때문입니다. T ≈ 8을 넘어서야 1/T² 기준선을 따라갑니다. **T² scaling**(`loss.t2_scale`, 기본값 켜짐)을
# 쓰면 gradient는 일정한 값에 머뭅니다. 이 값은 중심을 맞춘 logits를 직접 맞추는 gradient(를 V로 나눈 것)입니다.
# 높은 temperature에서 증류가 logit matching이 된다는 Hinton의 관찰이 바로 이것입니다.
#
# ## 왜 T²를 곱하는가?
#
# 학습률 때문은 아닙니다. Adam과 AdamW는 각 step을 gradient 크기의 이동 평균으로 나누므로, 손실 전체에 상수를 곱해도
# step은 거의 바뀌지 않습니다.

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
# Hinton 등이 든 이유는 이것입니다. soft target 항은 보통 hard label의 CrossEntropy에 *더해서* 쓰는데, CE의
# gradient는 T와 상관이 없습니다. soft target 항에 T²를 곱하면 T를 바꿔도 두 항 사이의 균형이 대략 유지됩니다. 아래는
# hard label " wine"에 대해, 학생 모델의 logits에 대한 각 항의 gradient 크기입니다(CE는 trainer와 마찬가지로 T = 1에서
# 계산합니다).

# %%
ce_logits = student_logits.clone().requires_grad_(True)
torch.nn.functional.cross_entropy(ce_logits[None], torch.tensor([argmax])).backward()
ce_norm = float(ce_logits.grad.norm())
balance = {t: (r / ce_norm, s / ce_norm) for t, r, s in zip(sweep, raw, scaled, strict=True) if t in (2, 4, 8, 16)}
for t, (without, with_t2) in balance.items():
    print(f"T = {t:2g}: KD gradient / CE gradient = {without:.1e} without T², {with_t2:.2f} with T²")
assert balance[2][0] / balance[16][0] > 100 and balance[2][1] / balance[16][1] < 5

# %% [markdown]
# T²가 없으면 T = 2에서 T = 16 사이에 KD 항의 몫이 100배 넘게 줄어듭니다. 그러면 T만 바꿨는데 KD + CE 학습이 모르는 사이에
# CE만의 학습이 되어 버립니다. T²를 곱하면 이 비율은 5배 이내로만 바뀝니다. 앱에서는 **KD weight**와 **CE weight**의
# 균형이 이것이며, `loss.t2_scale`을 켜 두면 T를 바꿔도 설정한 균형이 대략 그대로 유지됩니다.
#
# **해 보기:** 다른 프롬프트, 첫 그림에서 T = 8과 T = 0.5, `kd_gradient`에서 `kind="reverse_kl"`이나 `kind="jsd"`
# (높은 T의 극한이 이 경우에도 성립할까요?).
#
# 다음: `02_distil_the_builtin_teacher.ko.ipynb`에서는 이 soft target으로 학생 모델을 학습시킵니다.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 3 minutes

# %% [markdown]
# ## 참고 문헌
#
# 이 노트북이 쓰는 방법과 관찰은 아래 논문에서 왔습니다.
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: soft target,
#   temperature, dark knowledge, 손실에 곱하는 T², 그리고 T가 크면 증류가 logit matching이 된다는 관찰의 출처입니다.
