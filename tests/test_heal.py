"""Closed-form gap healing (workbench.models.heal): the fit equals an independent float64 least-squares solution, the fold
reproduces the predicted layer output in every tiny architecture, each fit lowers its error, and the trainer runs
it (live teacher, teacher cache, resume) and refuses students that are not pruned teachers."""

from __future__ import annotations

import threading

import pytest
import torch
from engine_helpers import tiny_config
from tiny import ARCHITECTURES, tiny_model_dir

from workbench.engine.teacher_cache import cache_teacher
from workbench.engine.trainer import train
from workbench.errors import UserError
from workbench.models.derive import decoder_layers, prune_layers
from workbench.models.heal import fit_plan, gaps, heal_student, pruned_student_spec
from workbench.models.loading import load_model
from workbench.runs.folder import RunFolder, read_metrics
from workbench.runs.sinks import ListSink


def test_gaps_name_the_teacher_layer_across_each_gap():
    kept = [0, 1, 2, 6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23, 24, 27, 28, 29]
    assert gaps(kept, 30) == [(2, 5), (8, 17), (15, 26)]
    assert gaps([0, 3], 6) == [(0, 2), (1, 5)]  # a trailing gap aims at the teacher's last layer
    assert gaps([0, 1, 2], 3) == [] and gaps([2, 3], 4) == []  # a leading gap has no layer before it


def test_fit_plan_adds_the_layer_after_each_gap_but_never_the_last_layer_alone():
    kept = [0, 1, 2, 6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23, 24, 27, 28, 29]
    assert fit_plan(kept, 30) == [(2, 5), (3, 6), (8, 17), (9, 18), (15, 26), (16, 27)]
    assert fit_plan([0, 1, 4, 5], 6) == [(1, 3), (2, 4)]
    assert fit_plan([0, 3, 4], 5) == [(0, 2), (1, 3)]  # layer 2 is the last: not refitted
    assert fit_plan([0, 2, 3], 6) == [(0, 1), (1, 2), (2, 5)]  # a trailing gap is
    assert fit_plan([0, 1, 2], 3) == []


def test_check_pair_accepts_only_a_pruned_teacher():
    assert pruned_student_spec("builtin:smollm2-135m-instruct?prune=keep&layers=0-9", "builtin:smollm2-135m-instruct").method \
        == "keep"
    for student, teacher in (("builtin:smollm2-135m-instruct", "builtin:smollm2-135m-instruct"),
                             ("/models/other?prune=even&layers=4", "builtin:smollm2-135m-instruct"),
                             ("/models/a?fresh&layers=2&hidden=32&heads=4", "/models/a")):
        with pytest.raises(UserError, match=r"train\.heal_init"):
            pruned_student_spec(student, teacher)


