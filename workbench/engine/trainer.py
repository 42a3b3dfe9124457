"""The distillation training loop on accelerate: setup, loss step, optimizer step, eval, checkpoint.

    result = train(cfg, Path("runs/my-run"), sink=ListSink())          # or: workbench train --config x.yaml

One optimizer step consumes a global batch of batch_size × grad_accum × processes sequences, in a fixed order
derived from the seed (so a resumed run and a run on more processes read the same data). The loss of a step is

    w_ce·CE + w_kd·divergence + w_hidden·Σ hidden + w_attn·Σ attention

where CE and the divergence are summed over valid tokens and divided by the global count of valid tokens of the
whole step (all micro-batches, all processes), so 1×8 and 8×1 give the same gradient. The teacher runs frozen under
inference_mode, or not at all when `train.teacher_cache` names a cache from `workbench cache-teacher`.
Metrics leave only through the sink; the run folder contract is in `workbench.runs.folder`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from workbench.config import DistillConfig
from workbench.engine.capture import LayerCapture
from workbench.engine.distill_student import DistillStudent
from workbench.engine.genquality import sample_row
from workbench.engine.mapping import Projectors, config_mapping
from workbench.engine.optim import build_optimizer, build_scheduler, clamped_warmup
from workbench.engine.saving import restore_checkpoint, save_outputs, save_session
from workbench.engine.step import TERMS, TrainingState, evaluate, generation_eval, optimizer_step
from workbench.engine.teacher_cache import TeacherCache
from workbench.engine.teacher_prompts import prompt_examples, read_prompts, save_prompts, write_prompts
from workbench.engine.teachers import teacher_signal
from workbench.errors import UserError
from workbench.models.lora import wrap_lora
from workbench.runs.folder import RunFolder
from workbench.runs.lifecycle import device_lock, stop_on_signals
from workbench.runs.reporters import report_sinks
from workbench.runs.sinks import JsonlSink, MultiSink, NullSink, Sink
from workbench.timing import rate

STATUS_EVERY_S = 1.0


def resolve_precision(cfg: DistillConfig, device: torch.device) -> str:
    if cfg.train.precision != "auto":
        return cfg.train.precision
    return "bf16" if device.type == "cuda" else "fp32"


def _stage_reporter(run: RunFolder, sink: Sink, main: bool):
    """setup()'s `stage` callback: the stage (and how far it got, e.g. "2/5" layer fits) goes to status.json,
    where the app shows it, and a new stage to the log."""
    def report(name: str, progress: str | None = None) -> None:
        if not main:
            return
        if progress is not None and run.read_status().get("stage") == name:
            run.update_status(stage_progress=progress)
            return
        run.update_status(stage=name, stage_started=time.time(), stage_progress=progress)
        if name != "training":  # back to steps after a phase: the train rows say so
            sink.log(f"stage: {name}")

    return report


def _make_accelerator(cfg: DistillConfig):
    from accelerate import Accelerator

    cpu = cfg.train.device == "cpu" or (cfg.train.device == "auto" and not torch.cuda.is_available())
    if not cpu and not torch.cuda.is_available():
        raise UserError(f"train.device={cfg.train.device} but no CUDA device is available; use auto or cpu")
    mixed = "bf16" if cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and not cpu) else "no"
    return Accelerator(cpu=cpu, mixed_precision=mixed)


def setup(cfg: DistillConfig, accelerator, sink: Sink, *, heal: bool = True,
          stage=lambda name, progress=None: None, prompts_file: Path | None = None) -> TrainingState:
    """Load models, tokenizer and data; have the teacher write prompts if asked (kept in `prompts_file`, read back
    on resume); heal the student's gaps if asked (and `heal`: a resumed full fine-tune reads its weights from the
    checkpoint instead); build the trained module, optimizer and schedule. `stage(name)` is told when each part
    begins (the run's status shows it)."""
    from workbench.data.splits import build_splits
    from workbench.data.tasks import task_splits
    from workbench.engine.tokenizer_pairing import tokenizer_pairing
    from workbench.models.loading import load_model, load_tokenizer, num_layers, parse_spec

    m, loss = cfg.models, cfg.loss
    specs = {"student": parse_spec(m.student), "teacher": parse_spec(m.teacher)}  # parsed once, here
    torch.manual_seed(cfg.train.seed)
    stage("loading data")
    student_tok = load_tokenizer(specs["student"], trust_remote_code=m.trust_remote_code)
    teacher_tok = load_tokenizer(specs["teacher"], trust_remote_code=m.trust_remote_code)
    pairing = tokenizer_pairing(cfg, teacher_tok, student_tok)
    splits = task_splits(cfg.data, student_tok, cfg.train.seed) if cfg.data.tasks else build_splits(cfg.data, student_tok)
    if splits.train.shape[0] < 1 or splits.val.shape[0] < 1:
        raise UserError(f"data.dataset {cfg.data.dataset!r} gives too little text for seq_len {cfg.data.seq_len}")
    if cfg.onpolicy.lmbda > 0 and not splits.train_examples:
        raise UserError(f"onpolicy.lmbda: on-policy steps need prompts, and {cfg.data.dataset!r} is plain text; use "
                        "builtin:chat or a file with prompt and answer columns (or a messages column), or set 0")
    precision = resolve_precision(cfg, accelerator.device)
    attn = "eager" if loss.attn_weight > 0 else None
    load = dict(trust_remote_code=m.trust_remote_code, allow_pickle=m.allow_pickle, device=accelerator.device)
    stage("loading student")
    student = load_model(specs["student"], attn_implementation=attn, **load)
    uses_layers = loss.hidden_weight > 0 or loss.attn_weight > 0
    cache, teacher = None, None
    if cfg.train.teacher_cache:
        if uses_layers:
            raise UserError("train.teacher_cache keeps only logits; set loss.hidden_weight and loss.attn_weight to 0")
        cache = TeacherCache(cfg.train.teacher_cache, m.teacher, splits.train, splits.val)
    else:
        stage("loading teacher")
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        teacher = load_model(specs["teacher"], dtype=dtype, attn_implementation=attn or "sdpa", **load)
        teacher.requires_grad_(False).eval()
    if cfg.onpolicy.teacher_prompts:
        splits.train_examples += _teacher_prompts(cfg, accelerator, teacher, teacher_tok, student_tok, splits.heldout,
                                                  prompts_file, sink, stage)
    if cfg.train.heal_init and heal:
        stage("healing")
        _heal_gaps(cfg, specs, student, teacher, splits.train, load, sink, progress=lambda done, total: stage(
            "healing", f"{done}/{total}"))
    pairs = []
    if uses_layers:
        pairs = config_mapping(cfg, num_layers(student), num_layers(teacher), **specs)
    hidden_pairs = pairs if loss.hidden_weight > 0 else []
    attn_pairs = [p for p in pairs if p[0] != "emb" and p[1] != "emb"] if loss.attn_weight > 0 else []
    teacher_capture = None
    if teacher is not None and pairs:
        teacher_capture = LayerCapture(teacher, [t for _, t in hidden_pairs], [int(t) for _, t in attn_pairs])
    pairing.finish(teacher, student)
    student = _prepare_student(cfg, student)
    t_width = teacher.config.hidden_size if teacher is not None else student.config.hidden_size
    projectors = Projectors(hidden_pairs, student.config.hidden_size, t_width).to(accelerator.device)
    module = DistillStudent(student, projectors, hidden_pairs, attn_pairs)
    optimizer = build_optimizer(module, cfg.train.lr, cfg.train.weight_decay)
    if clamped_warmup(cfg.train.warmup_steps, cfg.train.steps) < cfg.train.warmup_steps:
        sink.log(f"train.warmup_steps {cfg.train.warmup_steps} is more than train.steps {cfg.train.steps}: "
                 f"warming up over all {cfg.train.steps} steps")
    scheduler = build_scheduler(optimizer, cfg.train.warmup_steps, cfg.train.steps)
    module, optimizer = accelerator.prepare(module, optimizer)
    sampler = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + accelerator.process_index + 1)
    stage("first step")
    return TrainingState(accelerator, module, teacher, teacher_capture, cache, student_tok, splits.train, splits.val,
                         optimizer, scheduler, precision, splits.train_mask, splits.val_mask, splits.train_examples,
                         splits.heldout, sampler, pairing=pairing, signal=teacher_signal(cfg, teacher, cache, pairing),
                         tasks=splits.tasks)


