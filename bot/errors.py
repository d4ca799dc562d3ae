"""Error types: UserError carries a short message meant for the member or console user."""

from __future__ import annotations

import secrets


def new_error_id() -> str:
    """A short id that ties an apology shown to a member to the logged traceback."""
    return secrets.token_hex(4)


def shown(value: str, limit: int = 40) -> str:
    """Input quoted back in a message, shortened: enough to recognise, never a wall."""
    text = repr(value if len(value) <= limit else value[:limit - 1] + "…")
    if len(text) > limit + 2:  # escapes (\U0002ebe1) make a repr longer than its string
        text = text[:limit] + "…" + text[0]
    return text


class CadenzaError(Exception):
    """Base class for Cadenza's own errors."""


class UserError(CadenzaError):
    """Bad input or a missing resource the user can fix; ``str(e)`` is shown verbatim.

    Messages are one line, specific and free of tracebacks, e.g.
    ``bars must be between 1 and 32 (got 40)``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ResourceError(UserError):
    """A file, model, soundfont or program Cadenza needs is missing or unreadable."""
