"""The workbench app: `build_app()` composes the tabs (one module each) into a `gr.Blocks`.

    demo = build_app(runs_dir="runs", exports_dir="exports")
    demo.launch(**launch_options(...))        # see workbench/commands/app.py for the server defaults

Nothing heavy happens here: models load on first use, through the shared pool in `AppContext`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.app.context import AppContext
from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT

CSS = """
.kd-progress { width: 100%; height: 14px; background: #e5e7eb; border-radius: 7px; overflow: hidden; }
.kd-progress-bar { height: 100%; transition: width 0.6s ease; }
.kd-progress-text { font-size: 0.9em; color: #475569; margin-top: 4px; font-variant-numeric: tabular-nums; }
.kd-badge { display: inline-block; padding: 1px 8px; border-radius: 9px; font-size: 0.85em; font-weight: 600;
  margin-right: 6px; }
.kd-ok { background: #dcfce7; color: #166534; }
.kd-bad { background: #fee2e2; color: #991b1b; }
.kd-wait { background: #e0e7ff; color: #3730a3; }
#kd-header h1 { margin-bottom: 0; }
"""
THEME = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")


def _inspect_tabs() -> list[tuple[str, object]]:
    """The inspect tabs after Setup, Train and Runs: chat, attention, report and export, learn."""
    from workbench.app.tab_attention import build_attention_tab
    from workbench.app.tab_chat import build_chat_tab
    from workbench.app.tab_learn import build_learn_tab
    from workbench.app.tab_report import build_report_tab

    return [("Chat", build_chat_tab), ("Attention", build_attention_tab), ("Report & export", build_report_tab),
            ("Learn", build_learn_tab)]


def build_app(runs_dir: str | Path = "runs", exports_dir: str | Path = "exports", teacher: str = BUILTIN_TEACHER,
              student: str = DEFAULT_STUDENT, pool=None, config=None) -> gr.Blocks:
    """The whole app; `teacher`/`student` are the pair the pickers start with, `config` (a DistillConfig) the
    values the setup form starts with (default: the quick preset)."""
    from workbench.app.api import register_api
    from workbench.app.tab_runs import build_runs_tab
    from workbench.app.tab_setup import build_setup_tab
    from workbench.app.tab_train import build_train_tab

    ctx = AppContext(runs_dir=str(runs_dir), exports_dir=str(exports_dir), teacher=teacher, student=student)
    if pool is not None:
        ctx.pool = pool
    ctx.initial_config = config
    with gr.Blocks(title="KD Workbench") as demo:
        gr.Markdown("# KD Workbench\nDistil a teacher language model into a smaller student: set up, train, "
                    "watch every loss term, compare runs.", elem_id="kd-header")
        with gr.Tab("Setup", id="setup"):
            setup = build_setup_tab(ctx)
        with gr.Tab("Train", id="train"):
            train = build_train_tab(ctx, setup)
        with gr.Tab("Runs", id="runs"):
            runs = build_runs_tab(ctx)
        for title, builder in _inspect_tabs():
            with gr.Tab(title):
                builder(ctx)
        register_api(ctx)
        for fn, inputs, outputs, api_name in setup["load_events"]:
            demo.load(fn, inputs, outputs, api_name=api_name, show_progress="hidden")
        on_load, outputs = train["on_load"]
        demo.load(on_load, None, outputs, api_name="train_reattach")
        runs_load, runs_outputs = runs["on_load"]
        demo.load(runs_load, None, runs_outputs, api_name="runs_load")
    demo.ctx = ctx
    return demo
