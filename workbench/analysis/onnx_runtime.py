"""Run an exported ONNX decoder step in ONNX Runtime: teacher-forced logits, greedy and streamed generation.

    decoder = OnnxDecoder("exports/run-1-onnx/model-int8.onnx")
    decoder.logits(input_ids)                         # (B, T, vocab) float32, one pass
    decoder.greedy(prompt_ids, max_new_tokens=32)     # list of new token ids, KV cache carried between steps
    model = OnnxCausalLM(decoder)                     # model(input_ids=...).logits and model.generate(...) as in
                                                      # transformers, so the report card scores it like the others

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
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn


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
        # a token's position counts the real tokens before it: padding (and the masked first slot) takes none
        position_ids = np.clip(attention_mask.cumsum(axis=1)[:, -input_ids.shape[1]:] - 1, 0, None).astype(np.int64)
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


class OnnxCausalLM(nn.Module):
    """An ONNX Runtime decoder behind the two calls the workbench makes of a causal LM: `model(input_ids=...)`
    (teacher-forced logits of right-padded rows) and `model.generate(...)` (left-padded prompts, greedy or a
    `logits_processor` that leaves one finite score, `min_new_tokens`, `stopping_criteria`, a streamer), on the
    CPU."""

    def __init__(self, decoder: OnnxDecoder):
        super().__init__()
        self.decoder = decoder
        self.generation_config = None  # stop tokens come from the tokenizer
        # an empty parameter, so `next(model.parameters()).device` (how callers find the device) says cpu
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, input_ids: torch.Tensor, **_: object) -> SimpleNamespace:
        return SimpleNamespace(logits=torch.from_numpy(self.decoder.logits(input_ids.cpu().numpy())))

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, generation_config=None,
                 logits_processor=None, stopping_criteria=None, streamer=None, **kwargs) -> torch.Tensor:
        settings = {**(generation_config.to_dict() if generation_config is not None else {}), **kwargs}
        max_new = int(settings.get("max_new_tokens") or 20)
        min_new = int(settings.get("min_new_tokens") or 0)
        stop = settings.get("eos_token_id")
        stop = [] if stop is None else [stop] if isinstance(stop, int) else list(stop)
        pad = settings.get("pad_token_id")
        pad = pad if pad is not None else (stop[0] if stop else 0)
        ids = input_ids.cpu().numpy().astype(np.int64)
        batch = ids.shape[0]
        mask = np.ones_like(ids) if attention_mask is None else attention_mask.cpu().numpy().astype(np.int64)
        mask = np.concatenate([np.zeros((batch, 1), dtype=np.int64), mask], axis=1)  # the masked first slot
        keys = np.zeros((self.decoder.layers, batch, self.decoder.kv_heads, 1, self.decoder.head_dim), np.float32)
        values, sequences, step_ids = keys.copy(), torch.from_numpy(ids), ids
        done = torch.zeros(batch, dtype=torch.bool)
        if streamer is not None:
            streamer.put(sequences)
        for index in range(max_new):
            logits, keys, values = self.decoder.step(step_ids, mask, keys, values)
            scores = torch.from_numpy(logits[:, -1]).float()  # [B, V]
            if index < min_new and stop:
                scores[:, stop] = float("-inf")
            for processor in logits_processor or []:
                scores = processor(sequences, scores)
            tokens = scores.argmax(-1).masked_fill(done, pad)  # [B]
            sequences = torch.cat([sequences, tokens[:, None]], dim=1)
            if streamer is not None:
                streamer.put(tokens)
            done |= torch.isin(tokens, torch.tensor(stop, dtype=torch.long)) if stop else done
            if bool(done.all()) or any(bool(criterion(sequences, scores).all()) for criterion in stopping_criteria or []):
                break
            step_ids = tokens[:, None].numpy()
            mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
        if streamer is not None:
            streamer.end()
        return sequences
