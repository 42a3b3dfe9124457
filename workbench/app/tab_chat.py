"""Chat tab: one prompt, the teacher, a distilled student and the undistilled student answering side by side.

All columns stream at once with the same sampling settings; under each answer: time to first token, tokens/s and
token count. Stop ends every column (each then shows "stopped"); Clear empties the histories. The event is the API endpoint `/chat_compare`:
the prompt is its first input and every other input has a default (teacher and student from the app's default
pair, the student being the latest finished run's when there is one, the undistilled column the picked run's own
starting student, from its config.yaml), so `client.submit("Hello", api_name=
"/chat_compare")` streams all three columns. Generation runs in this process on loaded models from the shared pool;
a training run is another process, so chatting slows it down but never disturbs it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import gradio as gr

from workbench.analysis.artefacts import artefact_folders
from workbench.analysis.generation import SamplingSettings, compare_stream
from workbench.app.context import ENGLISH_ONLY, user_error
from workbench.app.i18n import lang_of, student_picker, t, tr, translator
from workbench.app.train_view import token_html
from workbench.errors import UserError
from workbench.runs.pool import LATEST, limit_app_threads, resolve_choice, starting_student

DEFAULT_SAMPLING = SamplingSettings(temperature=0.7, top_p=0.9, max_new_tokens=64, seed=0)
MIN_UPDATE_INTERVAL_S = 0.03
COLUMN_TITLES = ("Teacher", "Distilled student", "Undistilled student")
HISTORY_NOTE = ("Each column keeps its own conversation: its model reads the earlier questions and answers of that column "
                "before the new one. **Clear history** starts afresh.")
RUN_START = "run-start"  # the undistilled picker's default: the picked run's own starting student


class StopBoard:
    """Stop events of the streams in flight, per browser session, so Stop ends only that session's columns."""

    def __init__(self) -> None:
        self._events: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events.setdefault(session, set()).add(event)
        return event

    def finish(self, session: str, event: threading.Event) -> None:
        with self._lock:
            self._events.get(session, set()).discard(event)

    def stop(self, session: str) -> int:
        with self._lock:
            events = list(self._events.get(session, ()))
        for event in events:
            event.set()
        return len(events)


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "api"


def _base_choices(ctx) -> list:
    """The undistilled column's choices: the picked run's start, the default student, exported artefacts."""
    return [(t("The picked run's starting point"), RUN_START), ctx.student, *artefact_folders(ctx.exports_dir)]


def _columns(ctx, teacher: str, student: str, include_base: bool, base: str) -> tuple[list[str], list[int]]:
    """Specs to run and which of the three UI columns each fills; the undistilled column runs, unless another
    spec is given, the picked run's starting point (its config's models.student)."""
    teacher_spec = (teacher or "").strip() or ctx.teacher
    student_spec = resolve_choice(student, ctx.runs_dir, ctx.student)
    specs, slots = [teacher_spec, student_spec], [0, 1]
    base = (base or "").strip()
    if base in ("", RUN_START):
        base_spec = starting_student(student_spec, ctx.student)
    else:
        base_spec = resolve_choice(base, ctx.runs_dir, ctx.student) if base == LATEST else base
    if include_base and base_spec != student_spec:
        specs.append(base_spec)
        slots.append(2)
    return specs, slots