def _layer_outputs(model, ids: torch.Tensor) -> list[torch.Tensor]:
    """Every decoder layer's output (before any final norm), in float64."""
    outputs: list[torch.Tensor] = []
    handles = [layer.register_forward_hook(lambda m, a, out: outputs.append((out[0] if isinstance(out, tuple)
                                                                             else out).double()))
               for layer in decoder_layers(model)]
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def _mlp_output(model, index: int, ids: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = decoder_layers(model)[index].mlp.register_forward_hook(lambda m, a, out: seen.append(out.double()))
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()
    return seen[0]


def _pair(root, arch: str, keep: list[int]):
    teacher_dir = tiny_model_dir(root, arch, layers=6, hidden=32, seed=3)
    teacher = load_model(str(teacher_dir))
    student = prune_layers(load_model(str(teacher_dir)), keep)
    return teacher.eval(), student.eval()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_one_gap_matches_float64_least_squares(tiny_root, arch):
    teacher, student = _pair(tiny_root, arch, [0, 1, 4, 5])  # student layer 1 should now output teacher layer 3's
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(4, 100, (2, 24), generator=generator) for _ in range(6)]
    ids = torch.cat(batches)
    width, ridge = student.config.hidden_size, 1e-2
    m = _mlp_output(student, 1, ids).reshape(-1, width)
    rest = _layer_outputs(student, ids)[1].reshape(-1, width) - m
    target = _layer_outputs(teacher, ids)[3].reshape(-1, width)
    lam = ridge * float((m * m).sum()) / width
    eye = torch.eye(width, dtype=torch.float64)
    reference = torch.linalg.lstsq(torch.cat([m, lam**0.5 * eye]), torch.cat([target - rest, lam**0.5 * eye])).solution
    later_before = _layer_outputs(student, ids)[2]

    fits = heal_student(student, teacher, [0, 1, 4, 5], batches, ridge=ridge)

    assert [(f.student_layer, f.teacher_layer) for f in fits] == [(1, 3), (2, 4)]
    fit = fits[0]  # the later fit of layer 2 leaves layer 1's output as the first fit made it
    healed = _layer_outputs(student, ids)
    expected = m @ reference + rest
    assert torch.allclose(healed[1].reshape(-1, width), expected, atol=1e-4 * float(expected.abs().max())), arch
    mse_before = float(((m + rest - target) ** 2).mean())
    mse_after = float(((expected - target) ** 2).mean())
    assert fit.mse_before == pytest.approx(mse_before, rel=1e-4) and fit.mse_after == pytest.approx(mse_after, rel=1e-3)
    assert fit.mse_after < fit.mse_before
    assert not torch.allclose(healed[2], later_before)  # the next layer now reads the healed stream


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_fits_are_made_in_order_and_each_improves(tiny_root, arch):
    teacher, student = _pair(tiny_root, arch, [0, 2, 3])  # gaps after 0 (→ t1) and 2 (→ t5, trailing)
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(4, 100, (2, 24), generator=generator) for _ in range(6)]
    fits = heal_student(student, teacher, [0, 2, 3], batches)
    assert [(f.student_layer, f.teacher_layer) for f in fits] == [(0, 1), (1, 2), (2, 5)]
    ids = torch.cat(batches)
    healed, wanted = _layer_outputs(student, ids), _layer_outputs(teacher, ids)
    for fit in fits:  # each fit saw the earlier ones folded in, so all predictions hold together
        assert fit.mse_after < fit.mse_before
        actual = float(((healed[fit.student_layer] - wanted[fit.teacher_layer]) ** 2).mean())
        assert actual == pytest.approx(fit.mse_after, rel=1e-3)


def test_no_gap_changes_nothing(tiny_root):
    teacher, student = _pair(tiny_root, "llama", [0, 1, 2, 3, 4, 5])
    before = {k: v.clone() for k, v in student.state_dict().items()}
    assert heal_student(student, teacher, list(range(6)), [torch.randint(4, 100, (2, 8))]) == []
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def _heal_rows(run_dir):
    return [row for row in read_metrics(RunFolder(run_dir).metrics_path) if row["kind"] == "heal"]


def test_trainer_heals_with_live_teacher_and_with_a_cache(tiny_teacher, tiny_text, tmp_path):
    student = f"{tiny_teacher}?prune=keep&layers=0,3"
    cfg = tiny_config(tiny_teacher, student, tiny_text, train={"heal_init": True, "heal_sequences": 16})
    sink = ListSink()
    assert train(cfg, tmp_path / "live", sink)["state"] == "finished"
    (row,) = _heal_rows(tmp_path / "live")  # layer 1 is the student's last: only the gap is fitted
    assert (row["student_layer"], row["teacher_layer"]) == (0, 2) and row["mse_after"] < row["mse_before"]
    assert any(message.startswith("healed the pruned gaps with 1 layer fit(s)") for message in sink.messages)
    healing = [m for m in sink.messages if not m.startswith("stage: ")]  # stage lines come first
    assert healing[0].startswith("healing the pruned gaps on 16 training sequences")
    cache = cache_teacher(cfg, top_k=8, out_dir=tmp_path / "cache")
    cached = tiny_config(tiny_teacher, student, tiny_text,
                         train={"heal_init": True, "heal_sequences": 16, "teacher_cache": str(cache)})
    assert train(cached, tmp_path / "cached", ListSink())["state"] == "finished"
    assert _heal_rows(tmp_path / "cached")[0]["mse_after"] == pytest.approx(row["mse_after"], rel=1e-5)


