"""Errors raised by the models package; their messages are fit to show a user."""

from __future__ import annotations


class ModelError(ValueError):
    """A missing, corrupt or incompatible model or checkpoint, or a request it cannot serve."""
