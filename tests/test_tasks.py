"""Multi-task distillation (issue 27): the task schema, the seeded mixture, per-task loss weights, label scoring."""

from __future__ import annotations

import json
import threading

import pytest
import torch
import torch.nn.functional as F
from engine_helpers import tiny_config
from test_resume import StopAt
from tiny import WORDS, tiny_tokenizer
from transformers import AutoModelForCausalLM

from workbench.config import ConfigError, DistillConfig
from workbench.data.tasks import TaskMixture, build_tasks
from workbench.engine.losses import DivergenceSpec, logit_losses
from workbench.engine.task_scores import calibrated, exact_match, label_log_probs, token_f1
from workbench.engine.task_step import task_groups
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import ListSink

LABELS = ["king", "lord"]


def _tasks_yaml(entry: str) -> str:
    return "data:\n  tasks:\n  - {name: chat, source: builtin:chat, kind: chat}\n  - " + entry + "\n"


def test_tasks_round_trip_through_yaml():
    cfg = DistillConfig.from_yaml(_tasks_yaml(
        "{name: kind, source: builtin:chat-kind, kind: classify, labels: [story, steps, definition, "
        "comparison], weight: 0.5, ce_weight: 1.0, kd_weight: 0.2}"))
    assert [t.name for t in cfg.data.tasks] == ["chat", "kind"]
    assert cfg.data.tasks[1].weights(cfg.loss) == (1.0, 0.2)
    assert cfg.data.tasks[0].weights(cfg.loss) == (cfg.loss.ce_weight, cfg.loss.kd_weight)
    assert DistillConfig.from_yaml(cfg.to_yaml()) == cfg


def test_tasks_from_a_command_line_override():
    from workbench.config import apply_overrides

    cfg = apply_overrides(DistillConfig(), ["data.tasks=[{name: a, source: builtin:chat, kind: chat}, "
                                            "{name: b, source: builtin:kjv-book, kind: qa, weight: 0.5}]"])
    assert [(t.name, t.kind, t.weight) for t in cfg.data.tasks] == [("a", "chat", 1.0), ("b", "qa", 0.5)]
    with pytest.raises(ConfigError, match=r"data\.tasks\[a\]\.labels"):
        apply_overrides(DistillConfig(), ["data.tasks=[{name: a, kind: classify}]"])


@pytest.mark.parametrize("entry, field, words", [
    ("{name: odd, kind: translate}", "data.tasks[odd].kind", "one of lm, chat, qa, classify"),
    ("{name: cls, kind: classify, labels: [a, b], label_column: ''}", "data.tasks[cls].label_column", "column"),
    ("{name: cls, kind: classify, labels: []}", "data.tasks[cls].labels", "non-empty list"),
    ("{name: cls, kind: classify}", "data.tasks[cls].labels", "non-empty list"),
    ("{name: light, weight: 0}", "data.tasks[light].weight", "> 0"),
    ("{name: light, weight: -1}", "data.tasks[light].weight", "> 0"),
    ("{name: idle, ce_weight: 0, kd_weight: 0}", "data.tasks[idle].kd_weight", "> 0"),
    ("{name: chat, kind: chat}", "data.tasks[chat].name", "no other task"),
    ("{name: deep, hidden_weight: 1}", "data.tasks[deep].hidden_weight", "accepted: ce_weight"),
    ("{kind: lm}", "data.tasks[?].name", "letters"),
])
def test_bad_task_entry_is_refused_naming_task_and_field(entry, field, words):
    with pytest.raises(ConfigError) as error:
        DistillConfig.from_yaml(_tasks_yaml(entry))
    assert field in str(error.value) and words in str(error.value)


def test_mixture_draws_tasks_in_proportion_to_their_weights():
    mixture = TaskMixture([50, 70, 90], [1.0, 2.0, 5.0], seed=3)
    draws = torch.cat([mixture.draw(step, 16) for step in range(500)])  # 8,000 draws
    shares = torch.bincount(draws, minlength=3).double() / draws.numel()
    expected = torch.tensor([1 / 8, 2 / 8, 5 / 8], dtype=torch.float64)
    assert (shares - expected).abs().max() < 0.02  # 4 standard deviations of the largest share
    assert not torch.equal(draws, torch.cat([TaskMixture([50, 70, 90], [1.0, 2.0, 5.0], 4).draw(s, 16)
                                             for s in range(500)]))


