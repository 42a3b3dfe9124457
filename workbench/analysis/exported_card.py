"""The README.md model card of an exported student: Hugging Face metadata (license, base_model, pipeline_tag, tags,
datasets) written with huggingface_hub's `ModelCardData`, then the summary, report card, config and usage.

    text = model_card_text(run, source, report_card, reload_check)
    huggingface_hub.ModelCard(text).data.license        # the teacher's licence, which the student inherits
    text = artefact_card_text(run, source, "gguf-q8_0", export_check)   # the short card of a GGUF / ONNX folder

The licence and hub id of a teacher come from the built-in table, else from the teacher folder's own model card, else
the licence is "other" and the card says to check the teacher's terms.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workbench.runs.folder import RunFolder

# The built-in teacher is a conversion of this hub model; its licence is the student's.
BUILTIN_ORIGINS = {"smollm2-135m-instruct": {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
                                             "license": "apache-2.0"}}
TAGS = ["distillation", "knowledge-distillation", "kd-workbench"]


def _local_card(folder: Path) -> dict[str, Any]:
    from huggingface_hub import ModelCard

    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    try:
        return ModelCard.load(readme).data.to_dict()
    except (ValueError, OSError):
        return {}


def teacher_origin(spec: str) -> dict[str, Any]:
    """{"base_model", "license"} of a teacher spec, as far as they can be known offline."""
    base = str(spec).partition("?")[0].strip()
    if base.startswith("builtin:"):
        return dict(BUILTIN_ORIGINS.get(base.removeprefix("builtin:"), {}))
    if Path(base).is_dir():
        data = _local_card(Path(base))
        return {"base_model": data.get("base_model"), "license": data.get("license")}
    return {"base_model": base, "license": None}  # a hub id; its licence is on its own card


def card_metadata(cfg):
    """The front-matter fields (a huggingface_hub `ModelCardData`) of a run's exported student."""
    from huggingface_hub import ModelCardData

    origin = teacher_origin(cfg.models.teacher)
    return ModelCardData(
        license=origin.get("license") or "other", base_model=origin.get("base_model"), library_name="transformers",
        pipeline_tag="text-generation", tags=list(TAGS), datasets=[cfg.data.dataset],
    )


def _report_markdown(card: dict | None, run_id: str) -> str:
    from workbench.analysis.report_card import format_report

    if card is None:
        return f"Not evaluated. Run `workbench eval runs/{run_id}` and export again to include the report card."
    return format_report(card)


USAGE = """```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("PATH/TO/THIS/FOLDER")
tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/FOLDER")
messages = [{"role": "user", "content": "What is knowledge distillation?"}]
if tokenizer.chat_template:
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
else:
    inputs = tokenizer(messages[0]["content"], return_tensors="pt")["input_ids"]
output = model.generate(inputs, max_new_tokens=64, do_sample=True, temperature=0.7, top_p=0.9)
print(tokenizer.decode(output[0, inputs.shape[1]:], skip_special_tokens=True))
```"""


def model_card_text(run: RunFolder, source: Path, card: dict | None, check: dict[str, Any]) -> str:
    """README.md of the export: front matter, summary, report card, full config, usage."""
    from workbench.config import DistillConfig

    cfg = DistillConfig.load(run.config_path)
    status = run.read_status()
    metadata = card_metadata(cfg)
    licence_note = ("" if metadata.license != "other" else
                    " The teacher's licence could not be read offline: check its terms before sharing this model.")
    lines = [
        "---",
        metadata.to_yaml().rstrip(),
        "---",
        "",
        f"# {run.run_id}: a distilled student",
        "",
        f"Distilled with KD Workbench from the teacher `{cfg.models.teacher}`; it inherits the teacher's licence "
        f"(`{metadata.license}`).{licence_note}",
        "",
        "| | |",
        "|---|---|",
        f"| teacher | `{cfg.models.teacher}` |",
        f"| student start (undistilled) | `{cfg.models.student}` |",
        f"| exported weights | {'checkpoint ' + source.name if source != run.path else 'final student'} |",
        f"| data | `{cfg.data.dataset}` (seq_len {cfg.data.seq_len}, validation fraction {cfg.data.val_fraction}) |",
        f"| loss | {cfg.loss.divergence}, T={cfg.loss.temperature}, kd_weight={cfg.loss.kd_weight}, "
        f"ce_weight={cfg.loss.ce_weight}, hidden_weight={cfg.loss.hidden_weight}, attn_weight={cfg.loss.attn_weight} |",
        f"| mapping | {cfg.mapping.strategy} {', '.join(cfg.mapping.pairs)} |",
        f"| LoRA | {'merged (r=' + str(cfg.lora.r) + ')' if cfg.lora.enabled else 'not used'} |",
        f"| training | {status.get('step', '?')} of {cfg.train.steps} steps, state {status.get('state', '?')} |",
        f"| exported | {time.strftime('%Y-%m-%d %H:%M:%S')}; reload check max abs logit diff "
        f"{check['max_abs_logit_diff']:.2e} |",
        "",
        "## Report card",
        "",
        _report_markdown(card, run.run_id),
        "",
        "## Distillation config",
        "",
        "```yaml",
        cfg.to_yaml().rstrip(),
        "```",
        "",
        "## Usage",
        "",
        USAGE,
        "",
    ]
    return "\n".join(lines)


