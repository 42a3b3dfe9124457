"""Teacher cache: the teacher's top-k log-probabilities and tail mass per position, computed once, read by training.

    workbench cache-teacher --config run.yaml --top-k 64 --out caches/smollm-chat
    workbench train --config run.yaml train.teacher_cache=caches/smollm-chat loss.temperature=4

A cache folder holds `meta.json` and shards `<split>-NNNNN.safetensors` with, per packed sequence [T] of the
split, `ids` int32 [n, T, k], `logprobs` float32 [n, T, k] (log-softmax at T=1) and `tail` float32 [n, T]
(the probability outside the top k). Its key is a hash of everything that determines those numbers: the teacher spec and
its weight files (names, sizes, times), k, and the exact token ids of both splits (which covers dataset, tokenizer,
seq_len, split and seed). Training refuses a cache whose key does not match its own data. The divergences are then
computed over k + 1 buckets by `workbench.engine.topk_losses` (how, and the error: README, "Teacher cache").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from workbench.errors import UserError

SHARD_SEQUENCES = 256
FORMAT_VERSION = 1


def _ids_digest(ids: torch.Tensor) -> str:
    return hashlib.sha256(ids.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def _weights_fingerprint(teacher_spec: str) -> list[str]:
    from workbench.models.loading import _resolve_base, parse_spec, weights_fingerprint

    try:
        location, _ = _resolve_base(parse_spec(teacher_spec).base)
    except Exception:  # noqa: BLE001 - a spec that cannot be resolved has no local files to describe
        return []
    return weights_fingerprint(location)


def cache_key(teacher_spec: str, top_k: int, train_ids: torch.Tensor, val_ids: torch.Tensor) -> str:
    parts = {
        "version": FORMAT_VERSION,
        "teacher": teacher_spec,
        "weights": _weights_fingerprint(teacher_spec),
        "top_k": int(top_k),
        "train": _ids_digest(train_ids),
        "val": _ids_digest(val_ids),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


@torch.inference_mode()
def teacher_topk(teacher, input_ids: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[B, T] ids -> top-k ids int32 [B, T, k], log-probs float32 [B, T, k], tail mass float32 [B, T]."""
    return topk_from_logits(teacher(input_ids=input_ids, use_cache=False).logits, top_k)


def topk_from_logits(logits: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher logits [..., V] -> top-k ids int32, log-probs float32 (at T=1) [..., k], tail mass float32 [...]."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    values, ids = log_probs.topk(top_k, dim=-1)
    # the exact remaining mass (1 − Σ top-k would round to 0 when the top k hold almost everything)
    tail = torch.logsumexp(log_probs.scatter(-1, ids, float("-inf")), dim=-1).exp()
    return ids.to(torch.int32), values, tail


def build_cache(teacher, teacher_spec: str, splits, top_k: int, out_dir: Path, batch_size: int = 8,
                device: str | torch.device = "cpu", progress=None) -> Path:
    """Compute and write the cache for both splits (atomically: a temporary folder renamed at the end)."""
    vocab = teacher.get_output_embeddings().weight.shape[0]
    if not 1 <= top_k < vocab:
        raise UserError(f"--top-k must be in [1, {vocab - 1}] for this teacher, got {top_k}")
    out_dir = Path(out_dir)
    key = cache_key(teacher_spec, top_k, splits.train, splits.val)
    if (out_dir / "meta.json").exists() and json.loads((out_dir / "meta.json").read_text()).get("key") == key:
        return out_dir
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    counts = {}
    for split, ids in (("train", splits.train), ("val", splits.val)):
        counts[split] = int(ids.shape[0])
        for shard, start in enumerate(range(0, ids.shape[0], SHARD_SEQUENCES)):
            block = ids[start : start + SHARD_SEQUENCES]
            pieces = [teacher_topk(teacher, block[i : i + batch_size].to(device), top_k)
                      for i in range(0, block.shape[0], batch_size)]
            names = ("ids", "logprobs", "tail")
            tensors = {name: torch.cat([p[j].cpu() for p in pieces]) for j, name in enumerate(names)}
            save_file(tensors, str(tmp / f"{split}-{shard:05d}.safetensors"))
            if progress is not None:
                progress(split, start + block.shape[0], ids.shape[0])
    meta = {"key": key, "version": FORMAT_VERSION, "teacher": teacher_spec, "top_k": top_k,
            "seq_len": int(splits.train.shape[1]), "sequences": counts, "shard_sequences": SHARD_SEQUENCES}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out_dir)
    return out_dir


class TeacherCache:
    """Reads a cache folder; `batch(split, indices)` returns (ids, logprobs, tail) for those sequences."""

    def __init__(self, path: str | Path, teacher_spec: str, train_ids: torch.Tensor, val_ids: torch.Tensor):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise UserError(f"train.teacher_cache: {str(self.path)!r} is not a teacher cache (no meta.json); "
                            "create one with `workbench cache-teacher`")
        self.meta = json.loads(meta_path.read_text())
        expected = cache_key(teacher_spec, self.meta["top_k"], train_ids, val_ids)
        if self.meta.get("key") != expected:
            raise UserError(
                f"train.teacher_cache: {str(self.path)!r} was made for other data or another teacher "
                f"(key {self.meta.get('key')} != {expected}); rerun `workbench cache-teacher` with this config"
            )
        self.top_k = int(self.meta["top_k"])
        self.splits = {split: self._load(split) for split in ("train", "val")}

    def _load(self, split: str) -> dict[str, torch.Tensor]:
        shards = sorted(self.path.glob(f"{split}-*.safetensors"))
        loaded = [load_file(str(p)) for p in shards]
        return {name: torch.cat([s[name] for s in loaded]) for name in ("ids", "logprobs", "tail")}

    def batch(self, split: str, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        data = self.splits[split]
        return data["ids"][indices], data["logprobs"][indices], data["tail"][indices]


def cache_teacher(cfg, top_k: int = 64, out_dir: str | Path | None = None, batch_size: int = 8,
                  progress=None) -> Path:
    """Load the config's teacher and data and write its cache; returns the cache folder.

    The default folder is `<workbench home>/teacher-cache/<key>`, so equal inputs share one cache.
    """
    from workbench.data.splits import build_splits
    from workbench.models.loading import load_model, load_tokenizer, workbench_home
    from workbench.models.vocab import check_tokenizers

    m = cfg.models
    device = "cuda" if cfg.train.device != "cpu" and torch.cuda.is_available() else "cpu"
    student_tok = load_tokenizer(m.student, trust_remote_code=m.trust_remote_code)
    check_tokenizers(load_tokenizer(m.teacher, trust_remote_code=m.trust_remote_code), student_tok)
    splits = build_splits(cfg.data, student_tok)
    if out_dir is None:
        out_dir = workbench_home() / "teacher-cache" / cache_key(m.teacher, top_k, splits.train, splits.val)
    teacher = load_model(m.teacher, device=device, attn_implementation="sdpa", trust_remote_code=m.trust_remote_code,
                         allow_pickle=m.allow_pickle)
    return build_cache(teacher, m.teacher, splits, top_k, Path(out_dir), batch_size, device, progress)
