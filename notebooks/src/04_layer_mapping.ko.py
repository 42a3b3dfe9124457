# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Layer mapping: hidden state(FitNets)와 attention(MiniLM)
#
# logit divergence는 학생 모델(student)에게 *무엇을* 예측할지 가르칩니다. 여기에 더해 두 방법은 교사 모델(teacher)의
# 내부 layer를 통해 *어떻게* 예측하는지도 가르칩니다. 하나는 logit 증류와 같은 시기(2015년)에, 다른 하나는 그보다
# 몇 해 뒤(2020년)에 나왔습니다.
#
# - **hidden state 맞추기**(Intermediate Feature Matching, FitNets, Romero 등 2015): 학생 모델 layer의 출력이 교사 모델
#   layer의 출력과 비슷해야 합니다. 학생 모델이 더 좁으면, 학습되는 작은 **projector**가 학생 모델의 폭을 교사 모델의 폭으로
#   옮깁니다.
# - **attention 증류**(Attention Transfer): 학생 모델 layer의 attention map이 교사 모델 layer의 것과 비슷해야 합니다.
#   workbench의 `loss.attn_loss=kl`은 두 attention 분포(softmax 이후) 사이의 KL Divergence로, MiniLM(Wang 등 2020)이
#   attention 분포에 쓴 손실입니다. MiniLM은 교사 모델의 **마지막 layer 하나**에서 self-attention 분포와 value 사이의
#   관계(value relation)를 옮기지만, 여기서는 매핑된 모든 layer 쌍에서 attention 분포만 맞춥니다. TinyBERT(Jiao 등
#   2020)는 그 대신 softmax 이전의 attention score에 MSE를 썼습니다.
#
# 둘 다 **layer mapping**, 즉 학생 모델의 각 layer가 교사 모델의 어느 layer에서 배우는지가 필요합니다. preset을 살펴보고,
# 실제 hidden state에서 각 거리가 무엇을 재는지 본 뒤, 새로 초기화한 4-layer 학생 모델을 KD만으로, hidden state
# 맞추기를 더해서, attention 증류까지 더해서 몇 step씩 학습하고, 셋을 held-out 텍스트와 attention map으로 비교합니다.
#
# 측정한 실행 시간(2코어 CPU): 다른 작업이 없을 때 33초, load average 10~14에서 593초(측정 내내 다른 작업이 머신을
# 바쁘게 썼습니다). 마지막 셀이 이번 실행의 실제 시간과 CPU 시간을 출력합니다. 아래 본문
# 중 출력된 숫자로 확인할 수 있는 문장은 모두 그 숫자를 출력하는 셀의 `assert`로 검사합니다.

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
from workbench.analysis.inspect_plots import attention_figure
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
# ## Mapping preset
#
# `workbench.engine.mapping.resolve_mapping(preset, pairs, student_layers, teacher_layers)`는 preset을 (학생 모델 layer, 교사 모델
# layer) 쌍으로 바꿉니다. `"emb"`는 embedding 출력입니다.
#
# - **uniform**: 학생 모델 layer i ↔ 교사 모델 layer round((i + 1) · L_t / L_s) − 1, 같은 상대 깊이
# - **last**: 각 모델의 마지막 layer만
# - **custom**: 직접 정한 `student:teacher` 쌍

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
# 존재하지 않는 쌍은 무엇이 허용되는지 알려 주는 메시지와 함께 거부됩니다. 앱이 mapping 표 옆에 보여 주는 것과 같은
# 메시지입니다(쌍이 받아들여지면 이 셀이 실패합니다).

# %%
try:
    resolve_mapping("custom", ["3:30"], S_LAYERS, T_LAYERS)
except UserError as error:
    print("UserError:", error)
else:
    raise AssertionError(f"the pair 3:30 was accepted, but the teacher's layers are 0 to {T_LAYERS - 1}")

