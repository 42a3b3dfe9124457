"""`workbench bench`: each comparison's code path on the tiny pair (in this process), the isolation helper and
the table / JSON writer. The numbers are not the point here; that each path runs and reports what it claims is."""

from __future__ import annotations

import json

import pytest

from bench import make_settings, parse_only, run_bench
from bench.common import BenchSettings, isolated, steady_rate, target
from bench.report import format_markdown, format_table, write_json
from workbench.errors import UserError


@pytest.fixture()
def settings(tiny_teacher, tiny_student, tiny_text, tmp_path) -> BenchSettings:
    return make_settings(
        quick=True, teacher=str(tiny_teacher), student=str(tiny_student), dataset=str(tiny_text), seq_len=16,
        batch_size=2, steps=4, warmup_steps=1, precision="fp32", isolate=False, work_dir=str(tmp_path / "work"),
        effectiveness_steps=6, effectiveness_seq_len=16, divergence_shape=(2, 32, 168), divergence_chunk=16,
        generate_tokens=4,
    )


def test_parse_only_accepts_names_and_letters():
    assert parse_only("a,cache,3") == ["throughput", "cache", "levers"]
    assert parse_only(None)[0] == "throughput"
    assert parse_only("i") == ["width_depth"]
    assert parse_only("j") == ["deployment"]
    with pytest.raises(UserError, match="accepted"):
        parse_only("speed")
    with pytest.raises(UserError, match="precision"):
        make_settings(precision="fp16")


def test_throughput_runs_three_tools_on_the_same_batches(settings):
    from bench import throughput

    result = throughput.run(settings)
    variants = result["variants"]
    assert set(variants) == {"plain fp32", "trl fp32", "workbench fp32", "workbench fp32 +frozen emb"}
    for label, variant in variants.items():
        assert "error" not in variant, (label, variant.get("error"))
        assert _is_rate(variant["tokens_per_s"]) and len(variant["losses"]) == settings.steps
    # same initial student, batches, forward KL, optimizer and schedule: the curves agree step by step
    for pair in ("trl_vs_plain", "workbench_vs_plain"):
        assert result["loss_curves"][pair]["steps"] == settings.steps
        assert result["loss_curves"][pair]["max_rel_diff"] <= 1e-3, (pair, result["loss_curves"][pair])
    assert {t["target"][:3] for t in result["targets"]} == {"(a)"}
    assert "(a)" in format_table({"comparisons": {"throughput": result}})
    # the roofline: a share of the measured matmul peak for each variant, from FLOPs counted on the configs
    assert set(result["roofline"]) == set(variants) and all(0 < share for share in result["roofline"].values())
    assert result["flops"]["flops_per_token"] == (6 * result["flops"]["student_matmul_params"]
                                                  + 2 * result["flops"]["teacher_matmul_params"])
    assert "share of the matmul peak" in format_table({"comparisons": {"throughput": result}})


def test_cache_trains_from_the_cache_without_the_teacher(settings):
    from bench import cache

    result = cache.run(settings)
    assert result["cache"]["top_k"] == cache.TOP_K and result["cache"]["size_mb"] > 0
    live, cached = result["variants"]["live teacher"], result["variants"]["teacher cache"]
    assert "error" not in live and "error" not in cached, (live.get("error"), cached.get("error"))
    assert len(cached["losses"]) == settings.steps and _is_rate(result["speedup"])
    assert len(result["speedups"]) == 2 and result["settings_of_target"] in result["speedups"]
    # same first batch; merging the teacher's tail into one bucket can only lower the KL (data processing)
    assert 0.0 < cached["losses"][0] <= live["losses"][0] + 1e-6
    assert "(b)" in format_table({"comparisons": {"cache": result}})


def test_divergence_memory_chunked_needs_less(settings):
    from bench import divergence_memory

    result = divergence_memory.run(settings)
    accounting = result["accounting"]
    assert "error" not in accounting, accounting
    assert accounting["chunked"]["transient_mb"] < accounting["unchunked"]["transient_mb"]
    assert result["transient_ratio"] < 1.0
    assert result["real"]["unchunked"]["seconds"] >= 0


