# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · 양자화(quantization)는 증류한 student에 무엇을 하는가
#
# 증류는 layer를 잘라 student를 작게 만들었습니다. 작은 모델이 배포되는 곳(llama.cpp, Ollama, 휴대폰의 ONNX Runtime)에서는
# 여기에 **양자화**가 더해집니다. 각 weight를 32비트 대신 8비트나 4비트로, scale 하나를 함께 쓰는 block 단위로 저장합니다.
# 이 노트북은 방금 증류한 student를 `workbench export --format gguf-…`가 쓰는 세 가지 GGUF 형식으로 저장하고, 무엇이
# 바뀌었는지 잽니다.
#
# - **크기**: 디스크의 파일, 그리고 weight 하나에 드는 비트 수
# - **속도**: token 하나를 생성할 때 읽어야 하는 바이트, 그리고 양자화 kernel이 있는 런타임이 그것을 어떤 속도로 바꾸는지
# - **분포**: 양자화 전과 후 student의 다음 token 확률, 그리고 증류가 teacher와의 사이에 아직 남긴 차이
#
# 측정한 실행 시간(2코어 CPU): 다른 작업이 없을 때 약 100초. 본문의 모든 주장은 그 숫자를 출력하는 cell의 `assert`로
# 확인합니다.

# %%
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tempfile
import time
from pathlib import Path

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.analysis.export_gguf import rounded_copy, write_gguf
from workbench.analysis.llama_cpp_runtime import LlamaCppCausalLM, llama_cpp_available
from workbench.analysis.report_card import measure_generation, score_quality
from workbench.config import apply_overrides, load_preset
from workbench.data.splits import build_splits
from workbench.engine.trainer import train
from workbench.models.loading import count_parameters, load_model, load_tokenizer
from workbench.runs.folder import RunFolder

