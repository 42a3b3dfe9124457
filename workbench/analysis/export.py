"""Export a run's student as a plain Hugging Face model folder (or zip) with a model card, or as a GGUF file.

    result = export_run("runs/run-1", "exports/run-1", make_zip=True)
    result["folder"], result["zip"], result["max_abs_logit_diff"]
    export_run("runs/run-1", "exports/run-1-q8", fmt="gguf-q8_0")   # exports/run-1-q8/student-q8_0.gguf

Formats: `safetensors` (below), `gguf-f16`, `gguf-q8_0`, `gguf-q4_0` (workbench.analysis.export_gguf: Llama and
Qwen2, tokenizer and chat template inside), `onnx`, `onnx-int8` (workbench.analysis.export_onnx: a decoder step with
KV cache for ONNX Runtime, with the tokenizer beside it). Every folder holds export.json: format, file, size on disk
and the reload check, and a short README.md model card (format, quantization, source run, teacher, measured size and
logit error).

The student (final, or a checkpoint when its folder is given; LoRA weights merged) is written with
`save_pretrained` as safetensors, with its tokenizer, the run's `config.yaml` and `eval.json`, and a README.md model
card: teacher, data, the full distillation config and the report-card table. The report card comes from the run's
`eval.json` when it is newer than the student's weights, otherwise it is computed first (`evaluate=False` skips it).
Before the folder is put in place, it is reloaded with plain `AutoModelForCausalLM.from_pretrained` and its logits are
compared with the student's on a sample text; a mismatch is an error.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from workbench.analysis.export_formats import EXPORT_FORMATS, GGUF_FORMATS, ONNX_FORMATS
from workbench.analysis.export_gguf import check_gguf_exportable, gguf_reload_check, write_gguf
from workbench.analysis.export_onnx import check_onnx_exportable, onnx_reload_check, write_onnx
from workbench.analysis.exported_card import artefact_card_text, model_card_text
from workbench.errors import Message, UserError
from workbench.models.loading import count_parameters
from workbench.runs.folder import RunFolder, run_of
from workbench.runs.pool import ResolvedSpec, load_resolved, resolve_spec

CHECK_TEXT = "The light of the morning is good, and the water of the land gives life."
LOGIT_TOLERANCE = 1e-4


def _run_of(source: Path) -> RunFolder:
    run = run_of(source)
    if run is None:
        raise UserError(Message("export source {source!r} is not a run folder or a checkpoint folder inside one",
                                source=str(source)))
    return run


def report_card_for(source: Path, run: RunFolder, resolved: ResolvedSpec, evaluate: bool) -> dict | None:
    """The report card of the exported student: the run's fresh eval.json, else a new evaluation (or None)."""
    from workbench.analysis.report_card import cached_report, evaluate_models, evaluate_run

    is_final = source.resolve() == run.path.resolve()
    cached = cached_report(run) if is_final else None
    if cached is not None:
        return cached
    if not evaluate:
        return None
    if is_final:
        return evaluate_run(run.path)
    from workbench.config import DistillConfig

    cfg = DistillConfig.load(run.config_path)
    students = {f"student ({source.name})": str(source), "undistilled student": cfg.models.student}
    return evaluate_models(cfg.models.teacher, students, data_cfg=cfg.data)


@torch.inference_mode()
def reload_check(model, tokenizer, folder: Path) -> dict[str, Any]:
    """Reload `folder` with plain AutoModelForCausalLM and compare its logits with `model`'s on a sample text."""
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = tokenizer(CHECK_TEXT, return_tensors="pt")["input_ids"][:, :64]
    expected = model.float()(input_ids=ids.to(next(model.parameters()).device)).logits.float().cpu()
    actual = reloaded(input_ids=ids).logits.float()
    diff = float((expected - actual).abs().max())
    if diff > LOGIT_TOLERANCE:
        raise RuntimeError(f"export check failed: reloaded logits differ from the student's by {diff:.3g}")
    return {"max_abs_logit_diff": diff, "check_tokens": int(ids.shape[1]), "class": type(reloaded).__name__}


def _prepare_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise UserError(Message("export folder {out_dir!r} exists and is not empty; pick another folder or overwrite",
                                out_dir=str(out_dir)))
    out_dir.parent.mkdir(parents=True, exist_ok=True)


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise UserError(Message("export format {fmt!r} unknown; choose one of {choices}", fmt=fmt,
                                choices=", ".join(EXPORT_FORMATS)))


def gguf_filename(fmt: str) -> str:
    return f"student-{fmt.removeprefix('gguf-')}.gguf"


def _write_artefact(fmt: str, model, tokenizer, staging: Path, run: RunFolder, source: Path,
                    card: dict | None) -> dict[str, Any]:
    """Write the weights in `fmt` into `staging` and check them by reloading; returns the check."""
    if fmt == "safetensors":
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        check = reload_check(model, tokenizer, staging)
        (staging / "README.md").write_text(model_card_text(run, source, card, check))
        return check
    if fmt in ONNX_FORMATS:
        info = write_onnx(model, staging, fmt)
        tokenizer.save_pretrained(staging)  # the folder is all a runtime needs: graph, tokenizer, chat template
        check = {**info, **onnx_reload_check(model, tokenizer, staging, info["file"], fmt, CHECK_TEXT)}
    else:
        filename = gguf_filename(fmt)
        info = write_gguf(model, tokenizer, staging / filename, fmt, name=f"{run.run_id} distilled student")
        check = {**info, "file": filename, **gguf_reload_check(model, tokenizer, staging, filename, fmt, CHECK_TEXT)}
    (staging / "README.md").write_text(artefact_card_text(run, source, fmt, check))
    return check


def export_run(
    source: str | Path, out_dir: str | Path, *, fmt: str = "safetensors", make_zip: bool = False,
    overwrite: bool = False, evaluate: bool = True,
) -> dict[str, Any]:
    """Write the merged student of a run (or checkpoint) to `out_dir` in `fmt`; returns the folder, zip and check."""
    _check_format(fmt)
    source, out_dir = Path(source).expanduser(), Path(out_dir).expanduser()
    run = _run_of(source)
    resolved = resolve_spec(str(source))
    _prepare_target(out_dir, overwrite)
    model, tokenizer = load_resolved(resolved, device="cpu", dtype=torch.float32, attn_implementation=None)
    if fmt in GGUF_FORMATS:
        check_gguf_exportable(model, tokenizer)  # refuse before the (slow) evaluation
    if fmt in ONNX_FORMATS:
        check_onnx_exportable(model)
    card = report_card_for(source, run, resolved, evaluate)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        check = _write_artefact(fmt, model, tokenizer, staging, run, source, card)
        shutil.copyfile(run.config_path, staging / "distill_config.yaml")
        if card is not None:
            (staging / "eval.json").write_text(json.dumps(card, indent=1))
        params = count_parameters(model)
        meta = {"format": fmt, "source": resolved.stamp_path, "params_total": params["total"],
                "params_non_embedding": params["non_embedding"], **check}
        (staging / "export.json").write_text(json.dumps(meta, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    zip_path = None
    if make_zip:
        zip_path = Path(shutil.make_archive(str(out_dir), "zip", root_dir=out_dir.parent, base_dir=out_dir.name))
    return {
        "folder": str(out_dir),
        "zip": str(zip_path) if zip_path else None,
        "format": fmt,
        "source": resolved.stamp_path,
        "files": sorted(p.name for p in out_dir.iterdir()),
        "report_card": card is not None,
        **check,
    }