def test_effectiveness_trains_both_students_and_reports_the_gap(settings):
    from bench import effectiveness

    result = effectiveness.run(settings)
    ppl = result["perplexity"]
    assert set(ppl) >= {"teacher", "pruned_student", "ce_student", "kd_student"}
    assert all(ppl[name] > 1.0 for name in ("teacher", "pruned_student", "ce_student", "kd_student"))
    assert result["steps"] == settings.effectiveness_steps
    assert result["ce_run"]["loss"]["kd_weight"] == 0.0 and result["kd_run"]["loss"]["kd_weight"] > 0.0
    assert result["targets"][0]["target"].startswith("(d)")
    assert "(d)" in format_table({"comparisons": {"effectiveness": result}})


def test_effectiveness_heals_a_pruned_student_for_kd_only(settings, tiny_teacher, monkeypatch):
    import dataclasses

    from bench import effectiveness
    from workbench.config import load_preset

    preset = load_preset("default")
    healing = preset.model_copy(update={"train": preset.train.model_copy(update={"heal_init": True, "heal_sequences": 8})})
    monkeypatch.setattr(effectiveness, "load_preset", lambda name: healing)
    pruned = dataclasses.replace(settings, student=f"{tiny_teacher}?prune=keep&layers=0,3")
    result = effectiveness.run(pruned)
    assert result["heal_init"] is True
    assert result["kd_run"]["heal_init"] and not result["ce_run"]["heal_init"]
    assert not result["kd_unhealed_run"]["heal_init"] and result["kd_unhealed_run"]["loss"]["kd_weight"] > 0
    assert result["kd_run"]["heal"]["fits"][0]["student_layer"] == 0 and result["ce_run"]["heal"] is None
    assert result["ce_healed_run"]["heal_init"] and result["ce_healed_run"]["loss"]["kd_weight"] == 0.0
    ppl = result["perplexity"]
    assert set(ppl) >= {"healed_student", "kd_unhealed_student", "ce_healed_student"}
    assert ppl["healed_student"] != ppl["pruned_student"]
    assert "gap_closed_without_heal" in result and "gap_closed_vs_healed_ce" in result
    assert "(d) healed_student" in format_table({"comparisons": {"effectiveness": result}})


def _is_rate(value) -> bool:
    """A measured rate is a positive float, or None where the interval was too short to time: never zero."""
    return value is None or (isinstance(value, float) and value > 0)


def test_inference_times_both_models(settings):
    from bench import inference

    result = inference.run(settings)
    assert result["predicted_speedup"] > 1.0  # from the FLOPs: the tiny student is narrower and shallower
    for batch in ("batch_1", "batch_8"):
        for name in ("teacher", "student"):
            timed = result[batch][name]
            assert timed["calls"] >= 1 and timed["generate_s"] > 0  # seconds per call, timed over >= 0.05 s
            assert _is_rate(timed["decode_tokens_per_s"]) and _is_rate(timed["tokens_per_s"])
            assert timed["ttft_s"] is None or timed["ttft_s"] > 0
            if timed["decode_tokens_per_s"] is None or timed["ttft_s"] is None:
                assert timed["note"] == "too fast to time"
        assert _is_rate(result[batch]["speedup"]) and _is_rate(result[batch]["ttft_speedup"])
    assert "(e)" in format_table({"comparisons": {"inference": result}})


def test_inference_reports_too_fast_rather_than_dividing_by_nothing(tiny_teacher, tiny_text, monkeypatch):
    """A clock that never advances (an interval below its resolution): no rate, no ratio, the note instead
    (it used to report billions of tokens/s and a speed-up of 0.0)."""
    import time

    import torch

    from bench import inference
    from workbench.models.loading import load_model

    model = load_model(str(tiny_teacher), dtype=torch.float32, device="cpu")
    monkeypatch.setattr(time, "perf_counter", lambda: 1000.0)
    monkeypatch.setattr(inference, "MAX_CALLS", 3)
    timed = inference._time_generation(model, torch.tensor([[3, 4, 5, 6]]), 3, "cpu")
    assert timed["calls"] == 3 and timed["generate_s"] is None
    assert timed["decode_tokens_per_s"] is None and timed["tokens_per_s"] is None and timed["ttft_s"] is None
    assert timed["note"] == "too fast to time"


