"""Turn bench results into a plain-text table (terminal, README) and a JSON file.

Every comparison returns a dict with a `targets` list of `{"target", "value", "goal", "met", "missed_by", "why"}`;
the table shows the headline numbers of each comparison and then every target with its verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _throughput_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for label, variant in data.get("variants", {}).items():
        if "error" in variant:
            rows.append((f"(a) {label}", "error", variant["error"][:80]))
            continue
        rows.append((f"(a) {label}", "tokens/s | peak MiB",
                     f"{_fmt(variant.get('tokens_per_s'))} | {_fmt(variant.get('peak_mem_mb'))}"))
    rows += [(f"(a) {label}", "share of the matmul peak", _fmt(share))
             for label, share in data.get("roofline", {}).items()]
    return rows


def _cache_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f"(b) {label}", "tokens/s", _fmt(v.get("tokens_per_s")))
            for label, v in data.get("variants", {}).items()]


def _divergence_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for source in ("accounting", "real"):
        block = data.get(source, {})
        for variant in ("unchunked", "chunked"):
            if isinstance(block.get(variant), dict) and "transient_mb" in block[variant]:
                rows.append((f"(c) {variant} ({source})", "transient | peak MiB",
                             f"{_fmt(block[variant]['transient_mb'])} | {_fmt(block[variant]['peak_mb'])}"))
    return rows


def _effectiveness_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    ppl = data.get("perplexity", {})
    return [(f"(d) {name}", "val ppl", _fmt(ppl.get(name)))
            for name in ("teacher", "pruned_student", "healed_student", "ce_student", "ce_healed_student",
                         "kd_unhealed_student", "kd_student") if name in ppl]


def _inference_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for key in ("batch_1", "batch_8"):
        block = data.get(key)
        if not block:
            continue
        for name in ("teacher", "student"):
            rows.append((f"(e) {name} {key.replace('_', ' ')}", "decode tok/s | TTFT s",
                         f"{_fmt(block[name]['decode_tokens_per_s'])} | {_fmt(block[name]['ttft_s'])}"))
        rows.append((f"(e) speedup {key.replace('_', ' ')}", "measured / predicted",
                     f"{_fmt(block.get('speedup'))} / {_fmt(data.get('predicted_speedup'))}"))
    return rows


def _app_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [("(f) Start -> first metric", "seconds", _fmt(data.get("seconds_to_first_metric")))]


def _lever_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    speedups = data.get("speedup_vs_plain_step", {})
    rows = [(f"(3) {label}", "s | x plain step" if label in speedups else "s",
             f"{_fmt(seconds)} | {_fmt(speedups[label])}" if label in speedups else _fmt(seconds))
            for label, seconds in data.get("seconds", {}).items()]
    packing = data.get("packing", {})
    if packing:
        rows.append(("(3) padding share if unpacked", "share", _fmt(packing.get("padding_share_unpacked"))))
    return rows


def _load_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "status_p95_s" not in data:
        return []
    return [
        (f"(8) /run_status, {data.get('clients')} clients", "p50 | p95 | max s",
         f"{_fmt(data.get('status_p50_s'))} | {_fmt(data.get('status_p95_s'))} | {_fmt(data.get('status_max_s'))}"),
        ("(8) /run_status, one client", "p50 | p95 s",
         f"{_fmt(data.get('unloaded_status_p50_s'))} | {_fmt(data.get('unloaded_status_p95_s'))}"),
        ("(8) run losses, loaded vs unloaded", "largest difference", _fmt(data.get("metrics", {}).get("largest"))),
    ]


def _width_depth_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for size, runs in data.get("sizes", {}).items():
        for run in runs:
            for kind in ("width", "depth"):
                numbers = run[kind]
                rows.append((f"(i) {size}× {kind} ({numbers['spec'].partition('?')[2]}), seed {run['seed']}",
                             "reverse KL | bits per byte", f"{_fmt(numbers['gen_rkl'])} | {_fmt(numbers['val_bpb'])}"))
    return rows


def _deployment_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f"(j) {row['label']} ({row['runtime']})", "MB (share) | decode tok/s (×) | TTFT s | reverse KL",
             f"{_fmt(row.get('size_on_disk_mb'))} ({_fmt(row.get('size_share'))}) | {_fmt(row.get('gen_tokens_per_s'))} "
             f"({_fmt(row.get('speedup'))}) | {_fmt(row.get('ttft_s'))} | {_fmt(row.get('gen_rkl'))}")
            for row in data.get("rows", [])]


def _multitask_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, numbers in data.get("scores", {}).items():
        chat = numbers.get("chat", {})
        rows.append((f"(k) {name}" + (f", {numbers['steps']} steps" if numbers.get("steps") is not None else ""),
                     "kind acc | book EM | book F1 | chat reverse KL (empty)",
                     f"{_fmt(numbers.get('kind', {}).get('acc'))} | {_fmt(numbers.get('book', {}).get('em'))} | "
                     f"{_fmt(numbers.get('book', {}).get('f1'))} | {_fmt(chat.get('gen_rkl'))} ({_fmt(chat.get('gen_empty'))})"))
    return rows


ROWS = {
    "throughput": _throughput_rows,
    "cache": _cache_rows,
    "divergence_memory": _divergence_rows,
    "effectiveness": _effectiveness_rows,
    "inference": _inference_rows,
    "app_start": _app_rows,
    "levers": _lever_rows,
    "load": _load_rows,
    "width_depth": _width_depth_rows,
    "deployment": _deployment_rows,
    "multitask": _multitask_rows,
}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for name in ROWS:
        block = results.get("comparisons", {}).get(name)
        if isinstance(block, dict):
            found.extend(block.get("targets", []))
    return found


def format_table(results: dict[str, Any]) -> str:
    """Measurements, then targets, as aligned text columns."""
    rows: list[tuple[str, str, str]] = []
    for name, builder in ROWS.items():
        block = results.get("comparisons", {}).get(name)
        if isinstance(block, dict):
            rows.extend(builder(block) if "error" not in block else [(name, "error", block["error"][:80])])
    lines = _columns([("measurement", "unit", "value"), *rows])
    verdicts = [(t["target"], f"{_fmt(t.get('value'))} (goal {t.get('compare', '>=')} {_fmt(t['goal'])})",
                 "met" if t["met"] else f"MISSED by {_fmt(t.get('missed_by'))}")
                for t in targets(results)]
    if verdicts:
        lines += ["", *_columns([("target", "value", "verdict"), *verdicts])]
    return "\n".join(lines)


def _columns(rows: list[tuple[str, str, str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    return ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def format_markdown(results: dict[str, Any]) -> str:
    """The same table as Markdown, for docs/performance.md."""
    lines = ["| target | value | goal | verdict |", "|---|---|---|---|"]
    for t in targets(results):
        verdict = "met" if t["met"] else f"missed by {_fmt(t.get('missed_by'))}: {t.get('why', '')}"
        goal = f"{t.get('compare', '>=')} {_fmt(t['goal'])}"
        lines.append(f"| {t['target']} | {_fmt(t.get('value'))} | {goal} | {verdict} |")
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path
