"""Closed-form healing of a depth-pruned student before training (linear block replacement, as in ReplaceMe).

A student made by dropping teacher layers has gaps: student layer i feeds layer i+1, whose teacher original expected
the output of the teacher layer just before it, several dropped layers later. For each student layer i that sits
before a gap, with MLP output M (N, H), rest of its output R = Y − M, and the teacher's hidden state Z (N, H) at the
far end of the gap (the output of teacher layer kept[i+1] − 1), a ridge fit toward the identity

    X = argmin ‖M X + R − Z‖² + λ‖X − I‖²  =  (MᵀM + λI)⁻¹ (Mᵀ(Z − R) + λI),   λ = ridge · tr(MᵀM) / H

is folded into the MLP's output projection (W ← Xᵀ W for nn.Linear), so the student's shape does not change. The
kept layer right after each gap gets the same fit toward its own teacher original (`fit_plan`). Fits are made in
model order on the student's own activations, each after the earlier ones are folded in. Only the MLP is refitted:
in a sequential block the MLP reads the attention output, so a transform of that would not stay linear. The error
before and after each fit comes from the same sums: ‖M X − D‖² = tr(XᵀAX) − 2 tr(XᵀB) + ‖D‖² with A = MᵀM,
B = MᵀD, D = Z − R.

    fits = heal_student(student, teacher, kept=[0, 1, 2, 6, ...], batches=list(train_ids[:64].split(4)))

A width-pruned student (MLP channels, heads or hidden channels cut, `workbench.models.width`) lost part of every
layer, so every layer but the last is refitted (`width_fit_plan`), and the fit is richer: the MLP's down projection
itself is solved, from the kept channels' activations A (N, I') to the teacher's output at the far end of the layer
(or of its gap), restricted to the student's hidden channels, with a ridge toward the pruned weights W₀:

    Wᵀ = (AᵀA + λI)⁻¹ (Aᵀ(Z − R) + λW₀ᵀ),   λ = ridge · tr(AᵀA) / I'

Before that, in Llama and Qwen2 layers, the attention's output projection is solved the same way, from the heads'
outputs C (N, heads · head_dim) to the teacher's residual stream right after the attention of the layer's teacher
original (what its post-attention norm reads), with a strong ridge toward the pruned weights (`ATTENTION_RIDGE`); the
MLP then reads the new attention output and is solved after it. Both fits are linear in the weights they solve: the
softmax inside the attention is left as it is (cut heads are otherwise mended by the fits and by training), and so
are the norms (the hidden-channel cut is mended by rescaling them at pruning time).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from workbench.errors import Message, UserError
from workbench.models.derive import ModelSpec, as_spec, decoder_layers
from workbench.models.loading import resolve_layers, resolve_width
from workbench.models.replay import StopForward, layer_calls, layer_output, run_hooked, run_layer, teacher_targets

DEFAULT_RIDGE = 1e-3
# the attention output's fit stays near the pruned weights: on the chat-small student, ridge 1e-3 raised the perplexity
# after healing (31.7 against 26.3 without the fit), 0.05 gave 27.0, 0.3 25.9, 1 25.3 and 5 25.9 (docs/how-small.md)
ATTENTION_RIDGE = 1.0
FIT_BATCH = 4  # sequences per forward of the fit


@dataclass
class LayerFit:
    """One refitted layer: student layer `student_layer` now aims at the output of teacher layer `teacher_layer`."""

    student_layer: int
    teacher_layer: int
    mse_before: float
    mse_after: float
    attention_mse: tuple[float, float] | None = None  # width: the residual after the attention, before and after

    def to_dict(self) -> dict[str, float | int]:
        row = {"student_layer": self.student_layer, "teacher_layer": self.teacher_layer,
               "mse_before": self.mse_before, "mse_after": self.mse_after}
        if self.attention_mse is not None:
            row["attention_mse_before"], row["attention_mse_after"] = self.attention_mse
        return row


def pruned_student_spec(student: str | ModelSpec, teacher: str | ModelSpec) -> ModelSpec:
    """The student's prune spec, when the student is the teacher with layers dropped; else a UserError."""
    student_spec, teacher_spec = as_spec(student), as_spec(teacher)
    if student_spec.derivation != "prune" or teacher_spec.derivation is not None or student_spec.base != teacher_spec.base:
        raise UserError(Message("train.heal_init needs a student that is the teacher with layers dropped "
                                "('{base}?prune=...'), got models.student={student!r}; set train.heal_init=false",
                                base=teacher_spec.base, student=student_spec.text))
    return student_spec


