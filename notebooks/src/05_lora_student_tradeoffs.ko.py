# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Full 학생 모델과 LoRA 학생 모델: 파라미터 수, 속도, 품질, 내보내기
#
# 학생 모델(student)을 학습하는 방법은 두 가지입니다.
#
# - **full**: 학생 모델의 모든 가중치를 학습합니다.
# - **LoRA**(Hu 등, 2021): 학생 모델의 가중치는 고정하고, 고른 linear layer마다 옆에 low-rank 업데이트 B·A(rank r)를
#   붙여 학습합니다. 내보낼 때 이 업데이트를 가중치에 합칩니다.
#
# quick preset의 학생 모델을 같은 데이터, 같은 step 수로 두 방법 모두 증류한 뒤, 학습하는 파라미터 수, step 속도,
# 교사 모델(teacher)에 얼마나 가까워지는지를 비교하고, LoRA 학생 모델을 보통의 모델 폴더로 내보냅니다. 여기서 "full"은 embedding까지
# 포함한 모든 가중치입니다(노트북 02는 세 run을 가볍게 하려고 `train.freeze_embeddings=true`로 embedding을 고정했습니다).
#
# 측정한 실행 시간(2코어 CPU): 다른 작업이 없을 때 78초, load average 10~14에서 450초. 마지막 셀이 이번 실행 시간을 출력합니다. 아래 본문
# 중 출력된 숫자로 확인할 수 있는 문장은 모두 그 숫자를 출력하는 셀의 `assert`로 검사합니다.

# %%
import os
import time

NOTEBOOK_STARTED, NOTEBOOK_CPU = time.monotonic(), time.process_time()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import statistics
import tempfile
from pathlib import Path

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.analysis.export import export_run
from workbench.analysis.plots import overlay_figure
from workbench.analysis.report_card import score_quality
from workbench.config import apply_overrides, load_preset
from workbench.data.splits import build_splits
from workbench.engine.trainer import train
from workbench.models.loading import count_parameters, load_model, load_tokenizer
from workbench.models.lora import default_target_modules, wrap_lora
from workbench.runs.folder import RunFolder, read_metrics

