"""`workbench generate-data` on a tiny model: rows, settings sidecar, chat template, batching."""

from __future__ import annotations

import json
import shutil

from workbench.cli import main
from workbench.data.chat_format import prompt_text as chat_prompt
from workbench.engine.datagen import read_prompts
from workbench.models.loading import load_tokenizer

PROMPTS = ["the king said", "water and land", "what is the lord", "one old man", "the house of the son"]


def _prompt_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "category": f"c{i % 2}"}) + "\n" for i, p in enumerate(PROMPTS)))
    return path


def _templated_teacher(tmp_path, tiny_teacher):
    """A copy of the tiny teacher whose tokenizer has a chat template made of in-vocabulary words."""
    folder = tmp_path / "templated"
    shutil.copytree(tiny_teacher, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = "{% for m in messages %}{{ m['content'] }} .{% endfor %}"
    config_path.write_text(json.dumps(config))
    return folder


def test_generate_data_writes_rows_and_settings(tmp_path, tiny_teacher, capsys):
    teacher = _templated_teacher(tmp_path, tiny_teacher)
    out = tmp_path / "out" / "answers.jsonl"
    argv = ["generate-data", "--teacher", str(teacher), "--prompts", str(_prompt_file(tmp_path)),
            "--out", str(out), "--max-new-tokens", "6", "--batch-size", "2", "--temperature", "0"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == PROMPTS
    assert [r["category"] for r in rows] == ["c0", "c1", "c0", "c1", "c0"]
    assert all(isinstance(r["response"], str) for r in rows) and any(r["response"] for r in rows)
    meta = json.loads((tmp_path / "out" / "answers.meta.json").read_text())
    assert meta["teacher"] == str(teacher) and meta["count"] == 5 and meta["max_new_tokens"] == 6
    assert meta["temperature"] == 0 and meta["batch_size"] == 2 and meta["date"]
    assert "wrote 5 rows" in capsys.readouterr().out
    # greedy answers do not depend on batching: left padding keeps every prompt's continuation intact
    single = tmp_path / "single.jsonl"
    assert main(argv[:5] + ["--out", str(single), "--max-new-tokens", "6", "--batch-size", "1", "--temperature", "0"]) == 0
    assert [json.loads(line)["response"] for line in single.read_text().splitlines()] == [r["response"] for r in rows]


def test_chat_template_is_used_when_present(tmp_path, tiny_teacher):
    tokenizer = load_tokenizer(str(_templated_teacher(tmp_path, tiny_teacher)))
    assert chat_prompt(tokenizer, "the king") == "the king ."
    assert chat_prompt(load_tokenizer(str(tiny_teacher)), "the king") == "User: the king\nAssistant:"


def test_bad_arguments_exit_with_code_2(tmp_path, tiny_student, capsys):
    prompts = _prompt_file(tmp_path)
    assert main(["generate-data", "--prompts", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                 "--teacher", str(tiny_student)]) == 2
    assert main(["generate-data", "--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
    (tmp_path / "p.txt").write_text("first prompt\n\nsecond prompt\n")
    assert [r["prompt"] for r in read_prompts(tmp_path / "p.txt")] == ["first prompt", "second prompt"]
