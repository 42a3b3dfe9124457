# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · What quantization does to a distilled student
#
# Distillation made the student smaller by cutting layers. Where small models are shipped (llama.cpp, Ollama, ONNX
# Runtime on a phone) they are then **quantized**: each weight is stored in 8 or 4 bits instead of 32, in blocks that
# share one scale. This notebook takes a freshly distilled student, writes it as the three GGUF types
# `workbench export --format gguf-…` writes, and measures what changed:
#
# - **size**: the file on disk, and the bits each weight costs;
# - **speed**: what a decoded token has to read, and what a runtime with quantized kernels makes of it;
# - **the distributions**: the student's next-token probabilities before and after rounding its weights, beside how
#   far distillation left it from the teacher.
#
# Measured runtime on a 2-core CPU: 29 s to about 100 s when nothing else ran (the stored run: 29 s). Every claim in the prose is an `assert` in the
# cell that prints its number.

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
# ## A distilled student
#
# The quick preset's student (the built-in teacher with 11 of its 30 layers cut) distilled for 12 short steps with
# forward KL at T = 2, as in notebook 02. A longer run gives a better student; what quantization does to it is the
# same kind of thing.

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
# ## Size: the files and the bits per weight
#
# `write_gguf` writes the student as llama.cpp reads it, tokenizer and chat template included. Float32 is 32 bits per
# weight; `f16` is 16; `q8_0` stores blocks of 32 weights as 32 bytes plus one 16-bit scale, 8.5 bits per weight;
# `q4_0` does the same with 4-bit weights, 4.5 bits, but keeps the token embedding (which is also the output head
# here, and a third of this small model) at `q8_0`, so the file averages well above 4.5.

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
# ## Speed: bytes per token, and who turns them into time
#
# At batch 1, decoding a token multiplies one vector by every weight matrix once, so the whole model is read from
# memory for each token; on a CPU that read, not the arithmetic, sets the pace. The file size is therefore the bytes
# a token moves. Those bytes become speed only in a runtime with quantized kernels (llama.cpp, ONNX Runtime's int8
# operators): transformers' GGUF loader dequantizes the weights back to float32, so in PyTorch the quantized student
# is exactly as large in memory as the float one.

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
    assert all(rate > 0 for rate in speeds.values())  # printed, not compared: speed moves with the machine's load
    del runtimes  # frees llama.cpp's models now, not at interpreter exit
else:
    print("llama-cpp-python is not installed: no quantized kernels here. `workbench bench --only j` measures every "
          "format in its runtime beside the teacher (README, 'Ship the student').")

# %% [markdown]
# ## The distributions before and after
#
# Rounding moves every weight a little, and the moves add up through the layers into the logits. We compare the
# float student's next-token distribution with each rounded copy's on held-out text: KL(float student ‖ rounded)
# per token and how often the most likely token stays the same. For scale, the same numbers between the teacher and
# the float student: what distillation has not yet closed.

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
# Eight bits cost almost nothing beside what distillation has left to close; four bits cost an order of magnitude
# more. The figure shows one position: the ten tokens the float student finds most likely, with the probability
# each version gives them.

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
# ## What to take away
#
# - A `q8_0` file is about a quarter of the float32 weights and changes the student's distribution far less than
#   distillation has yet to close; it is the safe default for shipping a small student.
# - `q4_0` saves another third of the file but moves the distribution an order of magnitude more: on a 100 M model
#   that is visible in what it writes. Score it before shipping it: `workbench eval RUN --export DIR` puts every
#   export on the report card, measured in its runtime, and `workbench bench --only j` sets them beside the teacher.
# - Speed comes from the runtime, not the file: the same bytes run at float32 speed once dequantized into PyTorch.

# %% [markdown]
# ## References
#
# The papers and formats behind the methods this notebook uses:
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: the student's
#   training on the teacher's soft targets at temperature T.
# - **Sanh et al. (2019)**, *DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter*,
#   arXiv:1910.01108: a shallower student initialised with a subset of the teacher's layers, as the quick preset's is.
# - **Jacob et al. (2018)**, *Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
#   Inference*, CVPR 2018, arXiv:1712.05877: weights stored as small integers times a scale, and inference that
#   computes on the integers.
# - **Dettmers et al. (2022)**, *8-bit Optimizers via Block-wise Quantization*, ICLR 2022, arXiv:2110.02861: one scale
#   per small block of values, so that one large value spoils only its own block; `q8_0` and `q4_0` keep one scale per
#   32 weights.
# - **GGUF**, the file format of the ggml library and llama.cpp (its specification is `docs/gguf.md` in the ggml
#   repository): the tensor names, metadata keys and block layouts `write_gguf` follows.

# %%
print(f"notebook ran in {time.perf_counter() - STARTED:.0f} s")
