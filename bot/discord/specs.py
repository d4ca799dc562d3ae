"""Slash-command option pieces built from the shared specs in ``cadenza.options``.

Ranges, choices and descriptions come from ``COMMANDS``, so Discord's client refuses exactly
what ``parse_options`` would; the cogs still pass every value through ``parse_options``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from discord import app_commands

from cadenza.options import COMMANDS, CommandSpec, OptionSpec

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 suggestions


def spec(command: str) -> CommandSpec:
    return COMMANDS[command]


def option(command: str, name: str) -> OptionSpec:
    return COMMANDS[command].option(name)


def describe(command: str) -> dict[str, str]:
    """``app_commands.describe`` keyword arguments: every option's description."""
    return {o.name: o.description for o in COMMANDS[command].options}


def choices(command: str, name: str) -> list[app_commands.Choice[str]]:
    values = option(command, name).choices or ()
    return [app_commands.Choice(name=v, value=v) for v in values]


def int_range(command: str, name: str) -> Any:
    """``app_commands.Range[int, min, max]`` with the spec's bounds."""
    o = option(command, name)
    assert o.kind == "int" and o.min is not None and o.max is not None, o
    return app_commands.Range[int, int(o.min), int(o.max)]


def float_range(command: str, name: str) -> Any:
    o = option(command, name)
    assert o.kind == "float" and o.min is not None and o.max is not None, o
    return app_commands.Range[float, float(o.min), float(o.max)]


def suggest(values: Iterable[str], current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: names starting with what was typed first, then names containing it.

    Only suggestions: whatever the member sends still goes through ``parse_options``.
    """
    typed = current.strip().lower()
    values = list(dict.fromkeys(values))
    starts = [v for v in values if v.lower().startswith(typed)]
    contains = [v for v in values if typed in v.lower() and v not in starts]
    return [app_commands.Choice(name=v, value=v)
            for v in (starts + contains)[:AUTOCOMPLETE_LIMIT]]