def gaps(kept: list[int], teacher_layers: int) -> list[tuple[int, int]]:
    """(student layer, teacher layer whose output it should reproduce) for each student layer before a gap."""
    result = []
    for i, source in enumerate(kept):
        following = kept[i + 1] if i + 1 < len(kept) else teacher_layers
        if following - source > 1:
            result.append((i, following - 1))
    return result


def fit_plan(kept: list[int], teacher_layers: int) -> list[tuple[int, int]]:
    """The fits, in model order: each layer before a gap aims across it (`gaps`), and the kept layer right after the
    gap aims at its own teacher original, taking up what the first fit left. The student's last layer is refitted
    only across a trailing gap: fitting it to the teacher's last output raised perplexity
    (docs/choosing-the-student.md)."""
    plan = set(gaps(kept, teacher_layers))
    plan |= {(i + 1, kept[i + 1]) for i, _ in gaps(kept, teacher_layers) if i + 1 < len(kept) - 1}
    return sorted(plan)


def width_fit_plan(kept: list[int]) -> list[tuple[int, int]]:
    """Every layer but the last aims at the teacher's output just before the next kept layer: its own original's
    output where no layer follows a gap, the far end of the gap otherwise."""
    return [(i, kept[i + 1] - 1) for i in range(len(kept) - 1)]


def mlp_branch(layer: nn.Module) -> nn.Module:
    """The layer's MLP, whose output is the last term added to its residual stream (attention output cannot be
    refitted linearly: in a sequential block the MLP reads it)."""
    names = {name for name, _ in layer.named_children()}
    mlp = getattr(layer, "mlp", None)
    if mlp is None or names & {"pre_feedforward_layernorm", "post_feedforward_layernorm"}:
        raise UserError(f"train.heal_init supports decoder layers that add a plain `mlp` output to the residual; "
                        f"{type(layer).__name__} has none or normalises it; set train.heal_init=false")
    return mlp


def output_projection(branch: nn.Module, width: int) -> nn.Module:
    """The last projection of width `width` in a branch (down_proj, o_proj, c_proj, dense_4h_to_h ...)."""
    projections = [m for m in branch.modules() if _out_features(m) == width]
    if not projections:
        raise UserError(f"train.heal_init: no output projection of width {width} in {type(branch).__name__}")
    return projections[-1]


