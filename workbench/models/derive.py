"""Student derivations: parse model specs and build a smaller model from a base causal LM.

A spec is a base (`builtin:NAME`, a hub id or a local folder) optionally followed by one derivation query:

    BASE?prune=even&layers=N          keep N evenly spaced layers (first and last included)
    BASE?prune=drop&block=A-B         drop the contiguous layers A..B (inclusive)
    BASE?prune=importance&layers=N    keep the N layers that change the hidden state most (ShortGPT-style)
    BASE?prune=keep&layers=0-3,8,29   keep exactly these layers
    BASE?prune=KIND&...&mlp=M&heads=A&hidden=H
                                      any of the above, and width pruning: M MLP channels and A query heads per
                                      layer (whole key/value groups), H hidden channels; `prune=importance` without
                                      layers= prunes width only (see `workbench.models.width`)
    BASE?fresh&layers=4&hidden=256&heads=4&kv_heads=2[&intermediate=1024][&seed=0][&tokenizer=SPEC]
                                      a new randomly initialised model of the same family; its tokenizer is the
                                      base's, or SPEC's (builtin:bpe-8k, a folder or a hub id)

Pruning keeps the chosen layers with their weights plus embeddings, final norm and head (the DistilBERT /
Minitron initialisation). The functions here work on any decoder stack held in one `nn.ModuleList`
(GPT-2, Llama, Qwen2, GPT-NeoX, and peft-wrapped versions of them); loading lives in `workbench.models.loading`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import torch
from torch import nn

from workbench.errors import Message, UserError
from workbench.models.vocab import perplexity
from workbench.models.width import WIDTH_KEYS, WidthTarget

SPEC_FORMS = (
    "BASE, BASE?prune=even&layers=N, BASE?prune=drop&block=A-B, BASE?prune=importance&layers=N, "
    "BASE?prune=keep&layers=0-3,8,29, BASE?prune=importance&layers=N&mlp=M&heads=A&hidden=H (width keys on any prune "
    "form; prune=importance&mlp=M alone prunes width only), "
    "BASE?fresh&layers=N&hidden=H&heads=A[&kv_heads=K&intermediate=I&seed=S&tokenizer=SPEC] "
    "(BASE = builtin:smollm2-135m-instruct, a hub id or a local folder)"
)
PRUNE_KINDS = ("even", "drop", "importance", "keep")
FRESH_KEYS = ("layers", "hidden", "heads", "kv_heads", "intermediate", "seed", "tokenizer")

# Fixed calibration text for importance ranking: varied registers so no single domain decides which layers matter.
CALIBRATION_TEXTS = (
    "The kettle clicked off and the kitchen went quiet. Mira poured the water over the tea leaves, watched the "
    "colour bloom, and wondered whether the letter on the table would still say the same thing after breakfast.",
    "To replace a bicycle inner tube, first release the brake, open the quick-release lever and remove the wheel. "
    "Use two tyre levers to lift one side of the tyre off the rim, then pull out the old tube and check the tyre.",
    "Photosynthesis converts light energy into chemical energy. In the chloroplast, water is split, oxygen is "
    "released, and the energy captured is used to fix carbon dioxide into sugars through the Calvin cycle.",
    "def moving_average(values, window):\n    total = sum(values[:window])\n    result = [total / window]\n"
    "    for i in range(window, len(values)):\n        total += values[i] - values[i - window]\n"
    "        result.append(total / window)\n    return result\n",
    "Question: Why does the Moon show phases? Answer: The Moon does not make its own light. As it orbits the "
    "Earth we see different portions of its sunlit half, from a thin crescent to a full disc and back again.",
    "The committee met on Tuesday to review the budget. After a long discussion it agreed to delay the new "
    "library wing by one year, to repair the roof of the school first, and to publish the minutes next week.",
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
    "darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.",
    "Summary: the study followed 1,200 adults for ten years and found that those who walked at least thirty "
    "minutes a day had fewer heart problems, although the authors warn that the link may not be causal.",
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: where the base weights come from and which derivation (if any) to apply."""

    text: str
    base: str
    derivation: str | None = None  # "prune" or "fresh"
    method: str | None = None  # prune kind: even / drop / importance / keep
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text  # a spec reads as it was written: in messages, logs and keys

    @property
    def is_builtin(self) -> bool:
        return self.base.startswith("builtin:")

    @property
    def width(self) -> WidthTarget:
        """The widths a prune spec asks for (empty when it prunes depth only)."""
        return WidthTarget.from_params(self.params) if self.derivation == "prune" else WidthTarget()


