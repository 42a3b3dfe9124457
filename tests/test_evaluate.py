"""Report card on tiny models: identity sanity, a different student, eval.json of a run, the CLI and the figure."""

from __future__ import annotations

import json
import math

import pytest
from finished_run import make_finished_run

from workbench.analysis.comparison_plots import report_figure
from workbench.analysis.report_card import EvalSettings, evaluate_models, evaluate_run, format_report, score_quality
from workbench.cli import main as cli_main
from workbench.errors import UserError

SETTINGS = EvalSettings(seq_len=32, max_sequences=6, batch_size=3, gen_tokens=8, device="cpu")


def _settings(dataset):
    return EvalSettings(**{**SETTINGS.__dict__, "dataset": str(dataset)})


def test_student_equal_to_teacher_agrees_fully(tiny_teacher, tiny_text):
    card = evaluate_models(str(tiny_teacher), {"same": str(tiny_teacher)}, _settings(tiny_text))
    teacher, same = card["teacher"], card["students"][0]
    assert same["top1_agreement"] == 1.0 and same["top5_agreement"] == 1.0
    assert same["kl_teacher_student"] == pytest.approx(0.0, abs=1e-6)
    assert same["val_ppl"] == pytest.approx(teacher["val_ppl"], rel=1e-5)
    assert same["compression_ratio"] == 1.0 and same["params_total"] == teacher["params_total"]
    assert teacher["size_source"] == "files" and teacher["size_on_disk_mb"] > 0
    assert teacher["gen_tokens"] == 8 and teacher["gen_tokens_per_s"] > 0 and teacher["ttft_s"] > 0
    assert teacher["peak_memory_mb"] >= 0
    assert 1 < teacher["val_ppl"] < 10 * 168  # a random tiny model is near uniform over the 168-token vocabulary


def test_smaller_student_differs_and_is_smaller(tiny_teacher, tiny_student, tiny_text):
    seen = []
    card = evaluate_models(str(tiny_teacher), {"small": str(tiny_student)}, _settings(tiny_text),
                           progress=lambda fraction, message: seen.append((fraction, str(message))))
    assert [message.split(" (")[0] for _, message in seen] == [
        "loading teacher", "loading small", "scoring 6 validation rows", "timing teacher", "timing small",
        "sampling and scoring answers to the held-out prompts"]  # Evaluate names each stage as it starts
    assert [fraction for fraction, _ in seen] == [i / 6 for i in range(6)]
    small, teacher = card["students"][0], card["teacher"]
    assert small["kl_teacher_student"] > 1e-4
    assert 0.0 <= small["top1_agreement"] < 1.0 and small["top1_agreement"] <= small["top5_agreement"] <= 1.0
    assert small["params_total"] < teacher["params_total"] and small["compression_ratio"] > 1.0
    assert small["params_non_embedding"] < small["params_total"]
    assert small["speedup"] == pytest.approx(small["gen_tokens_per_s"] / teacher["gen_tokens_per_s"])
    text = format_report(card)
    assert "top-1 agreement" in text and "small" in text and "tokens/s" in text
    fig = report_figure(card)
    assert {t.name for t in fig.data} == {"teacher", "small"}
    kl_bars = [t.y[0] for t in fig.data if t.hovertemplate and "KL" in t.hovertemplate]
    assert kl_bars == [0.0, pytest.approx(small["kl_teacher_student"])]


def test_score_quality_against_manual_kl(tiny_teacher, tiny_student):
    import torch

    from workbench.models.loading import load_model

    teacher, student = load_model(str(tiny_teacher)), load_model(str(tiny_student))
    ids = torch.randint(4, 160, (2, 12), generator=torch.Generator().manual_seed(0))
    teacher_scores, student_scores = score_quality(teacher, [student], ids, batch_size=1)
    with torch.no_grad():
        t = torch.log_softmax(teacher(ids[:, :-1]).logits.double(), -1)
        s = torch.log_softmax(student(ids[:, :-1]).logits.double(), -1)
    manual_kl = float((t.exp() * (t - s)).sum(-1).mean())
    manual_ce = float(-s.gather(-1, ids[:, 1:, None]).mean())
    assert student_scores["kl_teacher_student"] == pytest.approx(manual_kl, rel=1e-4)
    assert math.log(student_scores["val_ppl"]) == pytest.approx(manual_ce, rel=1e-4)
    assert teacher_scores["kl_teacher_student"] == 0.0 and teacher_scores["top1_agreement"] == 1.0


def test_evaluate_run_writes_eval_json_and_cli(tmp_path, tiny_teacher, tiny_student, tiny_text, capsys):
    run = make_finished_run(tmp_path / "runs", tiny_teacher, tiny_student, tiny_text)
    card = evaluate_run(run, SETTINGS)
    saved = json.loads((run / "eval.json").read_text())
    assert saved["run"] == "run-tiny" and [s["label"] for s in saved["students"]] == [
        "distilled student", "undistilled student"]
    assert card["students"][0]["spec"] == str(run)
    assert saved["students"][1]["top1_agreement"] == card["students"][1]["top1_agreement"]
    (run / "eval.json").unlink()
    code = cli_main(["eval", str(run), "--sequences", "4", "--seq-len", "32", "--gen-tokens", "4", "--no-base"])
    out = capsys.readouterr().out
    assert code == 0 and "eval.json" in out and "KL(teacher‖student)" in out
    assert [s["label"] for s in json.loads((run / "eval.json").read_text())["students"]] == ["distilled student"]
    code = cli_main(["eval", "--teacher", str(tiny_teacher), "--model", str(tiny_teacher), "--dataset",
                     str(tiny_text), "--sequences", "2", "--seq-len", "16", "--gen-tokens", "2", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["students"][0]["top1_agreement"] == 1.0
    checkpoint = run / "checkpoints" / "step-5"
    code = cli_main(["eval", str(checkpoint), "--sequences", "2", "--seq-len", "16", "--gen-tokens", "2", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["teacher"]["spec"] == str(tiny_teacher)  # the run's teacher, not the built-in one
    assert printed["students"][0]["spec"] == str(checkpoint)


def test_bad_settings_are_user_errors(tiny_teacher, capsys):
    with pytest.raises(UserError, match="gen_tokens"):
        EvalSettings(gen_tokens=0)
    assert cli_main(["eval"]) == 2
    assert "run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_default_pair_report_card():
    from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT

    settings = EvalSettings(seq_len=64, max_sequences=4, batch_size=2, gen_tokens=8, device="cpu")
    card = evaluate_models(BUILTIN_TEACHER, {"undistilled": DEFAULT_STUDENT}, settings)
    teacher, student = card["teacher"], card["students"][0]
    assert teacher["params_total"] > student["params_total"] and student["compression_ratio"] > 1.2
    assert student["size_source"] == "estimated" and teacher["size_source"] == "files"
    assert teacher["val_ppl"] < student["val_ppl"]  # 10 layers cut away and no distillation yet
    assert 0 < student["top1_agreement"] < 1 and student["kl_teacher_student"] > 0.1
    # what the two generate: the teacher answers; the undistilled student mostly ends its turn at once
    assert teacher["gen_rkl"] == pytest.approx(0.0, abs=1e-4) and teacher["gen_empty"] < 0.2
    assert student["gen_empty"] > 0.5 and student["generation"]["gen_prompts"] == 24
    assert "24 held-out prompts of builtin:chat" in card["settings"]["generation_on"]
