"""The workbench app: `build_app()` composes the tabs (one module each) into a `gr.Blocks`.

    demo = build_app(runs_dir="runs", exports_dir="exports")
    demo.launch(**launch_options(...))        # see workbench/commands/app.py for the server defaults

Nothing heavy happens here: models load on first use, through the shared pool in `AppContext`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.app.context import AppContext
from workbench.app.i18n import LANGS, LOAD_JS, SWITCH_JS, language_switch, t, toast_css
from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT
from workbench.hub import hub_offline

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
#kd-hub { font-size: 0.85em; color: #475569; }
#lang-switch { max-width: 220px; margin-left: auto; }
.kd-tokens { line-height: 2; font-family: ui-monospace, monospace; font-size: 0.9em; }
.kd-tokens span { padding: 1px 2px; border-radius: 3px; white-space: pre-wrap; }
.kd-legend { font-size: 0.85em; color: #475569; }
#runs-table th, #runs-table th * { word-break: keep-all; overflow-wrap: normal; hyphens: none; }
#runs-diff td, #runs-diff td * { white-space: normal !important; overflow-wrap: anywhere; }
.kd-chat .bubble-wrap { padding-top: 36px; }
.kd-card { border-collapse: collapse; font-size: 0.9em; }
#pair-card .kd-card, #pair-card .kd-card td, #pair-card .kd-card th { border: none !important; }
.kd-card td, .kd-card th { padding: 1px 10px 1px 2px; text-align: left; vertical-align: top; }
.kd-card td:first-child { white-space: nowrap; color: #475569; padding-left: 1em; }
.kd-card th { padding-top: 8px; }
""" + toast_css()
THEME = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
# the hub mode under the title: `workbench app` decides it at start (a probe unless HF_HUB_OFFLINE is set)
HUB_ONLINE = "Hugging Face hub: online. Hub ids typed in the app are downloaded; HF_HUB_OFFLINE=1 forces offline."
HUB_OFFLINE = ("Hugging Face hub: offline. Hub ids must already be in the local cache; built-in models and local "
               "folders work. HF_HUB_OFFLINE=0 forces a try.")


def _tabs_after_runs() -> list[tuple[str, object]]:
    """The tabs after Setup, Train and Runs, where a run is looked at: chat, attention, report and export, sweeps, learn."""
    from workbench.app.tab_attention import build_attention_tab
    from workbench.app.tab_chat import build_chat_tab
    from workbench.app.tab_learn import build_learn_tab
    from workbench.app.tab_report import build_report_tab
    from workbench.app.tab_sweeps import build_sweeps_tab

    return [("Chat", build_chat_tab), ("Attention", build_attention_tab), ("Report & export", build_report_tab),
            ("Sweeps", build_sweeps_tab), ("Learn", build_learn_tab)]


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
        with gr.Row(equal_height=True):
            gr.Markdown(t("# KD Workbench\nDistil a teacher language model into a smaller student: set up, train, "
                          "watch every loss term, compare runs."), elem_id="kd-header")
            switch = language_switch()
        gr.Markdown(t(HUB_OFFLINE if hub_offline() else HUB_ONLINE), elem_id="kd-hub")
        tabs = {}
        with gr.Tab(t("Setup"), id="setup") as tabs["Setup"]:
            setup = build_setup_tab(ctx)
        with gr.Tab(t("Train"), id="train") as tabs["Train"]:
            train = build_train_tab(ctx, setup)
        with gr.Tab(t("Runs"), id="runs") as tabs["Runs"]:
            runs = build_runs_tab(ctx)
        built = {}
        for title, builder in _tabs_after_runs():
            with gr.Tab(t(title)) as tabs[title]:
                built[title] = builder(ctx)
        register_api(ctx)
        _wire_student_pickers(train, {**built, "Runs": runs})
        on_load, outputs = train["on_load"]
        runs_load, runs_outputs = runs["on_load"]
        # everything whose text the server writes: drawn once the session's language is known, again on a switch
        drawn = [tab["on_load"] for tab in built.values() if isinstance(tab, dict) and "on_load" in tab]
        on_load_events = [*setup["load_events"], (on_load, None, outputs, "train_reattach"),
                          (runs_load, None, runs_outputs, "runs_load"), *[(*event, None) for event in drawn]]
        on_switch = [*[(fn, inputs, fn_outputs) for fn, inputs, fn_outputs, _ in setup["load_events"]],
                     (train["redraw"][0], train["watch"], train["redraw"][1]), runs["relabel"], *drawn]
        _wire_language(demo, switch, tabs, on_load_events, on_switch)
    demo.ctx = ctx
    return demo


def _wire_language(demo: gr.Blocks, switch: gr.Radio, tabs: dict, on_load: list[tuple], on_switch: list[tuple]) -> None:
    """The switch changes the browser's locale (JS) and the session's language on the server (dynamic text). The tab
    titles are sent again: the browser translates a title only when it is (re)drawn. Text the server writes (the
    compatibility card, the plots, the status lines) is drawn after the page's language is settled on load, so a
    reload keeps the language chosen rather than the browser's (`on_load`: fn, inputs, outputs, api name or None),
    and again after a switch (`on_switch`: fn, inputs, outputs)."""
    def choose(lang: str, request: gr.Request):
        return LANGS.choose(request, lang), *[gr.update(label=t(title)) for title in tabs]

    outputs = [switch, *tabs.values()]
    loaded = demo.load(choose, switch, outputs, js=LOAD_JS, api_visibility="private", show_progress="hidden")
    for fn, inputs, fn_outputs, api_name in on_load:  # api_name None: not an endpoint of its own
        endpoint = {"api_name": api_name} if api_name else {"api_visibility": "private"}
        loaded.then(fn, inputs, fn_outputs, show_progress="hidden", **endpoint)
    switched = switch.input(choose, switch, outputs, js=SWITCH_JS, api_visibility="private", show_progress="hidden")
    for fn, inputs, fn_outputs in on_switch:
        switched.then(fn, inputs, fn_outputs, api_visibility="private", show_progress="hidden")


def _wire_student_pickers(train: dict, built: dict) -> None:
    """When the watched run finishes, the student pickers of the other tabs offer its student without a click."""
    for tab in built.values():
        if isinstance(tab, dict) and "refresh_pickers" in tab:
            refresh, outputs = tab["refresh_pickers"]
            train["finished"].change(refresh, None, outputs, api_visibility="private", show_progress="hidden")
