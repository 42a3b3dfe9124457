# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · On-policy 증류: 말하는 학생 모델
#
# 노트북 02-05의 숫자는 모두 **teacher-forced**입니다. 학생 모델(student)은 실제 텍스트를 읽고 한 위치씩 다음 토큰(token)을
# 예측합니다. 학생 모델이 *말할* 때는 아무도 실제 텍스트를 넣어 주지 않습니다. 자기가 앞에서 만든 토큰을 읽습니다. 교사 모델(teacher)의 텍스트만
# 보고 자란 학생 모델은 자기 실수를 본 적이 없어서, 어색한 토큰 하나로 빠져나오지 못하는 반복에 들어갈 수 있습니다. 학습
# (teacher-forced)과 사용(스스로 생성) 사이의 이 차이를 **exposure bias**라고 합니다.
#
# On-policy 증류는 이 차이를 줄입니다. 학생 모델이 답을 쓰고, 교사 모델이 *그* 답의 토큰 하나하나를 채점하고, 학생 모델은
# 그 채점에서 배웁니다(GKD, Agarwal 등 2024; MiniLLM, Gu 등 2024). workbench에서 `onpolicy.lmbda`는 학생 모델이 답을
# 직접 샘플링하는 학습 step의 비율이며, 0이면 다른 노트북들의 보통 off-policy 학습입니다.
#
# 측정한 실행 시간(2코어 CPU): 다른 작업이 없을 때 114초. 이 노트북은 같은 학생 모델들에 대해 두 종류의 숫자를 잽니다.
#
# - **teacher-forced**: held-out 텍스트에서의 perplexity(낮을수록 좋음)
# - **생성한 텍스트**, 어떤 학습 step도 보지 않은 프롬프트에서: 학생 모델 자신의 답에 대한 sequence 단위 reverse KL(토큰당
#   nats, 교사 모델 자신은 0), 반복된 4-gram의 비율(반복 루프), 빈 답의 비율

# %%
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tempfile
import time
from pathlib import Path

import plotly.graph_objects as go
import torch
from IPython.display import HTML, display
from plotly.subplots import make_subplots

from workbench.analysis.genquality import generation_quality, protocol_label, token_disagreement
from workbench.analysis.report_card import score_quality
from workbench.config import DEFAULT_STUDENT, apply_overrides, load_preset
from workbench.data.splits import build_splits
from workbench.engine.trainer import train
from workbench.models.loading import load_model, load_tokenizer
from workbench.runs.folder import read_metrics