def _out_features(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.out_features
    if type(module).__name__ == "Conv1D":  # GPT-2: weight (in, out), y = x W + b
        return module.weight.shape[1]
    return None


@torch.no_grad()
def fold(projection: nn.Module, transform: torch.Tensor) -> None:
    """Make `projection`'s output y become y @ transform (transform: (H, H))."""
    weight = projection.weight
    t = transform.to(device=weight.device, dtype=torch.float64)
    if isinstance(projection, nn.Linear):  # weight (H, I): y = x Wᵀ → y X = x (Xᵀ W)ᵀ
        weight.copy_((t.T @ weight.double()).to(weight.dtype))
    else:  # Conv1D weight (I, H): y = x W → y X = x (W X)
        weight.copy_((weight.double() @ t).to(weight.dtype))
    if getattr(projection, "bias", None) is not None:
        projection.bias.copy_((projection.bias.double() @ t).to(projection.bias.dtype))


def _solve(a: torch.Tensor, b: torch.Tensor, dd: float, count: int, ridge: float) -> tuple[torch.Tensor, float, float]:
    """The ridge fit toward the identity from the sums A = MᵀM, B = MᵀD, ‖D‖²; returns (X, mse before, after)."""
    width = a.shape[0]
    eye = torch.eye(width, dtype=torch.float64)
    lam = ridge * float(torch.trace(a)) / width
    transform = torch.linalg.solve(a + lam * eye, b + lam * eye)

    def error(x: torch.Tensor) -> float:
        return (float(torch.trace(x.T @ a @ x)) - 2 * float(torch.trace(x.T @ b)) + dd) / (count * width)

    return transform, error(eye), error(transform)


@torch.no_grad()
def _refit_layer(layer: nn.Module, hidden: list[torch.Tensor], calls: list, targets: list[torch.Tensor],
                 ridge: float) -> tuple[list[torch.Tensor], float, float]:
    """Fit and fold one layer from its inputs; returns its new outputs (Y + M(X − I), what the folded layer
    gives) with the mse before and after."""
    width = targets[0].shape[-1]
    seen: dict[str, torch.Tensor] = {}
    handle = mlp_branch(layer).register_forward_hook(lambda m, a, out: seen.__setitem__("mlp", layer_output(out)))
    a = torch.zeros(width, width, dtype=torch.float64)
    b = torch.zeros(width, width, dtype=torch.float64)
    dd, count, pieces = 0.0, 0, []
    try:
        for h, call, target in zip(hidden, calls, targets, strict=True):
            out = run_layer(layer, h, call)
            m = seen["mlp"].double().cpu().reshape(-1, width)  # (N, H)
            d = target.double().reshape(-1, width) - (out.double().cpu().reshape(-1, width) - m)
            a += m.T @ m
            b += m.T @ d
            dd += float((d * d).sum())
            count += m.shape[0]
            pieces.append((out, seen["mlp"]))
    finally:
        handle.remove()
    transform, before, after = _solve(a, b, dd, count, ridge)
    fold(output_projection(mlp_branch(layer), width), transform)
    shift = (transform - torch.eye(width, dtype=torch.float64)).to(hidden[0].device)
    outputs = [(out.double() + m.double() @ shift).to(out.dtype) for out, m in pieces]
    return outputs, before, after


@torch.no_grad()
def _refit_down_projection(layer: nn.Module, hidden: list[torch.Tensor], calls: list, targets: list[torch.Tensor],
                           ridge: float) -> tuple[list[torch.Tensor], float, float]:
    """Solve a width-pruned layer's MLP down projection (see the module doc); returns the layer's new outputs with the
    mse before and after."""
    down = mlp_branch(layer).down_proj
    seen: dict[str, torch.Tensor] = {}
    handle = down.register_forward_hook(lambda m, a, out: seen.update(act=a[0], out=_weight_term(m, out)))
    inner, width = down.in_features, down.out_features
    gram = torch.zeros(inner, inner, dtype=torch.float32)
    cross = torch.zeros(inner, width, dtype=torch.float32)  # float32 sums: float64 products cost minutes here
    dd, count, pieces = 0.0, 0, []
    try:
        for h, call, target in zip(hidden, calls, targets, strict=True):
            out = run_layer(layer, h, call)
            act = seen["act"].float().cpu().reshape(-1, inner)  # (N, I')
            rest = out.float().cpu().reshape(-1, width) - seen["out"].float().cpu().reshape(-1, width)
            d = target.float().reshape(-1, width) - rest  # what the MLP should add: (N, H')
            gram += act.T @ act
            cross += act.T @ d
            dd += float((d * d).sum())
            count += act.shape[0]
            pieces.append((rest.reshape(out.shape), act.reshape(*out.shape[:-1], inner)))
    finally:
        handle.remove()
    w0 = down.weight.detach().double().cpu().T  # (I', H')
    solution, before, after = _ridge_solve(gram.double(), cross.double(), dd, count, w0, ridge)
    down.weight.copy_(solution.T.to(down.weight.dtype))
    weight = down.weight.detach().float()
    outputs = [(rest + act @ weight.T.cpu()).to(h.dtype).to(h.device) for (rest, act), h
               in zip(pieces, hidden, strict=True)]
    return outputs, before, after


def attention_parts(layer: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """(output projection of the attention, the norm that reads the residual right after it), where the layer has
    them by the Llama/Qwen2 names; None otherwise (the attention is then left as pruned)."""
    attention = getattr(layer, "self_attn", None)
    projection = getattr(attention, "o_proj", None)
    norm = getattr(layer, "post_attention_layernorm", None)
    return None if projection is None or norm is None else (projection, norm)


@torch.no_grad()
def teacher_mid_states(teacher: nn.Module, teacher_layers: list[int], batches: list[torch.Tensor]) -> dict[int, list]:
    """The residual stream (B, T, H) right after the attention of each given teacher layer, per batch, float32 CPU."""
    layers, wanted, last = decoder_layers(teacher), sorted(set(teacher_layers)), max(teacher_layers)
    store: dict[int, list] = {t: [] for t in wanted}

    def hook_for(index: int):
        def hook(module, args):
            store[index].append(args[0].float().cpu())
            if index == last:
                raise StopForward
        return hook

    handles = [attention_parts(layers[t])[1].register_forward_pre_hook(hook_for(t)) for t in wanted]
    run_hooked(teacher, handles, batches)
    return store


@torch.no_grad()
def _refit_attention_output(layer: nn.Module, hidden: list[torch.Tensor], calls: list, targets: list[torch.Tensor],
                            ridge: float) -> tuple[float, float]:
    """Solve the attention's output projection of a width-pruned layer so that the residual after the attention
    reaches the teacher's at the same point (`targets`), from the heads' outputs C (N, heads · head_dim), with a ridge
    toward the pruned weights: the same solve as the down projection's. Returns the mse before and after."""
    projection, norm = attention_parts(layer)
    seen: dict[str, torch.Tensor] = {}
    handles = [projection.register_forward_hook(lambda m, a, out: seen.update(context=a[0], out=_weight_term(m, out))),
               norm.register_forward_pre_hook(lambda m, a: seen.update(mid=a[0]))]
    inner, width = projection.in_features, projection.out_features
    gram = torch.zeros(inner, inner, dtype=torch.float32)
    cross = torch.zeros(inner, width, dtype=torch.float32)
    dd, count = 0.0, 0
    try:
        for h, call, target in zip(hidden, calls, targets, strict=True):
            run_layer(layer, h, call)
            context = seen["context"].float().cpu().reshape(-1, inner)
            rest = seen["mid"].float().cpu().reshape(-1, width) - seen["out"].float().cpu().reshape(-1, width)
            d = target.float().reshape(-1, width) - rest
            gram += context.T @ context
            cross += context.T @ d
            dd += float((d * d).sum())
            count += context.shape[0]
    finally:
        for handle in handles:
            handle.remove()
    solution, before, after = _ridge_solve(gram.double(), cross.double(), dd, count,
                                           projection.weight.detach().double().cpu().T, ridge)
    projection.weight.copy_(solution.T.to(projection.weight.dtype))
    return before, after


def _weight_term(projection: nn.Linear, out: torch.Tensor) -> torch.Tensor:
    """The part of a projection's output that its weight makes (a bias stays with the rest of the layer's output)."""
    return out if projection.bias is None else out - projection.bias


def _ridge_solve(a: torch.Tensor, cross: torch.Tensor, dd: float, count: int, w0: torch.Tensor,
                 ridge: float) -> tuple[torch.Tensor, float, float]:
    """argmin ‖A_x X − D‖² + λ‖X − W₀‖² from the sums A = AₓᵀAₓ, cross = AₓᵀD, ‖D‖²; returns (X, mse at W₀, at X)."""
    inner, width = w0.shape
    lam = ridge * float(torch.trace(a)) / inner
    solution = torch.linalg.solve(a + lam * torch.eye(inner, dtype=torch.float64), cross + lam * w0)

    def error(x: torch.Tensor) -> float:
        return (float((x * (a @ x)).sum()) - 2 * float((x * cross).sum()) + dd) / (count * width)

    return solution, error(w0), error(solution)


@torch.no_grad()
def heal_student(student: nn.Module, teacher: nn.Module, kept: list[int], batches: list[torch.Tensor],
                 ridge: float = DEFAULT_RIDGE, progress=None, width: bool = False,
                 channels: torch.Tensor | None = None,
                 attention_ridge: float | None = ATTENTION_RIDGE) -> list[LayerFit]:
    """Heal the gaps of `student` (the teacher's layers `kept`) in place, in order; returns one LayerFit per refitted
    layer (`fit_plan`).

    `batches` are LongTensors (B, T) of training text without padding. The student runs once up to the last
    refitted layer to record each layer's call; from the first refitted layer on, the layers are then run one at a
    time on the updated hidden states, so each fit sees the earlier ones folded in. Both models are put in eval
    mode (no dropout) and left so; the caller sets train mode. `progress(done, total)` is called after each fit.
    With `width` the student is width-pruned: every layer's down projection is solved (`width_fit_plan`), after its
    attention output projection where the layer has one by the Llama/Qwen2 names and `attention_ridge` is not None,
    against the teacher's hidden `channels` that the student kept (None: all of them).
    """
    layers = decoder_layers(student)
    if len(kept) != len(layers):
        raise UserError(Message("train.heal_init: the student has {layers} layers but its prune spec keeps {kept}",
                                layers=len(layers), kept=len(kept)))
    plan = dict(width_fit_plan(kept) if width else fit_plan(kept, len(decoder_layers(teacher))))
    if not plan or not batches:
        return []
    student.eval(), teacher.eval()
    targets = teacher_targets(teacher, list(plan.values()), batches)
    attention = width and attention_ridge is not None and all(attention_parts(layers[i]) for i in plan)
    mids = teacher_mid_states(teacher, [kept[i] for i in plan], batches) if attention else {}
    if channels is not None:
        targets = {layer: [t[..., channels] for t in outputs] for layer, outputs in targets.items()}
        mids = {layer: [t[..., channels] for t in outputs] for layer, outputs in mids.items()}
    first, last = min(plan), max(plan)
    hidden, calls = layer_calls(student, batches, first, last)
    fits = []
    for index in range(first, last + 1):
        calls_here = calls[index - first]
        if index in plan:
            attention_mse = None
            if attention:
                attention_mse = _refit_attention_output(layers[index], hidden, calls_here, mids[kept[index]],
                                                        attention_ridge)
            refit = _refit_down_projection if width else _refit_layer
            hidden, before, after = refit(layers[index], hidden, calls_here, targets[plan[index]], ridge)
            fits.append(LayerFit(index, plan[index], before, after, attention_mse))
            if progress is not None:
                progress(len(fits), len(plan))
        elif index < last:
            hidden = [run_layer(layers[index], h, call) for h, call in zip(hidden, calls_here, strict=True)]
    return fits


def heal_for_config(cfg, student: nn.Module, teacher: nn.Module, train_ids: torch.Tensor, progress=None, *,
                    spec: ModelSpec | None = None) -> list[LayerFit]:
    """`train.heal_init` of a DistillConfig: heal `student` on the first `train.heal_sequences` training rows.
    `spec`: the student's prune spec as `pruned_student_spec` returned it, where the caller has it (a run does)."""
    spec = spec or pruned_student_spec(cfg.models.student, cfg.models.teacher)
    kept = resolve_layers(spec, base_layers=len(decoder_layers(teacher)),
                          trust_remote_code=cfg.models.trust_remote_code)
    channels = None
    if spec.width.hidden is not None:
        channels = resolve_width(spec, kept, trust_remote_code=cfg.models.trust_remote_code).hidden
    return heal_student(student, teacher, kept, list(train_ids[: cfg.train.heal_sequences].split(FIT_BATCH)),
                        progress=progress, width=bool(spec.width), channels=channels)