def test_resumed_full_run_does_not_heal_again(tiny_teacher, tiny_text, tmp_path, monkeypatch):
    import workbench.models.heal

    calls = []
    original = workbench.models.heal.heal_student
    monkeypatch.setattr(workbench.models.heal, "heal_student", lambda *a, **k: calls.append(1) or original(*a, **k))
    cfg = tiny_config(tiny_teacher, f"{tiny_teacher}?prune=keep&layers=0,3", tiny_text,
                      train={"heal_init": True, "steps": 4, "save_every": 2})
    stop = threading.Event()

    class StopAtTwo(ListSink):
        def emit(self, row):
            super().emit(row)
            if row["kind"] == "train" and row["step"] == 2:
                stop.set()

    assert train(cfg, tmp_path / "run", StopAtTwo(), stop=stop)["state"] == "stopped"
    assert train(cfg, tmp_path / "run", ListSink(), resume=True)["state"] == "finished"
    assert len(calls) == 1 and len(_heal_rows(tmp_path / "run")) == 1


def test_trainer_refuses_a_student_that_is_not_a_pruned_teacher(tiny_teacher, tiny_student, tiny_text, tmp_path):
    cfg = tiny_config(tiny_teacher, tiny_student, tiny_text, train={"heal_init": True})
    with pytest.raises(UserError, match=r"train\.heal_init"):
        train(cfg, tmp_path / "run", ListSink())


@pytest.mark.slow
def test_healing_the_default_student_lowers_its_perplexity():
    from workbench.config import load_preset
    from workbench.data.splits import build_splits
    from workbench.models.derive import model_perplexity
    from workbench.models.heal import heal_for_config
    from workbench.models.loading import load_tokenizer

    cfg = load_preset("default")
    splits = build_splits(cfg.data, load_tokenizer(cfg.models.teacher))
    teacher, student = load_model(cfg.models.teacher), load_model(cfg.models.student)
    before = model_perplexity(student, splits.val[:8])
    fits = heal_for_config(cfg, student, teacher, splits.train[:16])
    after = model_perplexity(student, splits.val[:8])
    assert [(f.student_layer, f.teacher_layer) for f in fits] == [(2, 5), (3, 6), (8, 17), (9, 18), (15, 26),
                                                                   (16, 27)]
    assert all(f.mse_after < f.mse_before for f in fits)
    assert after < 0.7 * before, (before, after)  # measured: 111.8 -> 38.0 with 64 sequences, on 32


def test_healing_reports_its_progress_as_a_run_stage(tiny_teacher, tiny_text, tmp_path, monkeypatch):
    seen = []
    original = RunFolder.update_status

    def recording(self, **changes):
        if "stage" in changes or "stage_progress" in changes:
            seen.append((changes.get("stage"), changes.get("stage_progress")))
        return original(self, **changes)

    monkeypatch.setattr(RunFolder, "update_status", recording)
    student = f"{tiny_teacher}?prune=keep&layers=0,3"
    cfg = tiny_config(tiny_teacher, student, tiny_text, train={"heal_init": True, "heal_sequences": 16, "steps": 1})
    sink = ListSink()
    train(cfg, tmp_path / "run", sink)
    fits = sink.of_kind("heal")
    assert [stage for stage, _ in seen if stage] == ["loading data", "loading student", "loading teacher", "healing",
                                                     "first step", "final evaluation", "saving the student"]
    progress = [done for stage, done in seen if stage is None]
    assert progress == [f"{i}/{len(fits)}" for i in range(1, len(fits) + 1)] and len(fits) >= 1


def _down_input(model, index: int, ids: torch.Tensor) -> torch.Tensor:
    return _input_of(decoder_layers(model)[index].mlp.down_proj, model, ids)