def _spec_error(spec: str, problem: str | Message) -> UserError:
    problem = Message(problem) if isinstance(problem, str) else problem
    return UserError(Message("model spec {spec!r}: {problem}; accepted forms: {forms}", spec=spec, problem=problem,
                             forms=Message(SPEC_FORMS)))


def as_spec(spec: str | ModelSpec) -> ModelSpec:
    """A spec as its value object: parsed when given as text, as it is when already parsed (a run parses its two
    specs once, at its start, and hands the objects on)."""
    return spec if isinstance(spec, ModelSpec) else parse_spec(spec)


def parse_spec(spec: str) -> ModelSpec:
    """Split `BASE?query` into a `ModelSpec`, checking that the derivation and its keys are known."""
    text = str(spec).strip()
    if not text:
        raise _spec_error(spec, "empty spec")
    base, _, query = text.partition("?")
    base = base.strip()
    if not base:
        raise _spec_error(spec, "missing base model before '?'")
    if not query:
        return ModelSpec(text=text, base=base)
    if any(not part.partition("=")[0] for part in query.split("&")):
        raise _spec_error(spec, Message("cannot parse the query {query!r}", query=query))
    pairs = parse_qsl(query, keep_blank_values=True)
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise _spec_error(spec, Message("key {key!r} given twice", key=key))
        params[key] = value.strip()
    if "fresh" in params:
        if params.pop("fresh"):
            raise _spec_error(spec, "'fresh' takes no value")
        unknown = sorted(set(params) - set(FRESH_KEYS))
        if unknown:
            raise _spec_error(spec, Message("unknown key(s) {unknown} for fresh (known: {known})", unknown=unknown,
                                              known=", ".join(FRESH_KEYS)))
        for key in ("layers", "hidden", "heads"):
            if key not in params:
                raise _spec_error(spec, Message("fresh needs {key}=", key=key))
        for key, value in params.items():
            if key == "tokenizer":
                if not value:
                    raise _spec_error(spec, "tokenizer= needs a tokenizer: builtin:bpe-8k, a folder or a hub id")
            elif key == "seed":
                _non_negative_int(spec, key, value)
            else:
                _positive_int(spec, key, value)
        return ModelSpec(text=text, base=base, derivation="fresh", params=params)
    method = params.pop("prune", None)
    if method not in PRUNE_KINDS:
        raise _spec_error(spec, Message("expected prune=one of {kinds} or fresh, got {method!r}",
                                          kinds=", ".join(PRUNE_KINDS), method=method))
    needed = "block" if method == "drop" else "layers"
    width = set(params) & set(WIDTH_KEYS)
    depth = set(params) - width
    if depth != {needed} and not (method == "importance" and width and not depth):
        raise _spec_error(spec, Message("prune={method} takes {needed}= (and optionally {width}), got keys {keys}",
                                          method=method, needed=needed, width="=, ".join(WIDTH_KEYS) + "=",
                                          keys=sorted(params)))
    for key in width:
        _positive_int(spec, key, params[key])
    if method in ("even", "importance"):
        if "layers" in params:
            _positive_int(spec, "layers", params["layers"])
    else:
        _parse_index_list(spec, params[needed])
    return ModelSpec(text=text, base=base, derivation="prune", method=method, params=params)


