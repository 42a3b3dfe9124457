"""One way to turn a conversation into model text, shared by training data, on-policy sampling, the chat and the
report card, so that a student is always prompted the way it was trained.

    prompt_text(tokenizer, [{"role": "user", "content": "Hi"}])        # what the model continues
    exchange_text(tokenizer, messages, "Hello!")                       # (prompt text, answer text)

With a chat template the prompt ends with the template's generation prompt and the answer is the rest of the
templated exchange (its end-of-turn marker included). Without one the fallback is plain text:
"User: ...\\nAssistant: ..." turns, the answer following "Assistant: ".
"""

from __future__ import annotations

ChatTurn = dict[str, str]

_ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}


def as_messages(prompt: str | list[ChatTurn], history: list[ChatTurn] | None = None) -> list[ChatTurn]:
    """A prompt string (with optional earlier turns) or a message list as a clean message list."""
    earlier = [{"role": m["role"], "content": str(m["content"])} for m in (history or []) if m.get("content")]
    if isinstance(prompt, str):
        return [*earlier, {"role": "user", "content": prompt}]
    return [*earlier, *({"role": m["role"], "content": str(m["content"])} for m in prompt)]


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _plain(messages: list[ChatTurn]) -> str:
    return "".join(f"{_ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}\n" for m in messages)


def prompt_text(tokenizer, prompt: str | list[ChatTurn], history: list[ChatTurn] | None = None) -> str:
    """The text a model continues to answer `prompt`: the chat template with its generation prompt, or the
    plain fallback ending in "Assistant:"."""
    messages = as_messages(prompt, history)
    if has_template(tokenizer):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return _plain(messages) + "Assistant:"


def exchange_text(tokenizer, prompt: str | list[ChatTurn], answer: str) -> tuple[str, str]:
    """(prompt text, answer text) of one exchange; prompt text + answer text is the whole templated exchange."""
    messages = as_messages(prompt)
    prompt_part = prompt_text(tokenizer, messages)
    if has_template(tokenizer):
        whole = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}], tokenize=False)
        if whole.startswith(prompt_part):
            return prompt_part, whole[len(prompt_part):]
        return prompt_part, answer + (tokenizer.eos_token or "")
    return prompt_part, " " + answer
