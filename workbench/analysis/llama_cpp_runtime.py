"""Run a GGUF file in llama.cpp (through llama-cpp-python, an optional extra that builds from source) behind the
calls the workbench makes of a causal LM, so the report card and the chat score it where it is meant to run.

    model = LlamaCppCausalLM("exports/run-1-q8/student-q8_0.gguf")
    model(input_ids=ids).logits          # (B, T, vocab) float32, each row evaluated from an empty cache
    model.generate(input_ids, attention_mask=mask, max_new_tokens=32)

Rows are evaluated one after another (llama.cpp's context holds one sequence here); generation carries llama.cpp's
own KV cache from token to token.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

CONTEXT_TOKENS = 2048


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppCausalLM(nn.Module):
    """One llama.cpp context over a GGUF file, on the CPU."""

    def __init__(self, path: str | Path, *, threads: int | None = None, context: int = CONTEXT_TOKENS):
        super().__init__()
        import llama_cpp

        self.path = Path(path)
        self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=context, logits_all=True, verbose=False,
                                   n_threads=threads)
        self.generation_config = None  # stop tokens come from the tokenizer
        # an empty parameter, so `next(model.parameters()).device` (how callers find the device) says cpu
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def _eval(self, tokens: list[int], *, fresh: bool) -> np.ndarray:
        """Feed `tokens` (after a reset when `fresh`); returns their logits (len(tokens), vocab)."""
        if fresh:
            self.llm.reset()
        start = self.llm.n_tokens
        self.llm.eval(tokens)
        # a copy: `scores` is llama.cpp's buffer, which the next row's eval overwrites
        return np.array(self.llm.scores[start:self.llm.n_tokens], dtype=np.float32, copy=True)

    def forward(self, input_ids: torch.Tensor, **_: object) -> SimpleNamespace:
        rows = [self._eval(row.tolist(), fresh=True) for row in input_ids.cpu()]
        return SimpleNamespace(logits=torch.from_numpy(np.stack(rows)))

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, generation_config=None,
                 logits_processor=None, stopping_criteria=None, streamer=None, **kwargs) -> torch.Tensor:
        settings = {**(generation_config.to_dict() if generation_config is not None else {}), **kwargs}
        max_new, min_new = int(settings.get("max_new_tokens") or 20), int(settings.get("min_new_tokens") or 0)
        stop = settings.get("eos_token_id")
        stop = [] if stop is None else [stop] if isinstance(stop, int) else list(stop)
        pad = settings.get("pad_token_id")
        pad = pad if pad is not None else (stop[0] if stop else 0)
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if streamer is not None:
            streamer.put(input_ids.cpu())
        rows = []
        for row, row_mask in zip(input_ids.cpu(), mask.cpu(), strict=True):
            prompt = row[row_mask.bool()].tolist()  # left padding dropped: llama.cpp sees the bare prompt
            sequence, new = row.clone(), []
            logits = self._eval(prompt, fresh=True)[-1]
            for index in range(max_new):
                scores = torch.from_numpy(logits).float()[None]  # [1, V]
                if index < min_new and stop:
                    scores[:, stop] = float("-inf")
                for processor in logits_processor or []:
                    scores = processor(sequence[None], scores)
                token = int(scores.argmax(-1))
                new.append(token)
                sequence = torch.cat([sequence, torch.tensor([token])])
                if streamer is not None:
                    streamer.put(torch.tensor([token]))
                stopped = any(bool(c(sequence[None], scores).all()) for c in stopping_criteria or [])
                if token in stop or stopped:
                    break
                logits = self._eval([token], fresh=False)[-1]
            rows.append(new)
        if streamer is not None:
            streamer.end()
        width = max((len(new) for new in rows), default=0)
        tail = torch.tensor([new + [pad] * (width - len(new)) for new in rows], dtype=torch.long)
        return torch.cat([input_ids.cpu(), tail.reshape(len(rows), width)], dim=1)