def _positive_int(spec: str, key: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise _spec_error(spec, Message("{key} must be a positive integer, got {value!r}", key=key, value=value))
    return int(value)


def _non_negative_int(spec: str, key: str, value: str) -> int:
    if not value.isdigit():
        raise _spec_error(spec, Message("{key} must be a non-negative integer, got {value!r}", key=key,
                                                value=value))
    return int(value)


def _parse_index_list(spec: str, value: str) -> list[int]:
    """`0-3,8,29` -> [0, 1, 2, 3, 8, 29] (sorted, unique)."""
    indices: set[int] = set()
    for part in value.split(","):
        start, dash, end = part.strip().partition("-")
        if not start.isdigit() or (dash and not end.isdigit()):
            raise _spec_error(spec, Message("layer list {value!r} must look like 0-3,8,29", value=value))
        lo, hi = int(start), int(end) if dash else int(start)
        if hi < lo:
            raise _spec_error(spec, Message("range {part!r} runs backwards", part=part))
        indices.update(range(lo, hi + 1))
    return sorted(indices)


def format_index_list(indices: list[int]) -> str:
    """[0, 1, 2, 3, 8] -> '0-3,8' (the inverse of the spec's layer-list syntax)."""
    parts, run = [], []
    for index in sorted(indices):
        if run and index != run[-1] + 1:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(index)
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def kept_layers(spec: ModelSpec, base_layers: int) -> list[int] | None:
    """The base layer indices a prune spec keeps, or None for importance (needs the model) and non-prune specs."""
    if spec.derivation != "prune":
        return None
    if spec.method == "importance":
        return None if "layers" in spec.params else list(range(base_layers))
    if spec.method == "even":
        count = int(spec.params["layers"])
        if count > base_layers:
            raise _spec_error(spec.text, Message("layers={count} but the base model has only {base_layers} layers",
                                                   count=count, base_layers=base_layers))
        if count == 1:
            return [base_layers - 1]
        return sorted({round(i * (base_layers - 1) / (count - 1)) for i in range(count)})
    indices = _parse_index_list(spec.text, spec.params["block" if spec.method == "drop" else "layers"])
    if indices[-1] >= base_layers:
        raise _spec_error(
            spec.text, Message("layer {index} is out of range; the base model has layers 0-{last}", index=indices[-1],
                               last=base_layers - 1)
        )
    if spec.method == "drop":
        indices = [i for i in range(base_layers) if i not in set(indices)]
        if not indices:
            raise _spec_error(spec.text, "dropping that block leaves no layers")
    return indices


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The `nn.ModuleList` holding the decoder blocks (model.layers, transformer.h, gpt_neox.layers, ...)."""
    config = getattr(model, "config", None)
    expected = getattr(config, "num_hidden_layers", None)
    candidates = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.ModuleList)]
    for name, module in candidates:
        if name.split(".")[-1] in ("layers", "h", "blocks") and (expected is None or len(module) == expected):
            return module
    for _, module in candidates:
        if expected is not None and len(module) == expected:
            return module
    raise UserError(
        f"cannot find the decoder layers of {type(model).__name__}; pruning supports stacks held in one ModuleList"
    )


def num_layers(model: nn.Module) -> int:
    return len(decoder_layers(model))


def prune_layers(model: nn.Module, keep: list[int]) -> nn.Module:
    """Keep only the decoder layers `keep` (in place); fix the config and each attention module's layer_idx."""
    layers = decoder_layers(model)
    if not keep or sorted(set(keep)) != list(keep) or keep[-1] >= len(layers) or keep[0] < 0:
        raise UserError(f"layers to keep must be sorted unique indices in 0-{len(layers) - 1}, got {keep}")
    new_layers = nn.ModuleList([layers[i] for i in keep])
    for new_index, layer in enumerate(new_layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index  # KV-cache slot
    parent = model.get_submodule(_module_path(model, layers).rpartition(".")[0])
    setattr(parent, _module_path(model, layers).rpartition(".")[2], new_layers)
    config = model.config
    layer_types = getattr(config, "layer_types", None)
    config.num_hidden_layers = len(keep)
    if layer_types is not None:
        config.layer_types = [layer_types[i] for i in keep]
    return model


def _module_path(model: nn.Module, target: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is target:
            return name
    raise UserError("decoder layers not found in the model")


def fresh_config(base_config, spec: ModelSpec, tokenizer=None):
    """A copy of `base_config` resized as the fresh spec says (same family; the vocabulary and special tokens of the
    base, or of `tokenizer` when the spec names one)."""
    params = {k: int(v) for k, v in spec.params.items() if k != "tokenizer"}
    hidden, heads = params["hidden"], params["heads"]
    if hidden % heads:
        raise _spec_error(spec.text, Message("hidden={hidden} must be divisible by heads={heads}", hidden=hidden,
                                                   heads=heads))
    config = copy.deepcopy(base_config)
    old_hidden = config.hidden_size
    config.num_hidden_layers = params["layers"]
    config.hidden_size = hidden
    config.num_attention_heads = heads
    if hasattr(config, "head_dim"):
        config.head_dim = hidden // heads
    kv_heads = params.get("kv_heads", heads)
    if hasattr(config, "num_key_value_heads"):
        if heads % kv_heads:
            raise _spec_error(spec.text, Message("heads={heads} must be a multiple of kv_heads={kv_heads}",
                                                       heads=heads, kv_heads=kv_heads))
        config.num_key_value_heads = kv_heads
    elif kv_heads != heads:
        raise _spec_error(spec.text, Message("{model_type} has no grouped key/value heads; drop kv_heads",
                                                   model_type=config.model_type))
    inter_key = "n_inner" if config.model_type == "gpt2" else "intermediate_size"
    old_inter = getattr(config, inter_key, None) or 4 * old_hidden
    setattr(config, inter_key, params.get("intermediate", max(1, round(old_inter * hidden / old_hidden))))
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [config.layer_types[0]] * params["layers"]
    if tokenizer is not None:
        config.vocab_size = len(tokenizer)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(config, name, getattr(tokenizer, name))
    return config


def fresh_model(base_config, spec: ModelSpec, dtype: torch.dtype = torch.float32, tokenizer=None) -> nn.Module:
    from transformers import AutoModelForCausalLM

    config = fresh_config(base_config, spec, tokenizer)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(int(spec.params.get("seed", 0)))
    try:
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    finally:
        torch.random.set_rng_state(generator_state)
    return model


def _layer_io_hook(store: list, index: int):
    def hook(module, args, kwargs, output):
        hidden_in = args[0] if args else kwargs["hidden_states"]
        hidden_out = output[0] if isinstance(output, tuple) else output
        store.append((index, hidden_in.detach(), hidden_out.detach()))

    return hook


@torch.no_grad()
def layer_importance(model: nn.Module, batches: list[torch.Tensor]) -> list[float]:
    """ShortGPT block influence per layer: mean over tokens of 1 - cos(layer input, layer output).

    `batches` are LongTensors [B, T] without padding. A layer that barely turns its input scores near 0.
    """
    layers = decoder_layers(model)
    store: list = []
    handles = [
        layer.register_forward_hook(_layer_io_hook(store, i), with_kwargs=True) for i, layer in enumerate(layers)
    ]
    totals, counts = torch.zeros(len(layers), dtype=torch.float64), torch.zeros(len(layers), dtype=torch.float64)
    try:
        for input_ids in batches:
            store.clear()
            model(input_ids=input_ids.to(model.device), use_cache=False)
            for index, hidden_in, hidden_out in store:
                cos = nn.functional.cosine_similarity(hidden_in.double(), hidden_out.double(), dim=-1)  # (B, T)
                totals[index] += (1.0 - cos).sum().item()
                counts[index] += cos.numel()
    finally:
        for handle in handles:
            handle.remove()
    return (totals / counts.clamp(min=1)).tolist()


def calibration_batches(tokenizer, max_tokens: int = 128) -> list[torch.Tensor]:
    """The fixed calibration texts as [1, T] id tensors (one per text, so no padding is needed)."""
    batches = []
    for text in CALIBRATION_TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
        if ids:
            batches.append(torch.tensor([ids], dtype=torch.long))
    return batches


def importance_keep(scores: list[float], count: int) -> list[int]:
    """Indices of the `count` most important layers (highest block influence), in model order."""
    if not 1 <= count <= len(scores):
        raise UserError(Message("prune=importance layers must be in 1-{most}, got {count}", most=len(scores),
                                count=count))
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(ranked[:count])


@torch.no_grad()
def model_perplexity(model: nn.Module, token_ids: torch.Tensor, batch_size: int = 4) -> float:
    """exp(mean next-token cross-entropy) of `model` over packed sequences `token_ids` [N, T]."""
    total_loss, total_tokens = 0.0, 0
    for start in range(0, token_ids.shape[0], batch_size):
        batch = token_ids[start : start + batch_size].to(model.device)
        logits = model(input_ids=batch, use_cache=False).logits.float()  # (B, T, V)
        loss = nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
        )
        total_loss += loss.item()
        total_tokens += batch[:, 1:].numel()
    return perplexity(total_loss / max(total_tokens, 1))
