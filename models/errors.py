"""Errors raised by the models package; their messages are fit to show a user."""

from __future__ import annotations


def shown(value: str, limit: int = 40) -> str:
    """Input quoted back in a message, shortened: enough to recognise, never a wall."""
    text = repr(value if len(value) <= limit else value[:limit - 1] + "…")
    if len(text) > limit + 2:  # escapes (\U0002ebe1) make a repr longer than its string
        text = text[:limit] + "…" + text[0]
    return text


class ModelError(ValueError):
    """A missing, corrupt or incompatible model or checkpoint, or a request it cannot serve."""
