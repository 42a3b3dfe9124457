"""Streaming generation, seeded sampling, stop, chat template and the interleaved multi-column stream."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from workbench.analysis.generation import SamplingSettings, compare_stream, stream_generate
from workbench.data.chat_format import exchange_text
from workbench.data.chat_format import prompt_text as format_prompt
from workbench.engine.sampling import SeededSampler, draw_from
from workbench.errors import UserError
from workbench.runs.pool import ModelPool, resolve_spec


@pytest.fixture(scope="module")
def pool():
    return ModelPool(max_models=3, device="cpu")


def _final(stream):
    items = list(stream)
    return items, items[-1]


def test_stream_is_incremental_with_stats(tiny_teacher, pool):
    model, tokenizer = pool.get(str(tiny_teacher))
    items, (text, stats) = _final(stream_generate(model, tokenizer, "the king said", SamplingSettings(max_new_tokens=12)))
    assert len(items) >= 3 and stats.finished and not stats.stopped
    assert [t for t, _ in items[:-1]] == sorted((t for t, _ in items[:-1]), key=len)  # text only grows
    assert 3 <= stats.tokens <= 12 and stats.ttft_s > 0 and stats.tokens_per_s > 0  # may end early at EOS
    assert "TTFT" in stats.line() and f"{stats.tokens} tokens" in stats.line()


def test_same_seed_same_text_and_other_seed_differs(tiny_teacher, pool):
    model, tokenizer = pool.get(str(tiny_teacher))
    run = lambda seed: _final(stream_generate(model, tokenizer, "the king", SamplingSettings(1.0, 1.0, 16, seed)))[1][0]  # noqa: E731
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_sampler_greedy_and_top_p():
    scores = torch.tensor([[0.0, 3.0, 1.0, -2.0]])
    assert torch.equal(SeededSampler(0.0, 1.0, torch.Generator())(None, scores), scores)
    tiny_p = SeededSampler(1.0, 0.01, torch.Generator().manual_seed(0))  # top-p keeps only the best token
    for _ in range(5):
        out = tiny_p(None, scores)
        assert int(out.argmax()) == 1 and torch.isinf(out).sum() == 3


@pytest.mark.parametrize(("temperature", "nucleus"), [(1.0, [0.5, 0.3]), (2.0, None)])
def test_sampler_draws_from_the_tempered_nucleus(temperature, nucleus):
    """Independent computation: p ∝ probs^(1/T), the smallest most-likely set reaching top_p = 0.75, renormalized."""
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    tempered = probs ** (1 / temperature) / (probs ** (1 / temperature)).sum()
    keep = int((tempered.cumsum(0) < 0.75).sum()) + 1  # sorted already: 2 tokens at T 1, 3 at T 2
    expected = torch.zeros(4, dtype=torch.float64)
    expected[:keep] = tempered[:keep] / tempered[:keep].sum()
    if nucleus is not None:
        assert torch.allclose(expected[:2], torch.tensor(nucleus, dtype=torch.float64) / 0.8)
    sampler = SeededSampler(temperature, 0.75, torch.Generator().manual_seed(1))
    scores = probs.log().float().unsqueeze(0)
    draws = torch.tensor([int(sampler(None, scores).argmax()) for _ in range(6000)])
    share = torch.bincount(draws, minlength=4).double() / len(draws)
    assert torch.all(share[keep:] == 0) and torch.allclose(share, expected, atol=0.025)


def test_draw_from_follows_the_distribution_and_never_draws_a_zero():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0, 2.0]])  # rows need not sum to 1
    generator = torch.Generator().manual_seed(3)
    draws = torch.cat([draw_from(probs, generator) for _ in range(20_000)], dim=1)  # [2, 20000]
    counts = torch.stack([torch.bincount(row, minlength=5) for row in draws]).double()
    assert counts[0, 1] == 0 and counts[0, 4] == 0 and torch.equal(counts[1], torch.tensor([0, 0, 0, 0, 20_000.0]))
    expected = probs[0].double() * 20_000
    kept = expected > 0  # Pearson's chi-square over the 3 possible tokens, 2 degrees of freedom: p < 0.001 above 13.8
    assert float(((counts[0, kept] - expected[kept]) ** 2 / expected[kept]).sum()) < 13.8


def test_stop_event_ends_generation_early(tiny_teacher, pool):
    model, tokenizer = pool.get(str(tiny_teacher))
    stop = threading.Event()
    stream = stream_generate(model, tokenizer, "the king", SamplingSettings(max_new_tokens=400), stop_event=stop)
    next(stream)
    stop.set()
    text, stats = list(stream)[-1]
    assert stats.stopped and stats.tokens < 400


def test_chat_template_is_used_when_present(tiny_teacher, pool):
    _, tokenizer = pool.get(str(tiny_teacher))
    # no template: the same plain turns that training rows use, so chat prompts the student as it was trained
    assert format_prompt(tokenizer, "hello", [{"role": "user", "content": "a"}]) == "User: a\nUser: hello\nAssistant:"
    prompt, answer = exchange_text(tokenizer, "hello", "hi there")
    assert prompt == format_prompt(tokenizer, "hello") and prompt + answer == "User: hello\nAssistant: hi there"
    tokenizer = type(tokenizer).from_pretrained(tiny_teacher)
    tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    text = format_prompt(tokenizer, "hello", [{"role": "assistant", "content": "hi"}])
    assert text == "<assistant>hi<user>hello<assistant>"


def test_settings_validation():
    with pytest.raises(UserError, match="top_p"):
        SamplingSettings(top_p=0)
    with pytest.raises(UserError, match="max_new_tokens"):
        SamplingSettings(max_new_tokens=0)
    with pytest.raises(UserError, match="temperature"):
        SamplingSettings(temperature=-1)


def test_compare_stream_interleaves_columns_and_isolates_errors(tiny_teacher, tiny_student, pool):
    specs = [str(tiny_teacher), str(tiny_student), "/no/such/model"]
    updates = []
    for columns in compare_stream("the king", specs, SamplingSettings(max_new_tokens=20), pool=pool):
        updates.append([(c.text, c.done) for c in columns])
    last = updates[-1]
    assert all(done for _, done in last)
    assert last[0][0] and last[1][0] and last[2][0] == ""
    grew = [len({u[i][0] for u in updates}) for i in range(2)]
    assert min(grew) >= 3  # every working column produced several distinct partial texts
    # interleaved: the first column's text changes after the second column has started
    first_second = next(k for k, u in enumerate(updates) if u[1][0])
    assert any(updates[k][0][0] != updates[k - 1][0][0] for k in range(first_second + 1, len(updates)))


def test_compare_stream_reports_errors(tiny_teacher, pool):
    columns = list(compare_stream("the", [str(tiny_teacher), "/no/such/model"], SamplingSettings(max_new_tokens=3),
                                  pool=pool))[-1]
    assert columns[0].error is None and columns[1].error and "no model folder" in columns[1].error


def test_pool_resolves_runs_and_checkpoints(tmp_path, tiny_student):
    import shutil

    from finished_run import save_student_checkpoint

    from workbench.config import DistillConfig
    from workbench.models.loading import load_model

    run = tmp_path / "run-a"
    run.mkdir()
    cfg = DistillConfig.from_dict({"models": {"teacher": str(tiny_student), "student": str(tiny_student)}})
    cfg.save(run / "config.yaml")
    (run / "status.json").write_text('{"state": "running"}')
    with pytest.raises(UserError, match="no student yet"):
        resolve_spec(str(run))
    trained = load_model(str(tiny_student))
    with torch.no_grad():
        trained.lm_head.weight.add_(0.5)  # tied: the embedding moves too
    ckpt = save_student_checkpoint(run, 5, trained, lora=False)
    for spec in (run, ckpt):
        resolved = resolve_spec(str(spec))
        assert resolved.load_spec == str(tiny_student) and resolved.checkpoint_state == str(ckpt / "state.pt")
    pool = ModelPool(max_models=1, device="cpu")
    from_checkpoint, _ = pool.get(str(ckpt))
    assert torch.equal(from_checkpoint.lm_head.weight, trained.lm_head.weight)
    shutil.copytree(tiny_student, run / "student")
    assert resolve_spec(str(run)).load_spec == str((run / "student").resolve())
    first = pool.get(str(run))
    assert pool.get(str(run)) is first and len(pool) == 1  # cached; the LRU evicted the checkpoint's model
    assert not torch.equal(first[0].lm_head.weight, trained.lm_head.weight)
    assert Path(resolve_spec("builtin:x?prune=even&layers=2").load_spec) == Path("builtin:x?prune=even&layers=2")


@pytest.mark.slow
def test_default_pair_streams_side_by_side_with_chat_template():
    from workbench.analysis.attention import DEFAULT_TEXT, compare_attention
    from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT

    pool = ModelPool(max_models=4, device="cpu")
    _, tokenizer = pool.get(BUILTIN_TEACHER)
    assert "<|im_start|>assistant" in format_prompt(tokenizer, "hi")  # SmolLM2's chat template is applied
    settings = SamplingSettings(temperature=0.0, max_new_tokens=12)
    columns = list(compare_stream("What is the capital of France?", [BUILTIN_TEACHER, DEFAULT_STUDENT], settings,
                                  pool=pool))[-1]
    assert all(c.error is None and c.stats.tokens > 0 for c in columns)
    assert "Paris" in columns[0].text
    teacher, t_tok = pool.get(BUILTIN_TEACHER, attn_implementation="eager")
    student, s_tok = pool.get(DEFAULT_STUDENT, attn_implementation="eager")
    comparison = compare_attention(teacher, t_tok, student, s_tok, DEFAULT_TEXT, strategy="custom",
                                   custom_pairs=["0:0", f"{student.config.num_hidden_layers - 1}:29"])
    # the pruned student keeps the teacher's first layer unchanged, so layer 0's maps are identical
    assert float(comparison.js[0].max()) < 1e-5 and float(comparison.js[1].mean()) > 1e-3
