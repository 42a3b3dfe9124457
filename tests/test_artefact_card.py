"""Report-card rows of exported artefacts: a GGUF and an int8 ONNX export of a run's student, evaluated through
`workbench eval RUN --export DIR`, each measured in its runtime and labelled so, with the one-line summary computed
from the card's own numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from finished_run import make_finished_run
from tiny import tiny_bpe_model_dir, tiny_text_file

from workbench.analysis.artefacts import artefact_sentence
from workbench.analysis.export import export_run
from workbench.analysis.llama_cpp_runtime import llama_cpp_available
from workbench.cli import main as cli_main


def test_exported_artefacts_get_rows_and_a_sentence(tmp_path, capsys):
    text = tiny_text_file(tmp_path)
    teacher = tiny_bpe_model_dir(tmp_path, text, "teacher", 300, hidden=64, seed=1)
    student = tiny_bpe_model_dir(tmp_path, text, "student", 300, hidden=32, seed=2)
    run = make_finished_run(tmp_path / "runs", teacher, student, text, checkpoint_steps=())
    shutil.rmtree(run / "student")
    shutil.copytree(student, run / "student")
    exports = {fmt: export_run(run, tmp_path / fmt, fmt=fmt, evaluate=False) for fmt in ("gguf-q8_0", "onnx-int8")}

    args = ["eval", str(run), "--seq-len", "32", "--sequences", "4", "--gen-tokens", "8"]
    for result in exports.values():
        args += ["--export", result["folder"]]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    card = json.loads((run / "eval.json").read_text())

    rows = {entry.get("format"): entry for entry in card["students"]}
    distilled = next(entry for entry in card["students"] if entry["label"] == "distilled student")
    for fmt, result in exports.items():
        entry = rows[fmt]
        file_bytes = (Path(result["folder"]) / result["file"]).stat().st_size
        assert entry["size_on_disk_mb"] == round(file_bytes / 2**20, 3)
        assert entry["params_total"] == distilled["params_total"]
        assert entry["gen_tokens_per_s"] > 0 and entry["ttft_s"] > 0
        assert abs(entry["val_bpb"] - distilled["val_bpb"]) < 0.05  # quantized, still the same student
        assert entry["gen_rkl"] is not None and entry["kl_teacher_student"] is not None
        sentence = artefact_sentence(card, entry)
        size_share = entry["size_on_disk_mb"] / card["teacher"]["size_on_disk_mb"]
        speed_ratio = entry["gen_tokens_per_s"] / card["teacher"]["gen_tokens_per_s"]
        assert f"{size_share:.0%} of the teacher's size on disk" in sentence
        assert f"{speed_ratio:.1f}× its decode speed on this CPU" in sentence
        assert f"reverse KL {entry['gen_rkl']:.3f} nats/token" in sentence
        assert f"unquantized student {distilled['gen_rkl']:.3f})" in sentence
        assert sentence in printed
    assert rows["onnx-int8"]["runtime"].startswith("onnxruntime")
    if llama_cpp_available():
        assert rows["gguf-q8_0"]["runtime"].startswith("llama.cpp")
    else:
        assert "transformers GGUF loader" in rows["gguf-q8_0"]["runtime"] and "llama-cpp-python is not installed" in printed


def test_gguf_and_onnx_folders_carry_a_short_model_card(tmp_path):
    """README.md inside a GGUF / ONNX export: format, quantization, source run, teacher, and the size and logit
    error the export measured (the numbers in export.json), with front matter the hub reads."""
    from huggingface_hub import ModelCard

    from workbench.analysis.exported_card import QUANTIZATION

    text = tiny_text_file(tmp_path)
    teacher = tiny_bpe_model_dir(tmp_path, text, "teacher", 300, hidden=64, seed=1)
    student = tiny_bpe_model_dir(tmp_path, text, "student", 300, hidden=32, seed=2)
    run = make_finished_run(tmp_path / "runs", teacher, student, text, checkpoint_steps=())
    shutil.rmtree(run / "student")
    shutil.copytree(student, run / "student")
    for fmt in ("gguf-q4_0", "onnx"):
        folder = Path(export_run(run, tmp_path / fmt, fmt=fmt, evaluate=False)["folder"])
        meta = json.loads((folder / "export.json").read_text())
        card = ModelCard.load(folder / "README.md")
        assert card.data.library_name == fmt.partition("-")[0] and "kd-workbench" in card.data.tags
        body = card.text
        assert f"# run-tiny: a distilled student, {fmt}" in body
        assert f"| format | `{fmt}`: file `{meta['file']}` |" in body
        assert f"| quantization | {QUANTIZATION[fmt]} |" in body
        assert f"({(folder / meta['file']).stat().st_size:,} bytes)" in body  # the file on disk
        assert f"relative logit error {meta['relative_logit_error']:.2e}" in body
        assert "| source run | `run-tiny`, final student, 10 of 10 steps, state finished |" in body
        assert f"| teacher | `{teacher}` |" in body
    assert "greedy decoding over the KV cache" in body  # the ONNX check's greedy tokens
