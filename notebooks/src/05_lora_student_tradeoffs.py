# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Full or LoRA student: parameters, speed, quality, export
#
# A student can be trained in two ways:
#
# - **full**: every weight of the student is trained;
# - **LoRA** (Hu et al. 2021): the student's weights stay frozen and a low-rank update B·A (rank r) is trained
#   next to each chosen linear layer. At export the update is merged into the weights.
#
# We distil the quick preset's student both ways with the same data and the same number of steps, then compare
# how many parameters each trains, how fast a step is, how close each gets to the teacher, and export the LoRA
# student to an ordinary model folder. "Full" here means every weight, the embeddings included (notebook 02
# froze them with `train.freeze_embeddings=true` to keep its three runs cheap).
#
# Measured runtime on a 2-core CPU: 33 to 78 s when nothing else ran (the stored run: 40 s), 450 s at load average 10 to 14. The last cell
# prints this run's time. Every
# sentence below that a printed number can check is checked by an `assert` in the cell that prints it.

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
# ## Trainable parameters
#
# `workbench.models.lora.wrap_lora` is what the trainer calls when `lora.enabled` is on. With no `lora.target_modules`
# it adapts every linear layer inside the decoder blocks; the embeddings and the output head stay frozen.

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


def adamw_state_bytes(model) -> int:
    """The bytes AdamW holds after one step on a short row: its state measured, not computed from a count."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    ids = torch.arange(1, 17)[None]
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    return sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values()
               if torch.is_tensor(t) and t.dim() > 0)


state_bytes = {"full": adamw_state_bytes(load_model(configs["full"].models.student)),
               "lora r=16": adamw_state_bytes(wrap_lora(load_model(configs["full"].models.student),
                                                        configs["lora r=16"].lora))}
print("AdamW state after one step:", ", ".join(f"{name} {b / 2**20:.1f} MiB" for name, b in state_bytes.items()))
shrink = {"state": state_bytes["full"] / state_bytes["lora r=16"],
          "trainable": full_counts["trainable"] / lora_counts["trainable"]}
print(f"the state shrinks {shrink['state']:.1f}×, the trainable count {shrink['trainable']:.1f}×")
assert abs(shrink["state"] / shrink["trainable"] - 1) < 0.01  # "shrinks by the same factor"

# %% [markdown]
# AdamW keeps two extra numbers per trained parameter, so optimizer memory shrinks by the same factor (measured
# above on the optimizer's own state after one step), and a LoRA checkpoint (only the trained weights) is tiny. The rank r sets how much the update can express.
#
# ## Same steps, both ways
#
# LoRA usually wants a larger learning rate than full training (the two rates are printed at the top): each
# adapter starts at zero and has few parameters to move.

# %%
for name, cfg in configs.items():
    result = train(cfg, WORKDIR / name.replace(" ", "_").replace("=", ""))
    print(name, result["state"], "after", result["step"], "steps")
runs = {name: RunFolder(WORKDIR / name.replace(" ", "_").replace("=", "")) for name in configs}
metrics = {name: read_metrics(run.metrics_path) for name, run in runs.items()}
overlay_figure(metrics, "kd").update_layout(title="training KD loss").show()

# %% [markdown]
# ## Speed and quality
#
# Step speed is the median tokens per second over the run (the first step, which warms up, is left out).
# Quality is measured on the held-out split with `workbench.analysis.report_card.score_quality`: the student's perplexity
# and its KL to the teacher.

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
assert all(rate > 0 for rate in speed.values())  # speed is printed, not checked: it moves with the machine's load
assert closer == "full"
assert all(quality[n]["kl_teacher_student"] < quality["untrained"]["kl_teacher_student"] for n in configs)

# %% [markdown]
# Where a LoRA speed-up comes from, when the printed ratio shows one: the forward and backward passes still go through the whole (frozen)
# model, but the weight gradients of the frozen matrices and the AdamW update of all the student's own
# weights (the full count printed above) are skipped. How much that saves depends on the machine and on what
# else runs on it; the memory saving (no gradients and no optimizer state for the frozen weights) is the
# dependable gain, and on a GPU it often decides whether a run fits at all. With equal steps a full student has
# more freedom and usually gets closer to the teacher; more steps or a larger r let LoRA close some of the gap,
# and its faster steps pay for part of that. Both runs here moved the student closer to the teacher than it
# started; the full one moved it further.
#
# ## Export
#
# `workbench.analysis.export.export_run` (the app's **Export** button, `workbench export` on the command line) merges
# the adapters into the weights, writes safetensors + tokenizer + a model card, reloads the folder and checks
# that it gives the same logits.

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
# The exported folder loads with plain `transformers.AutoModelForCausalLM.from_pretrained`, with no peft needed.
#
# **Try:** `lora.r=4` or `64`; `lora.target_modules=[q_proj,v_proj]` (attention only, the original LoRA
# paper's choice); more steps for both. In the app: **Train LoRA adapters**, **r**, **alpha** on the Setup tab.

# %%
elapsed, cpu = time.monotonic() - NOTEBOOK_STARTED, time.process_time() - NOTEBOOK_CPU
print(f"this notebook ran in {elapsed:.0f} s ({cpu:.0f} s of CPU time)")  # the tests hold each notebook to 5 minutes

# %% [markdown]
# ## References
#
# The papers behind the methods and findings this notebook uses:
#
# - **Hinton, Vinyals & Dean (2015)**, *Distilling the Knowledge in a Neural Network*, arXiv:1503.02531: the
#   distillation loss both runs train with (forward KL at T = 2, times T²).
# - **Hu et al. (2021)**, *LoRA: Low-Rank Adaptation of Large Language Models*, ICLR 2022, arXiv:2106.09685: the
#   low-rank adapters trained in place of the student's weights.
# - **Sanh et al. (2019)**, *DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter*,
#   arXiv:1910.01108: initialising a shallower student with a subset of the teacher's layers, as the quick preset's
#   student is made.
# - **Men et al. (2024)**, *ShortGPT: Layers in Large Language Models are More Redundant Than You Expect*,
#   arXiv:2403.03853: ranking layers by how little they change the hidden state (block influence); the 19 layers the
#   student keeps were chosen this way.