def test_levers_times_each_lever(settings):
    results = run_bench(settings, ["levers"], progress=lambda _line: None)
    assert "(3) teacher hooks on mapped layers" in format_table(results)  # the table reads the runner's block
    result = results["comparisons"]["levers"]
    seconds = result["seconds"]
    assert "teacher hooks on mapped layers" in seconds and "student step chunked KL + frozen emb/head" in seconds
    assert "student step chunked KL, autograd" in seconds
    assert all(v is None or v > 0 for v in seconds.values())  # seconds per call; None: too fast to time
    assert 0.0 <= result["packing"]["padding_share_unpacked"] < 1.0


def test_isolated_runs_in_a_child_and_reports_errors(settings):
    settings.isolate = True
    result = isolated(settings, "bench.common", "bf16_matmul_probe", size=64, repeats=2)
    assert _is_rate(result["fp32_gflops"]) and result["peak_rss_mb"] > 0
    failed = isolated(settings, "bench.common", "no_such_function")
    assert failed["error"].startswith("AttributeError")


def test_run_bench_table_and_json(settings, tmp_path):
    results = run_bench(settings, ["divergence_memory"], progress=lambda _line: None)
    results["comparisons"]["broken"] = {"error": "RuntimeError: boom", "targets": []}
    table = format_table(results)
    assert "(c) chunked (accounting)" in table and "(c) chunked transient memory / unchunked" in table
    markdown = format_markdown(results)
    assert markdown.startswith("| target |") and "(c)" in markdown
    path = write_json(results, tmp_path / "out" / "bench.json")
    loaded = json.loads(path.read_text())
    assert loaded["machine"]["cores"] >= 1 and loaded["comparisons"]["divergence_memory"]["shape"] == [2, 32, 168]


def test_targets_and_rates():
    assert target("x", 2.0, 1.5)["met"] and not target("x", 1.0, 1.5)["met"]
    missed = target("y", 0.5, 0.25, at_most=True, why="because")
    assert missed["missed_by"] == 1.0 and missed["why"] == "because"
    assert target("z", None, 1.0)["met"] is False
    assert steady_rate([0.0, 1.0, 2.0, 4.0], 100, skip=1) == pytest.approx(200 / 3, abs=0.01)


def test_bench_cli_writes_json(settings, tmp_path, capsys):
    from workbench.cli import main

    out = tmp_path / "cli.json"
    code = main(["bench", "--only", "c", "--teacher", settings.teacher, "--student", settings.student,
                 "--out", str(out), "--work-dir", str(tmp_path / "w"), "--no-isolate", "--quick", "--dataset", settings.dataset])
    assert code == 0 and "wrote" in capsys.readouterr().out
    assert json.loads(out.read_text())["comparisons"]["divergence_memory"]["transient_ratio"] is not None


def test_bench_cli_passes_minutes_and_run_to_the_comparisons_that_read_them():
    import argparse

    from workbench.commands.bench import _extra

    assert _extra(argparse.Namespace(run=None, minutes=None)) is None
    assert _extra(argparse.Namespace(run="runs/x", minutes=2.5)) == {"run": "runs/x", "minutes": 2.5}


def test_onpolicy_throughput_runs_trl_and_workbench(settings, tiny_pairs):
    from bench import onpolicy_throughput

    settings.dataset = str(tiny_pairs)
    result = onpolicy_throughput.run(settings)
    for label in ("trl", "workbench"):
        variant = result["variants"][label]
        assert "error" not in variant, (label, variant.get("error"))
        assert _is_rate(variant["steps_per_s"]) and len(variant["step_seconds"]) == settings.steps
        assert 1 <= variant["completion_len"] <= onpolicy_throughput.MAX_NEW_TOKENS
        assert 0 < result["roofline"][label] < 1  # a share of the measured matmul peak
    assert _is_rate(result["speedup"]) and {t["target"][:3] for t in result["targets"]} == {"(g)"}


def test_width_depth_table_names_both_students_of_each_size():
    from bench.report import format_table

    run = {"seed": 0, "width": {"spec": "t?prune=importance&layers=24&mlp=760", "gen_rkl": 0.7, "val_bpb": 1.1},
           "depth": {"spec": "t?prune=importance&layers=15", "gen_rkl": 0.9, "val_bpb": 1.3}}
    table = format_table({"comparisons": {"width_depth": {"sizes": {"0.50": [run]}, "targets": []}}})
    assert "(i) 0.50× width (prune=importance&layers=24&mlp=760), seed 0" in table
    assert "(i) 0.50× depth (prune=importance&layers=15), seed 0" in table and "0.9 | 1.3" in table