def _teacher_prompts(cfg: DistillConfig, accelerator, teacher, teacher_tok, student_tok, heldout: list,
                     path: Path | None, sink: Sink, stage) -> list:
    """`onpolicy.teacher_prompts`: requests the teacher writes (workbench.engine.teacher_prompts), written once by
    the main process, sent to every other process, kept in `path` and read from there by a resumed run."""
    from accelerate.utils import broadcast_object_list

    count = cfg.onpolicy.teacher_prompts
    if path is not None and path.exists():
        texts = read_prompts(path)
        sink.log(f"read {len(texts)} prompts the teacher wrote from {path.name}")
    else:
        texts = []
        if accelerator.is_main_process:
            stage("teacher writing prompts", f"0/{count}")
            start = time.perf_counter()
            with accelerator.autocast():
                texts = write_prompts(teacher, teacher_tok, count, seed=cfg.train.seed,
                                      avoid=[e.prompt for e in heldout],
                                      progress=lambda done, total: stage("teacher writing prompts", f"{done}/{total}"))
            sink.log(f"the teacher wrote {len(texts)} prompts of the {count} asked for (onpolicy.teacher_prompts) in "
                     f"{time.perf_counter() - start:.0f}s")
            if path is not None:
                save_prompts(path, texts)
        if accelerator.num_processes > 1:
            texts = broadcast_object_list([texts])[0]
    return prompt_examples(texts, student_tok)


