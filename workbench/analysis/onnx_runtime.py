"""Run an exported ONNX decoder step in ONNX Runtime: teacher-forced logits, greedy and streamed generation.

    decoder = OnnxDecoder("exports/run-1-onnx/model-int8.onnx")
    decoder.logits(input_ids)                         # (B, T, vocab) float32, one pass
    decoder.greedy(prompt_ids, max_new_tokens=32)     # list of new token ids, KV cache carried between steps

The graph (written by workbench.analysis.export_onnx) takes
    input_ids (B, T) int64, attention_mask (B, P+T) int64, position_ids (B, T) int64,
    past_keys, past_values (layers, B, kv_heads, P, head_dim) float32
and returns logits (B, T, vocab) and present_keys / present_values (layers, B, kv_heads, P+T, head_dim). P is at
least 1: the first step gets one zero key/value slot masked out by attention_mask, because an exported graph keeps a
dynamic dimension from taking the sizes 0 and 1 it was not traced with.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


class OnnxDecoder:
    """One ONNX Runtime session over a decoder-step graph, on the CPU."""

    def __init__(self, path: str | Path, *, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        past = {item.name: item.shape for item in self.session.get_inputs()}["past_keys"]
        self.layers, self.kv_heads, self.head_dim = int(past[0]), int(past[2]), int(past[4])

    def _empty_past(self, batch: int) -> np.ndarray:
        return np.zeros((self.layers, batch, self.kv_heads, 1, self.head_dim), dtype=np.float32)

    def step(self, input_ids: np.ndarray, attention_mask: np.ndarray, past_keys: np.ndarray,
             past_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One forward over `input_ids` after the cached positions; returns (logits, keys, values)."""
        seen = attention_mask[:, : past_keys.shape[3]].sum(axis=1, keepdims=True)  # real tokens before this step
        position_ids = (seen + np.arange(input_ids.shape[1])[None]).astype(np.int64)
        logits, keys, values = self.session.run(None, {
            "input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64),
            "position_ids": position_ids, "past_keys": past_keys, "past_values": past_values,
        })
        return logits, keys, values

    def logits(self, input_ids: np.ndarray) -> np.ndarray:
        """Teacher-forced logits (B, T, vocab) of a batch of unpadded rows of equal length."""
        batch, length = input_ids.shape
        mask = np.concatenate([np.zeros((batch, 1)), np.ones((batch, length))], axis=1).astype(np.int64)
        past = self._empty_past(batch)
        return self.step(input_ids, mask, past, past.copy())[0]

    def stream(self, prompt_ids: list[int], max_new_tokens: int, eos_token_id: int | None = None) -> Iterator[int]:
        """Greedy decoding at batch 1: the prompt in one pass, then one token per step over the KV cache."""
        ids = np.asarray([prompt_ids], dtype=np.int64)
        mask = np.concatenate([np.zeros((1, 1)), np.ones((1, ids.shape[1]))], axis=1).astype(np.int64)
        keys, values = self._empty_past(1), self._empty_past(1)
        for _ in range(max_new_tokens):
            logits, keys, values = self.step(ids, mask, keys, values)
            token = int(logits[0, -1].argmax())
            yield token
            if token == eos_token_id:
                return
            ids = np.asarray([[token]], dtype=np.int64)
            mask = np.concatenate([mask, np.ones((1, 1), dtype=np.int64)], axis=1)

    def greedy(self, prompt_ids: list[int], max_new_tokens: int, eos_token_id: int | None = None) -> list[int]:
        return list(self.stream(prompt_ids, max_new_tokens, eos_token_id))
