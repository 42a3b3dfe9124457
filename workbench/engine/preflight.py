"""Preflight: the checks that refuse a run before it starts, shared by `workbench train` and the app.

    facts = preflight(cfg, runs_dir="runs")   # raises UserError naming the field and what would be accepted

Building a `DistillConfig` already checks keys, types and ranges. Preflight adds what needs the real models and
data, reading only configs and tokenizers and building weightless ("meta") models: the runs folder can be written;
the device exists; each model spec resolves (offline too), is a causal LM with weights the loader accepts; the two
tokenizers are the same; the sequence length fits both models; the layer mapping fits both depths; an attention term
has attention maps to compare; the LoRA target modules exist; the dataset reads as text, has the text column and
holds enough tokens for a training and a validation sequence. Returns a few facts found on the way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from workbench.config import DistillConfig
from workbench.errors import Message, UserError

MODEL_SPEC_FORMS = "builtin:smollm2-135m-instruct (optionally derived, e.g. ?prune=even&layers=10), a local folder " \
    "with config.json, or a cached hub id"


def _first_line(exc: Exception, limit: int = 200) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:limit]


def _named(field: str, exc: Exception) -> UserError:
    """`exc` as a UserError whose message starts with the field it is about."""
    message = _first_line(exc, 2000)
    if isinstance(exc, UserError) and isinstance(exc.message, Message) and str(exc.message) == message:
        message = exc.message
    return UserError(message if str(message).startswith(field) else Message("{field}: {message}", field=field,
                                                                            message=message))


def _check_runs_dir(runs_dir: str | Path, name: str | None, new_run: bool) -> None:
    path = Path(runs_dir).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = Message("is a file") if existing == path else Message("cannot be created: {existing} is a file",
                                                                       existing=existing)
        raise UserError(Message("run.runs_dir {runs_dir!r} {where}; accepted: a folder you can write to",
                                runs_dir=str(runs_dir), where=where))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(Message("run.runs_dir {runs_dir!r} is not writable ({existing}); accepted: a folder you can "
                                "write to", runs_dir=str(runs_dir), existing=existing))
    if new_run and name and (path / name).exists():
        raise UserError(Message("run.name {name!r} is taken in {runs_dir!r}; choose another name or leave it empty",
                                name=name, runs_dir=str(runs_dir)))


def _check_device(device: str) -> None:
    if not device.startswith("cuda"):
        return
    count = torch.cuda.device_count()
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        found = Message("{count} CUDA device(s)", count=count) if count else Message("no CUDA device")
        raise UserError(Message("train.device={device} but this machine has {found}; accepted here: {accepted}",
                                device=device, found=found,
                                accepted="auto, cpu" + "".join(f", cuda:{i}" for i in range(count))))


def _is_causal_lm(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {}):
        return True
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        return False
    architectures = getattr(config, "architectures", None) or []
    causal_names = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    return not architectures or any(a in causal_names or a.endswith(("ForCausalLM", "LMHeadModel"))
                                    for a in architectures)


def _read_model(cfg: DistillConfig, role: str):
    """(config, weightless model) of the teacher or the student; errors name models.<role>."""
    from transformers import AutoModelForCausalLM

    from workbench.models.loading import check_weights, load_config

    field, spec = f"models.{role}", getattr(cfg.models, role)
    trust = cfg.models.trust_remote_code
    try:
        config = load_config(spec, trust_remote_code=trust)
    except UserError as exc:
        raise _named(field, exc) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if "trust_remote_code" in str(exc):
            raise UserError(Message("{field}: {spec!r} needs code shipped with the model to load; set "
                                    "models.trust_remote_code=true only if you trust its source",
                                    field=field, spec=spec)) from None
        raise UserError(Message("{field}: cannot read the model config of {spec!r} ({problem}); accepted: {forms}",
                                field=field, spec=spec, problem=_first_line(exc), forms=Message(MODEL_SPEC_FORMS))) from None
    if not _is_causal_lm(config):
        kind = (getattr(config, "architectures", None) or [config.model_type])[0]
        raise UserError(Message("{field}: {spec!r} is a {kind}, not a causal (next-token) language model; accepted: "
                                "a decoder model such as Llama, Qwen2, GPT-2 or GPT-NeoX (…ForCausalLM)",
                                field=field, spec=spec, kind=kind))
    try:
        check_weights(spec, allow_pickle=cfg.models.allow_pickle)
    except UserError as exc:
        raise _named(field, exc) from None
    attn = "eager" if cfg.loss.attn_weight > 0 else None
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust, attn_implementation=attn)
    except (ValueError, ImportError) as exc:
        where = "loss.attn_weight" if attn else field
        raise UserError(Message("{where}: cannot build {spec!r} ({problem})", where=where, spec=spec,
                                problem=_first_line(exc))) from None
    return config, model


def _check_positions(cfg: DistillConfig, configs: dict[str, Any]) -> int | None:
    limits = {role: getattr(config, "max_position_embeddings", None) for role, config in configs.items()}
    for role, limit in limits.items():
        if limit and cfg.data.seq_len > limit:
            raise UserError(Message("data.seq_len must be <= {limit} (the {role}'s max_position_embeddings), "
                                    "got {seq_len}", limit=limit, role=Message(role), seq_len=cfg.data.seq_len))
    known = [limit for limit in limits.values() if limit]
    return min(known) if known else None


def _check_tokenizers(cfg: DistillConfig):
    """The student's tokenizer, after checking that the terms asked for apply to the two tokenizers."""
    from workbench.engine.tokenizer_pairing import check_pairing
    from workbench.models.loading import load_tokenizer, tokenizer_source

    m = cfg.models
    tokenizers = {}
    for role in ("student", "teacher"):
        spec = getattr(m, role)
        if role == "teacher" and tokenizer_source(spec) == tokenizer_source(m.student):
            tokenizers[role] = tokenizers["student"]
            continue
        try:
            tokenizers[role] = load_tokenizer(spec, trust_remote_code=m.trust_remote_code)
        except UserError as exc:
            raise _named(f"models.{role}", exc) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(Message("models.{role}: cannot load the tokenizer of {spec!r} ({problem})",
                                    role=role, spec=spec, problem=_first_line(exc))) from None
    check_pairing(cfg, tokenizers["teacher"], tokenizers["student"])
    return tokenizers["student"]


