"""The Learn tab: plain-words explanations of distillation (workbench.explain), each pointing to its notebook."""

from __future__ import annotations

import gradio as gr

from workbench.explain import TOPICS, topic_markdown


def build_learn_tab(ctx) -> dict:
    """One accordion per topic (the first open); returns {"intro": Markdown, "<topic key>": Markdown, ...}."""
    components = {
        "intro": gr.Markdown(
            "New to distillation? Read these in order. Every control on the Setup tab also has a one-line "
            "explanation under it, and each topic below names a notebook in `notebooks/` that runs the idea."
        )
    }
    for index, item in enumerate(TOPICS):
        with gr.Accordion(item.title, open=index == 0):
            components[item.key] = gr.Markdown(topic_markdown(item.key))
    return components