def _input_of(module, model, ids: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = module.register_forward_pre_hook(lambda m, a: seen.append(a[0].double()))
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()
    return seen[0]


def _width_pair(root, arch: str, query: str):
    """A tiny 6-layer teacher, its width-pruned student `query`, the kept layers and hidden channels, and 6 batches."""
    from workbench.models.derive import parse_spec
    from workbench.models.loading import resolve_layers, resolve_width

    teacher_dir = root / arch if arch == "biased" else tiny_model_dir(root, arch, layers=6, hidden=32, seed=3)
    spec = parse_spec(f"{teacher_dir}?{query}")
    teacher, student = load_model(str(teacher_dir)).eval(), load_model(spec).eval()
    kept = resolve_layers(spec, base_layers=6)
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(4, 100, (2, 24), generator=generator) for _ in range(6)]
    return teacher, student, kept, resolve_width(spec, kept).hidden, batches


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_width_fit_solves_the_down_projection_in_float64(tiny_root, arch, tmp_path, monkeypatch):
    """A width-pruned student: every layer but the last gets its down projection solved against the teacher output
    restricted to the kept hidden channels, equal to an independent float64 ridge least squares."""
    monkeypatch.setenv("KD_WORKBENCH_HOME", str(tmp_path))
    teacher, student, kept, channels, batches = _width_pair(tiny_root, arch, "prune=keep&layers=0,1,4,5&mlp=40&hidden=28")
    ids, ridge = torch.cat(batches), 1e-2
    act = _down_input(student, 0, ids).reshape(-1, 40)
    old = decoder_layers(student)[0].mlp.down_proj.weight.detach().double().T  # (40, 28)
    rest = _layer_outputs(student, ids)[0].reshape(-1, 28) - act @ old
    target = _layer_outputs(teacher, ids)[0][..., channels].reshape(-1, 28)
    lam = ridge * float((act * act).sum()) / 40
    reference = torch.linalg.lstsq(torch.cat([act, lam**0.5 * torch.eye(40, dtype=torch.float64)]),
                                   torch.cat([target - rest, lam**0.5 * old])).solution

    fits = heal_student(student, teacher, kept, batches, ridge=ridge, width=True, channels=channels,
                        attention_ridge=None)

    assert [(f.student_layer, f.teacher_layer) for f in fits] == [(0, 0), (1, 3), (2, 4)]
    assert all(f.attention_mse is None for f in fits)
    solved = decoder_layers(student)[0].mlp.down_proj.weight.detach().double().T
    assert torch.allclose(solved, reference, atol=1e-4 * float(reference.abs().max())), arch
    assert all(f.mse_after < f.mse_before for f in fits)
    healed = _layer_outputs(student, ids)
    wanted = _layer_outputs(teacher, ids)
    for fit in fits:  # the predicted errors are the errors of the healed model
        actual = float(((healed[fit.student_layer] - wanted[fit.teacher_layer][..., channels]) ** 2).mean())
        assert actual == pytest.approx(fit.mse_after, rel=1e-3)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_width_fit_solves_the_attention_output_before_the_mlp(tiny_root, arch, tmp_path, monkeypatch):
    """With heads and channels cut, each refitted layer's attention output projection is solved first, toward the
    teacher's residual right after the attention of the same teacher layer (on the kept hidden channels), equal to an
    independent float64 ridge least squares; the MLP fit that follows still predicts the healed model's errors."""
    monkeypatch.setenv("KD_WORKBENCH_HOME", str(tmp_path))
    teacher, student, kept, channels, batches = _width_pair(tiny_root, arch, "prune=keep&layers=0,1,4,5&mlp=40&hidden=28&heads=2")
    ids, ridge = torch.cat(batches), 0.5
    first, teacher_first = decoder_layers(student)[0], decoder_layers(teacher)[0]
    inner = first.self_attn.o_proj.in_features
    context = _input_of(first.self_attn.o_proj, student, ids).reshape(-1, inner)
    old = first.self_attn.o_proj.weight.detach().double().T  # (inner, 28)
    rest = _input_of(first.post_attention_layernorm, student, ids).reshape(-1, 28) - context @ old
    target = _input_of(teacher_first.post_attention_layernorm, teacher, ids)[..., channels].reshape(-1, 28)
    lam = ridge * float((context * context).sum()) / inner
    reference = torch.linalg.lstsq(torch.cat([context, lam**0.5 * torch.eye(inner, dtype=torch.float64)]),
                                   torch.cat([target - rest, lam**0.5 * old])).solution

    fits = heal_student(student, teacher, kept, batches, width=True, channels=channels, attention_ridge=ridge)

    solved = first.self_attn.o_proj.weight.detach().double().T
    assert torch.allclose(solved, reference, atol=1e-4 * float(reference.abs().max())), arch
    assert not torch.allclose(solved, old, atol=1e-3)
    assert all(f.attention_mse[1] < f.attention_mse[0] and f.mse_after < f.mse_before for f in fits)
    healed_mid = _input_of(first.post_attention_layernorm, student, ids)
    assert float(((healed_mid.reshape(-1, 28) - target) ** 2).mean()) == pytest.approx(fits[0].attention_mse[1],
                                                                                        rel=1e-3)
    healed, wanted = _layer_outputs(student, ids), _layer_outputs(teacher, ids)
    for fit in fits:
        actual = float(((healed[fit.student_layer] - wanted[fit.teacher_layer][..., channels]) ** 2).mean())
        assert actual == pytest.approx(fit.mse_after, rel=1e-3)
    assert set(fits[0].to_dict()) >= {"attention_mse_before", "attention_mse_after"}