def _check_layers(cfg: DistillConfig, models: dict[str, torch.nn.Module]) -> list:
    """The mapped (student, teacher) pairs when a layer term or a custom mapping is set; [] otherwise."""
    from workbench.engine.capture import attention_module
    from workbench.engine.mapping import config_mapping
    from workbench.models.loading import decoder_layers

    loss = cfg.loss
    uses_layers = loss.hidden_weight > 0 or loss.attn_weight > 0
    if uses_layers and cfg.train.teacher_cache:
        raise UserError(Message("train.teacher_cache keeps only the teacher's logits; set loss.hidden_weight and "
                                "loss.attn_weight to 0, or leave train.teacher_cache empty"))
    if not uses_layers and cfg.mapping.strategy != "custom":
        return []
    blocks = {}
    for role, model in models.items():
        try:
            blocks[role] = decoder_layers(model)
        except UserError as exc:
            raise _named(f"models.{role}", exc) from None
    try:
        pairs = config_mapping(cfg, len(blocks["student"]), len(blocks["teacher"]))
    except ValueError as exc:
        raise UserError(exc.message if isinstance(exc, UserError) else str(exc)) from None
    if loss.attn_weight > 0:
        attn_pairs = [(s, t) for s, t in pairs if s != "emb" and t != "emb"]
        if not attn_pairs:
            raise UserError(Message("mapping.pairs: loss.attn_weight needs at least one pair of decoder layers ('emb' "
                                    "has no attention map), got {pairs}", pairs=cfg.mapping.pairs))
        for role, side in (("student", 0), ("teacher", 1)):
            for pair in attn_pairs:
                try:
                    attention_module(blocks[role][int(pair[side])])
                except ValueError:
                    raise UserError(Message(
                        "loss.attn_weight: the {role} ({kind}) has no attention maps to transfer; set "
                        "loss.attn_weight=0 or pick attention-based models",
                        role=Message(role), kind=type(models[role]).__name__)) from None
    return pairs


def _check_data(cfg: DistillConfig, tokenizer) -> None:
    """Read the dataset (built-ins are only located) and count its tokens up to two sequences' worth."""
    from workbench.data.sources import BUILTINS, kjv_database, read_chat_rows
    from workbench.data.splits import load_texts, token_stream

    data = cfg.data
    spec = data.dataset.strip()
    if spec == "builtin:kjv":
        kjv_database()
        return
    if spec == "builtin:chat":
        read_chat_rows()
        return
    if spec.startswith("builtin:"):
        raise UserError(Message("data.dataset: unknown built-in {spec!r}; built-ins are {builtins}", spec=spec,
                                builtins=", ".join(BUILTINS)))
    texts = load_texts(spec, text_column=data.text_column, tokenizer=tokenizer)
    needed = 2 * data.seq_len
    ids, _ = token_stream(texts, tokenizer, limit=needed)
    if len(ids) < needed:
        fix = Message("add text or lower data.seq_len to at most {most}", most=len(ids) // 2) if len(ids) >= 16 \
            else Message("add text")
        raise UserError(Message("data.dataset: {spec!r} gives {count} tokens, too little for two sequences (train "
                                "and validation) at data.seq_len={seq_len}; {fix}", spec=spec, count=len(ids),
                                seq_len=data.seq_len, fix=fix))


def preflight(cfg: DistillConfig, runs_dir: str | Path | None = None, *, new_run: bool = True) -> dict[str, Any]:
    """Check `cfg` against the machine, the models and the data without loading weights or creating anything.

    `runs_dir` is where the run folder will go (default `cfg.run.runs_dir`); `new_run` also refuses a taken
    `run.name`. Returns {"teacher_layers", "student_layers", "max_positions", "pairs", "lora_targets"}."""
    from workbench.models.lora import resolve_targets
    from workbench.runs.reporters import check_reporters

    _check_runs_dir(runs_dir if runs_dir is not None else cfg.run.runs_dir, cfg.run.name, new_run)
    _check_device(cfg.train.device)
    check_reporters(cfg.train.report_to)
    if cfg.train.teacher_cache and not Path(cfg.train.teacher_cache).is_dir():
        raise UserError(Message("train.teacher_cache: no cache folder at {path!r}; create one with "
                                "`workbench cache-teacher` or leave it empty", path=cfg.train.teacher_cache))
    if cfg.train.heal_init:
        from workbench.models.heal import pruned_student_spec

        pruned_student_spec(cfg.models.student, cfg.models.teacher)
    configs, models = {}, {}
    for role in ("teacher", "student"):
        configs[role], models[role] = _read_model(cfg, role)
    tokenizer = _check_tokenizers(cfg)
    max_positions = _check_positions(cfg, configs)
    pairs = _check_layers(cfg, models)
    lora_targets = resolve_targets(models["student"], cfg.lora) if cfg.lora.enabled else []
    _check_data(cfg, tokenizer)
    return {
        "teacher_layers": configs["teacher"].num_hidden_layers,
        "student_layers": configs["student"].num_hidden_layers,
        "max_positions": max_positions,
        "pairs": pairs,
        "lora_targets": lora_targets,
    }