torch.manual_seed(0)
WORKDIR = Path(os.environ.get("KD_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="kd-notebook-05-"))

BUDGET = [
    "data.seq_len=32", "data.max_sequences=240",
    "train.steps=12", "train.warmup_steps=2", "train.eval_every=4", "train.eval_batches=2",
    "train.save_every=1000", "train.device=cpu", "train.gen_eval=false",
    "loss.temperature=2", "loss.ce_weight=0", "loss.kd_weight=1",
]
configs = {
    "full": apply_overrides(load_preset("quick"), BUDGET),
    "lora r=16": apply_overrides(load_preset("quick"), BUDGET + ["lora.enabled=true", "lora.r=16", "lora.alpha=32",
                                                                 "train.lr=0.001"]),
}
print("student:", configs["full"].models.student)
print("learning rate: full", configs["full"].train.lr, "(the quick preset's), LoRA", configs["lora r=16"].train.lr)
assert configs["full"].train.lr == load_preset("quick").train.lr < configs["lora r=16"].train.lr
assert not configs["full"].train.freeze_embeddings

# %% [markdown]
# ## 학습하는 파라미터 수
#
# `workbench.models.lora.wrap_lora`는 `lora.enabled`가 켜져 있을 때 trainer가 부르는 함수입니다. `lora.target_modules`를 주지
# 않으면 decoder block 안의 모든 linear layer에 adapter를 붙이고, embedding과 출력 head는 고정된 채로 둡니다.

# %%
student = load_model(configs["full"].models.student)
full_counts = count_parameters(student)
print("LoRA targets:", default_target_modules(student))
lora_counts = count_parameters(wrap_lora(student, configs["lora r=16"].lora))
print(f"full: {full_counts['trainable'] / 1e6:6.1f}M trainable of {full_counts['total'] / 1e6:.1f}M")
print(f"LoRA: {lora_counts['trainable'] / 1e6:6.2f}M trainable "
      f"({lora_counts['trainable'] / full_counts['total']:.1%} of the student)")
for r in (4, 16, 64):
    cfg = apply_overrides(configs["lora r=16"], [f"lora.r={r}"])
    counts = count_parameters(wrap_lora(load_model(cfg.models.student), cfg.lora))
    print(f"  r = {r:2d}: {counts['trainable'] / 1e6:.2f}M trainable")
assert full_counts["trainable"] == full_counts["total"] and lora_counts["trainable"] < 0.05 * full_counts["total"]
del student

# %% [markdown]
# AdamW는 학습하는 파라미터마다 숫자 두 개를 더 보관하므로, optimizer 메모리도 같은 비율로 줄어듭니다. LoRA
# checkpoint(학습한 가중치만)도 아주 작습니다. rank r은 업데이트가 얼마나 많은 것을 표현할 수 있는지를 정합니다.
#
# ## 같은 step 수, 두 방법
#
# LoRA는 보통 full 학습보다 큰 학습률을 씁니다(두 학습률은 맨 위에 출력되어 있습니다). 각 adapter가 0에서 시작하고,
# 움직일 파라미터가 적기 때문입니다.

# %%
for name, cfg in configs.items():
    result = train(cfg, WORKDIR / name.replace(" ", "_").replace("=", ""))
    print(name, result["state"], "after", result["step"], "steps")
runs = {name: RunFolder(WORKDIR / name.replace(" ", "_").replace("=", "")) for name in configs}
metrics = {name: read_metrics(run.metrics_path) for name, run in runs.items()}
overlay_figure(metrics, "kd").update_layout(title="training KD loss").show()

# %% [markdown]
# ## 속도와 품질
#
# step 속도는 run 전체에서 잰 초당 토큰(token) 수의 중앙값입니다(워밍업하는 첫 step은 뺐습니다). 품질은 held-out 분할에서
# `workbench.analysis.report_card.score_quality`로 잽니다. 학생 모델의 perplexity와 교사 모델과의 KL입니다.

# %%
speed = {name: statistics.median(r["tokens_per_s"] for r in rows if r["kind"] == "train" and r["step"] > 1)
         for name, rows in metrics.items()}
tokenizer = load_tokenizer(configs["full"].models.teacher)
val_ids = build_splits(configs["full"].data, tokenizer).val
teacher = load_model(configs["full"].models.teacher)
trained = [load_model(str(run.student_dir)) for run in runs.values()]
baseline = load_model(configs["full"].models.student)
scores = score_quality(teacher, [baseline, *trained], val_ids, batch_size=4)
names = ["untrained", *configs]
quality = dict(zip(names, scores[1:], strict=True))

print(f"{'student':10s} {'tokens/s':>9s} {'val ppl':>8s} {'KL to teacher':>14s}")
for name in names:
    tokens = f"{speed[name]:9.0f}" if name in speed else f"{'':9s}"
    print(f"{name:10s} {tokens} {quality[name]['val_ppl']:8.1f} {quality[name]['kl_teacher_student']:14.3f}")

figure = make_subplots(rows=1, cols=3, subplot_titles=("tokens / s (higher is faster)", "validation perplexity",
                                                       "KL(teacher ‖ student)"))
figure.add_trace(go.Bar(x=list(speed), y=list(speed.values()), marker_color="#64748b"), row=1, col=1)
for col, key in ((2, "val_ppl"), (3, "kl_teacher_student")):
    figure.add_trace(go.Bar(x=names, y=[quality[n][key] for n in names], marker_color="#2563eb"), row=1, col=col)
figure.update_layout(height=360, template="plotly_white", showlegend=False, title="full vs LoRA after equal steps")
figure.show()

# %%
ratio = speed["lora r=16"] / speed["full"]
print(f"LoRA steps ran {ratio:.1f}× as fast as full steps here")
closer = min(configs, key=lambda n: quality[n]["kl_teacher_student"])
print(f"closer to the teacher after {configs['full'].train.steps} steps: {closer}")
assert ratio > 1.2 and closer == "full"
assert all(quality[n]["kl_teacher_student"] < quality["untrained"]["kl_teacher_student"] for n in configs)

# %% [markdown]
# LoRA가 빨라지는 이유: forward와 backward는 여전히 (고정된) 모델 전체를 지나가지만, 고정된 행렬의 가중치 gradient와
# 학생 모델 자신의 가중치 전체(위에 출력된 full의 개수)에 대한 AdamW 업데이트를 건너뜁니다. 얼마나 아껴지는지는 머신과 그
# 머신에서 함께 도는 작업에 따라 다릅니다. 믿을 만한 이득은 메모리입니다(고정된 가중치에는 gradient도 optimizer
# 상태도 없습니다). GPU에서는 이 차이로 run을 메모리에 올릴 수 있느냐 없느냐가 갈리는 경우가 많습니다. 같은 step 수라면 full
# 학생 모델이 자유도가 커서 보통 교사 모델에 더 가까워집니다. step을 늘리거나 r을 키우면 LoRA가 차이를 일부 좁힐 수 있고,
# 빠른 step이 그 비용의 일부를 메워 줍니다. 여기서는 두 run 모두 학생 모델을 시작점보다 교사 모델에 가깝게 만들었고, full
# 쪽이 더 가깝게 만들었습니다.
#
# ## 내보내기
#
# `workbench.analysis.export.export_run`(앱의 **Export** 버튼, 명령줄의 `workbench export`)은 adapter를 가중치에 합치고,
# safetensors + tokenizer + model card를 쓴 뒤, 폴더를 다시 읽어 같은 logits가 나오는지 확인합니다.

# %%
exported = export_run(runs["lora r=16"].path, WORKDIR / "exported-lora-student", evaluate=False)
print("files:", exported["files"])
print(f"reloaded as {exported['class']}, largest logit difference {exported['max_abs_logit_diff']:.2e}")

plain = load_model(exported["folder"])
adapters_left = sum("lora" in name for name, _ in plain.named_parameters())
print("adapters left in the exported model:", adapters_left)
assert adapters_left == 0 and exported["max_abs_logit_diff"] < 1e-4
prompt = tokenizer("The best way to learn is", return_tensors="pt")
with torch.no_grad():
    output = plain.generate(**prompt, max_new_tokens=12, do_sample=False)
print(tokenizer.decode(output[0], skip_special_tokens=True))

# %% [markdown]
# 내보낸 폴더는 peft 없이 평범한 `transformers.AutoModelForCausalLM.from_pretrained`로 읽힙니다.
#
# **해 보기:** `lora.r=4`나 `64`, `lora.target_modules=[q_proj,v_proj]`(attention만, LoRA 원 논문의 선택), 두 방법
# 모두 step 늘리기. 앱에서는 Setup 탭의 **Train LoRA adapters**, **r**, **alpha**입니다.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 3 minutes

# %% [markdown]
# ## 참고 문헌
#
# 이 노트북이 쓰는 방법과 관찰은 아래 논문에서 왔습니다.
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: 두 run이 모두 쓰는
#   증류 손실(T = 2의 forward KL에 T²를 곱한 것)의 출처입니다.
# - **Hu et al. (2021)**, *LoRA: Low-Rank Adaptation of Large Language Models*, ICLR 2022, arXiv:2106.09685: 학생 모델의 가중치
#   대신 학습하는 low-rank adapter의 출처입니다.
# - **Sanh et al. (2019)**, *DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter*,
#   arXiv:1910.01108: 교사 모델의 layer 일부를 그대로 가져와 더 얕은 학생 모델을 초기화하는 방법입니다. quick preset의 학생 모델이 이렇게 만들어졌습니다.
# - **Men et al. (2024)**, *ShortGPT: Layers in Large Language Models are More Redundant Than You Expect*,
#   arXiv:2403.03853: hidden state를 거의 바꾸지 않는 layer를 찾는 중요도 점수(block influence)입니다. 학생 모델이 남긴 19개 layer를 이 점수로 골랐습니다.
