"""The Setup tab's task editor through gradio_client against a served app: tasks added and removed through its
endpoints round-trip through the config (the command preview, Save YAML and Load YAML carry them), a built-in source
fills in its kind and labels, and a bad entry is refused naming the task and the field."""

from __future__ import annotations

import shlex

import pytest
from app_helpers import launched_app, tiny_config
from gradio_client import Client, handle_file

from workbench.config import DistillConfig
from workbench.forms import FORM_FIELDS, TASK_COLUMNS, config_to_form, rows_to_tasks

LABELS = ["story", "steps", "definition", "comparison"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_teacher, tiny_student):
    with launched_app(tmp_path_factory.mktemp("app-tasks"), tiny_teacher, tiny_student) as demo:
        yield demo


def _table(rows: list) -> dict:
    return {"headers": TASK_COLUMNS, "data": rows}


def _add(client, rows, name, source, kind, labels, weight, ce_weight=None, kd_weight=None):
    own_loss = ce_weight is not None
    table, cleared_name = client.predict(_table(rows), name, source, kind, ", ".join(labels), weight, own_loss,
                                         ce_weight if own_loss else 0.0, kd_weight if own_loss else 0.0,
                                         api_name="/task_add")
    assert cleared_name == ""
    return table["data"]


def _form_args(cfg: DistillConfig, rows) -> list:
    values = config_to_form(cfg)
    values["data.tasks"] = _table(rows)
    values["mapping.pairs"] = {"headers": ["student layer", "teacher layer"], "data": [["", ""]]}
    return [values[name] for name in FORM_FIELDS]


def test_task_editor_round_trips_through_the_config(served, tiny_teacher, tiny_student, tiny_text, tmp_path):
    from workbench.cli import build_parser
    from workbench.commands.train import resolve_config

    client = Client(served.local_url, verbose=False)
    kind, labels = client.predict("builtin:chat-kind", api_name="/task_source_fields")
    assert (kind["value"], labels["value"]) == ("classify", ", ".join(LABELS))
    assert client.predict("builtin:kjv-book", api_name="/task_source_fields")[0]["value"] == "qa"

    rows = _add(client, [], "kind", "builtin:chat-kind", "classify", LABELS, 1.0, 1.0, 0.5)
    rows = _add(client, rows, "book", "builtin:kjv-book", "qa", [], 2.0)
    expected = [{"name": "kind", "source": "builtin:chat-kind", "kind": "classify", "labels": LABELS, "weight": 1.0,
                 "ce_weight": 1.0, "kd_weight": 0.5},
                {"name": "book", "source": "builtin:kjv-book", "kind": "qa", "weight": 2.0, "ce_weight": None,
                 "kd_weight": None}]
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text)
    args = _form_args(cfg, rows)

    command = client.predict("quick", *args, api_name="/command_preview")
    assert "data.tasks=[{name: kind" in command, command
    argv = shlex.split(command.replace("\\\n", " "))
    previewed = resolve_config(*(lambda a: (a.config, a.preset, a.overrides))(build_parser().parse_args(argv[1:])))
    assert [{key: getattr(task, key) for key in entry} for task, entry in zip(previewed.data.tasks, expected,
                                                                               strict=True)] == expected
    saved = DistillConfig.load(client.predict("quick", *args, api_name="/save_yaml")["value"])
    assert saved.data == previewed.data and saved.loss == previewed.loss

    path = tmp_path / "tasks.yaml"
    saved.save(path)
    loaded = client.predict(handle_file(str(path)), api_name="/load_yaml")
    table = loaded[FORM_FIELDS.index("data.tasks")]["value"]
    assert rows_to_tasks(table["data"]) == rows_to_tasks(rows)

    left = client.predict(_table(rows), "kind", api_name="/task_remove")["data"]
    assert [row[0] for row in left] == ["book"]
    names, line = client.predict(_table(rows), None, api_name="/task_list_changed")
    assert names["value"] == "kind" and names["choices"] == [["kind", "kind"], ["book", "book"]] and "kind 33%, book 67%" in line


@pytest.mark.parametrize(("name", "weight", "named"), [("kind", 1.0, r"data\.tasks\[kind\]\.name"),
                                                        ("other", 0.0, r"data\.tasks\[other\]\.weight"),
                                                        ("", 1.0, r"data\.tasks\[\?\]\.name")])
def test_a_bad_task_is_refused_naming_the_task_and_field(served, name, weight, named):
    client = Client(served.local_url, verbose=False)
    rows = _add(client, [], "kind", "builtin:chat-kind", "classify", LABELS, 1.0)
    with pytest.raises(Exception, match=named):
        _add(client, rows, name, "builtin:chat-kind", "classify", LABELS, weight)
