"""Security defaults that test_app_api.py does not already probe: the default bind, an empty --host, remote code off
by default and visible when on, and checkpoints/weights never unpickled (every torch.load has weights_only=True)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import wait_for
from engine_helpers import tiny_config

from workbench.cli import build_parser, main
from workbench.commands.app import launch_options
from workbench.config import DistillConfig
from workbench.errors import UserError
from workbench.runs.folder import RunFolder

PACKAGE = Path(__file__).resolve().parent.parent / "workbench"


def _calls(name: str):
    """(file, call node) for every call of `<something>.<name>(...)` in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                yield path, node


def test_app_binds_loopback_by_default_and_refuses_an_empty_host(tmp_path, monkeypatch):
    assert build_parser().parse_args(["app"]).host == "127.0.0.1"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what gradio would bind for an empty server_name
    with pytest.raises(UserError, match="--host"):
        launch_options("", 7860, None, False, str(tmp_path / "r"), str(tmp_path / "e"))


def test_every_torch_load_is_weights_only():
    found = list(_calls("load"))
    loads = [(path, node) for path, node in found
             if isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]
    assert loads, "expected the checkpoint loader to call torch.load"
    for path, node in loads:
        flags = {kw.arg: kw.value for kw in node.keywords}
        assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True, \
            f"{path.name}:{node.lineno} calls torch.load without weights_only=True"


def test_remote_code_and_pickle_are_off_unless_asked_for():
    models = DistillConfig().models
    assert models.trust_remote_code is False and models.allow_pickle is False
    for path, node in _calls("from_pretrained"):
        for kw in node.keywords:
            assert not (kw.arg == "trust_remote_code" and isinstance(kw.value, ast.Constant) and kw.value.value), \
                f"{path.name}:{node.lineno} turns trust_remote_code on"


def test_trust_remote_code_is_shown_in_the_run_config_the_log_and_the_train_tab(tiny_teacher, tiny_student,
                                                                                 tiny_text, tmp_path, capsys):
    from workbench.app.tab_train import status_markdown

    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, models={"trust_remote_code": True},
                      train={"steps": 1, "eval_every": 1, "save_every": 10}, run={"runs_dir": str(tmp_path)})
    cfg.save(tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "run.name=trusting"]) == 0
    assert "trust_remote_code is on" in capsys.readouterr().err
    trusting = RunFolder(tmp_path / "trusting")
    assert "trust_remote_code: true" in trusting.config_path.read_text()
    assert "trust_remote_code on" in status_markdown(trusting, trusting.read_status())
    plain = RunFolder(tmp_path / "plain")
    plain.path.mkdir()
    DistillConfig().save(plain.config_path)
    assert "trust_remote_code" not in status_markdown(plain, {"state": "finished"})


def test_hub_token_never_reaches_the_run_folder(tiny_teacher, tiny_student, tiny_text, tmp_path, monkeypatch):
    """A run started as the app starts it, with a hub token in the environment, writes the token nowhere."""

    from workbench.runs import process as runner

    secret = "hf_SecretTokenThatMustNotLeak1234567890"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", secret)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"steps": 2, "eval_every": 1, "save_every": 1},
                      run={"runs_dir": str(tmp_path), "name": "tokened"})
    run_id = runner.start_run(cfg, tmp_path)
    run = RunFolder(tmp_path / run_id)
    wait_for(lambda: run.read_status().get("state") in ("finished", "failed"))
    assert run.read_status()["state"] == "finished", run.log_tail(20)
    files = [p for p in run.path.rglob("*") if p.is_file()]
    assert any(p.name == "metrics.jsonl" for p in files) and any("checkpoints" in p.parts for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"{path.relative_to(run.path)} holds the hub token"
