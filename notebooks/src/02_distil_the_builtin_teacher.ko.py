# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · 내장 교사 모델 증류하기
#
# quick preset의 학생 모델(student)은 내장 교사 모델(teacher; SmolLM2-135M-Instruct, 30개 layer)에서 layer 11개를 잘라 낸 모델입니다. layer를
# 잘라 내면 성능이 떨어지고, 학습으로 이를 회복합니다. 여기서는 이 학생 모델의 복사본 셋에 **같은 예산**(같은 데이터, 같은
# step 수, 같은 학습률)을 주고 손실만 바꿉니다.
#
# | run | 손실 |
# |---|---|
# | `ce` | 텍스트의 다음 토큰(token)에 대한 CE Loss: 교사 모델 없이 하는 보통의 fine-tuning |
# | `kd` | T = 2에서 교사 모델의 분포에 대한 forward KL: 지식 증류 |
# | `kd+ce` | 두 손실에 가중치 0.5씩. KD 항에는 T² = 4가 곱해지므로 KD 항의 비중이 CE 항의 4배 |
#
# 그다음 held-out 텍스트에서 비교합니다. **perplexity**(실제 다음 토큰을 얼마나 잘 맞히는가)와 **교사 모델과의 KL**(교사 모델의
# 출력 분포 전체에 얼마나 가까운가)입니다.
#
# 예산은 일부러 아주 작게 잡았습니다. 앱의 quick preset(아래에 출력됩니다)은 같은 학생 모델을 같은 데이터와 같은
# 학습률로, 조금 더 길게, 자체 손실 가중치로 학습합니다.
# 측정한 실행 시간(2코어 CPU): 다른 작업이 없을 때 37초, 다른 작업으로 바쁠 때 74초, load average 14에서는 3분
# 이상. 마지막 셀이 이번 실행 시간을 출력합니다. 아래 본문 중
# 출력된 숫자로 확인할 수 있는 문장은 모두 그 숫자를 출력하는 셀의 `assert`로 검사합니다.

# %%
import os
import time

NOTEBOOK_STARTED, NOTEBOOK_CPU = time.monotonic(), time.process_time()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tempfile
from pathlib import Path

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.analysis.plots import overlay_figure
from workbench.analysis.report_card import score_quality
from workbench.config import apply_overrides, load_preset
from workbench.data.splits import build_splits
from workbench.engine.trainer import train
from workbench.models.loading import load_model, load_tokenizer
from workbench.runs.folder import RunFolder, read_metrics

