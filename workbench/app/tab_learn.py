"""The Learn tab: plain-words explanations of distillation (workbench.learn, in Korean workbench.learn_ko), each
pointing to its notebook. Titles and texts are I18n keys ("learn-title:<key>", "learn:<key>"; see `i18n.build_i18n`)."""

from __future__ import annotations

import gradio as gr

from workbench.app.i18n import t
from workbench.learn import TOPICS


def build_learn_tab(ctx) -> dict:
    """One accordion per topic (the first open); returns {"intro": Markdown, "<topic key>": Markdown, ...}."""
    components = {
        "intro": gr.Markdown(t(
            "New to distillation? Read these in order. Every control on the Setup tab also has a one-line "
            "explanation under it, and each topic below names a notebook in `notebooks/` that runs the idea."
        ))
    }
    for index, item in enumerate(TOPICS):
        with gr.Accordion(t(f"learn-title:{item.key}"), open=index == 0):
            components[item.key] = gr.Markdown(t(f"learn:{item.key}"), elem_id=f"learn-{item.key}")
    return components
