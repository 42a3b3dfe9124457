"""Where training metrics go: the trainer emits plain dict rows to a sink and never knows who reads them.

    sink = MultiSink(JsonlSink(run.metrics_path), ProgressSink(total=cfg.train.steps))
    sink.emit({"kind": "train", "step": 3, "total": 2.1, ...})
    sink.close()

Sinks: JsonlSink (one JSON object per line, flushed per row), ProgressSink (a tqdm bar showing step, loss terms,
tokens/s and ETA), ListSink (rows in memory, for tests and notebooks), NullSink, MultiSink (fan-out).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Row = dict[str, Any]


class Sink:
    """Base sink: `emit(row)` receives each metrics row, `log(message)` a human line, `close()` ends it."""

    def emit(self, row: Row) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class NullSink(Sink):
    """Drops everything."""


class ListSink(Sink):
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.messages: list[str] = []

    def emit(self, row: Row) -> None:
        self.rows.append(dict(row))

    def log(self, message: str) -> None:
        self.messages.append(message)

    def of_kind(self, kind: str) -> list[Row]:
        return [row for row in self.rows if row.get("kind") == kind]


class JsonlSink(Sink):
    """Appends rows to a metrics.jsonl; each row is written whole and flushed so readers never wait long."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.handle = open(self.path, "a", encoding="utf-8")

    def emit(self, row: Row) -> None:
        self.handle.write(json.dumps(row, allow_nan=True) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class ProgressSink(Sink):
    """A tqdm progress bar over optimizer steps with the latest loss terms, tokens/s and ETA; log lines above it."""

    TERMS = ("total", "ce", "kd", "hidden", "attn")

    def __init__(self, total: int, initial: int = 0, log_file: str | Path | None = None, stream=None) -> None:
        from tqdm.auto import tqdm

        self.stream = stream or sys.stderr
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=self.stream)
        self.log_handle = open(log_file, "a", encoding="utf-8") if log_file else None

    def emit(self, row: Row) -> None:
        if row.get("kind") == "train":
            self.bar.update(max(0, int(row["step"]) - self.bar.n))
            shown = {k: f"{row[k]:.4g}" for k in self.TERMS if isinstance(row.get(k), (int, float))}
            shown["tok/s"] = f"{row.get('tokens_per_s', 0):.0f}"
            shown["eta"] = f"{row.get('eta', 0):.0f}s"
            self.bar.set_postfix(shown, refresh=True)
        elif row.get("kind") == "eval":
            self.log(
                f"eval step {row['step']}: loss {row['eval_loss']:.4f} ppl {row['eval_ppl']:.2f} "
                f"kl {row['eval_kl']:.4f} top1 {row['eval_top1']:.3f}"
            )

    def log(self, message: str) -> None:
        self.bar.write(message, file=self.stream)
        if self.log_handle:
            self.log_handle.write(message + "\n")
            self.log_handle.flush()

    def close(self) -> None:
        self.bar.close()
        if self.log_handle:
            self.log_handle.close()


class MultiSink(Sink):
    def __init__(self, *sinks: Sink) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def emit(self, row: Row) -> None:
        for sink in self.sinks:
            sink.emit(row)

    def log(self, message: str) -> None:
        for sink in self.sinks:
            sink.log(message)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
