"""The Setup tab's task editor (`data.tasks`): a table with one row per task and one column per task field, a row of
typed controls that adds a task (a built-in source fills in its kind and labels), and a picker that removes one.

The table is the form field "data.tasks" (`workbench.forms.rows_to_tasks` reads it back); the rows a person adds are
checked by the config's own validation, so a bad entry is refused naming the task and the field.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from workbench.app import setup_logic as logic
from workbench.app.context import user_error
from workbench.app.i18n import help_text, lang_of, t, tr
from workbench.config import TASK_KINDS, DataConfig, TaskConfig
from workbench.data.task_items import BUILTIN_TASK_FIELDS
from workbench.errors import UserError
from workbench.forms import TASK_COLUMNS, TASK_DATATYPES, rows_to_tasks, tasks_to_rows


def task_table(rows: list[list[Any]]) -> dict[str, Any]:
    """The table's value with its headers (to gradio a table's headers are part of its value)."""
    return {"headers": TASK_COLUMNS, "data": rows}


def source_choices(ctx, current: str | None = None) -> list[str]:
    return list(dict.fromkeys([*BUILTIN_TASK_FIELDS, *logic.dataset_choices(ctx, current)]))


def mixture_line(tasks: list[TaskConfig], lang: str) -> str:
    """'3 task(s), each batch's rows drawn chat 50%, kind 25%, book 25%; ...' (or what an empty list means)."""
    if not tasks:
        return tr("No tasks: the run trains on the dataset above alone.", lang)
    total = sum(task.weight for task in tasks)
    shares = ", ".join(f"{task.name} {task.weight / total:.0%}" for task in tasks)
    return tr("{count} task(s), each batch's rows drawn {shares}; the dataset above is not used.", lang,
              count=len(tasks), shares=shares)


def add_task(rows: Any, entry: dict[str, Any]) -> list[list[Any]]:
    """The table's rows with `entry` appended, after the config has checked the whole list."""
    task = {key: value for key, value in entry.items() if value not in (None, "", [])}
    tasks = [*rows_to_tasks(rows), task]
    return tasks_to_rows(DataConfig(tasks=tasks).tasks)


def remove_task(rows: Any, name: str) -> list[list[Any]]:
    return tasks_to_rows([task for task in rows_to_tasks(rows) if task.get("name") != name])


def tasks_section(ctx, c: dict, v: dict) -> None:
    """The editor's components, into `c` (called inside the Setup tab's first section)."""
    with gr.Accordion(t("Tasks: several in one run (multi-task distillation)"), open=bool(v["data.tasks"])):
        gr.Markdown(help_text("data.tasks"), elem_classes="kd-legend")
        c["data.tasks"] = gr.Dataframe(value=task_table(v["data.tasks"]), headers=TASK_COLUMNS,
                                       datatype=TASK_DATATYPES, column_count=len(TASK_COLUMNS), interactive=True,
                                       label=t("Tasks (one row each; an empty cell takes the default)"),
                                       elem_id="task-table")
        c["task_mixture"] = gr.Markdown("", elem_id="task-mixture")
        with gr.Row(equal_height=True):
            c["task_name"] = gr.Textbox("", label=t("Task name"), info=help_text("data.tasks[].name"),
                                        elem_id="task-name")
            c["task_source"] = gr.Dropdown(source_choices(ctx), value="builtin:chat-kind", label=t("Task source"),
                                           allow_custom_value=True, info=help_text("data.tasks[].source"))
            c["task_kind"] = gr.Dropdown(list(TASK_KINDS), value="classify", label=t("Task kind"),
                                         info=help_text("data.tasks[].kind"))
            c["task_labels"] = gr.Textbox(", ".join(BUILTIN_TASK_FIELDS["builtin:chat-kind"]["labels"]),
                                          label=t("Labels (comma-separated)"), info=help_text("data.tasks[].labels"),
                                          elem_id="task-labels")
        with gr.Row(equal_height=True):
            c["task_weight"] = gr.Number(1.0, label=t("Sampling weight"), info=help_text("data.tasks[].weight"))
            c["task_own_loss"] = gr.Checkbox(False, label=t("Own loss mix"),
                                             info=t("Off: the task takes the run's CE and KD weights (section 2)."))
            c["task_ce"] = gr.Number(1.0, label=t("Task CE weight"), info=help_text("data.tasks[].ce_weight"),
                                     interactive=False)
            c["task_kd"] = gr.Number(1.0, label=t("Task KD weight"), info=help_text("data.tasks[].kd_weight"),
                                     interactive=False)
            c["task_add"] = gr.Button(t("+ Add task"), size="sm", scale=0, elem_id="task-add")
        with gr.Row(equal_height=True):
            names = [row[0] for row in v["data.tasks"]]
            c["task_remove_name"] = gr.Dropdown(names, value=names[0] if names else None, label=t("Task to remove"), allow_custom_value=True,
                                                elem_id="task-remove-name")
            c["task_remove"] = gr.Button(t("Remove task"), size="sm", scale=0, elem_id="task-remove")