def chat_compare_fn(ctx, board: StopBoard):
    """The streaming handler behind `/chat_compare`."""

    def chat_compare(
        prompt: str,
        teacher: str = "",
        student: str = LATEST,
        include_base: bool = True,
        base: str = RUN_START,
        temperature: float = DEFAULT_SAMPLING.temperature,
        top_p: float = DEFAULT_SAMPLING.top_p,
        max_new_tokens: int = DEFAULT_SAMPLING.max_new_tokens,
        seed: int = DEFAULT_SAMPLING.seed,
        teacher_history: list | None = None,
        student_history: list | None = None,
        base_history: list | None = None,
        request: gr.Request = None,
    ):
        histories = [list(teacher_history or []), list(student_history or []), list(base_history or [])]
        try:
            settings = SamplingSettings(temperature, top_p, int(max_new_tokens), int(seed))
            specs, slots = _columns(ctx, teacher, student, include_base, base)
            if not prompt or not prompt.strip():
                raise UserError(tr("prompt is empty; type a message", lang_of(request)))
        except UserError as exc:
            raise user_error(exc, lang_of(request)) from None
        lang = lang_of(request)
        stats = ["", "", "*" + tr("not used", lang) + "*"]
        default_note = ""
        if (student or LATEST) == LATEST and specs[1] == ctx.student:
            default_note = " " + tr("(no finished run yet: the undistilled default student)", lang)
        limit_app_threads(ctx.runs_dir)
        session = _session(request)
        stop_event = board.start(session)
        context = [_plain_history(histories[slot]) for slot in slots]
        outputs = [h + [{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}] for h in histories]
        for slot in range(3):
            if slot not in slots:
                outputs[slot] = histories[slot]
        try:
            stream = compare_stream(prompt, specs, settings, pool=ctx.pool, labels=[COLUMN_TITLES[s] for s in slots],
                                    histories=context, stop_event=stop_event)
            last_yield = 0.0
            for columns in stream:
                for column, slot in zip(columns, slots, strict=True):
                    answer = column.text if not column.error else f"⚠️ {column.error}"
                    if column.done and not column.error and not column.text.strip():
                        answer = "*" + tr("(no text: the model ended its answer at once)", lang) + "*"
                    outputs[slot][-1] = {"role": "assistant", "content": answer}
                    note = default_note if slot == 1 else ""
                    line = column.stats.line(translator(lang))
                    stats[slot] = f"`{column.spec}`{note}  \n{line}" if not column.error else tr("failed", lang)
                # coalesce bursts (fast models, several columns) so the page keeps up; the final state always goes
                if time.perf_counter() - last_yield >= MIN_UPDATE_INTERVAL_S or all(c.done for c in columns):
                    last_yield = time.perf_counter()
                    yield (*outputs, *stats)
        finally:
            stop_event.set()  # a cancelled or disconnected stream leaves no generation running
            board.finish(session, stop_event)

    return chat_compare


def _plain_history(history: list) -> list[dict]:
    """Chatbot messages as role/content text pairs (gradio may wrap content in lists of parts)."""
    plain = []
    for message in history:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
        if content and not str(content).startswith(("⚠️", "*(no text")):
            plain.append({"role": message.get("role", "user"), "content": str(content)})
    return plain


def disagreement_fn(ctx):
    """The handler that colours the distilled student's last answer by per-token reverse KL to the teacher."""

    def colour_answer(enabled: bool, teacher: str, student: str, history: list | None,
                      request: gr.Request = None) -> str:
        from workbench.engine.genquality import token_disagreement

        lang = lang_of(request)
        messages = _plain_history(history or [])
        if not enabled or len(messages) < 2 or messages[-1]["role"] != "assistant":
            return ""
        prompt, answer = messages[-2]["content"], messages[-1]["content"]
        try:
            limit_app_threads(ctx.runs_dir)
            student_model, tokenizer = ctx.pool.get(resolve_choice(student, ctx.runs_dir, ctx.student))
            teacher_model, _ = ctx.pool.get((teacher or "").strip() or ctx.teacher)
            pieces = token_disagreement(student_model, teacher_model, tokenizer, prompt, answer, messages[:-2])
        except UserError as exc:
            raise user_error(exc, lang) from None
        mean = sum(p["rkl"] for p in pieces) / max(len(pieces), 1)
        head = tr("Distilled student's last answer · mean reverse KL {mean} nats/token over its {count} text tokens (the "
                  "end-of-turn token, counted under the column, is not coloured)", lang,
                  mean=f"{mean:.3f}", count=len(pieces))
        return f'<div class="kd-legend">{head}</div>' + token_html([p["piece"] for p in pieces],
                                                                 [p["rkl"] for p in pieces], lang)

    return colour_answer