def _heal_gaps(cfg: DistillConfig, specs: dict, student, teacher, train_ids: torch.Tensor, load: dict, sink: Sink,
               progress=None) -> None:
    """`train.heal_init`: fold a least-squares fit across each pruned gap into the student (workbench.models.heal)."""
    from workbench.models.heal import heal_for_config, pruned_student_spec
    from workbench.models.loading import load_model

    spec = pruned_student_spec(specs["student"], specs["teacher"])
    source = teacher if teacher is not None else load_model(specs["teacher"], attn_implementation="sdpa", **load)
    sink.log(f"healing the pruned gaps on {min(len(train_ids), cfg.train.heal_sequences)} training sequences "
             "(train.heal_init) ...")
    start = time.perf_counter()
    fits = heal_for_config(cfg, student, source, train_ids, progress, spec=spec)
    seconds = time.perf_counter() - start
    for fit in fits:
        sink.emit({"kind": "heal", "step": 0, **fit.to_dict(), "seconds": seconds, "time": time.time()})
    summary = ", ".join(f"{f.student_layer}→t{f.teacher_layer} mse {f.mse_before:.3g}→{f.mse_after:.3g}"
                        + (" (attention {:.3g}→{:.3g})".format(*f.attention_mse) if f.attention_mse else "")
                        for f in fits)
    sink.log(f"healed the pruned gaps with {len(fits)} layer fit(s) in {seconds:.1f}s on "
             f"{min(len(train_ids), cfg.train.heal_sequences)} sequences: {summary or 'the student has no gaps'}")


def _prepare_student(cfg: DistillConfig, student):
    if cfg.train.freeze_embeddings:
        student.get_input_embeddings().requires_grad_(False)
        student.get_output_embeddings().requires_grad_(False)
    if cfg.train.gradient_checkpointing:
        student.gradient_checkpointing_enable()
        if cfg.lora.enabled:
            student.enable_input_require_grads()
    if cfg.lora.enabled:
        student = wrap_lora(student, cfg.lora)
    if cfg.train.compile:
        student.compile()
    return student.train()


