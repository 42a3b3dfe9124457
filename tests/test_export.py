"""Export round trip: plain AutoModelForCausalLM reload gives the app's logits; LoRA checkpoints are merged; the model
card's metadata reads back through huggingface_hub's ModelCard parser."""

from __future__ import annotations

import shutil
import zipfile

import pytest
import torch
from finished_run import make_finished_run
from huggingface_hub import ModelCard
from transformers import AutoModelForCausalLM

from workbench.analysis.export import CHECK_TEXT, export_run
from workbench.cli import main as cli_main
from workbench.errors import UserError
from workbench.runs.pool import ModelPool


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def test_export_round_trip_with_card_and_zip(tmp_path, tiny_teacher, tiny_student, tiny_text):
    run = make_finished_run(tmp_path / "runs", tiny_teacher, tiny_student, tiny_text)
    result = export_run(run, tmp_path / "exports" / "run-tiny", make_zip=True)
    folder = tmp_path / "exports" / "run-tiny"
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "distill_config.yaml",
            "eval.json"} <= set(result["files"])
    assert not any(name.endswith(".bin") for name in result["files"])
    assert result["max_abs_logit_diff"] <= 1e-5

    app_model, tokenizer = ModelPool(device="cpu").get(str(run))  # the student as the app's tabs see it
    reloaded = AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer(CHECK_TEXT + " the king said", return_tensors="pt")["input_ids"]
    assert torch.allclose(_logits(reloaded, ids), _logits(app_model, ids), atol=1e-5)

    card = (folder / "README.md").read_text()
    for expected in (str(tiny_teacher), str(tiny_text), "## Distillation config", "kd_weight", "top-1 agreement",
                     "distilled student", "library_name: transformers"):
        assert expected in card
    metadata = ModelCard(card).data  # huggingface_hub's own parser reads the front matter
    assert metadata.pipeline_tag == "text-generation" and metadata.library_name == "transformers"
    assert "distillation" in metadata.tags and metadata.datasets == [str(tiny_text)]
    assert metadata.license == "other" and "check its terms" in card  # a local teacher without a card
    assert "model.generate(" in card and "apply_chat_template" in card
    with zipfile.ZipFile(result["zip"]) as archive:
        names = archive.namelist()
    assert "run-tiny/model.safetensors" in names and "run-tiny/README.md" in names

    with pytest.raises(UserError, match="not empty"):
        export_run(run, folder)
    assert export_run(run, folder, overwrite=True, evaluate=False)["folder"] == str(folder)


def test_card_metadata_names_the_teachers_licence_and_origin(tmp_path, tiny_teacher):
    from workbench.analysis.exported_card import card_metadata
    from workbench.config import BUILTIN_TEACHER, DistillConfig

    builtin = card_metadata(DistillConfig())
    assert builtin.license == "apache-2.0" and builtin.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert DistillConfig().models.teacher == BUILTIN_TEACHER and builtin.datasets == ["builtin:chat"]
    carded = tmp_path / "teacher"
    shutil.copytree(tiny_teacher, carded)
    (carded / "README.md").write_text("---\nlicense: mit\nbase_model: someone/tiny-base\n---\n# a teacher\n")
    cfg = DistillConfig()
    cfg.models.teacher = str(carded)
    local = card_metadata(cfg)
    assert local.license == "mit" and local.base_model == "someone/tiny-base"
    parsed = ModelCard("---\n" + local.to_yaml() + "\n---\n").data
    assert parsed.license == "mit" and "distillation" in parsed.tags


def test_lora_checkpoint_is_merged(tmp_path, tiny_teacher, tiny_student, tiny_text):
    from finished_run import save_student_checkpoint

    from workbench.config import DistillConfig
    from workbench.models.loading import load_model
    from workbench.models.lora import wrap_lora

    run = make_finished_run(tmp_path / "runs", tiny_teacher, tiny_student, tiny_text, checkpoint_steps=())
    cfg = DistillConfig.load(run / "config.yaml")
    cfg.lora.enabled, cfg.lora.target_modules = True, ["q_proj", "v_proj"]
    cfg.save(run / "config.yaml")
    torch.manual_seed(0)
    peft_model = wrap_lora(load_model(str(tiny_student)), cfg.lora)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)  # a trained adapter: B is no longer zero
    checkpoint = save_student_checkpoint(run, 3, peft_model, lora=True)  # only the LoRA weights, as the trainer does
    ids = torch.tensor([[5, 9, 30, 44, 71, 12]])
    expected = _logits(peft_model.eval(), ids)

    result = export_run(checkpoint, tmp_path / "exports" / "lora", evaluate=False)
    reloaded = AutoModelForCausalLM.from_pretrained(result["folder"])
    assert not any("lora" in key for key in reloaded.state_dict())
    assert torch.allclose(_logits(reloaded, ids), expected, atol=1e-5)
    assert not torch.allclose(_logits(load_model(str(tiny_student)), ids), expected, atol=1e-3)
    assert "checkpoint step-3" in (tmp_path / "exports" / "lora" / "README.md").read_text()


def test_export_cli(tmp_path, tiny_teacher, tiny_student, tiny_text, capsys):
    run = make_finished_run(tmp_path / "runs", tiny_teacher, tiny_student, tiny_text)
    assert cli_main(["export", str(run), str(tmp_path / "out"), "--zip", "--no-eval"]) == 0
    out = capsys.readouterr().out
    assert "reload check" in out and (tmp_path / "out.zip").is_file()
    assert "Not evaluated" in (tmp_path / "out" / "README.md").read_text()
    assert cli_main(["export", str(tmp_path), str(tmp_path / "out2")]) == 2
    assert "not a run folder" in capsys.readouterr().err