torch.manual_seed(0)
STARTED = time.perf_counter()
WORKDIR = Path(os.environ.get("KD_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="kd-notebook-06-"))
print("runs are written under", WORKDIR)

# %% [markdown]
# ## 학습 전의 학생 모델
#
# 기본 학생 모델(`DEFAULT_STUDENT`)은 내장 교사 모델의 30개 layer 중 11개를 잘라 낸 모델입니다. 처음 여덟 개의 검증 행으로
# (teacher-forced) 점수를 매기고, held-out 프롬프트 여덟 개에 답하게 합니다(workbench 어디서나처럼 T 0.7, top-p 0.9,
# 최대 64 토큰으로 샘플링).

# %%
base = apply_overrides(load_preset("chat"), [f"models.student={DEFAULT_STUDENT}", "data.holdout_prompts=8",
                                           "train.device=cpu"])
tokenizer = load_tokenizer(base.models.teacher)
teacher = load_model(base.models.teacher).eval()
student = load_model(base.models.student).eval()
splits = build_splits(base.data, tokenizer)
val_ids = splits.val[:8, :128]
prompts = [example.prompt_ids for example in splits.heldout]
label = protocol_label(len(prompts), base.data.dataset)

teacher_tf, student_tf = score_quality(teacher, [student], val_ids, batch_size=4)
before, answers, _ = generation_quality(student, teacher, tokenizer, prompts, label)
print(f"teacher-forced perplexity: teacher {teacher_tf['val_ppl']:.1f}, untrained student {student_tf['val_ppl']:.1f}")
print(f"untrained student on {label}:")
print(f"  empty answers {before.gen_empty:.0%}, mean length {before.gen_len:.1f} tokens, "
      f"reverse KL {before.gen_rkl:.2f} nats/token")
assert before.gen_empty >= 0.5  # the prose below says it mostly says nothing at all

# %% [markdown]
# layer 열한 개를 자르면 perplexity가 나빠지고, 학생 모델이 쓰는 답은 더 크게 나빠집니다. 프롬프트 뒤에 가장 그럴듯한
# 토큰이 턴 종료 토큰이어서 대개 곧바로 턴을 끝냅니다("빈 답").
#
# ## 학생 모델 셋, 예산 하나, λ 값 셋
#
# 각 학생 모델은 `builtin:chat`(프롬프트와 교사 모델의 답)에서 같은 step 수만큼, T = 1의 forward KL로 학습합니다.
# `onpolicy.lmbda`만 다릅니다.
#
# | λ | 한 step이 학습하는 것 |
# |---|---|
# | 0 | 데이터에 있는 교사 모델의 답(off-policy) |
# | 0.5 | step의 절반: 학생 모델이 스스로 샘플링한 답 |
# | 1 | 모든 step: 교사 모델이 채점한 학생 모델 자신의 답 |
#
# 예산은 아주 작습니다(프롬프트 4개씩 8 step, 샘플링하는 답은 최대 32 토큰). 그래서 이 노트북은 CPU에서 몇 분 안에
# 끝나며, `chat` preset은 같은 방식으로(24개 layer 학생 모델로) 6분쯤 학습합니다.

# %%
BUDGET = ["train.steps=8", "train.batch_size=4", "train.warmup_steps=1", "train.eval_every=8",
          "train.eval_batches=2", "train.save_every=1000", "train.heal_init=false", "onpolicy.max_new_tokens=32",
          "data.seq_len=128", "train.max_minutes=null"]
results = {}
for lmbda in (0.0, 0.5, 1.0):
    cfg = apply_overrides(base, [*BUDGET, f"onpolicy.lmbda={lmbda}", f"run.name=lmbda-{lmbda}",
                                 f"run.runs_dir={WORKDIR}"])
    started = time.perf_counter()
    train(cfg, WORKDIR / f"lmbda-{lmbda}")
    rows = read_metrics(WORKDIR / f"lmbda-{lmbda}" / "metrics.jsonl")
    gen = [r for r in rows if r["kind"] == "gen_eval"][-1]
    steps = [r for r in rows if r["kind"] == "train"]
    results[lmbda] = {"ppl": [r for r in rows if r["kind"] == "eval"][-1]["eval_ppl"], **gen,
                      "onpolicy_steps": sum(r["onpolicy"] for r in steps), "seconds": time.perf_counter() - started}
    print(f"λ = {lmbda}: {results[lmbda]['onpolicy_steps']} of {len(steps)} steps on-policy, "
          f"{results[lmbda]['seconds']:.0f} s")

for lmbda, r in results.items():
    print(f"λ = {lmbda}: teacher-forced ppl {r['ppl']:6.1f} | reverse KL {r['gen_rkl']:.2f} nats/token, "
          f"repeated 4-grams {r['gen_rep4']:.1%}, empty {r['gen_empty']:.0%}, length {r['gen_len']:.1f}")
assert results[0.0]["onpolicy_steps"] == 0 and results[1.0]["onpolicy_steps"] == 8
assert all(r["gen_empty"] < before.gen_empty for r in results.values())  # every student now answers more often

# %% [markdown]
# 이제 세 학생 모델 모두 답을 합니다. 표에서 읽을 점 두 가지:
#
# 1. **두 종류의 숫자가 서로 엇갈립니다.** teacher-forced perplexity는 학생 모델들을 한 방식으로 줄 세우고, 자기
#    답에 대한 reverse KL은 학생 모델이 쓰는 글이 교사 모델의 글에 얼마나 가까운지를 말해 줍니다. perplexity만 있는 report
#    card라면 그 차이가 가려집니다.
# 2. **On-policy step은 생성한 텍스트의 숫자를 움직입니다.** 아래 검사는 sequence 단위 reverse KL에서 λ = 1과 λ = 0을
#    비교합니다. 이 작은 예산에서는 차이가 작고 잡음이 큽니다(프롬프트 여덟 개). 그래서 `chat` preset은 몇 초가 아니라
#    몇 분 동안 학습합니다. 전체 길이의 숫자는 README 표에 있습니다.

# %%
ranked_by_ppl = sorted(results, key=lambda k: results[k]["ppl"])
ranked_by_rkl = sorted(results, key=lambda k: results[k]["gen_rkl"])
print("best teacher-forced perplexity first:", ranked_by_ppl)
print("best reverse KL on own answers first:", ranked_by_rkl)
print(f"λ=1 vs λ=0 reverse KL: {results[1.0]['gen_rkl']:.3f} vs {results[0.0]['gen_rkl']:.3f}")

figure = make_subplots(rows=1, cols=3, subplot_titles=("teacher-forced perplexity", "reverse KL on own answers",
                                                       "repeated 4-grams"))
names = [f"λ = {k}" for k in results]
figure.add_trace(go.Bar(x=names, y=[r["ppl"] for r in results.values()], marker_color="#2563eb"), row=1, col=1)
figure.add_trace(go.Bar(x=names, y=[r["gen_rkl"] for r in results.values()], marker_color="#dc2626"), row=1, col=2)
figure.add_trace(go.Bar(x=names, y=[r["gen_rep4"] for r in results.values()], marker_color="#9333ea"), row=1, col=3)
figure.update_layout(height=340, showlegend=False, margin=dict(t=60, l=40, r=20, b=40))
figure.show()

# %% [markdown]
# ## 학생 모델과 교사 모델이 어긋나는 곳, 토큰 단위로
#
# `token_disagreement`는 on-policy 학습과 같은 방식으로 답을 채점합니다. 토큰마다 학생 모델과 교사 모델의 다음 토큰 분포
# 사이의 reverse KL을 잽니다. 빨간색이 진할수록 더 어긋납니다. 앱의 Train 탭은 가장 최근에 샘플링한 답을 같은 색으로
# 실시간 표시하고, Chat 탭은 어떤 학생 모델의 답이든 색으로 표시할 수 있습니다.

# %%
trained = load_model(str(WORKDIR / "lmbda-1.0" / "student")).eval()
example = results[1.0]["samples"][0]
pieces = token_disagreement(trained, teacher, tokenizer, example["prompt"], example["student"])
top = max(p["rkl"] for p in pieces) or 1.0
spans = "".join(
    f"<span title='{p['rkl']:.2f}' style='background: rgba(220,38,38,{min(p['rkl'] / top, 1):.2f})'>"
    f"{p['piece'].replace('<', '&lt;')}</span>" for p in pieces)
display(HTML(f"<p><b>{example['prompt']}</b></p><p style='line-height:1.8'>{spans}</p>"))
worst = sorted(pieces, key=lambda p: -p["rkl"])[:3]
print("most disputed tokens:", [(p["piece"], round(p["rkl"], 2)) for p in worst])
assert len(pieces) > 0 and all(p["rkl"] >= 0 for p in pieces)

# %% [markdown]
# ## 해 보기
#
# - `workbench train --preset chat`: preset의 전체 학습(2코어 CPU에서 약 10분)을 돌린 뒤, 앱의 Chat 탭에서 교사 모델의 답과
#   나란히 읽어 보세요.
# - λ = 1에서 `loss.kind`를 `reverse_kl`로 바꾸기: 학생 모델 자신의 샘플에 대한 mode seeking입니다. 답이 더 많이
#   반복됩니다(반복된 4-gram). 숫자는 README 표에 있습니다.

# %%
print(f"this notebook ran in {time.perf_counter() - STARTED:.0f} s")

# %% [markdown]
# ## 참고 문헌
#
# 이 노트북이 쓰는 방법과 관찰은 아래 논문에서 왔습니다.
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: 여기의 모든 step이
#   쓰는 토큰 단위 증류 손실(T = 1의 forward KL)의 출처입니다.
# - **Kim & Rush (2016)**, *Sequence-Level Knowledge Distillation*, EMNLP 2016, arXiv:1606.07947: 교사 모델이 쓴 답으로 학습하는
#   sequence-level KD입니다. `builtin:chat`에서의 λ = 0 step이 이것입니다.
# - **Agarwal et al. (2024)**, *On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes*
#   (GKD), ICLR 2024, arXiv:2306.13649: on-policy 증류의 출처입니다. step의 λ만큼을 학생 모델이 직접 샘플링한 답으로 학습하고, 교사 모델이 그 답을 토큰마다
#   채점합니다.
# - **Gu et al. (2024)**, *MiniLLM: Knowledge Distillation of Large Language Models*, ICLR 2024, arXiv:2306.08543: 학생
#   모델이 직접 샘플링한 답에서 reverse KL로 언어 모델을 증류한 연구입니다.
# - **Sanh et al. (2019)**, *DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter*,
#   arXiv:1910.01108: 교사 모델의 layer 일부를 그대로 가져와 더 얕은 학생 모델을 초기화하는 방법입니다. 기본 학생 모델이 이렇게 만들어졌습니다.
# - **Men et al. (2024)**, *ShortGPT: Layers in Large Language Models are More Redundant Than You Expect*,
#   arXiv:2403.03853: hidden state를 거의 바꾸지 않는 layer를 찾는 중요도 점수(block influence)입니다. 기본 학생 모델이 남긴 19개 layer를 이 점수로
#   골랐습니다.