def _deployment_rows() -> list[dict]:
    def row(label, fmt, size, speed, rkl):
        return {"label": label, "format": fmt, "runtime": "r", "size_on_disk_mb": size, "gen_tokens_per_s": speed,
                "ttft_s": 0.1, "gen_rkl": rkl}

    return [row("teacher float32", "safetensors float32", 100.0, 10.0, 0.0), row("teacher bf16", "bf16", 50.0, 8.0, 0.01),
            row("distilled student", "safetensors float32", 80.0, 12.0, 0.5),
            row("student gguf-f16", "gguf-f16", 40.0, 20.0, 0.5), row("student gguf-q8_0", "gguf-q8_0", 22.0, 31.0, 0.55),
            row("student gguf-q4_0", "gguf-q4_0", 15.0, 40.0, 0.9), row("student onnx-int8", "onnx-int8", 25.0, None, 0.52)]


def test_deployment_ratios_and_the_best_quantized_artefact():
    from bench.deployment import add_ratios, markdown_table

    result = add_ratios({"rows": _deployment_rows(), "threads": 1})
    rows = {r["label"]: r for r in result["rows"]}
    assert rows["student gguf-q8_0"]["size_share"] == 0.22  # of the float32 teacher's file
    assert rows["student gguf-q8_0"]["speedup"] == 3.1  # over the faster PyTorch teacher (float32 here)
    assert rows["student gguf-q4_0"]["rkl_over_student"] == pytest.approx(0.4)
    assert rows["student onnx-int8"]["speedup"] is None  # no rate, no ratio
    # q8_0 meets all three targets; q4_0 misses reverse KL, int8 has no speed
    assert result["best_artefact"] == "student gguf-q8_0" and result["fastest_pytorch_teacher"] == "teacher float32"
    assert [t["met"] for t in result["targets"]] == [True, True, True]
    assert all(t["target"].startswith("(j) student gguf-q8_0") for t in result["targets"])
    table = markdown_table(result)
    assert len(table.splitlines()) == 2 + 7 and "| student gguf-q8_0 | gguf-q8_0 | r | 22.0 MB | 22% | 31.0 | 3.10× |" in table
    assert "| student onnx-int8 |" in table and "| – |" in table
    assert "(j) teacher bf16 (r)" in format_table({"comparisons": {"deployment": result}})


def test_speed_rounds_time_every_model_in_turn_and_take_the_median(monkeypatch):
    from bench import deployment
    from workbench.analysis import decode_speed

    order, speeds = [], {"a": iter([5.0, 1.0, 3.0]), "b": iter([2.0, 9.0, 4.0])}

    def fake_measure(model, tokenizer, prompt, new_tokens):
        order.append(model)
        return {"gen_tokens_per_s": next(speeds[model])}

    monkeypatch.setattr(decode_speed, "measure_generation", fake_measure)
    timed = deployment.speed_rounds({"A": lambda: ("a", None), "B": lambda: ("b", None)}, "hi", 4, rounds=3)
    assert order == ["a", "b"] * 3  # in turn, round after round
    assert timed["A"] == {"median": 3.0, "min": 1.0, "max": 5.0, "rounds": [5.0, 1.0, 3.0]}
    assert timed["B"]["median"] == 4.0


