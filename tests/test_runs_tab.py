"""The Runs tab's comparison: student specs told apart, metrics named with units, a warning when runs were measured
on different rows, and a config diff without the settings of a feature every compared run has off."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.analysis.plots import METRICS, overlay_figure
from workbench.app.i18n import translator
from workbench.app.tab_runs import (
    TABLE_COLUMNS,
    diff_table,
    diff_view,
    measured_note,
    metric_choices,
    runs_table,
    short_spec,
)
from workbench.config import DistillConfig
from workbench.measured import EVAL_ROWS, measured

PRUNED = "builtin:smollm2-135m-instruct?prune=keep&layers=0-2,6-11,18-24,27-29"
OTHER = "builtin:smollm2-135m-instruct?prune=keep&layers=0-3,8-11,18-24,27-29"


def _run(runs: Path, name: str, *, student: str = PRUNED, seq_len: int = 64, lora_targets: str = "",
         lora: bool = False) -> Path:
    cfg = DistillConfig()
    cfg.models.student, cfg.data.seq_len = student, seq_len
    cfg.lora.enabled, cfg.lora.target_modules = lora, [m for m in lora_targets.split(",") if m]
    folder = runs / name
    folder.mkdir(parents=True)
    cfg.save(folder / "config.yaml")
    (folder / "status.json").write_text(json.dumps({"state": "finished", "step": 4, "total_steps": 4}))
    line = measured(EVAL_ROWS, rows=8, tokens=seq_len, source=cfg.data.dataset)
    rows = [{"kind": "train", "step": 4, "kd": 1.0, "tokens_per_s": 10.0},
            {"kind": "eval", "step": 4, "eval_loss": 3.0, "eval_ppl": 20.0, "measured_on": line}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_students_that_differ_after_the_question_mark_look_different():
    assert short_spec(PRUNED) != short_spec(OTHER)
    assert short_spec(PRUNED).replace("\u200b", "") == PRUNED.removeprefix("builtin:")
    assert short_spec("/very/long/folder/" + "x" * 60).endswith("…")


def test_diff_leaves_out_lora_settings_when_lora_is_off_in_every_run(tmp_path):
    _run(tmp_path, "a", lora_targets="q_proj")
    _run(tmp_path, "b", lora_targets="q_proj,v_proj", seq_len=256)
    fields = [row[0] for row in diff_table(tmp_path, ["a", "b"])]
    assert "data.seq_len" in fields and "lora.target_modules" not in fields
    _run(tmp_path, "c", lora_targets="q_proj,v_proj", lora=True)
    fields = [row[0] for row in diff_table(tmp_path, ["a", "c"])]
    assert "lora.target_modules" in fields and "lora.enabled" in fields


def test_runs_measured_on_different_rows_get_a_note(tmp_path):
    rows = {name: [json.loads(line) for line in (_run(tmp_path, name, seq_len=seq) / "metrics.jsonl").open()]
            for name, seq in (("short", 64), ("long", 256))}
    note = measured_note(rows, "eval_ppl", "en")
    assert "not directly comparable" in note and "× 64 tokens" in note and "× 256 tokens" in note
    assert measured_note(rows, "kd", "en") == ""  # a training term: no held-out rows
    assert measured_note({"short": rows["short"], "again": rows["short"]}, "eval_ppl", "en") == ""
    korean = measured_note(rows, "eval_loss", "ko")
    assert "held-out" in korean and "비교할 수 없습니다" in korean and "not directly" not in korean


def test_metrics_are_named_with_units_in_both_languages(tmp_path):
    english = dict((key, label) for label, key in metric_choices("en"))
    assert set(english) == set(METRICS) and english["eval_bpb"] == "bits per byte (bits/byte)"
    assert english["kd"] == "KD term (nats/token × T²)"
    assert english["lr"] == "learning rate" and english["total"] == "total loss (weighted terms)"  # no unit said twice
    assert english["tokens_per_s"] == "training tokens/s"
    korean = dict((key, label) for label, key in metric_choices("ko"))
    assert not [label for label in korean.values() if any(w in label for w in ("term", "share", "tokens/s", "loss"))]
    run = _run(tmp_path, "r")
    rows = {"r": [json.loads(line) for line in (run / "metrics.jsonl").open()]}
    figure = overlay_figure(rows, metric="eval_loss", text=translator("en"))
    assert figure.layout.yaxis.title.text == "nats/token" and "eval cross-entropy" in figure.layout.title.text
    assert runs_table(tmp_path)[0][TABLE_COLUMNS.index("student")].count("prune=keep") == 2  # cell and its hover title


def test_the_diff_says_so_when_two_runs_differ_only_in_name(tmp_path):
    """Two quick runs compared in the browser walk: the diff said "(select two or more runs)" with two selected."""
    _run(tmp_path, "a")
    _run(tmp_path, "b")
    assert diff_view(tmp_path, ["a", "b"], "en") == ([["(no config field differs, besides the run's name)"]], ["field"])
    assert diff_view(tmp_path, ["a"], "en")[0] == [["(select two or more runs)"]]
    assert diff_view(tmp_path, ["a", "b"], "ko")[0] == [["(run 이름 말고는 다른 설정 항목이 없습니다)"]]
    _run(tmp_path, "c", seq_len=256)
    rows, headers = diff_view(tmp_path, ["a", "c"], "en")
    assert headers == ["field", "a", "c"] and ["data.seq_len", "64", "256"] in rows


def test_the_config_diff_keeps_inside_its_box():
    """Two runs' model specs (no spaces to break at) widened the diff past the page; the columns now share its
    width: the field names a fifth, each run an equal part of the rest (checked in Chromium: no sideways scroll)."""
    from workbench.app.tab_runs import diff_widths

    widths = diff_widths(3)
    assert widths[0] == "20%" and widths[1] == widths[2] and sum(float(w.rstrip("%")) for w in widths) == 100
    assert diff_widths(1) == ["100%"]
