"""Event handlers of the setup tab (kept apart from its layout in `tab_setup.py`). Each event has an api_name."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from workbench.analysis.plots import mapping_figure, temperature_figure, temperature_preview
from workbench.app import setup_logic as logic
from workbench.app.context import user_error
from workbench.app.i18n import lang_of, localize, tr, translator
from workbench.app.setup_tasks import task_table
from workbench.config import DistillConfig, load_preset, preset_names
from workbench.errors import UserError
from workbench.forms import PAIR_COLUMNS, command_preview, config_to_form, form_to_config, rows_to_pairs

BETA_KINDS = ("jsd", "kl_mix")
ALPHA_KINDS = ("skew_forward_kl", "skew_reverse_kl")
QUIET = dict(show_progress="hidden", trigger_mode="always_last")


def config_from_args(fields: list[str], preset: str, args: tuple) -> DistillConfig:
    """The config the form shows: the preset (or the schema defaults) with every form value applied."""
    base = load_preset(preset) if preset in preset_names() else DistillConfig()
    return form_to_config(dict(zip(fields, args, strict=True)), base)


def _card(teacher: str, student: str, trust: bool, batch: float, seq_len: float, request: gr.Request = None):
    lang = lang_of(request)
    text, same_tokenizer = logic.compatibility_card_text(teacher, student, int(batch or 1), int(seq_len or 8), trust, lang)
    card = text if same_tokenizer is not None else f'<p class="kd-legend">{html.escape(text)}</p>'
    if not (teacher or "").strip() or not (student or "").strip():
        status = ""
    elif same_tokenizer:
        status = (f'<span class="kd-badge kd-ok">{tr("compatible pair", lang)}</span> '
                  + tr("same tokenizer: logit distillation works.", lang))
    elif same_tokenizer is False:
        status = (f'<span class="kd-badge kd-ok">{tr("two tokenizers", lang)}</span> '
                  + tr("logit distillation aligns the two tokenizations (see the alignment below).", lang))
    else:
        status = (f'<span class="kd-badge kd-bad">{tr("not distillable as is", lang)}</span> '
                  f'{html.escape(text.splitlines()[0])}')
    return card, status


def _alignment(teacher: str, student: str, text: str, request: gr.Request = None) -> str:
    try:
        return logic.tokenizer_alignment(teacher or "", student or "", text)
    except (ValueError, OSError) as exc:
        raise user_error(tr("Tokenizer alignment: {error}", lang_of(request), error=exc)) from None


def _heal_choice(teacher: str, student: str, current: bool):
    """Untick train.heal_init when the student is not the teacher with layers dropped (the fit would be refused)."""
    from workbench.models.heal import pruned_student_spec

    try:
        pruned_student_spec(student, teacher)
    except UserError:
        return gr.update(value=False)
    return gr.update(value=current)


def _lora_choices(student: str, current: list[str]):
    try:
        names, defaults = logic.lora_targets(student)
    except (ValueError, OSError):
        return gr.update()
    return gr.update(choices=names, value=[m for m in (current or []) if m in names] or defaults)


def _mapping(strategy: str, rows: Any, student: str, teacher: str, request: gr.Request = None):
    lang = lang_of(request)
    pairs = rows_to_pairs(rows)
    try:
        check = logic.mapping_check(strategy, pairs, student, teacher)
    except (ValueError, OSError) as exc:
        return None, tr("Cannot read the models' layer counts: {error}", lang, error=exc)
    figure = mapping_figure(check["pairs"], check["student_layers"], check["teacher_layers"], check["invalid"],
                            text=translator(lang))
    if check["errors"]:
        status = f'<span class="kd-badge kd-bad">{tr("invalid pairs", lang)}</span> '
        status += tr("fix before starting:", lang) + "\n\n" + "\n".join(f"- {localize(error, lang)}"
                                                                        for error in check["errors"])
    else:
        status = (f'<span class="kd-badge kd-ok">{tr("{count} pair(s)", lang, count=len(check["pairs"]))}</span> '
                  + tr("student has {student} layers, teacher {teacher}.", lang, student=check["student_layers"],
                       teacher=check["teacher_layers"]))
    return figure, status


def _add_pair(rows: Any, student_layer: str, teacher_layer: str, request: gr.Request = None):
    """Append the typed pair to the custom pairs (and switch the strategy to custom)."""
    student_layer, teacher_layer = (student_layer or "").strip(), (teacher_layer or "").strip()
    if not student_layer or not teacher_layer:
        raise user_error(tr("Type a student layer and a teacher layer (numbers from 0, or emb) before adding a pair.",
                          lang_of(request)))
    kept = [[s, t] for s, t in (pair.split(":") for pair in rows_to_pairs(rows))]
    return [*kept, [student_layer, teacher_layer]], "custom", "", ""


def _pair_headers(rows: Any, request: gr.Request = None):
    """The custom-pairs table with its column names in the session's language (to gradio a table's headers are part
    of its value)."""
    lang = lang_of(request)
    return rows.set_axis([tr(name, lang) for name in PAIR_COLUMNS], axis=1)


def _strategy_for_student(teacher: str, student: str, current: str):
    """A student made by dropping teacher layers compares best with the layers it was copied from."""
    from workbench.engine.mapping import is_pruned_from

    if is_pruned_from((student or "").strip(), (teacher or "").strip()):
        return gr.update(value="source") if current in ("uniform", "source") else gr.update()
    return gr.update(value="uniform") if current == "source" else gr.update()


def _preview(ctx, teacher: str, student: str, prompt: str, temperature: float, request: gr.Request = None):
    lang = lang_of(request)
    try:
        entry = logic.next_token_logits(ctx, teacher, student, prompt)
    except (ValueError, OSError) as exc:
        raise user_error(tr("Preview needs both models: {error}", lang, error=exc)) from None
    preview = temperature_preview(entry["decode"], entry["teacher"], entry["student"], float(temperature))
    text = tr("At **T = {t}**: teacher entropy **{te}** nats, student entropy **{se}** nats; teacher top token "
              "`{token}` at {share}.", lang, t=f"{float(temperature):g}", te=f"{preview['teacher_entropy']:.3f}",
              se=f"{preview['student_entropy']:.3f}", token=repr(preview["tokens"][0]),
              share=f"{preview['teacher'][0]:.1%}")
    return temperature_figure(preview, translator(lang)), text


def _check_mapping(cfg: DistillConfig) -> None:
    """Raise the first problem of the config's layer mapping against both models' depths (when it is used)."""
    uses_layers = cfg.loss.hidden_weight > 0 or cfg.loss.attn_weight > 0
    if not uses_layers and cfg.mapping.strategy != "custom":
        return
    try:
        check = logic.mapping_check(cfg.mapping.strategy, list(cfg.mapping.pairs), cfg.models.student,
                                    cfg.models.teacher)
    except (ValueError, OSError):
        return  # the models cannot be read yet: the card says why
    if check["errors"]:
        raise UserError(check["errors"][0])


def _form_updates(c: dict, cfg: DistillConfig, keep_models: tuple[str, str] | None = None) -> list:
    values = config_to_form(cfg)
    if keep_models:
        values["models.teacher"], values["models.student"] = keep_models
    updates = []
    for name in c["fields"]:
        value = values[name]
        if name == "mapping.pairs":
            value = value or [["", ""]]
        if name == "data.tasks":
            value = task_table(value)
        if name == "lora.target_modules":
            updates.append(gr.update(value=value, choices=value or None))
            continue
        updates.append(gr.update(value=value))
    return updates


def _save_yaml(fields, lang: str, preset, *args) -> str:
    try:
        cfg = config_from_args(fields, preset, args)
    except UserError as exc:
        raise user_error(exc, lang) from None
    name = cfg.run.name or "kd-config"
    path = Path(tempfile.mkdtemp(prefix="kd-config-")) / f"{name}.yaml"
    cfg.save(path)
    return gr.update(value=str(path), visible=True)


def wire_setup(ctx, c: dict) -> None:
    fields = c["fields"]
    inputs = [c[name] for name in fields]
    pair = [c["models.teacher"], c["models.student"], c["models.trust_remote_code"], c["train.batch_size"],
            c["data.seq_len"]]
    gr.on([c["models.teacher"].change, c["models.student"].change, c["models.trust_remote_code"].change,
           c["card_refresh"].click], _card, pair, [c["card"], c["card_status"]], api_name="compatibility_card", **QUIET)
    c["load_events"] = [(_card, pair, [c["card"], c["card_status"]], "setup_card_on_load")]
    c["align_btn"].click(_alignment, [c["models.teacher"], c["models.student"], c["align_text"]], c["align_view"],
                         api_name="tokenizer_alignment")
    c["models.student"].change(_lora_choices, [c["models.student"], c["lora.target_modules"]],
                               c["lora.target_modules"], api_name="lora_targets", **QUIET)
    c["load_events"].append((_lora_choices, [c["models.student"], c["lora.target_modules"]],
                             c["lora.target_modules"], "lora_targets_on_load"))
    gr.on([c["models.teacher"].change, c["models.student"].change], _strategy_for_student,
          [c["models.teacher"], c["models.student"], c["mapping.strategy"]], c["mapping.strategy"],
          api_name="mapping_strategy_for_student", **QUIET)
    c["load_events"].append((_strategy_for_student, [c["models.teacher"], c["models.student"], c["mapping.strategy"]],
                             c["mapping.strategy"], "mapping_strategy_on_load"))
    c["pair_add"].click(_add_pair, [c["mapping.pairs"], c["pair_student"], c["pair_teacher"]],
                        [c["mapping.pairs"], c["mapping.strategy"], c["pair_student"], c["pair_teacher"]],
                        api_name="mapping_add_pair")
    gr.on([c["models.teacher"].change, c["models.student"].change], _heal_choice,
          [c["models.teacher"], c["models.student"], c["train.heal_init"]], c["train.heal_init"],
          api_name="heal_choice", **QUIET)
    mapping_inputs = [c["mapping.strategy"], c["mapping.pairs"], c["models.student"], c["models.teacher"]]
    gr.on([c["mapping.strategy"].change, c["mapping.pairs"].change, c["mapping.pairs"].input,
           c["models.student"].change, c["models.teacher"].change], _mapping, mapping_inputs,
          [c["mapping_plot"], c["mapping_status"]],
          api_name="mapping_check", **QUIET)
    c["load_events"].append((_mapping, mapping_inputs, [c["mapping_plot"], c["mapping_status"]], "mapping_on_load"))
    c["load_events"].append((_pair_headers, c["mapping.pairs"], c["mapping.pairs"], "mapping_headers_on_load"))
    c["loss.divergence"].change(lambda kind: (gr.update(visible=kind in BETA_KINDS), gr.update(visible=kind in ALPHA_KINDS)),
                          c["loss.divergence"], [c["loss.beta"], c["loss.alpha"]], api_name="loss_divergence", queue=False)
    preview_inputs = [c["models.teacher"], c["models.student"], c["sample_prompt"], c["loss.temperature"]]
    def preview(teacher, student, prompt, temperature, request: gr.Request = None):
        return _preview(ctx, teacher, student, prompt, temperature, request)

    gr.on([c["loss.temperature"].change, c["preview_btn"].click, c["sample_prompt"].submit],
          preview, preview_inputs, [c["preview_plot"], c["preview_text"]], api_name="temperature_preview", **QUIET)
    c["load_events"].append((preview, preview_inputs, [c["preview_plot"], c["preview_text"]],
                             "temperature_preview_on_load"))
    def upload_data(upload):
        stored = logic.store_upload(ctx, upload)
        return gr.update(choices=logic.dataset_choices(ctx, stored), value=stored)

    c["data_upload"].upload(upload_data, c["data_upload"], c["data.dataset"], api_name="upload_data")

    def preview_data(dataset, column, seq_len, student, request: gr.Request = None):
        try:
            rows = logic.dataset_preview(dataset, column, seq_len, student)
        except (ValueError, OSError, ImportError) as exc:
            raise user_error(tr("Dataset preview failed: {error}", lang_of(request), error=exc)) from None
        headers = ["#", *[tr(name, lang_of(request)) for name in ("tokens", "text")]]
        return gr.update(value=rows, headers=headers, visible=True)

    c["data_preview_btn"].click(preview_data, [c["data.dataset"], c["data.text_column"], c["data.seq_len"],
                                               c["models.student"]], c["data_preview"], api_name="data_preview")

    def apply_preset(preset, teacher, student):
        return _form_updates(c, load_preset(preset), keep_models=(teacher, student))

    c["preset"].change(apply_preset, [c["preset"], c["models.teacher"], c["models.student"]], inputs,
                       api_name="apply_preset")

    def load_yaml(path, request: gr.Request = None):
        try:
            return _form_updates(c, DistillConfig.load(path))
        except UserError as exc:
            raise user_error(exc, lang_of(request)) from None

    def save_yaml(request: gr.Request, preset, *args):  # request first: gradio fills only positional parameters
        return _save_yaml(fields, lang_of(request), preset, *args)

    c["yaml_upload"].upload(load_yaml, c["yaml_upload"], inputs, api_name="load_yaml")
    c["yaml_download"].click(save_yaml, [c["preset"], *inputs], c["yaml_file"], api_name="save_yaml")

    def preview_command(request: gr.Request, preset, *args):
        try:
            cfg = config_from_args(fields, preset, args)
            _check_mapping(cfg)
            return command_preview(cfg, preset=preset, runs_dir=ctx.runs_dir)
        except UserError as exc:
            return tr("# not valid yet: {error}", lang_of(request), error=exc)

    gr.on([comp.change for comp in inputs] + [c["preset"].change], preview_command, [c["preset"], *inputs],
          c["command"], api_name="command_preview", **QUIET)
    c["load_events"].append((preview_command, [c["preset"], *inputs], c["command"], "command_on_load"))