def _loop(cfg: DistillConfig, state: TrainingState, run: RunFolder, sink: Sink, stop: threading.Event, resume: bool,
          launched: float, stage: Callable[..., None] = lambda name, progress=None: None) -> str:
    """The training loop proper; returns the final state (finished or stopped). `stage` names each long phase
    between steps (evaluating, scoring held-out answers, saving) for the app; tokens/s is per logged interval,
    training steps only."""
    acc, main, total_steps = state.accelerator, state.accelerator.is_main_process, cfg.train.steps
    step, tokens, elapsed_before = restore_checkpoint(cfg, state, run, sink.log) if resume else (0, 0, 0.0)
    tokens_per_step = cfg.train.batch_size * cfg.train.grad_accum * acc.num_processes * state.train_ids.shape[1]
    start, start_step, last_status = time.perf_counter(), step, 0.0
    interval_tokens, interval_seconds = 0, 0.0  # since the last logged row: training steps only
    if main:
        run.update_status(state="running", step=step, total_steps=total_steps)
        onpolicy = cfg.onpolicy
        mode = "off-policy" if onpolicy.lmbda == 0 else (
            f"{'sequence-level KD' if onpolicy.seq_kd else 'on-policy'} on {onpolicy.lmbda:.0%} of the steps, "
            f"{onpolicy.max_new_tokens} sampled tokens at T {onpolicy.temperature:g}")
        sink.log(f"training {total_steps} steps from step {step} on {acc.device} ({acc.num_processes} process(es), "
                 f"{state.precision}, {'teacher cache' if state.cache else 'live teacher'}, {mode})")
    last = False
    while not last:
        if _stop_requested(stop, acc):
            break
        step_started = time.perf_counter()
        terms = optimizer_step(cfg, state, step)
        step_seconds = time.perf_counter() - step_started
        step += 1
        step_tokens = int(terms.get("step_tokens", tokens_per_step))
        tokens += step_tokens
        interval_tokens, interval_seconds = interval_tokens + step_tokens, interval_seconds + step_seconds
        session = time.perf_counter() - start
        last = step >= total_steps or _out_of_time(cfg, acc, elapsed_before + time.perf_counter() - launched)
        if main and (step % cfg.train.log_every == 0 or last):
            speed = rate(interval_tokens, interval_seconds)  # None: too fast to time
            interval_tokens, interval_seconds = 0, 0.0
            eta = (total_steps - step) * session / (step - start_step)  # evaluation and saving included
            sink.emit({"kind": "train", "step": step, **{k: terms[k] for k in ("total", *TERMS)},
                       "lr": state.scheduler.get_last_lr()[0], "tokens": tokens, "tokens_per_s": speed,
                       "elapsed": elapsed_before + session, "eta": eta, "time": time.time(),
                       **_generation_stats(terms, step_seconds)})
            _emit_sample(state, sink, step)
            if time.monotonic() - last_status >= STATUS_EVERY_S or last:
                run.update_status(step=step)  # throttled: each write is an fsync
                last_status = time.monotonic()
        _evaluate(cfg, state, sink, step, last, stage)
        if step % cfg.train.save_every == 0 and not last:
            stage("saving a checkpoint")
            save_session(cfg, state, run, sink, step, tokens, elapsed_before + session)
            stage("training")
    if not last:
        save_session(cfg, state, run, sink, step, tokens, elapsed_before + time.perf_counter() - start)
        return "stopped"
    if main:
        if step < total_steps:
            sink.log(f"train.max_minutes reached: training ends at step {step} of {total_steps}")
            run.update_status(total_steps=step)
        stage("saving the student")
        save_outputs(cfg, state, run)
        sink.log(f"finished: student saved to {run.student_dir}")
    return "finished"


def _out_of_time(cfg: DistillConfig, acc, elapsed: float) -> bool:
    """Whether `train.max_minutes` have passed since the run (or this resumed session) started, loading and healing
    included (every process agrees: any one that is out of time ends the run)."""
    if cfg.train.max_minutes is None:
        return False
    flag = torch.tensor([1.0 if elapsed >= cfg.train.max_minutes * 60 else 0.0], device=acc.device)
    if acc.num_processes > 1:
        flag = acc.reduce(flag, reduction="max")
    return bool(flag.item() > 0)


def _evaluate(cfg: DistillConfig, state: TrainingState, sink: Sink, step: int, last: bool,
              stage: Callable[..., None]) -> None:
    """The teacher-forced eval every train.eval_every steps, generation quality every train.gen_eval_every; each
    a stage of its own while it runs."""
    main = state.accelerator.is_main_process
    staged = False
    if step % cfg.train.eval_every == 0 or last:
        stage("final evaluation" if last else "evaluating")
        staged = True
        row = evaluate(cfg, state)
        if main:
            sink.emit({"kind": "eval", "step": step, **row, "time": time.time()})
    if step % (cfg.train.gen_eval_every or cfg.train.eval_every) == 0 or last:
        if main and cfg.train.gen_eval and state.heldout:
            stage("scoring held-out answers", f"({len(state.heldout)})")
            staged = True
        if main:
            _generation_eval(cfg, state, sink, step)
        state.accelerator.wait_for_everyone()
    if staged and not last:
        stage("training")


def _generation_stats(terms: dict[str, Any], step_seconds: float) -> dict[str, Any]:
    """On-policy fields of a train row: sampling speed, its share of the step's time, mean completion length."""
    if not terms.get("onpolicy"):
        return {"onpolicy": 0}
    seconds = terms["gen_seconds"]
    return {"onpolicy": 1, "gen_tokens_per_s": terms["gen_tokens"] / max(seconds, 1e-9),
            "gen_share": seconds / max(step_seconds, 1e-9), "completion_len": terms["completion_len"]}