def test_mixture_resumes_exactly_and_covers_each_task_once_per_epoch():
    sizes, batch = [5, 7, 30], 6
    walked = TaskMixture(sizes, [1.0, 1.0, 2.0], seed=0)
    seen = [walked.indices(step, 0, batch, batch) for step in range(40)]
    fresh = TaskMixture(sizes, [1.0, 1.0, 2.0], seed=0)  # a resumed run: starts at step 31
    for step in (31, 35, 39):
        rows, tasks = fresh.indices(step, 0, batch, batch)
        assert torch.equal(rows, seen[step][0]) and torch.equal(tasks, seen[step][1])
    halves = [fresh.indices(20, start, 3, batch) for start in (0, 3)]  # two processes or micro-batches
    assert torch.equal(torch.cat([h[0] for h in halves]), seen[20][0])
    rows, tasks = torch.cat([s[0] for s in seen]), torch.cat([s[1] for s in seen])
    first_task = rows[tasks == 0][:5]  # task 0's first epoch: each of its rows once
    assert sorted(first_task.tolist()) == list(range(5))
    assert ((rows[tasks == 2] >= 12) & (rows[tasks == 2] < 42)).all()  # task 2's rows sit after 5 + 7 others


def _classify_file(tmp_path, name="cls.jsonl", label_column="label", labels=LABELS, count=80):
    rng = torch.Generator().manual_seed(0)
    lines = []
    for i in range(count):
        words = [WORDS[int(j)] for j in torch.randint(len(WORDS), (6,), generator=rng)]
        lines.append(json.dumps({"text": " ".join(words), label_column: labels[i % len(labels)]}))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _task_config(teacher, student, text, pairs, classify, **sections):
    tasks = [{"name": "text", "source": str(text), "kind": "lm", "weight": 1.0},
             {"name": "pairs", "source": str(pairs), "kind": "qa", "weight": 1.0, "holdout": 8},
             {"name": "cls", "source": str(classify), "kind": "classify", "labels": LABELS, "weight": 2.0,
              "prompt": "which of king or lord : {text}", "holdout": 8, "ce_weight": 1.0, "kd_weight": 0.0}]
    return tiny_config(teacher, student, text, data={"tasks": tasks, "max_sequences": 40}, **sections)


def test_classify_source_errors_name_task_and_field(tmp_path, tiny_teacher, tiny_student, tiny_text, tiny_pairs):
    tokenizer = tiny_tokenizer()
    wrong_column = _classify_file(tmp_path, "wrong.jsonl", label_column="gold")
    cfg = _task_config(tiny_teacher, tiny_student, tiny_text, tiny_pairs, wrong_column)
    with pytest.raises(UserError, match=r"data\.tasks\[cls\]\.label_column: wrong\.jsonl has no column 'label'"):
        build_tasks(cfg.data, tokenizer, 0)
    outside = _classify_file(tmp_path, "outside.jsonl", labels=["king", "god"])
    cfg = _task_config(tiny_teacher, tiny_student, tiny_text, tiny_pairs, outside)
    with pytest.raises(UserError, match=r"data\.tasks\[cls\]\.labels: .*outside the label set: god"):
        build_tasks(cfg.data, tokenizer, 0)


def test_tasks_are_packed_apart_and_mixed(tmp_path, tiny_teacher, tiny_student, tiny_text, tiny_pairs):
    cfg = _task_config(tiny_teacher, tiny_student, tiny_text, tiny_pairs, _classify_file(tmp_path))
    tasks = build_tasks(cfg.data, tiny_tokenizer(), 0)
    assert tasks.names == ["text", "pairs", "cls"]
    assert tasks.row_task.tolist() == sorted(tasks.row_task.tolist())  # task 0's rows, then 1's, then 2's
    assert tasks.train_mask is not None and tasks.train_mask[tasks.row_task == 0].all()  # lm: every token
    assert not tasks.train_mask[tasks.row_task == 2].all()  # classify: the label tokens only
    assert [len(t.heldout) for t in tasks.tasks] == [0, 8, 8] and len(tasks.tasks[2].gold) == 8
    assert set(tasks.example_task.tolist()) == {1, 2}  # on-policy prompts: never the lm task
    assert tasks.prompts.weights[0] == 0
    for task, data in enumerate(tasks.tasks):  # shuffled validation rows: each task's rows, all of them
        assert sorted(map(tuple, tasks.val[tasks.val_task == task].tolist())) == sorted(map(tuple, data.val.tolist()))
    assert len(set(tasks.val_task[:6].tolist())) > 1