def build_chat_tab(ctx) -> dict[str, Any]:
    """Build the chat tab inside the current `gr.Tab`; returns its components by name."""
    board = StopBoard()
    gr.Markdown(t("Same prompt, same sampling, every model streaming at once. Stats under each answer."))
    with gr.Row():
        teacher = gr.Dropdown(choices=[ctx.teacher], value=ctx.teacher, allow_custom_value=True, label=t("Teacher"),
                              info=t("Model spec or folder."))
        student = gr.Dropdown(choices=student_picker(ctx.runs_dir), value=LATEST,
                              allow_custom_value=True,
                              label=t("Distilled student"), info=t("A run's final student or any checkpoint."))
        include_base = gr.Checkbox(value=True, label=t("Also the undistilled student"))
        base = gr.Dropdown(choices=_base_choices(ctx), value=RUN_START, allow_custom_value=True,
                           label=t("Undistilled student"),
                           info=t("By default the model the picked run started from (its config's models.student); "
                                  "or any model spec, or an exported GGUF / ONNX folder run in its own runtime."))
        refresh = gr.Button(t("↻ Runs"), size="sm", scale=0)
    with gr.Row():
        temperature = gr.Slider(0.0, 2.0, value=DEFAULT_SAMPLING.temperature, step=0.05, label=t("Temperature"),
                                info=t("0 = greedy"))
        top_p = gr.Slider(0.05, 1.0, value=DEFAULT_SAMPLING.top_p, step=0.05, label="Top-p")
        max_new_tokens = gr.Slider(1, 512, value=DEFAULT_SAMPLING.max_new_tokens, step=1,
                                   label=t("Max new tokens"))
        seed = gr.Number(value=DEFAULT_SAMPLING.seed, precision=0, minimum=0, label=t("Seed"))
        colour = gr.Checkbox(value=False, label=t("Colour the student's answer by disagreement"),
                             info=t("After each answer, shade every token of the distilled student's answer by the "
                                    "teacher's disagreement with it (per-token reverse KL)."), elem_id="chat-colour")
    chats, stats = [], []
    with gr.Row(equal_height=True):
        for title in COLUMN_TITLES:
            with gr.Column():
                chats.append(gr.Chatbot(value=[], label=t(title), height=380, buttons=["copy"],
                                        elem_classes=["kd-chat"]))
                stats.append(gr.Markdown(""))
    coloured = gr.HTML("", elem_id="chat-disagreement")
    with gr.Row():
        prompt = gr.Textbox(placeholder=t("Ask all models…"), label=t("Prompt"), scale=5, lines=2,
                            info=t(ENGLISH_ONLY))
        with gr.Column(scale=1, min_width=120):
            send = gr.Button(t("Send"), variant="primary")
            stop = gr.Button(t("Stop"), variant="stop")
            clear = gr.Button(t("Clear history"))
    gr.Markdown(t(HISTORY_NOTE), elem_classes=["kd-legend"])
    inputs = [prompt, teacher, student, include_base, base, temperature, top_p, max_new_tokens, seed, *chats]
    handler = chat_compare_fn(ctx, board)

    def check_prompt(text: str, request: gr.Request = None) -> None:
        """Refuse an empty prompt in an event with no outputs: one toast, no error badge on the three columns."""
        if not (text or "").strip():
            raise user_error(tr("prompt is empty; type a message", lang_of(request)))

    quiet = dict(api_visibility="private", show_progress="hidden")
    send_event = send.click(check_prompt, prompt, None, **quiet).success(
        handler, inputs, [*chats, *stats], api_name="chat_compare")
    submit_event = prompt.submit(check_prompt, prompt, None, **quiet).success(
        handler, inputs, [*chats, *stats], api_visibility="private")
    colour_fn = disagreement_fn(ctx)
    for event in (send_event, submit_event):
        event.then(lambda: "", None, prompt, api_visibility="private").then(
            colour_fn, [colour, teacher, student, chats[1]], coloured, api_visibility="private")
    colour.change(colour_fn, [colour, teacher, student, chats[1]], coloured, api_name="chat_disagreement")

    def stop_all(request: gr.Request) -> None:
        board.stop(_session(request))

    # Stop only signals the streams: each ends its generation at the next token and sends its final "stopped"
    # state. Cancelling the event instead would drop that last update and leave every column "generating".
    stop.click(stop_all, None, None, queue=False, api_visibility="private")
    clear.click(lambda: ([], [], [], "", "", "", ""), None, [*chats, *stats, coloured], api_visibility="private")
    def refresh_students():
        return gr.update(choices=student_picker(ctx.runs_dir)), gr.update(choices=_base_choices(ctx))

    refresh.click(refresh_students, None, [student, base], api_visibility="private")
    return {"coloured": coloured, "colour": colour, "refresh_pickers": (refresh_students, [student, base]),
            "prompt": prompt, "send": send, "stop": stop, "clear": clear, "chats": chats, "stats": stats,
            "teacher": teacher, "student": student, "include_base": include_base, "base": base,
            "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed}