# %% [markdown]
# ## Hidden state 거리가 재는 것
#
# 학생 모델의 폭은 288, 교사 모델의 폭은 576이어서 hidden state를 바로 비교할 수 없습니다. `workbench.engine.mapping.Projectors`는
# 매핑된 쌍마다 `Linear(288 → 576)`을 하나씩 가지고 있으며, 학생 모델과 함께 학습되고 내보낼 때 버려집니다. 아래는
# trainer가 보는 그대로의 hidden state입니다. 매핑된 각 block의 출력을 `workbench.engine.capture.LayerCapture`로 잡았고(두
# 모델 모두 마지막 norm 이전), 학생 모델의 것은 (학습 전) projector를 거쳤습니다. 쌍마다 `loss.hidden_loss`의 세 가지
# 거리, 첫 위치를 뺀 mse, 첫 위치 하나가 mse에서 차지하는 몫, 그리고 교사 모델의 hidden state가 첫 위치에서 다른 위치보다
# 몇 배 큰지를 보여 줍니다.

# %%
pairs = presets["uniform"]
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
# 볼 점 세 가지:
#
# - 무작위 projector는 전혀 정렬되어 있지 않습니다. 모든 쌍에서 cosine 거리 ≈ 1, ln_mse ≈ 2(= 2·(1 − 상관계수), 상관
#   없음)입니다.
# - 교사 모델의 중간(layer 14와 22)에서는 **첫 위치**의 hidden state가 다른 위치보다 50배 넘게 큽니다. decoder LLM이 첫
#   토큰(token)에 두는 "massive activation"(Sun 등 2024)입니다. 그곳에서 보통의 **mse**는 99% 넘게 그 한 위치에서 오고, 첫
#   위치를 뺀 값의 100배가 넘습니다. mse로 학습한 학생 모델은 거대한 벡터 하나를 베끼는 데 힘을 쏟게 됩니다. 처음과
#   마지막 쌍에서는 효과가 작지만, 그래도 첫 위치가 자기 몫(1/T)의 5배 넘게 mse를 차지합니다.
# - **cosine**과 **ln_mse**는 모든 위치를 똑같이 다루므로 시퀀스 전체를 잽니다. ln_mse는 양쪽에 파라미터 없는 layer
#   norm(각 state를 평균 0, 분산 1로)을 적용한 뒤의 mse여서, 어느 layer에서든 값이 0과 4 사이에 머뭅니다. 값은
#   2·(1 − 상관계수)로, 각 state의 평균을 뺀 뒤에 잰 cosine 거리의 두 배입니다. `loss.hidden_skip_first=true`는 세 거리
#   어느 것에서든 첫 위치를 뺍니다.
#
# ## 학습 전 attention map
#
# `workbench.analysis.attention.compare_attention`은 두 모델에 같은 토큰을 넣어 매핑된 layer 쌍을 head별로 비교합니다(여기서는
# 둘 다 head가 9개입니다. head 수가 다르면 attention 손실과 마찬가지로 먼저 head 평균을 냅니다). JS는 두 map의 행
# 사이의 Jensen–Shannon divergence(bit 단위)로, 0이면 같고 1이면 완전히 다릅니다.

# %%
before = compare_attention(teacher, tokenizer, student, tokenizer, TEXT, preset="uniform")
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
# 무작위로 초기화한 학생 모델은 과거 위치를 거의 고르게 봅니다(엔트로피가 균등 분포 상한의 5% 이내). 교사 모델의 head는
# 훨씬 뾰족해서 특정 토큰(바로 앞 토큰, 텍스트의 시작, 반복된 단어)을 봅니다.
#
# ## 짧은 run 셋: KD, + hidden state, + attention
#
# 세 run 모두 같은 새 학생 모델에서 같은 데이터, step 수, 학습률로 uniform mapping 위에서 시작하며, 손실만 다릅니다.
#
# | run | 손실 |
# |---|---|
# | `kd` | 교사 모델의 logits에 대한 KL |
# | `kd+hidden` | 위 + hidden state 맞추기(ln_mse, 첫 위치 제외) |
# | `kd+hidden+attn` | 위 + attention 증류(attention map 사이의 KL, MiniLM 방식) |