def _emit_sample(state: TrainingState, sink: Sink, step: int) -> None:
    """The latest on-policy answer, each token with its reverse KL to the teacher (`sample` row)."""

    if state.last_sample is None:
        return
    example = state.train_examples[state.last_sample["index"]]
    sink.emit({**sample_row(state.tokenizer, example.prompt, state.last_sample["tokens"], state.last_sample, step,
                            "onpolicy"), "time": time.time()})
    state.last_sample = None


def _generation_eval(cfg: DistillConfig, state: TrainingState, sink: Sink, step: int) -> None:
    """Score what the student generates on the held-out prompts (`gen_eval` and `sample` rows)."""
    started = time.perf_counter()
    result = generation_eval(cfg, state, step)
    if result is None:
        return
    row, sample = result
    sink.emit({**row, "seconds": time.perf_counter() - started, "time": time.time()})
    sink.emit({**sample, "time": time.time()})
    sink.log(f"step {step}: on {row['measured_on']}: reverse KL {row['gen_rkl']:.3f} nats/token, teacher NLL "
             f"{row['gen_teacher_nll']:.3f}, repeated 4-grams {row['gen_rep4']:.1%}, empty {row['gen_empty']:.0%}, "
             f"mean length {row['gen_len']:.1f} tokens")


def _stop_requested(stop: threading.Event, acc) -> bool:
    if acc.num_processes == 1:
        return stop.is_set()
    flag = torch.tensor([1.0 if stop.is_set() else 0.0], device=acc.device)
    return bool(acc.reduce(flag, reduction="sum").item() > 0)


def train(
    cfg: DistillConfig,
    run_dir: Path,
    sink: Sink | None = None,
    *,
    resume: bool = False,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Train a student by distillation into the run folder `run_dir`; returns {"state", "step", "run_dir", ...}.

    `stop` (set it from another thread, or by SIGINT/SIGTERM) ends the run after the current step with a
    checkpoint. Raises on failure after recording it in status.json (state failed, error, exit_code 1).
    """
    run = RunFolder(Path(run_dir))
    run.path.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    accelerator = _make_accelerator(cfg)
    main = accelerator.is_main_process
    trackers = report_sinks(cfg.train.report_to, run.path, cfg.to_dict()) if main else []
    sink = MultiSink(JsonlSink(run.metrics_path), *trackers, sink) if main else NullSink()
    if main:
        if not run.config_path.exists():
            cfg.save(run.config_path)
        status = run.read_status() if run.status_path.exists() else {}
        run.update_status(state="queued", pid=os.getpid(), created=status.get("created") or time.time(),
                          error=None, exit_code=None, total_steps=cfg.train.steps)
    device = str(accelerator.device) if accelerator.device.type != "cuda" else f"cuda{accelerator.device.index or 0}"
    lock = device_lock(run.path.parent, device, stop) if main else contextlib.nullcontext(True)
    with stop_on_signals(stop, run if main else None), lock as locked:
        if not locked:
            run.update_status(state="stopped", ended=time.time(), exit_code=0)
            return {"state": "stopped", "step": 0, "run_dir": str(run.path)}
        try:
            if main:
                run.update_status(state="running", started=time.time(), pid=os.getpid())
            launched = time.perf_counter()  # train.max_minutes counts loading and healing too
            stage = _stage_reporter(run, sink, main)
            s = setup(cfg, accelerator, sink, heal=not resume or cfg.lora.enabled, stage=stage,
                      prompts_file=run.teacher_prompts_path)
            with contextlib.closing(s):
                state = _loop(cfg, s, run, sink, stop, resume, launched, stage)
        except BaseException as exc:
            if main:
                latest = run.latest_checkpoint()
                keep = f"; last good checkpoint: {latest}" if latest else ""
                message = (str(exc).splitlines() or [type(exc).__name__])[0] + keep
                run.update_status(state="failed", error=message, ended=time.time(), exit_code=1)
                sink.log(f"failed: {message}")
            raise
        finally:
            sink.close()
    if accelerator.num_processes > 1:  # every process leaves together; a peer torn down early aborts the others
        accelerator.wait_for_everyone()
        accelerator.end_training()
    status = {}
    if main:
        status = run.update_status(state=state, ended=time.time(), exit_code=0)
    return {"state": state, "step": status.get("step"), "run_dir": str(run.path)}