def _source_fields(source: str):
    """A built-in source's kind and labels (a task on it needs no others); other sources keep what is there."""
    fields = BUILTIN_TASK_FIELDS.get((source or "").strip())
    if fields is None:
        return gr.update(), gr.update()
    return gr.update(value=fields["kind"]), gr.update(value=", ".join(fields.get("labels", [])))


def _after_change(rows: Any, current: str | None, request: gr.Request = None):
    """The remove picker's names and the mixture line (or the first problem of the list) after an edit."""
    lang = lang_of(request)
    entries = rows_to_tasks(rows)
    names = [str(task["name"]) for task in entries if task.get("name")]
    picked = current if current in names else (names[0] if names else None)
    try:
        line = mixture_line(DataConfig(tasks=entries).tasks, lang)
    except UserError as exc:
        line = tr("Not valid yet: {error}", lang, error=exc)
    return gr.update(choices=names, value=picked), line


def wire_tasks(c: dict) -> None:
    quiet = dict(show_progress="hidden", trigger_mode="always_last")
    c["task_source"].change(_source_fields, c["task_source"], [c["task_kind"], c["task_labels"]],
                            api_name="task_source_fields", **quiet)
    c["task_own_loss"].change(lambda own: (gr.update(interactive=own), gr.update(interactive=own)),
                              c["task_own_loss"], [c["task_ce"], c["task_kd"]], queue=False)

    def add(rows, name, source, kind, labels, weight, own_loss, ce_weight, kd_weight, request: gr.Request = None):
        """Append a task; its CE and KD weights only where it has its own loss mix (else the run's)."""
        entry = {"name": (name or "").strip(), "source": (source or "").strip(), "kind": kind,
                 "labels": (labels or "").strip(), "weight": weight,
                 **({"ce_weight": ce_weight, "kd_weight": kd_weight} if own_loss else {})}
        try:
            return task_table(add_task(rows, entry)), ""
        except UserError as exc:
            raise user_error(exc, lang_of(request)) from None

    c["task_add"].click(add, [c["data.tasks"], c["task_name"], c["task_source"], c["task_kind"], c["task_labels"],
                              c["task_weight"], c["task_own_loss"], c["task_ce"], c["task_kd"]],
                        [c["data.tasks"], c["task_name"]],
                        api_name="task_add")
    c["task_remove"].click(lambda rows, name: task_table(remove_task(rows, name)),
                           [c["data.tasks"], c["task_remove_name"]], c["data.tasks"], api_name="task_remove")
    gr.on([c["data.tasks"].change, c["data.tasks"].input], _after_change, [c["data.tasks"], c["task_remove_name"]],
          [c["task_remove_name"], c["task_mixture"]], api_name="task_list_changed", **quiet)
    c["load_events"].append((_after_change, [c["data.tasks"], c["task_remove_name"]],
                             [c["task_remove_name"], c["task_mixture"]], "tasks_on_load"))
