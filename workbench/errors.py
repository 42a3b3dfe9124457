"""Errors that reach the user: the CLI prints them as one line and exits 2; the app shows them as gr.Error."""


class UserError(ValueError):
    """Bad input from the user (a config value, a model spec, a file). The message names the field and what would
    be accepted."""
