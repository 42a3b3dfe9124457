"""Errors that reach the user: the CLI prints them as one line and exits 2; the app shows them as gr.Error.

A message the app should show in the reader's language is a `Message`: an English template and its values.
`str()` gives the English (the CLI, logs, API clients); the app renders the same template translated.

    raise ConfigError(Message("{name} must be {accepted}, got {value!r}", name="loss.temperature",
                              accepted=Message("> {low}", low=0), value=-1.0))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Message:
    """Text for the user as an English `str.format` template and its values; values may be Messages too."""

    def __init__(self, template: str, **values: Any) -> None:
        self.template = template
        self.values = values

    def render(self, translate: Callable[[str], str] = str) -> str:
        """The text with `translate` applied to this template and to every Message among the values."""
        values = {key: value.render(translate) if isinstance(value, Message) else value
                  for key, value in self.values.items()}
        return translate(self.template).format(**values)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Message({self.render()!r})"


class UserError(ValueError):
    """Bad input from the user (a config value, a model spec, a file). The message names the field and what would
    be accepted; `message` keeps it as given (a `Message` when the app can translate it)."""

    def __init__(self, message: str | Message) -> None:
        super().__init__(str(message))
        self.message = message