# %%
COMMON = [
    f"models.student={STUDENT}", "mapping.preset=uniform", "loss.kd_weight=1", "loss.ce_weight=0",
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
# run 폴더의 `projectors.safetensors`에는 학습된 projector가, `student/`에는 학생 모델만 들어 있는 보통의 모델이
# 있습니다. ln_mse를 쓰면 hidden 항(4개 쌍의 합)이 KD 항보다 작고 같은 크기 범위에 머물러서, 가중치 1로 시작하면
# 적당합니다(출력된 마지막 step의 항들). 보통의 mse였다면 수만이 됩니다(위의 표).
#
# ## 각 학생 모델은 얼마나 좋은가?
#
# held-out 분할에서 `workbench.analysis.report_card.score_quality`(report card의 품질 열)로 잽니다. 교사 모델과의 KL, perplexity,
# 그리고 학생 모델의 1등 토큰이 교사 모델의 것과 같은 비율입니다.

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
# ## 학습 후 attention map

# %%
after = {name: compare_attention(teacher, tokenizer, model, tokenizer, TEXT, preset="uniform")
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
# 이 예산에서 두 측정이 말해 주는 것:
#
# - **품질**: 30 step 뒤에도 새 학생 모델 셋은 모두 아직 약합니다(perplexity가 천 이상이고, 교사 모델의 1등 토큰을 맞히는
#   위치가 다섯 중 하나도 안 됩니다). hidden 항을 더하자 교사 모델과의 KL이 조금 낮아졌고, attention 항을 더하자 더
#   낮아졌습니다. 갈 길은 멀고, 이것은 그 첫걸음일 뿐입니다.
# - **attention**: attention 항이 있는 run만 매핑된 모든 layer에서 map을 교사 모델 쪽으로 가까이 옮겼습니다. KD만, 또는 KD와
#   hidden state로 30 step 학습하면 map이 평균적으로 시작할 때보다 교사 모델에서 더 멀어졌습니다. 오래 학습하면 logit 손실만으로도
#   attention이 교사 모델을 닮아 가겠지만, attention 항이 있으면 더 빨리 닮습니다. 그래서 교사 모델에서 멀리 떨어져 시작하는 학생 모델(새로
#   만든 것, 폭이 다른 것)에 가장 도움이 됩니다.
#
# **해 보기:** `loss.hidden_loss=mse`, `loss.hidden_skip_first=false`로 바꾸고 hidden 항의 크기를 KD 항과 비교해
# 보세요. `loss.attn_weight`를 키우거나, 학생 모델의 모든 layer를 교사 모델의 마지막 layer들에 매핑해 보세요
# (`mapping.preset=custom`, `mapping.pairs=["0:26","1:27","2:28","3:29"]`). 앱에서는 Setup 탭의 **Mapping preset**, 쌍
# 표, 가중치이며, **Attention** 탭에서 어떤 run이든 같은 비교를 볼 수 있습니다.
#
# 다음: `05_lora_student_tradeoffs.ko.ipynb`.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 3 minutes

# %% [markdown]
# ## 참고 문헌
#
# 이 노트북이 쓰는 방법과 관찰은 아래 논문에서 왔습니다.
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: 여기의 모든 run이
#   유지하는 logit 증류 항(`kd`)의 출처입니다.
# - **Romero et al. (2015)**, *FitNets: Hints for Thin Deep Nets*, ICLR 2015, arXiv:1412.6550: 학습되는 projector를 거쳐 중간
#   layer의 hidden state를 맞추는 방법(hint)의 출처입니다.
# - **Jiao et al. (2020)**, *TinyBERT: Distilling BERT for Natural Language Understanding*, Findings of EMNLP 2020,
#   arXiv:1909.10351: layer 사이에 hidden state와 attention을 옮기는 방법입니다(softmax 이전 attention score에 대한 MSE).
# - **Wang et al. (2020)**, *MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained
#   Transformers*, NeurIPS 2020, arXiv:2002.10957: 교사 모델의 마지막 layer 하나만 옮깁니다. self-attention 분포(KL로 맞추며,
#   `loss.attn_loss=kl`의 손실)와 value relation입니다.
# - **Sun et al. (2024)**, *Massive Activations in Large Language Models*, COLM 2024, arXiv:2402.17762: decoder LLM이 첫
#   위치에 두는 매우 큰 hidden state(massive activation)를 보고한 연구입니다.