def test_width_fits_leave_the_projections_biases_with_the_rest(tmp_path, monkeypatch):
    """A Llama with biased attention and MLP output projections: the fits solve the weights only, so the errors they
    report are the healed model's."""
    import tiny
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("KD_WORKBENCH_HOME", str(tmp_path))
    tokenizer = tiny.tiny_tokenizer()
    config = tiny.tiny_config("llama", len(tokenizer), layers=6)
    config.attention_bias = config.mlp_bias = True
    torch.manual_seed(5)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for layer in decoder_layers(model):
            layer.self_attn.o_proj.bias.normal_(0, 0.5)
            layer.mlp.down_proj.bias.normal_(0, 0.5)
    model.save_pretrained(tmp_path / "biased")
    tokenizer.save_pretrained(tmp_path / "biased")
    teacher, student, kept, channels, batches = _width_pair(tmp_path, "biased", "prune=keep&layers=0,1,4,5&mlp=40&hidden=28")
    ids = torch.cat(batches)
    target = _input_of(decoder_layers(teacher)[0].post_attention_layernorm, teacher, ids)[..., channels]

    fits = heal_student(student, teacher, kept, batches, width=True, channels=channels)

    healed_mid = _input_of(decoder_layers(student)[0].post_attention_layernorm, student, ids)
    assert float(((healed_mid - target) ** 2).mean()) == pytest.approx(fits[0].attention_mse[1], rel=1e-2)
    healed, wanted = _layer_outputs(student, ids), _layer_outputs(teacher, ids)
    for fit in fits:
        actual = float(((healed[fit.student_layer] - wanted[fit.teacher_layer][..., channels]) ** 2).mean())
        assert actual == pytest.approx(fit.mse_after, rel=1e-2)


def test_trainer_heals_a_width_pruned_student(tiny_teacher, tiny_text, tmp_path):
    student = f"{tiny_teacher}?prune=importance&layers=3&mlp=64&heads=2"
    cfg = tiny_config(tiny_teacher, student, tiny_text, train={"heal_init": True, "heal_sequences": 16})
    assert train(cfg, tmp_path / "run", ListSink())["state"] == "finished"
    rows = _heal_rows(tmp_path / "run")
    assert [row["student_layer"] for row in rows] == [0, 1] and all(r["mse_after"] < r["mse_before"] for r in rows)