torch.manual_seed(0)
STARTED = time.perf_counter()
WORKDIR = Path(os.environ.get("KD_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="kd-notebook-07-"))
print("runs and files are written under", WORKDIR)

# %% [markdown]
# ## 증류한 student
#
# quick preset의 student(내장 teacher의 30개 layer 중 11개를 잘라 낸 모델)를 노트북 02처럼 forward KL, T = 2로 짧은
# 12 step 동안 증류합니다. 더 오래 학습하면 더 좋은 student가 나오지만, 양자화가 그 student에 하는 일의 종류는 같습니다.

# %%
BUDGET = ["data.seq_len=32", "data.max_sequences=240", "train.steps=12", "train.warmup_steps=2",
          "train.eval_every=12", "train.eval_batches=2", "train.save_every=1000", "train.device=cpu",
          "train.gen_eval=false", "loss.temperature=2", "loss.ce_weight=0", "loss.kd_weight=1",
          "train.freeze_embeddings=true"]
cfg = apply_overrides(load_preset("quick"), BUDGET)
result = train(cfg, WORKDIR / "student")
tokenizer = load_tokenizer(cfg.models.teacher)
teacher = load_model(cfg.models.teacher).eval()
student = load_model(str(RunFolder(WORKDIR / "student").student_dir)).eval()
params = count_parameters(student)
print(f"distilled for {result['step']} steps: {params['total'] / 1e6:.1f} M parameters, "
      f"{params['non_embedding'] / 1e6:.1f} M outside the embedding")

# %% [markdown]
# ## 크기: 파일과 weight당 비트 수
#
# `write_gguf`는 llama.cpp가 읽는 그대로 student를 씁니다(tokenizer와 chat template 포함). float32는 weight당 32비트,
# `f16`은 16비트입니다. `q8_0`은 weight 32개를 32바이트와 16비트 scale 하나로 저장하므로 weight당 8.5비트입니다. `q4_0`은
# 같은 방식에 4비트 weight를 써서 4.5비트이지만, token embedding(이 모델에서는 출력 head이기도 하며, 이 작은 모델의 3분의 1)은
# `q8_0`으로 남기므로 파일 전체 평균은 4.5보다 꽤 높습니다.

# %%
FORMATS = ("gguf-f16", "gguf-q8_0", "gguf-q4_0")
float32_mb = params["total"] * 4 / 2**20
files = {fmt: WORKDIR / f"student-{fmt.removeprefix('gguf-')}.gguf" for fmt in FORMATS}
sizes = {"float32": float32_mb}
for fmt, path in files.items():
    write_gguf(student, tokenizer, path, fmt)
    sizes[fmt] = path.stat().st_size / 2**20
bits = {name: 8 * mb * 2**20 / params["total"] for name, mb in sizes.items()}
for name, mb in sizes.items():
    print(f"{name:10s} {mb:7.1f} MB  {mb / float32_mb:4.0%} of float32  {bits[name]:5.2f} bits per weight")
assert 16 <= bits["gguf-f16"] < 16.5  # 16 bits, plus the tokenizer inside the file
assert 8.5 <= bits["gguf-q8_0"] < 9.0 and sizes["gguf-q8_0"] < 0.3 * float32_mb
assert 4.5 < bits["gguf-q4_0"] < 8.5 and sizes["gguf-q4_0"] < sizes["gguf-q8_0"]  # not 4: the embedding stays 8-bit

# %% [markdown]
# ## 속도: token당 바이트, 그리고 그것을 시간으로 바꾸는 런타임
#
# batch 1에서 token 하나를 생성하려면 벡터 하나를 모든 weight 행렬에 한 번씩 곱합니다. 그래서 token마다 모델 전체를
# 메모리에서 읽게 되고, CPU에서는 연산이 아니라 이 읽기가 속도를 정합니다. 파일 크기가 곧 token 하나가 옮기는 바이트입니다.
# 이 바이트가 추론 속도가 되는 것은 양자화 kernel이 있는 런타임(llama.cpp, ONNX Runtime의 int8 연산자)에서뿐입니다.
# transformers의 GGUF loader는 weight를 다시 float32로 풀어 놓으므로, PyTorch 안에서 양자화한 student는 메모리에서 float
# student와 정확히 같은 크기입니다.

# %%
rounded = {fmt: rounded_copy(student, fmt) for fmt in FORMATS}  # the weights each file decodes to, in float32
in_memory = {fmt: sum(p.numel() * p.element_size() for p in model.parameters()) for fmt, model in rounded.items()}
float_bytes = sum(p.numel() * p.element_size() for p in student.parameters())
print(f"bytes read per decoded token: float32 {float_bytes / 2**20:.0f} MB, "
      + ", ".join(f"{fmt} {sizes[fmt]:.0f} MB" for fmt in FORMATS))
print("dequantized in PyTorch, every type holds", f"{in_memory['gguf-q4_0'] / 2**20:.0f} MB")
assert all(size == float_bytes for size in in_memory.values())
assert float_bytes / 2**20 > 3 * sizes["gguf-q8_0"]

speeds = {}
if llama_cpp_available():  # `pip install -e ".[llama]"`; best of three alternating rounds against machine load
    threads = torch.get_num_threads()
    runtimes = {fmt: LlamaCppCausalLM(files[fmt], threads=threads) for fmt in FORMATS}
    for _ in range(3):
        for fmt, model in runtimes.items():
            rate = measure_generation(model, tokenizer, "Write a short note about the sea.", 32)["gen_tokens_per_s"]
            speeds[fmt] = max(speeds.get(fmt, 0.0), rate or 0.0)
    print(f"llama.cpp decode tokens/s at batch 1 ({threads} thread(s)):",
          ", ".join(f"{fmt} {rate:.0f}" for fmt, rate in speeds.items()))
    assert speeds["gguf-q4_0"] > speeds["gguf-f16"]  # fewer bytes per token, faster tokens
    del runtimes  # frees llama.cpp's models now, not at interpreter exit
else:
    print("llama-cpp-python is not installed: no quantized kernels here. `workbench bench --only j` measures every "
          "format in its runtime beside the teacher (README, 'Ship the student').")

# %% [markdown]
# ## 양자화 전과 후의 분포
#
# 반올림은 모든 weight를 조금씩 움직이고, 그 움직임이 layer를 지나며 쌓여 logits에 닿습니다. held-out 텍스트에서 float
# student의 다음 token 분포를 반올림한 각 사본의 분포와 비교합니다. token당 KL(float student ‖ 반올림한 사본), 그리고 가장
# 확률이 높은 token이 그대로인 비율입니다. 비교 기준으로 teacher와 float student 사이의 같은 숫자, 즉 증류가 아직 좁히지
# 못한 차이를 함께 봅니다.

# %%
val_ids = build_splits(cfg.data, tokenizer).val[:8, :64]
models = [rounded[fmt] for fmt in FORMATS]
to_student = score_quality(student, models, val_ids, batch_size=4)[1:]  # the float student as the reference
to_teacher = score_quality(teacher, [student, *models], val_ids, batch_size=4)[1:]
shift = {fmt: row["kl_teacher_student"] for fmt, row in zip(FORMATS, to_student, strict=True)}
same_top1 = {fmt: row["top1_agreement"] for fmt, row in zip(FORMATS, to_student, strict=True)}
gap = to_teacher[0]["kl_teacher_student"]
print(f"KL(teacher ‖ float student): {gap:.3f} nats/token over {to_student[0]['val_tokens']} tokens")
for fmt, row in zip(FORMATS, to_teacher[1:], strict=True):
    print(f"{fmt:10s} KL(float student ‖ it) {shift[fmt]:.5f}, same top-1 {same_top1[fmt]:.1%}, "
          f"KL(teacher ‖ it) {row['kl_teacher_student']:.3f}")
assert shift["gguf-f16"] < shift["gguf-q8_0"] < shift["gguf-q4_0"]  # fewer bits, larger shift
assert shift["gguf-q8_0"] < 0.01 * gap and same_top1["gguf-q8_0"] > 0.95  # 8 bits: small beside distillation's gap
assert shift["gguf-q4_0"] > 10 * shift["gguf-q8_0"]  # 4 bits: an order of magnitude more

# %% [markdown]
# 8비트는 증류가 아직 좁혀야 할 차이에 비하면 거의 비용이 없습니다. 4비트의 비용은 한 자릿수 더 큽니다. 그림은 한
# 위치를 보여 줍니다. float student가 가장 높은 확률을 준 token 10개와, 각 버전이 그 token들에 준 확률입니다.

# %%
ids = val_ids[:1, :32]
with torch.inference_mode():
    probs = {"teacher": teacher(input_ids=ids).logits[0, -1].softmax(-1),
             "float student": student(input_ids=ids).logits[0, -1].softmax(-1),
             **{fmt: rounded[fmt](input_ids=ids).logits[0, -1].softmax(-1) for fmt in ("gguf-q8_0", "gguf-q4_0")}}
top = probs["float student"].topk(10).indices
labels = [repr(tokenizer.decode([int(t)])) for t in top]
figure = make_subplots(rows=1, cols=2, subplot_titles=("next-token probabilities at one position",
                                                       "KL(float student ‖ rounded copy), nats/token"))
for name, p in probs.items():
    figure.add_trace(go.Bar(name=name, x=labels, y=p[top].tolist()), row=1, col=1)
figure.add_trace(go.Bar(x=list(shift), y=list(shift.values()), showlegend=False), row=1, col=2)
figure.update_yaxes(type="log", row=1, col=2)
figure.update_layout(barmode="group", height=420).show()
moved = {fmt: float((probs[fmt] - probs["float student"]).abs().sum() / 2) for fmt in ("gguf-q8_0", "gguf-q4_0")}
print("probability mass moved at this position:", ", ".join(f"{fmt} {m:.3f}" for fmt, m in moved.items()))
assert moved["gguf-q8_0"] < moved["gguf-q4_0"]

# %% [markdown]
# ## 정리
#
# - `q8_0` 파일은 float32 weight의 약 4분의 1이고, student의 출력 분포를 증류가 아직 좁혀야 할 차이보다 훨씬 적게
#   바꿉니다. 작은 student를 배포할 때 안전한 기본값입니다.
# - `q4_0`은 파일을 3분의 1 더 줄이지만 분포를 한 자릿수 더 많이 움직입니다. 1억 파라미터 규모의 모델에서는 생성하는
#   글에서도 보입니다. 배포하기 전에 점수를 매기세요. `workbench eval RUN --export DIR`은 모든 export를 그 런타임에서 재서
#   report card에 올리고, `workbench bench --only j`는 그것들을 teacher 옆에 나란히 놓습니다.
# - 속도는 파일이 아니라 런타임에서 나옵니다. 같은 바이트도 PyTorch에서 float32로 풀면 float32 속도로 돕니다.

# %%
print(f"notebook ran in {time.perf_counter() - STARTED:.0f} s")
