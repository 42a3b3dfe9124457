"""The compatibility card on tiny models: fields, ratios, memory estimate, tokenizer mismatch, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import WORDS, tiny_model_dir
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from workbench.analysis.compatibility import compatibility_card, format_compatibility, model_summary
from workbench.cli import main
from workbench.errors import UserError
from workbench.models.loading import count_parameters, load_model, load_tokenizer
from workbench.models.vocab import check_tokenizers, compare_tokenizers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def other_tokenizer_student(tiny_root, tmp_path_factory) -> Path:
    """The tiny student with a tokenizer that has the same words under different ids."""
    folder = tmp_path_factory.mktemp("other-tok") / "student"
    model = load_model(str(tiny_model_dir(tiny_root, "llama", layers=2, hidden=32, seed=2)))
    model.save_pretrained(folder)
    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    words = sorted(set(WORDS), reverse=True) + [str(d) for d in range(10)] + list(".,!?")
    backend = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(specials + words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(folder)
    return folder


def test_model_card_fields_match_the_loaded_model(tiny_teacher):
    card = model_summary(str(tiny_teacher))
    model = load_model(str(tiny_teacher))
    assert card["params"] == count_parameters(model)
    expected = {"layers": 4, "hidden": 64, "heads": 4, "kv_heads": 2, "vocab": 168, "max_positions": 512}
    assert {key: card[key] for key in expected} == expected
    assert card["architecture"] == "LlamaForCausalLM" and card["model_type"] == "llama"


def test_model_card_counts_a_tied_embedding_once_while_another_thread_loads(tiny_teacher, tiny_student):
    """transformers' loading contexts patch PreTrainedModel for the whole process; a model loading in another thread
    (the app's pool) used to leave the card's meta model untied: the embedding counted twice, the card disagreeing
    with the report (162.8 M vs 134.5 M for the built-in teacher)."""
    from transformers.initialization import no_init_weights, no_tie_weights

    loaded = {str(m): count_parameters(load_model(str(m))) for m in (tiny_teacher, tiny_student)}
    with no_init_weights(), no_tie_weights():  # what from_pretrained holds while it loads, process-wide
        pair = compatibility_card(str(tiny_teacher), str(tiny_student), 2, 16)
    assert pair["teacher"]["params"] == loaded[str(tiny_teacher)]
    assert pair["student"]["params"] == loaded[str(tiny_student)]
    assert pair["param_ratio"] == pytest.approx(loaded[str(tiny_student)]["total"] / loaded[str(tiny_teacher)]["total"])


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "qwen2"])
def test_model_card_of_derived_specs(tiny_root, arch):
    base = tiny_model_dir(tiny_root, arch, layers=4, hidden=32, seed=4)
    pruned = model_summary(f"{base}?prune=drop&block=1-2")
    assert pruned["layers"] == 2 and pruned["kept_layers"] == "0,3" and pruned["base_layers"] == 4
    assert pruned["params"] == count_parameters(load_model(f"{base}?prune=drop&block=1-2"))
    fresh = model_summary(f"{base}?fresh&layers=3&hidden=64&heads=8")
    assert (fresh["layers"], fresh["hidden"], fresh["heads"]) == (3, 64, 8)
    assert fresh["params"] == count_parameters(load_model(f"{base}?fresh&layers=3&hidden=64&heads=8"))


def test_pair_card_ratio_tokenizer_and_memory(tiny_teacher, tiny_student):
    card = compatibility_card(str(tiny_teacher), str(tiny_student), batch=4, seq_len=64)
    teacher_total = card["teacher"]["params"]["total"]
    student_total = card["student"]["params"]["total"]
    assert card["tokenizer"]["identical"] and card["tokenizer"]["problem"] is None
    assert card["param_ratio"] == pytest.approx(student_total / teacher_total) and card["param_ratio"] < 1
    memory = card["memory"]
    assert memory["student_weights"] == 4 * student_total and memory["optimizer_states"] == 8 * student_total
    assert memory["teacher_weights"] == 4 * teacher_total
    assert memory["total"] == sum(value for key, value in memory.items() if key != "total")
    bigger = compatibility_card(str(tiny_teacher), str(tiny_student), batch=8, seq_len=64)["memory"]
    assert bigger["activations"] == 2 * memory["activations"] and bigger["logits"] == 2 * memory["logits"]
    assert bigger["student_weights"] == memory["student_weights"]
    text = format_compatibility(card)
    for fragment in ("teacher:", "student:", "LlamaForCausalLM", "identical", "parameter ratio", "training memory"):
        assert fragment in text
    with pytest.raises(UserError, match="batch"):
        compatibility_card(str(tiny_teacher), str(tiny_student), batch=0)


def test_tokenizer_mismatch_is_described_not_refused(tiny_teacher, other_tokenizer_student):
    teacher_tok, student_tok = load_tokenizer(str(tiny_teacher)), load_tokenizer(str(other_tokenizer_student))
    result = compare_tokenizers(teacher_tok, student_tok)
    assert not result["identical"] and "vocabularies differ" in result["problem"]
    with pytest.raises(UserError) as info:  # what the teacher cache, which needs one tokenizer, says
        check_tokenizers(teacher_tok, student_tok)
    message = str(info.value)
    assert "teacher cache" in message and "loss.cross_tokenizer" in message and "\n" not in message
    check_tokenizers(teacher_tok, load_tokenizer(str(tiny_teacher)))  # same tokenizer: no error
    card = compatibility_card(str(tiny_teacher), str(other_tokenizer_student))
    cross = card["tokenizer"]["cross"]
    assert not card["tokenizer"]["identical"] and cross["shared"] == 168 and cross["student_share"] == 1.0
    text = format_compatibility(card)
    for fragment in ("DIFFERENT", "shared vocabulary 168 strings", "teacher tokens per student token",
                     "loss.cross_tokenizer", "teacher cache need one tokenizer"):
        assert fragment in text


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "workbench", "inspect", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_inspect_prints_a_tiny_pair(tiny_teacher):
    result = _run_cli(str(tiny_teacher), f"{tiny_teacher}?prune=even&layers=2", "--batch", "2", "--seq-len", "32")
    assert result.returncode == 0, result.stderr
    assert "keeps 0,3 of 4" in result.stdout and "batch 2 x 32 tokens" in result.stdout


def test_cli_inspect_errors_are_one_line_and_exit_2(tiny_teacher, other_tokenizer_student, capsys):
    assert main(["inspect", str(tiny_teacher), str(other_tokenizer_student)]) == 0  # two tokenizers can be distilled
    captured = capsys.readouterr()
    assert "DIFFERENT" in captured.out and "methods" in captured.out and not captured.err
    assert main(["inspect", str(tiny_teacher), f"{tiny_teacher}?prune=sideways"]) == 2
    assert "accepted forms" in capsys.readouterr().err
    assert main(["inspect", str(tiny_teacher), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == 4