# What each GGUF / ONNX format stores, as written by workbench.analysis.export_gguf and export_onnx.
QUANTIZATION = {
    "gguf-f16": "none beyond float16: matrices in f16, norms in f32",
    "gguf-q8_0": "q8_0: matrices in blocks of 32 weights, 8 bits each with one f16 scale per block; norms f32",
    "gguf-q4_0": "q4_0: matrices in blocks of 32 weights, 4 bits each with one f16 scale per block; token embedding "
                 "and output head q8_0; norms f32",
    "onnx": "none: float32",
    "onnx-int8": "int8: MatMul weights in blocks of 32 with one scale each (ONNX Runtime's MatMulNBitsQuantizer), "
                 "embedding table int8 (quantize_dynamic on Gather)",
}
RUNTIMES = {"gguf": "llama.cpp / Ollama (`llama-cli -m FILE`, `ollama create NAME -f Modelfile` with `FROM ./FILE`)",
            "onnx": "ONNX Runtime: a decoder step with KV cache; inputs and outputs are described in "
                    "`workbench/analysis/onnx_runtime.py`, the tokenizer and chat template sit beside the file"}


def artefact_card_text(run: RunFolder, source: Path, fmt: str, check: dict[str, Any]) -> str:
    """README.md of a GGUF or ONNX export: format, quantization, source run, teacher, and the measured size and
    logit error (the export's read-back check)."""
    from workbench.config import DistillConfig

    cfg = DistillConfig.load(run.config_path)
    status = run.read_status()
    metadata = card_metadata(cfg)
    family = fmt.partition("-")[0]
    metadata.library_name = family
    metadata.tags = [*TAGS, family, *(["quantized"] if fmt in ("gguf-q8_0", "gguf-q4_0", "onnx-int8") else [])]
    greedy = (f"; greedy decoding over the KV cache: first {check['greedy_tokens_equal']} of "
              f"{check['greedy_tokens']} tokens equal to PyTorch's" if "greedy_tokens" in check else "")
    lines = [
        "---",
        metadata.to_yaml().rstrip(),
        "---",
        "",
        f"# {run.run_id}: a distilled student, {fmt}",
        "",
        f"Exported with KD Workbench for {RUNTIMES[family]}. It inherits the teacher's licence (`{metadata.license}`).",
        "",
        "| | |",
        "|---|---|",
        f"| format | `{fmt}`: file `{check['file']}` |",
        f"| quantization | {QUANTIZATION[fmt]} |",
        f"| size on disk | {check['size_bytes'] / 1e6:.2f} MB ({check['size_bytes']:,} bytes) |",
        f"| source run | `{run.run_id}`, {'checkpoint ' + source.name if source != run.path else 'final student'}, "
        f"{status.get('step', '?')} of {cfg.train.steps} steps, state {status.get('state', '?')} |",
        f"| teacher | `{cfg.models.teacher}` |",
        f"| student start (undistilled) | `{cfg.models.student}` |",
        f"| measured error | relative logit error {check['relative_logit_error']:.2e} "
        f"(‖runtime − student‖ / ‖student‖ over {check['check_tokens']} tokens of a sample text), read back with "
        f"{check['loader']}{greedy} |",
        f"| exported | {time.strftime('%Y-%m-%d %H:%M:%S')} |",
        "",
        "The run's own model card, report card and config: `distill_config.yaml` and `eval.json` beside this file "
        "(when the run was evaluated). `workbench eval RUN --export THIS_FOLDER` scores this file in its runtime on "
        "the run's held-out prompts.",
        "",
    ]
    return "\n".join(lines)