def test_deployment_exports_every_format_and_measures_it_beside_the_teacher(tmp_path):
    """(j) on a tiny Llama run: every GGUF and ONNX format exported, every row measured, sizes in MB of the files."""
    import shutil
    from pathlib import Path

    from finished_run import make_finished_run
    from tiny import tiny_bpe_model_dir, tiny_text_file

    from bench import deployment

    text = tiny_text_file(tmp_path)
    teacher = tiny_bpe_model_dir(tmp_path, text, "teacher", 300, hidden=64, seed=1)
    student = tiny_bpe_model_dir(tmp_path, text, "student", 300, hidden=32, seed=2)
    run = make_finished_run(tmp_path / "runs", teacher, student, text, checkpoint_steps=())
    shutil.rmtree(run / "student")
    shutil.copytree(student, run / "student")
    settings = make_settings(isolate=False, work_dir=str(tmp_path / "work"), extra={"run": str(run)})

    result = run_bench(settings, ["deployment"], progress=lambda _line: None)["comparisons"]["deployment"]
    assert "error" not in result, result.get("error")
    labels = [r["label"] for r in result["rows"]]
    assert labels == ["teacher float32", "teacher bf16", "distilled student",
                      *[f"student {fmt}" for fmt in deployment.FORMATS]]
    rows = dict(zip(labels, result["rows"], strict=True))
    for fmt, exported in result["exports"].items():
        file_mb = (Path(exported["folder"]) / exported["file"]).stat().st_size / 2**20
        row = rows[f"student {fmt}"]
        assert row["size_on_disk_mb"] == pytest.approx(file_mb, abs=1e-3) and row["format"] == fmt
        assert row["size_share"] == pytest.approx(file_mb / rows["teacher float32"]["size_on_disk_mb"], rel=1e-2)
        assert row["rkl_over_student"] == pytest.approx(row["gen_rkl"] - rows["distilled student"]["gen_rkl"], abs=1e-3)
        assert row["relative_logit_error"] is not None and not exported["reused"]
    assert rows["student onnx-int8"]["runtime"] == "onnxruntime"
    assert rows["teacher bf16"]["size_on_disk_mb"] == pytest.approx(rows["teacher float32"]["size_on_disk_mb"] / 2,
                                                                     rel=0.05)
    # a sampled estimate (log q - log p on its own answers): near 0, either sign
    assert abs(rows["teacher bf16"]["gen_rkl"]) < 0.1 and rows["teacher float32"]["gen_rkl"] == 0
    assert [t["target"][:4] for t in result["targets"]] == ["(j) "] * 3
    for row in result["rows"]:  # every model timed in the rounds: the median between its slowest and fastest round
        low, high = row["tokens_per_s_range"]
        assert 0 < low <= row["gen_tokens_per_s"] <= high and row["single_call_tokens_per_s"] > 0
    assert f"median of {deployment.SPEED_ROUNDS} rounds" in result["measured_on"]["speed"]
    assert result["best_artefact"] in [f"student {fmt}" for fmt in deployment.QUANTIZED]
    again = deployment.export_all(str(run), tmp_path / "work" / "deployment" / "exports")
    assert all(e["reused"] and e["export_seconds"] is None for e in again.values())


def test_multitask_trains_four_students_and_scores_each_on_every_task(settings, tmp_path):
    from bench import multitask

    assert parse_only("k") == ["multitask"]
    result = multitask.run(settings)
    assert "error" not in result, result.get("error")
    scores = result["scores"]
    assert set(scores) == {"teacher", *multitask.VARIANTS}
    for name in ("teacher", *multitask.VARIANTS):  # every model on every task's held-out items
        assert 0.0 <= scores[name]["kind"]["acc"] <= 1.0 and 0.0 <= scores[name]["book"]["f1"] <= 1.0
    for name in multitask.VARIANTS:  # and every student on the held-out chat prompts, by its own answers
        assert scores[name]["steps"] == 2 and scores[name]["chat"]["gen_rkl"] == scores[name]["chat"]["gen_rkl"]
    assert result["held_out_items"]["chat"] == multitask.QUICK["data"]["holdout_prompts"]
    assert [t["target"][:3] for t in result["targets"]] == ["(k)"] * 3
    from bench.report import format_table

    table = format_table({"comparisons": {"multitask": result}})  # the printed table shows every model and target
    assert all(f"(k) {name}" in table for name in ("teacher", *multitask.VARIANTS))
    assert table.count("(k) mix − ") == 3 and "(k) mix − chat-only student" in table
    tasks_ce = multitask.variant_config(settings, "tasks CE", 2, None, tmp_path)  # fine-tuning: no teacher anywhere
    assert [(t.name, t.ce_weight, t.kd_weight) for t in tasks_ce.data.tasks] == [("kind", 1.0, 0.0), ("book", 1.0, 0.0)]
    assert not tasks_ce.train.heal_init
    from workbench.config import load_preset

    default = multitask.preset_dict(make_settings(quick=False))  # no --student: the preset's own student
    assert default["models"]["student"] == load_preset("multitask").models.student
    assert multitask.preset_dict(settings)["models"]["student"] == settings.student  # --student wins