def test_per_task_loss_weights_reach_only_their_rows(tmp_path, tiny_teacher, tiny_student, tiny_text, tiny_pairs):
    """Task 0 takes CE only, task 1 KD only: each row's gradient is that of its own task's term, float64 reference."""
    cfg = _task_config(tiny_teacher, tiny_student, tiny_text, tiny_pairs, _classify_file(tmp_path))
    cfg.data.tasks[0].ce_weight, cfg.data.tasks[0].kd_weight = 1.0, 0.0
    cfg.data.tasks[1].ce_weight, cfg.data.tasks[1].kd_weight = 0.0, 3.0
    tasks = build_tasks(cfg.data, tiny_tokenizer(), 0)
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(4, 5, 11, generator=gen, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(4, 5, 11, generator=gen, dtype=torch.float64)
    targets = torch.randint(11, (4, 5), generator=gen)
    targets[:, -1] = -100
    row_tasks = torch.tensor([0, 1, 0, 1])
    total = sum(logit_losses(student, t, teacher, ce_weight=ce, kd_weight=kd, reduction="sum",
                             spec=DivergenceSpec("forward_kl", temperature=2.0, t2_scale=True)).total
                for t, ce, kd in task_groups(cfg, tasks, row_tasks, targets))
    total.backward()
    reference = student.detach().clone().requires_grad_(True)
    valid = targets != -100
    ce_rows, kd_rows = valid & (row_tasks == 0).view(-1, 1), valid & (row_tasks == 1).view(-1, 1)
    ce = F.cross_entropy(reference[ce_rows], targets[ce_rows], reduction="sum")
    log_p, log_q = F.log_softmax(teacher / 2.0, -1), F.log_softmax(reference / 2.0, -1)
    kd = 4.0 * (log_p.exp() * (log_p - log_q)).sum(-1)[kd_rows].sum()
    (1.0 * ce + 3.0 * kd).backward()
    assert torch.allclose(total.detach(), (ce + 3.0 * kd).detach(), atol=1e-8)
    assert torch.allclose(student.grad, reference.grad, atol=1e-8)


@pytest.mark.parametrize("labels", [[[30], [31, 40], [41, 42, 43]], [[30], [31], [41], [2]]],
                         ids=["one-two-three-tokens", "one-token-each"])  # a row per label; a row per prompt
def test_label_scores_equal_an_independent_float64_computation(tiny_teacher, labels):
    model = AutoModelForCausalLM.from_pretrained(tiny_teacher).eval()
    prompts = [[5, 9, 13, 2], [7, 7], [20, 21, 22, 23, 24, 25]]
    scores = label_log_probs(model, prompts, labels, pad=1, batch_rows=2)
    reference = torch.zeros(len(prompts), len(labels), dtype=torch.float64)
    double = AutoModelForCausalLM.from_pretrained(tiny_teacher, torch_dtype=torch.float64).eval()
    with torch.no_grad():
        for n, prompt in enumerate(prompts):
            for m, label in enumerate(labels):
                logits = double(input_ids=torch.tensor([prompt + label])).logits[0]  # one row, no padding
                log_probs = logits.log_softmax(-1)
                reference[n, m] = sum(log_probs[len(prompt) - 1 + t, token] for t, token in enumerate(label))
    assert torch.allclose(scores, reference, atol=1e-4)


def test_calibration_removes_a_label_bias_the_text_does_not_carry():
    gen = torch.Generator().manual_seed(0)
    scores, free = torch.randn(50, 4, generator=gen, dtype=torch.float64), torch.randn(3, 4, generator=gen)
    bias = torch.tensor([[5.0, -1.0, 0.0, 2.0]], dtype=torch.float64)  # a model that prefers label 0 whatever it reads
    assert (scores + bias).argmax(1).tolist() != scores.argmax(1).tolist()
    assert torch.equal(calibrated(scores + bias, free + bias).argmax(1), calibrated(scores, free).argmax(1))


def test_exact_match_and_token_f1():
    assert exact_match(" John.", "john") == 1.0 and exact_match("the book of John", "John") == 0.0
    assert token_f1("the book of John", "John") == pytest.approx(2 * 0.25 / 1.25)
    assert token_f1("", "John") == 0.0 and token_f1("1 Kings", "1 Kings") == 1.0


def test_multitask_run_trains_scores_each_task_and_resumes_exactly(tmp_path, tiny_teacher, tiny_student, tiny_text,
                                                                    tiny_pairs):
    cfg = _task_config(tiny_teacher, tiny_student, tiny_text, tiny_pairs, _classify_file(tmp_path),
                       train={"steps": 6, "save_every": 100, "eval_every": 3, "gen_eval": False})
    straight = ListSink()
    train(cfg, tmp_path / "straight", straight)
    evals = [r for r in straight.rows if r["kind"] == "eval"]
    tasks = evals[-1]["tasks"]
    assert set(tasks) == {"text", "pairs", "cls"}
    assert 0.0 <= tasks["cls"]["acc"] <= 1.0 and tasks["cls"]["chance"] == 0.5
    assert {"acc_raw", "teacher_acc", "teacher_acc_raw"} <= set(tasks["cls"])
    assert {"em", "f1", "teacher_em", "teacher_f1"} <= set(tasks["pairs"]) and tasks["text"]["ppl"] > 1.0
    stop = threading.Event()
    assert train(cfg, tmp_path / "resumed", StopAt(3, stop), stop=stop)["state"] == "stopped"
    train(cfg, tmp_path / "resumed", ListSink(), resume=True)
    curve = lambda path: torch.tensor([[r["total"], r["ce"], r["kd"]] for r in read_metrics(path)  # noqa: E731
                                       if r["kind"] == "train"])
    assert torch.allclose(curve(tmp_path / "straight" / "metrics.jsonl"),
                          curve(RunFolder(tmp_path / "resumed").metrics_path), rtol=1e-5, atol=1e-6)


def test_onpolicy_steps_draw_prompts_from_prompt_tasks_only(tmp_path, tiny_teacher, tiny_student, tiny_text,
                                                            tiny_pairs):
    cfg = _task_config(tiny_teacher, tiny_student, tiny_text, tiny_pairs, _classify_file(tmp_path),
                       train={"steps": 2, "eval_every": 2, "gen_eval": False},
                       onpolicy={"lmbda": 1.0, "max_new_tokens": 4})
    sink = ListSink()
    train(cfg, tmp_path / "run", sink)
    rows = [r for r in sink.rows if r["kind"] == "train"]
    assert all(r["onpolicy"] == 1 and r["total"] == r["total"] for r in rows)  # sampled steps, finite loss
    tasks = build_tasks(cfg.data, tiny_tokenizer(), cfg.train.seed)
    drawn = torch.cat([tasks.prompts.indices(step, 0, 8, 8)[1] for step in range(50)])
    assert 0 not in drawn.tolist() and {1, 2} <= set(drawn.tolist())


def test_builtin_tasks_build_with_held_out_items():
    from workbench.data.task_items import CHAT_KIND_LABELS
    from workbench.data.tasks import build_task

    data = DistillConfig.from_dict({"data": {"seq_len": 64, "tasks": [
        {"name": "kind", "source": "builtin:chat-kind", "kind": "classify", "labels": CHAT_KIND_LABELS},
        {"name": "book", "source": "builtin:kjv-book", "kind": "qa"}]}}).data
    tokenizer = tiny_tokenizer()
    kind, book = (build_task(task, data, tokenizer) for task in data.tasks)
    assert len(kind.examples) + len(kind.heldout) == 120 and len(kind.heldout) == 24  # at most a fifth
    assert sorted(set(kind.gold)) == [0, 1, 2, 3] and len(kind.label_ids) == 4 and len(kind.content_free) == 3
    assert len(book.heldout) == 64 and len(book.examples) == 1200 - 64
    assert not {e.prompt for e in kind.heldout} & {e.prompt for e in kind.examples}
    data.tasks[0].labels = ["story", "steps"]
    with pytest.raises(UserError, match=r"data\.tasks\[kind\]\.labels: .*outside the label set: comparison"):
        build_task(data.tasks[0], data, tokenizer)


def test_per_task_eval_numbers_reach_the_trackers():
    from workbench.runs.reporters import scalars

    row = {"kind": "eval", "step": 3, "eval_loss": 1.5, "tasks": {"kind": {"kind": "classify", "acc": 0.5}}}
    assert scalars(row) == {"eval/eval_loss": 1.5, "eval/tasks/kind/acc": 0.5}


def test_readme_example_is_a_valid_config():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Multi-task distillation"):]
    example = section[section.index("```yaml") + 7:section.index("```", section.index("```yaml") + 7)]
    cfg = DistillConfig.from_yaml(example)
    assert [t.kind for t in cfg.data.tasks] == ["chat", "classify", "qa", "lm"]


def test_a_chat_task_keeps_the_held_out_prompts_of_a_one_task_run_out_of_training(tmp_path, tiny_teacher, tiny_student,
                                                                                   tiny_text, tiny_pairs):
    from workbench.data.splits import build_splits
    from workbench.data.tasks import task_splits

    tasks = [{"name": "chat", "source": str(tiny_pairs), "kind": "chat", "weight": 1.0},
             {"name": "text", "source": str(tiny_text), "kind": "lm", "weight": 1.0}]
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, data={"tasks": tasks, "holdout_prompts": 4})
    one_task = tiny_config(tiny_teacher, tiny_student, tiny_pairs, data={"holdout_prompts": 4})
    splits = task_splits(cfg.data, tiny_tokenizer(), 0)
    held = [e.prompt_ids for e in splits.heldout]
    assert len(held) == 4  # the generation numbers of a multi-task run are scored on them
    assert held == [e.prompt_ids for e in build_splits(one_task.data, tiny_tokenizer()).heldout]
    trained = {tuple(e.prompt_ids) for e in splits.tasks.tasks[0].examples}
    assert trained and not trained & {tuple(p) for p in held}