torch.manual_seed(0)
WORKDIR = Path(os.environ.get("KD_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="kd-notebook-02-"))
print("runs are written under", WORKDIR)

# %% [markdown]
# ## 설정 하나, 손실 셋
#
# 모든 값은 quick preset(`workbench/presets/quick.yaml`)에서 가져옵니다. override로 예산을 줄이고 손실 가중치를 정합니다.
# 명령줄에서 쓰는 것과 같은 `key=value` override입니다:
# `workbench train --config workbench/presets/quick.yaml loss.ce_weight=1 loss.kd_weight=0 ...`.

# %%
BUDGET = [
    "data.seq_len=32", "data.max_sequences=240",
    "train.steps=12", "train.warmup_steps=2", "train.eval_every=4", "train.eval_batches=2",
    "train.save_every=1000", "train.device=cpu", "train.gen_eval=false", "loss.temperature=2",
    "train.freeze_embeddings=true",  # the pruned student keeps the teacher's embeddings as they are (05 trains them)
]
LOSSES = {
    "ce": ["loss.ce_weight=1", "loss.kd_weight=0"],
    "kd": ["loss.ce_weight=0", "loss.kd_weight=1"],
    "kd+ce": ["loss.ce_weight=0.5", "loss.kd_weight=0.5"],
}
quick = load_preset("quick")
configs = {name: apply_overrides(quick, BUDGET + extra) for name, extra in LOSSES.items()}
base = configs["kd"]
print(f"quick preset: {quick.train.steps} steps of {quick.train.batch_size} × {quick.data.seq_len} tokens,",
      f"T = {quick.loss.temperature}, CE weight {quick.loss.ce_weight}, KD weight {quick.loss.kd_weight}")
print("teacher:", base.models.teacher)
print("student:", base.models.student)
print(f"data: {base.data.dataset}, {base.train.steps} steps of {base.train.batch_size} × {base.data.seq_len} tokens,",
      f"lr {base.train.lr}, T = {base.loss.temperature}")
assert base.train.steps < quick.train.steps and base.data.seq_len < quick.data.seq_len and base.loss.temperature == 2
assert base.data.dataset == quick.data.dataset and base.models == quick.models and base.train.lr == quick.train.lr

# %% [markdown]
# ## 학습
#
# `workbench.engine.trainer.train`은 앱과 `workbench train`이 돌리는 것과 같은 학습 루프입니다. run 폴더(config, status,
# metrics.jsonl, 학습된 학생 모델)을 기록하며, 이 폴더는 앱에서도 열 수 있습니다.

# %%
results = {}
for name, cfg in configs.items():
    started = time.monotonic()
    results[name] = train(cfg, WORKDIR / name)
    print(name, results[name]["state"], "after", results[name]["step"], "steps", f"in {time.monotonic() - started:.0f} s")
metrics = {name: read_metrics(RunFolder(WORKDIR / name).metrics_path) for name in configs}

# %% [markdown]
# ## 학습 곡선
#
# 각 run의 `metrics.jsonl`에 있는 검증 행을 `workbench.analysis.plots.overlay_figure`로 그렸습니다(앱의 Runs 탭에서 run을
# 비교할 때 보이는 그림). held-out 텍스트에서의 perplexity와 교사 모델에서 학생 모델로의 KL입니다.

# %%
overlay_figure(metrics, "eval_ppl").update_layout(title="validation perplexity (lower is better)").show()
overlay_figure(metrics, "eval_kl").update_layout(title="validation KL(teacher ‖ student)").show()

# %% [markdown]
# ## Held-out 텍스트에서 나란히 비교
#
# 비교 기준으로 교사 모델과 학습 *전*의 학생 모델도 같은 데이터의 검증 분할에서 `workbench.analysis.report_card.score_quality`(report
# card의 품질 열)로 잽니다.

# %%
tokenizer = load_tokenizer(base.models.teacher)
val_ids = build_splits(base.data, tokenizer).val
teacher = load_model(base.models.teacher)
students = [load_model(base.models.student)] + [load_model(str(RunFolder(WORKDIR / n).student_dir)) for n in configs]
names = ["teacher", "untrained student", *configs]
scores = dict(zip(names, score_quality(teacher, students, val_ids, batch_size=4), strict=True))

print(f"{'model':18s} {'val ppl':>8s} {'KL to teacher':>14s} {'top-1 agreement':>16s}   ({val_ids.numel()} tokens)")
for name, row in scores.items():
    print(f"{name:18s} {row['val_ppl']:8.1f} {row['kl_teacher_student']:14.3f} {row['top1_agreement']:16.1%}")
assert scores["untrained student"]["val_ppl"] > 3 * scores["teacher"]["val_ppl"]  # cutting layers hurts
assert all(scores[name]["val_ppl"] < scores["untrained student"]["val_ppl"] for name in configs)  # training repairs

figure = make_subplots(rows=1, cols=2, subplot_titles=("validation perplexity", "KL(teacher ‖ student), nats/token"))
colors = ["#94a3b8", "#cbd5e1", "#2563eb", "#dc2626", "#16a34a"]
for col, key in ((1, "val_ppl"), (2, "kl_teacher_student")):
    figure.add_trace(go.Bar(x=names, y=[scores[n][key] for n in names], marker_color=colors, showlegend=False,
                            text=[f"{scores[n][key]:.2f}" for n in names], textposition="outside"), row=1, col=col)
figure.update_layout(height=380, template="plotly_white", title=f"after {base.train.steps} steps each")
figure.show()

# %% [markdown]
# ## 결과 읽기
#
# 아래 셀이 이번 실행에서 잰 값을 말해 줍니다. 숫자는 머신마다 조금 다를 수 있습니다.

# %%
best_ppl = min(configs, key=lambda n: scores[n]["val_ppl"])
best_kl = min(configs, key=lambda n: scores[n]["kl_teacher_student"])
best_agreement = max(configs, key=lambda n: scores[n]["top1_agreement"])
print(f"lowest validation perplexity: {best_ppl}; closest to the teacher: {best_kl}; "
      f"most often the teacher's top token: {best_agreement}")
change = {}
for name in configs:
    ppl_change = scores[name]["val_ppl"] / scores["untrained student"]["val_ppl"]
    kl_change = scores[name]["kl_teacher_student"] / scores["untrained student"]["kl_teacher_student"]
    change[name] = (ppl_change, kl_change)
    print(f"{name:6s} perplexity ×{ppl_change:.2f}, KL to teacher ×{kl_change:.2f} compared with the untrained student")
ppl, kl = ({n: scores[n][key] for n in configs} for key in ("val_ppl", "kl_teacher_student"))
assert best_kl == "kd" and kl["kd"] < 0.8 * kl["ce"]
assert change["ce"][1] > 0.95  # ce leaves the KL to the teacher where it was, or raises it
assert max(ppl["ce"], ppl["kd+ce"]) < ppl["kd"] and min(ppl.values()) > scores["teacher"]["val_ppl"]
assert kl["kd+ce"] < 1.15 * kl["kd"] and ppl["kd+ce"] < 1.15 * ppl["ce"]

# %% [markdown]
# 눈여겨볼 점:
#
# - **교사 모델과의 KL**은 증류가 최적화하는 대상이고, `kd`가 가장 많이 낮춥니다. 같은 예산에서 `ce`보다 5분의 1 이상
#   낮습니다. 학생 모델이 모든 위치에서 교사 모델의 출력 분포 전체를, 노트북 01의 dark knowledge까지 포함해 배우기
#   때문입니다.
# - **perplexity**는 텍스트에 실제로 나온 토큰 하나만 봅니다. 내장 chat 데이터의 답변은 교사 모델 자신이 샘플링한
#   것이어서, 여기에 `ce`를 쓰는 것은 이미 일종의 증류(sequence-level KD, Kim & Rush 2016)입니다. 그래서 이 작은 예산에서는 `ce`와
#   `kd+ce`가 `kd`보다 perplexity가 뚜렷이 낮습니다. 반면 `ce`는 교사 모델과의 KL을 그대로 두거나 오히려 높입니다.
#   샘플링된 토큰 하나에 대해 학생 모델을 과신하게 만들기 때문입니다. 교사 모델의 perplexity에 이른 학생 모델은 없습니다.
#   perplexity가 낮다는 것이 교사 모델을 잘 따라 한다는 뜻은 아닙니다.
# - **kd+ce**는 흔히 쓰는 절충안입니다(Hinton 등이 이렇게 했습니다). KL은 `kd`와, perplexity는 `ce`와 15% 이내로
#   가깝습니다. 앱에서는 Setup 탭의 **CE weight**와 **KD weight**입니다.
#
# **해 보기:** `loss.temperature=1`이나 `4`, `loss.kind=reverse_kl`, `data.dataset=builtin:kjv`(교사 모델이 쓰지 않은
# 텍스트), 또는 더 많은 step(`train.steps=40`)으로 바꾸고 순서가 바뀌는지 보세요.
#
# 다음: `03_choosing_the_divergence.ko.ipynb`에서 divergence 선택을 설명합니다.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 3 minutes

# %% [markdown]
# ## 참고 문헌
#
# 이 노트북이 쓰는 방법과 관찰은 아래 논문에서 왔습니다.
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: temperature
#   T에서 교사 모델의 soft target으로 하는 증류(`kd`)와, 이를 CE Loss와 가중합하는 방법(`kd+ce`)의 출처입니다.
# - **Kim & Rush (2016)**, *Sequence-Level Knowledge Distillation*, EMNLP 2016, arXiv:1606.07947: 교사 모델이 쓴 텍스트로 학습하는
#   sequence-level KD입니다. 내장 chat 데이터에 `ce`를 쓰면 이것이 됩니다.
# - **Sanh et al. (2019)**, *DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter*,
#   arXiv:1910.01108: 교사 모델의 layer 일부를 그대로 가져와 더 얕은 학생 모델을 초기화하는 방법입니다. quick preset의 학생 모델이 이렇게 만들어졌습니다.
# - **Men et al. (2024)**, *ShortGPT: Layers in Large Language Models are More Redundant Than You Expect*,
#   arXiv:2403.03853: hidden state를 거의 바꾸지 않는 layer를 찾는 중요도 점수(block influence)입니다. 학생 모델이 남긴 19개 layer를 이 점수로 골랐습니다.
