"""Setup tab: models and data, loss and temperature preview, layer mapping, LoRA, training, presets and YAML.

Every control is typed and bound to one config field ("section.key", see `workbench.forms.FORM_FIELDS`); the tab
returns its components by name plus `fields` (the ordered list the Train tab reads to build a `DistillConfig`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from workbench.analysis.alignment_view import SAMPLE_TEXT
from workbench.app import setup_logic as logic
from workbench.app.context import ENGLISH_ONLY
from workbench.app.i18n import help_text, t
from workbench.app.setup_events import ALPHA_KINDS, BETA_KINDS, wire_setup
from workbench.app.setup_tasks import tasks_section, wire_tasks
from workbench.config import DistillConfig, field_choices, field_slider, load_preset, preset_names
from workbench.forms import FORM_FIELDS, PAIR_COLUMNS, config_to_form

DEFAULT_PRESET = "quick"


def _info(name: str):
    return help_text(name)


def _number(name: str, label: str, value: Any, **kw) -> gr.Number:
    """No minimum/maximum here: gradio's own range error does not name the field; the config's check does."""
    return gr.Number(value=value, label=t(label), info=_info(name), **kw)


def _models_section(ctx, c: dict, v: dict) -> None:
    with gr.Row():
        c["models.teacher"] = gr.Dropdown(logic.model_choices(ctx, "teacher"), value=ctx.teacher, label=t("Teacher"),
                                          allow_custom_value=True, filterable=True, info=_info("models.teacher"))
        c["models.student"] = gr.Dropdown(logic.model_choices(ctx, "student"), value=ctx.student, label=t("Student"),
                                          allow_custom_value=True, filterable=True, info=_info("models.student"))
    with gr.Row():
        c["models.trust_remote_code"] = gr.Checkbox(v["models.trust_remote_code"], label=t("Trust remote code"),
                                                    info=_info("models.trust_remote_code"))
        c["card_refresh"] = gr.Button(t("Check pair"), size="sm", scale=0)
    c["card_status"] = gr.Markdown("", elem_id="card-status")
    with gr.Accordion(t("Compatibility card"), open=True):
        c["card"] = gr.HTML(value="", elem_id="pair-card")
    with gr.Accordion(t("Tokenizer alignment"), open=False):
        with gr.Row():
            c["align_text"] = gr.Textbox(SAMPLE_TEXT, label=t("Sample text"), lines=2, scale=4,
                                         info=t("Tokenized by both models; each coloured box is a span both cover."))
            c["align_btn"] = gr.Button(t("Show alignment"), size="sm", scale=0)
        c["align_view"] = gr.HTML("", elem_id="tokenizer-alignment")


def _data_section(c: dict, v: dict, ctx) -> None:
    with gr.Row():
        c["data.dataset"] = gr.Dropdown(logic.dataset_choices(ctx, v["data.dataset"]), value=v["data.dataset"],
                                        label=t("Dataset"), allow_custom_value=True, info=_info("data.dataset"), scale=3)
        c["data.text_column"] = gr.Textbox(v["data.text_column"], label=t("Text column"),
                                           info=_info("data.text_column"), scale=1)
        c["data_upload"] = gr.UploadButton(t("Upload data file"), file_types=[".txt", ".jsonl", ".csv", ".parquet"],
                                           size="sm", scale=0)
    with gr.Row():
        c["data.seq_len"] = gr.Slider(value=v["data.seq_len"], **field_slider("data.seq_len"), label=t("Sequence length"),
                                      info=_info("data.seq_len"))
        c["data.val_fraction"] = gr.Slider(value=v["data.val_fraction"], **field_slider("data.val_fraction"),
                                           label=t("Validation fraction"), info=_info("data.val_fraction"))
        c["data.max_sequences"] = _number("data.max_sequences", "Max sequences (0 = all)", v["data.max_sequences"],
                                          precision=0)
    c["data_preview_btn"] = gr.Button(t("Preview packed examples"), size="sm")
    c["data_preview"] = gr.Dataframe(headers=["#", "tokens", "text"], value=[], label=t("Packed examples"),
                                     interactive=False, wrap=True, visible=False)


def _loss_section(c: dict, v: dict) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            c["loss.temperature"] = gr.Slider(value=v["loss.temperature"], **field_slider("loss.temperature"),
                                              label=t("Temperature T"), info=_info("loss.temperature"))
            c["sample_prompt"] = gr.Textbox(logic.SAMPLE_PROMPT, label=t("Sample prompt for the preview"), lines=1,
                                            info=t("Text whose next token both models predict below; not "
                                                   "used for training."))
            gr.Markdown(t(ENGLISH_ONLY), elem_classes=["kd-note"])
            c["preview_btn"] = gr.Button(t("Show next-token preview"), size="sm")
            c["preview_text"] = gr.Markdown(t("Move the slider or press the button: the teacher's and the "
                                              "student's next-token distributions at T appear here."),
                                            elem_id="temp-preview-text")
        with gr.Column(scale=3):
            c["preview_plot"] = gr.Plot(label=t("Next-token distributions at T"), elem_id="temp-preview-plot")
    with gr.Row():
        kind = v["loss.divergence"]
        c["loss.divergence"] = gr.Dropdown(field_choices("loss.divergence"), value=kind, label=t("Divergence"),
                                     info=_info("loss.divergence"))
        c["loss.beta"] = gr.Slider(value=v["loss.beta"], **field_slider("loss.beta"), label=t("β (JSD)"),
                                   info=_info("loss.beta"), visible=kind in BETA_KINDS)
        c["loss.alpha"] = gr.Slider(value=v["loss.alpha"], **field_slider("loss.alpha"), label=t("α (skew)"),
                                    info=_info("loss.alpha"), visible=kind in ALPHA_KINDS)
        c["loss.t2_scale"] = gr.Checkbox(v["loss.t2_scale"], label=t("Scale by T²"), info=_info("loss.t2_scale"))
    with gr.Row():
        for key, label in (("ce_weight", "CE weight"), ("kd_weight", "KD weight"), ("hidden_weight", "Hidden weight"),
                           ("attn_weight", "Attention weight")):
            c[f"loss.{key}"] = _number(f"loss.{key}", label, v[f"loss.{key}"], step=0.1)
        c["loss.hidden_loss"] = gr.Dropdown(field_choices("loss.hidden_loss"), value=v["loss.hidden_loss"],
                                            label=t("Hidden distance"), info=_info("loss.hidden_loss"))
        c["loss.hidden_skip_first"] = gr.Checkbox(v["loss.hidden_skip_first"], label=t("Skip first position"),
                                                  info=_info("loss.hidden_skip_first"))
        c["loss.attn_loss"] = gr.Dropdown(field_choices("loss.attn_loss"), value=v["loss.attn_loss"],
                                          label=t("Attention distance"), info=_info("loss.attn_loss"))
    c["loss.cross_tokenizer"] = gr.Radio(field_choices("loss.cross_tokenizer"), value=v["loss.cross_tokenizer"],
                                         label=t("Across tokenizers"), info=_info("loss.cross_tokenizer"))


def _mapping_section(c: dict, v: dict) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            c["mapping.strategy"] = gr.Radio(field_choices("mapping.strategy"), value=v["mapping.strategy"],
                                           label=t("Mapping strategy"), info=_info("mapping.strategy"))
            c["mapping.pairs"] = gr.Dataframe(headers=PAIR_COLUMNS, value=v["mapping.pairs"] or [["", ""]],
                                              datatype=["str", "str"], column_count=2,
                                              label=t("Custom pairs (student layer, teacher layer; 'emb' = embeddings)"),
                                              interactive=True, elem_id="mapping-pairs")
            gr.Markdown(t("Double-click a cell (or select it and press Enter) before typing: a key pressed on a cell "
                          "that is only selected is lost. The boxes below add a whole pair."), elem_classes="kd-legend")
            with gr.Row(equal_height=True):
                c["pair_student"] = gr.Textbox("", label=t("Student layer"), placeholder="3", min_width=80,
                                               elem_id="pair-student")
                c["pair_teacher"] = gr.Textbox("", label=t("Teacher layer"), placeholder="11", min_width=80,
                                               elem_id="pair-teacher")
                c["pair_add"] = gr.Button(t("+ Add pair"), size="sm", scale=0, elem_id="pair-add")
            c["mapping_status"] = gr.Markdown("", elem_id="mapping-status")
        with gr.Column(scale=3):
            c["mapping_plot"] = gr.Plot(label=t("Layer mapping"))


def _lora_section(c: dict, v: dict) -> None:
    with gr.Row():
        c["lora.enabled"] = gr.Checkbox(v["lora.enabled"], label=t("Train LoRA adapters"), info=_info("lora.enabled"))
        c["lora.r"] = gr.Slider(value=v["lora.r"], **field_slider("lora.r"), label=t("r"), info=_info("lora.r"))
        c["lora.alpha"] = gr.Number(v["lora.alpha"], label=t("alpha"), info=_info("lora.alpha"))
        c["lora.dropout"] = gr.Slider(value=v["lora.dropout"], **field_slider("lora.dropout"), label=t("dropout"),
                                      info=_info("lora.dropout"))
    c["lora.target_modules"] = gr.Dropdown(v["lora.target_modules"], value=v["lora.target_modules"], multiselect=True,
                                           allow_custom_value=True, label=t("Target modules"),
                                           info=_info("lora.target_modules"))


def _train_section(c: dict, v: dict) -> None:
    with gr.Row():
        c["train.steps"] = _number("train.steps", "Steps", v["train.steps"], precision=0)
        c["train.batch_size"] = _number("train.batch_size", "Batch size", v["train.batch_size"], precision=0)
        c["train.grad_accum"] = _number("train.grad_accum", "Grad accumulation", v["train.grad_accum"], precision=0)
        c["train.lr"] = _number("train.lr", "Learning rate", v["train.lr"], step=1e-5)
        c["train.warmup_steps"] = _number("train.warmup_steps", "Warmup steps", v["train.warmup_steps"], precision=0)
    with gr.Row():
        c["train.eval_every"] = _number("train.eval_every", "Eval every", v["train.eval_every"], precision=0)
        c["train.save_every"] = _number("train.save_every", "Checkpoint every", v["train.save_every"], precision=0)
        c["train.seed"] = _number("train.seed", "Seed", v["train.seed"], precision=0)
        c["train.device"] = gr.Dropdown(field_choices("train.device"), value=v["train.device"], label=t("Device"),
                                        allow_custom_value=True, info=_info("train.device"))
        c["train.precision"] = gr.Dropdown(field_choices("train.precision"), value=v["train.precision"],
                                           label=t("Precision"), info=_info("train.precision"))
        c["run.name"] = gr.Textbox(v["run.name"], label=t("Run name (optional)"), info=_info("run.name"))
    with gr.Row():
        c["train.heal_init"] = gr.Checkbox(v["train.heal_init"], label=t("Heal the pruned student's gaps before training"),
                                           info=_info("train.heal_init"))
        c["train.report_to"] = gr.Dropdown(field_choices("train.report_to"), value=v["train.report_to"],
                                           multiselect=True, label=t("Also report to"), info=_info("train.report_to"))


def _onpolicy_section(c: dict, v: dict) -> None:
    with gr.Row():
        c["onpolicy.lmbda"] = _number("onpolicy.lmbda", "On-policy share λ", v["onpolicy.lmbda"], step=0.05)
        c["onpolicy.seq_kd"] = gr.Checkbox(v["onpolicy.seq_kd"], label=t("Teacher writes the answers (seq_kd)"),
                                           info=_info("onpolicy.seq_kd"))
        c["onpolicy.max_new_tokens"] = _number("onpolicy.max_new_tokens", "Sampled tokens",
                                               v["onpolicy.max_new_tokens"], precision=0)
        c["onpolicy.temperature"] = _number("onpolicy.temperature", "Sampling temperature",
                                            v["onpolicy.temperature"], step=0.05)
        c["onpolicy.top_p"] = _number("onpolicy.top_p", "Sampling top-p", v["onpolicy.top_p"], step=0.05)
        c["onpolicy.teacher_prompts"] = _number("onpolicy.teacher_prompts", "Prompts the teacher writes",
                                                v["onpolicy.teacher_prompts"], precision=0)
    with gr.Row():
        c["data.loss_on"] = gr.Radio(field_choices("data.loss_on"), value=v["data.loss_on"],
                                     label=t("Teacher-forced terms on"), info=_info("data.loss_on"))
        c["data.holdout_prompts"] = _number("data.holdout_prompts", "Held-out prompts", v["data.holdout_prompts"],
                                            precision=0)
        c["train.gen_eval"] = gr.Checkbox(v["train.gen_eval"], label=t("Generation eval"),
                                          info=_info("train.gen_eval"))


def build_setup_tab(ctx) -> dict[str, Any]:
    """Build the setup tab inside the current `gr.Tab`; returns its components by name and `fields`."""
    values = config_to_form(_initial_config(ctx))
    c: dict[str, Any] = {}
    gr.Markdown(t("Every control says what it does under its label; the **Learn** tab explains temperature, the "
                  "divergences, loss weights, layer mapping and LoRA in plain words, each with its notebook."))
    with gr.Row():
        presets = preset_names()
        c["preset"] = gr.Dropdown(presets, value=DEFAULT_PRESET if DEFAULT_PRESET in presets else None, label=t("Preset"),
                                  scale=1,
                                  info=t("quick: minutes on a CPU; default: the measured recipe; chat: a student that talks; "
                                         "chat-small: one at half the teacher's size; multitask: chat and two tasks in one run; thorough: longer."))
        c["yaml_upload"] = gr.UploadButton(t("Load YAML"), file_types=[".yaml", ".yml"], size="sm", scale=0)
        c["yaml_download"] = gr.Button(t("Save YAML"), size="sm", scale=0)
        c["yaml_file"] = gr.File(label=t("Saved config"), interactive=False, height=60, scale=1, visible=False)
    with gr.Accordion(t("1 · Models and data"), open=True):
        _models_section(ctx, c, values)
        _data_section(c, values, ctx)
        tasks_section(ctx, c, values)
    with gr.Accordion(t("2 · Loss and temperature"), open=True):
        _loss_section(c, values)
    with gr.Accordion(t("3 · Layer mapping (hidden-state and attention terms)"), open=False):
        _mapping_section(c, values)
    with gr.Accordion(t("4 · LoRA"), open=False):
        _lora_section(c, values)
    with gr.Accordion(t("5 · Training"), open=True):
        _train_section(c, values)
    with gr.Accordion(t("6 · On-policy distillation and generation quality (prompt/answer data)"), open=False):
        _onpolicy_section(c, values)
    c["command"] = gr.Code(label=t("Command the Train button runs (as a shell command)"), language="shell",
                           interactive=False, lines=3, elem_id="command-preview")
    gr.Markdown(t("Ready? Open the **Train** tab and press **Start training**; this form is what it runs."))
    c["fields"] = list(FORM_FIELDS)
    wire_setup(ctx, c)
    wire_tasks(c)
    return c


def _initial_config(ctx) -> DistillConfig:
    if ctx.initial_config is not None:
        return ctx.initial_config
    cfg = load_preset(DEFAULT_PRESET) if DEFAULT_PRESET in preset_names() else DistillConfig()
    data = cfg.to_dict()
    data["models"].update(teacher=ctx.teacher, student=ctx.student)
    return DistillConfig.from_dict(data)



