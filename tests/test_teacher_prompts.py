"""Prompts the teacher writes itself (`onpolicy.teacher_prompts`): the user-turn prefix, the filters, determinism,
and a run that writes them once, trains on them and reads them back on resume."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
import torch
from test_onpolicy import onpolicy_config
from test_resume import StopAt

from workbench.config import ConfigError
from workbench.engine.teacher_prompts import normalized, prompt_examples, user_turn_prefix, write_prompts
from workbench.engine.trainer import _make_accelerator, setup, train
from workbench.errors import UserError
from workbench.models.loading import load_model, load_tokenizer
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import ListSink

TEMPLATE = "{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s>{% endfor %}"


@pytest.fixture(scope="module")
def templated_teacher(tmp_path_factory, tiny_teacher):
    """The tiny teacher with a chat template, its end-of-turn marker being its EOS."""
    folder = tmp_path_factory.mktemp("templated") / "teacher"
    shutil.copytree(tiny_teacher, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = TEMPLATE
    config_path.write_text(json.dumps(config))
    return folder


def test_the_prefix_is_the_template_up_to_the_users_words(templated_teacher, tiny_teacher):
    assert user_turn_prefix(load_tokenizer(str(templated_teacher))) == "<s> user "
    with pytest.raises(UserError, match="onpolicy.teacher_prompts: the teacher's tokenizer has no chat template"):
        user_turn_prefix(load_tokenizer(str(tiny_teacher)))


@pytest.mark.slow
def test_the_builtin_teachers_prefix_opens_a_user_turn():
    prefix = user_turn_prefix(load_tokenizer("builtin:smollm2-135m-instruct"))
    assert prefix.endswith("<|im_start|>user\n") and prefix.startswith("<|im_start|>system\n")


def _eos_biased(folder, bias: float):
    """The tiny teacher with `bias` added to its EOS logit: > 0 ends its turn often (a random tiny model rarely
    does), far below 0 never."""
    model = load_model(str(folder))
    head = model.lm_head
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[3] = bias
    model.lm_head = biased
    return model.eval()


def test_requests_are_distinct_complete_seeded_and_keep_clear_of_heldout_prompts(templated_teacher):
    tokenizer, model = load_tokenizer(str(templated_teacher)), _eos_biased(templated_teacher, 2.5)
    seen = []
    texts = write_prompts(model, tokenizer, 12, seed=3, batch=16, progress=lambda done, total: seen.append(done))
    assert len(texts) == 12 and seen[-1] == 12 and seen == sorted(seen)
    keys = [normalized(t) for t in texts]
    assert len(set(keys)) == 12 and all(len(k.split()) >= 4 for k in keys)
    assert not any("</s>" in t or "<s>" in t for t in texts)  # the end-of-turn marker is cut, not kept
    assert write_prompts(model, tokenizer, 12, seed=3, batch=16) == texts
    assert write_prompts(model, tokenizer, 12, seed=4, batch=16) != texts
    # a held-out prompt a request contains (or that contains it) removes that request
    avoid = [texts[0].upper() + " !", " ".join(texts[1].split()[1:3])]
    again = write_prompts(model, tokenizer, 12, seed=3, batch=16, avoid=avoid)
    assert texts[0] not in again and texts[1] not in again and set(texts[2:]) <= set(again) | set(texts[2:])
    assert not any(normalized(avoid[1]) in normalized(t) for t in again)


def test_a_teacher_that_never_ends_its_turn_gives_no_requests(templated_teacher):
    tokenizer, model = load_tokenizer(str(templated_teacher)), _eos_biased(templated_teacher, -1e4)
    assert write_prompts(model, tokenizer, 4, seed=0, batch=4) == []


def test_requests_become_prompts_of_the_students_format(tiny_student):
    tokenizer = load_tokenizer(str(tiny_student))  # no template: the plain fallback
    (example,) = prompt_examples(["the king said ?"], tokenizer)
    assert example.prompt == "the king said ?" and example.answer_ids == []
    assert tokenizer.decode(example.prompt_ids) == tokenizer.decode(tokenizer("User: the king said ?\nAssistant:",
                                                                              add_special_tokens=False)["input_ids"])


def test_a_run_writes_its_teachers_prompts_once_trains_on_them_and_resumes(templated_teacher, tiny_student,
                                                                          tiny_pairs, tmp_path):
    cfg = onpolicy_config(templated_teacher, tiny_student, tiny_pairs, onpolicy={"teacher_prompts": 6},
                          train={"steps": 6, "save_every": 100, "eval_every": 3, "batch_size": 4})
    straight = ListSink()
    train(cfg, tmp_path / "straight", straight)
    written = (tmp_path / "straight" / "teacher_prompts.jsonl").read_text().splitlines()
    assert 1 <= len(written) <= 6
    assert any(f"the teacher wrote {len(written)} prompts of the 6 asked for" in line for line in straight.messages)
    stop = threading.Event()
    assert train(cfg, tmp_path / "resumed", StopAt(3, stop), stop=stop)["state"] == "stopped"
    run = RunFolder(tmp_path / "resumed")
    assert run.teacher_prompts_path.read_text().splitlines() == written  # same seed: the same requests
    again = ListSink()
    assert train(cfg, run.path, again, resume=True)["state"] == "finished"
    assert any(f"read {len(written)} prompts the teacher wrote" in line for line in again.messages)
    assert not any("asked for" in line for line in again.messages)  # read back, not written again
    rows = lambda path: [(r["step"], r["kd"]) for r in read_metrics(path) if r["kind"] == "train"]  # noqa: E731
    assert rows(tmp_path / "straight" / "metrics.jsonl") == rows(run.metrics_path)


def test_on_policy_steps_draw_from_the_data_and_the_teachers_requests(templated_teacher, tiny_student, tiny_pairs,
                                                                     tmp_path):
    cfg = onpolicy_config(templated_teacher, tiny_student, tiny_pairs)
    plain = setup(cfg, _make_accelerator(cfg), ListSink())
    path = tmp_path / "teacher_prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"the king said {word} ?"}) + "\n" for word in ("one", "two")))
    more = onpolicy_config(templated_teacher, tiny_student, tiny_pairs, onpolicy={"teacher_prompts": 2})
    with_requests = setup(more, _make_accelerator(more), ListSink(), prompts_file=path)
    assert [e.prompt for e in with_requests.train_examples] == [e.prompt for e in plain.train_examples] + [
        "the king said one ?", "the king said two ?"]
    assert [e.prompt for e in with_requests.heldout] == [e.prompt for e in plain.heldout]


def test_teacher_prompts_need_onpolicy_steps_on_one_dataset(templated_teacher, tiny_student, tiny_pairs):
    with pytest.raises(ConfigError, match="onpolicy.teacher_prompts must be 0 unless on-policy steps"):
        onpolicy_config(templated_teacher, tiny_student, tiny_pairs, onpolicy={"lmbda": 0.0, "teacher_prompts": 4})
