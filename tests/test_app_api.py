"""The app's stable API through gradio_client against a served app: start a tiny run and watch it finish, stop a
run gracefully, find runs again from a new client, refuse bad YAML; plus the server's security defaults."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from app_helpers import launched_app, tiny_config
from conftest import wait_for
from gradio_client import Client

from workbench.app.tab_train import status_markdown
from workbench.commands.app import launch_options
from workbench.errors import UserError
from workbench.runs import process as runner
from workbench.runs.folder import RunFolder


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_teacher, tiny_student):
    root = tmp_path_factory.mktemp("app-api")
    with launched_app(root, tiny_teacher, tiny_student) as demo:
        yield demo


def _status(client: Client, run_id: str) -> dict:
    return client.predict(run_id, api_name="/run_status")


def test_start_run_trains_to_the_end_with_metrics(served, tiny_teacher, tiny_student, tiny_text):
    client = Client(served.local_url, verbose=False)
    run_id = client.predict(tiny_config(tiny_teacher, tiny_student, tiny_text).to_yaml(), api_name="/start_run")
    status = wait_for(lambda: (s := _status(client, run_id))["state"] in ("finished", "failed") and s, timeout=150)
    assert status["state"] == "finished", status
    assert status["step"] == status["total_steps"] == 6
    latest, latest_eval = status["latest"], status["latest_eval"]
    assert latest["step"] == 6 and math.isfinite(latest["kd"]) and latest["kd"] > 0
    assert math.isfinite(latest_eval["eval_loss"])
    runs = client.predict(api_name="/list_runs")
    row = next(r for r in runs if r["run"] == run_id)
    assert row["status"] == "finished" and row["best_eval_loss"] is not None
    assert str(tiny_student) == row["student"]


def test_stop_run_is_graceful_and_a_new_client_finds_it(served, tiny_teacher, tiny_student, tiny_text):
    client = Client(served.local_url, verbose=False)
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, steps=100000, eval_every=1000, save_every=100000)
    run_id = client.predict(cfg.to_yaml(), api_name="/start_run")
    wait_for(lambda: _status(client, run_id)["step"] >= 2, timeout=120)
    client.predict(run_id, api_name="/stop_run")
    status = wait_for(lambda: (s := _status(client, run_id))["state"] in ("stopped", "failed") and s, timeout=90)
    assert status["state"] == "stopped", status
    assert 2 <= status["step"] < 100000
    run = RunFolder(Path(served.ctx.runs_dir) / run_id)
    assert run.latest_checkpoint() is not None, "a graceful stop saves a checkpoint"
    fresh = Client(served.local_url, verbose=False)  # a page reload / another browser
    assert run_id in [r["run"] for r in fresh.predict(api_name="/list_runs")]
    assert _status(fresh, run_id)["state"] == "stopped"

    runner.resume_run(run.path)
    wait_for(lambda: (s := _status(client, run_id))["state"] == "running" and s["step"] > status["step"], timeout=120)
    assert not run.read_status().get("stop_requested"), "a resumed run is not shown as stopping"
    assert "stopping" not in status_markdown(run, run.read_status())
    assert runner.stop_run(run.path, wait=True)["state"] == "stopped"


def test_bad_yaml_is_refused_with_the_field_named(served):
    client = Client(served.local_url, verbose=False)
    with pytest.raises(Exception, match="loss.temperature"):
        client.predict("loss:\n  temperature: 0\n", api_name="/start_run")
    with pytest.raises(Exception, match="unknown key"):
        client.predict("train:\n  stepz: 3\n", api_name="/start_run")
    with pytest.raises(Exception, match="run id"):
        client.predict("../etc", api_name="/run_status")


def test_server_serves_only_runs_and_exports(served):
    runs = Path(served.ctx.runs_dir)
    inside = next(runs.glob("*/config.yaml"), None) or runs / "probe.txt"
    if not inside.exists():
        inside.write_text("probe")
    base = served.local_url.rstrip("/")
    with urllib.request.urlopen(f"{base}/gradio_api/file={inside.resolve()}") as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/gradio_api/file=/etc/passwd")
    assert refused.value.code in (403, 404)
    info = json.loads(urllib.request.urlopen(f"{base}/gradio_api/info").read())
    assert {"/start_run", "/run_status", "/stop_run", "/list_runs"} <= set(info["named_endpoints"])


def test_launch_options_refuse_open_bind_without_auth(tmp_path):
    runs, exports = str(tmp_path / "r"), str(tmp_path / "e")
    with pytest.raises(UserError, match="--auth"):
        launch_options("0.0.0.0", 7860, None, False, runs, exports)
    assert launch_options("0.0.0.0", 7860, None, True, runs, exports)["auth"] is None
    options = launch_options("0.0.0.0", 7860, "alice:pw", False, runs, exports)
    assert options["auth"] == ("alice", "pw") and options["share"] is False
    local = launch_options("127.0.0.1", 7860, None, False, runs, exports)
    assert local["server_name"] == "127.0.0.1" and local["max_file_size"]
    assert sorted(local["allowed_paths"]) == sorted([str((tmp_path / "r").resolve()), str((tmp_path / "e").resolve())])
    with pytest.raises(UserError, match="user:password"):
        launch_options("127.0.0.1", 7860, "nopassword", False, runs, exports)


def test_out_of_range_form_value_is_refused_naming_the_field(served, tiny_teacher, tiny_student, tiny_text):
    from workbench.forms import FORM_FIELDS, TASK_COLUMNS, config_to_form

    values = config_to_form(tiny_config(tiny_teacher, tiny_student, tiny_text))
    values["train.steps"] = -1
    values["mapping.pairs"] = {"headers": ["student layer", "teacher layer"], "data": [["", ""]]}
    values["data.tasks"] = {"headers": TASK_COLUMNS, "data": []}  # tables travel as a dataframe payload
    args = [values[name] for name in FORM_FIELDS]
    client = Client(served.local_url, verbose=False)
    assert "train.steps" in client.predict("quick", *args, api_name="/command_preview")
    with pytest.raises(Exception, match=r"train\.steps"):
        client.predict("quick", *args, api_name="/train_start")


def test_user_errors_are_one_line_in_the_app_log(served, capfd):
    client = Client(served.local_url, verbose=False)
    capfd.readouterr()
    with pytest.raises(Exception, match="loss.temperature"):
        client.predict("loss:\n  temperature: 0\n", api_name="/start_run")
    log = capfd.readouterr().err
    assert "Traceback" not in log
    assert [line for line in log.splitlines() if "loss.temperature" in line] == [
        "workbench app: loss.temperature must be > 0 and <= 100, got 0.0"]


def test_a_port_in_use_is_refused_in_one_line(tmp_path, capsys):
    """`workbench app --port P` with P taken ended in gradio's OSError traceback; it is now one line and exit 2."""
    import socket

    from workbench.cli import main as cli_main

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = cli_main(["app", "--port", str(port), "--runs-dir", str(tmp_path / "r"),
                         "--exports-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code == 2 and f"--port {port} is not free on 127.0.0.1" in err and f"--port {port + 1}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
