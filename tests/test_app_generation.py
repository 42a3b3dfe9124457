"""Generation quality in the app, through gradio_client against a served app and a real on-policy run of the trainer
on tiny models: /run_status and /list_runs carry the new metrics (on-policy step rows, generation eval, the latest
sampled answer) with what they were measured on, /evaluate reports the students' generation, the Train tab renders
the panel in Korean, and the Chat tab colours an answer by its per-token disagreement."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from app_helpers import launched_app, tiny_config
from conftest import wait_for
from gradio_client import Client

from workbench.app.tab_train import new_watch, render
from workbench.engine.genquality import GEN_KEYS, token_disagreement
from workbench.runs.pool import ModelPool


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_teacher, tiny_student, tiny_pairs):
    root = tmp_path_factory.mktemp("app-generation")
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_pairs, steps=4, eval_every=2, save_every=4)
    cfg.data.seq_len, cfg.data.max_sequences, cfg.data.holdout_prompts = 32, None, 6
    cfg.onpolicy.lmbda, cfg.onpolicy.max_new_tokens = 1.0, 6
    cfg.loss.divergence, cfg.loss.temperature, cfg.loss.ce_weight = "reverse_kl", 1.0, 0.0
    with launched_app(root, tiny_teacher, tiny_student) as demo:
        client = Client(demo.local_url, verbose=False)
        run_id = client.predict(cfg.to_yaml(), api_name="/start_run")
        status = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status"))["state"]
                          in ("finished", "failed") and s, timeout=240)
        yield demo, client, run_id, status


def test_run_status_and_list_runs_carry_generation_metrics(finished):
    demo, client, run_id, status = finished
    assert status["state"] == "finished" and status["stage"] == "finished", status
    latest = status["latest"]
    assert latest["gen_tokens_per_s"] > 0 and 0 < latest["gen_share"] < 1 and 1 <= latest["completion_len"] <= 6
    generation = status["latest_generation"]
    assert generation["step"] == 4 and all(math.isfinite(generation[key]) for key in GEN_KEYS)
    assert len(generation["samples"]) == 3 and all(s["prompt"] for s in generation["samples"])
    assert any(s["teacher"] for s in generation["samples"])  # a random tiny teacher may end one answer at once
    assert "6 held-out prompts" in status["measured_on"]["generation"]
    assert "teacher-forced" in status["measured_on"]["eval"]
    sample = status["latest_sample"]
    assert sample["kind"] == "sample" and len(sample["tokens"]) == len(sample["rkl"]) > 0
    row = next(r for r in client.predict(api_name="/list_runs") if r["run"] == run_id)
    assert row["gen_rkl"] == pytest.approx(generation["gen_rkl"]) and row["gen_rep4"] == generation["gen_rep4"]
    assert row["gen_measured_on"] == generation["measured_on"] and row["duration_s"] > 0


def test_train_tab_shows_the_generation_panel_and_coloured_tokens(finished):
    demo, _, run_id, status = finished
    out = render(demo.ctx.runs_dir, new_watch(demo.ctx.runs_dir, run_id), True, "ko")
    summary, figure, samples, coloured = out[7:11]
    assert "교사 모델에 대한 reverse KL" in summary and "held-out prompt 6개" in summary  # measured on, in Korean
    names = {trace.name for trace in figure.data}
    assert {"교사 모델에 대한 reverse KL", "반복된 4-gram", "평균 길이"} <= names
    assert samples.count("<tr>") == 4  # header and three prompts, student beside teacher
    assert coloured.count('class="kd-token"') == len(status["latest_sample"]["tokens"])
    shades = [float(v) for v in re.findall(r"title=\"reverse KL ([0-9.]+) nats", coloured)]
    assert shades == pytest.approx(status["latest_sample"]["rkl"], abs=1e-3)


def test_evaluate_reports_generation_and_what_it_was_measured_on(finished):
    demo, client, run_id, _ = finished
    table, _, card, note, samples = client.predict(str(Path(demo.ctx.runs_dir) / run_id), True, 0, 8,
                                                   api_name="/evaluate")
    assert all(math.isfinite(s["generation"]["gen_rkl"]) for s in card["students"])
    assert card["teacher"]["generation"]["gen_rkl"] == pytest.approx(0.0, abs=1e-6)
    assert "Generated numbers" in note and "held-out prompts" in note and "Teacher-forced" in note
    assert any(row[0].startswith("reverse KL on own answers") for row in table["data"])
    assert samples.count("<tr>") >= 2


def test_chat_colours_the_students_answer_by_disagreement(finished, tiny_teacher):
    demo, client, run_id, _ = finished
    student = str(Path(demo.ctx.runs_dir) / run_id)
    history = [{"role": "user", "content": [{"type": "text", "text": "the king said ?"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "the land of god ."}]}]
    html = client.predict(True, str(tiny_teacher), student, history, api_name="/chat_disagreement")
    pool = ModelPool(device="cpu")
    model, tokenizer = pool.get(student)
    teacher, _ = pool.get(str(tiny_teacher))
    expected = token_disagreement(model, teacher, tokenizer, "the king said ?", "the land of god .")
    assert html.count('class="kd-token"') == len(expected) > 0
    shown = [float(v) for v in re.findall(r"title=\"reverse KL ([0-9.]+) nats", html)]
    assert shown == pytest.approx([p["rkl"] for p in expected], abs=1e-3)
    assert client.predict(False, str(tiny_teacher), student, history, api_name="/chat_disagreement") == ""
    # the legend says what the colour measures and what it cannot (an off-topic answer can be pale)
    assert "not whether the answer fits the question" in html and "the student&#x27;s own answer" in html


def test_a_newline_token_is_drawn_as_a_return_mark_not_an_empty_block():
    """In the disagreement colouring a newline token was a coloured block with nothing in it."""
    from workbench.app.train_view import token_html

    shown = token_html(["Hello", "\n", " <world>"], [0.1, 0.5, 2.5])
    spans = shown.split('<span class="kd-token"')[1:]
    assert ">↵\n</span>" in spans[1] and "&lt;world&gt;" in spans[2] and "↵" not in spans[0]
