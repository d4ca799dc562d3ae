"""Slash-command options built from the shared specs in ``cadenza.options``.

Each option is an ``app_commands.Transformer`` made from its ``OptionSpec``: Discord is told its
type, range, choices and whether to suggest values, so its client refuses exactly what the
console would; the value that arrives is read once, by the spec's ``read`` (the console's
reader), and reaches the command typed and normalised. Rules between options stay in
``cadenza.options.given``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import discord
from discord import app_commands

from cadenza.discord.present import member_ref, where_of
from cadenza.options import COMMANDS, FORM_SUGGESTIONS, KEY_CHOICES, CommandSpec, OptionSpec

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 suggestions
_TYPES = {
    "int": discord.AppCommandOptionType.integer, "float": discord.AppCommandOptionType.number,
    "str": discord.AppCommandOptionType.string, "choice": discord.AppCommandOptionType.string,
    "bool": discord.AppCommandOptionType.boolean,
    "file": discord.AppCommandOptionType.attachment,
}


def spec(command: str) -> CommandSpec:
    return COMMANDS[command]


def describe(command: str) -> dict[str, str]:
    """``app_commands.describe`` keyword arguments: every option's description."""
    return {o.name: o.description for o in COMMANDS[command].options}


def suggest(values: Iterable[str], current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: names starting with what was typed first, then names containing it.

    Only suggestions: whatever the member sends is still read by the option's spec.
    """
    typed = current.strip().lower()
    values = list(dict.fromkeys(values))
    starts = [v for v in values if v.lower().startswith(typed)]
    contains = [v for v in values if typed in v.lower() and v not in starts]
    return [app_commands.Choice(name=v, value=v)
            for v in (starts + contains)[:AUTOCOMPLETE_LIMIT]]


async def _seed_names(interaction: discord.Interaction, current: str) -> Iterable[str]:
    """The seeds this member may use here: their own and the public ones (none in a DM)."""
    if interaction.guild_id is None:
        return []
    app = interaction.client.app  # type: ignore[attr-defined]
    return await app.seeds.seed_names(member_ref(interaction.user), where_of(interaction),
                                      current)


async def _model_names(interaction: discord.Interaction, current: str) -> Iterable[str]:
    return interaction.client.app.composer.model_names()  # type: ignore[attr-defined]


async def _static(values: Iterable[str]) -> Iterable[str]:
    return values


# What each kind of suggested option (OptionSpec.suggest) suggests.
SUGGESTIONS: dict[str, Callable[[discord.Interaction, str], Awaitable[Iterable[str]]]] = {
    "keys": lambda interaction, current: _static(KEY_CHOICES),
    "forms": lambda interaction, current: _static(FORM_SUGGESTIONS),
    "models": _model_names,
    "seeds": _seed_names,
}


class SpecOption(app_commands.Transformer):
    """One option of one command, from its spec."""

    def __init__(self, option: OptionSpec) -> None:
        self.option = option

    @property
    def type(self) -> discord.AppCommandOptionType:
        return _TYPES[self.option.kind]

    @property
    def min_value(self) -> int | float | None:
        return self._bound(self.option.min)

    @property
    def max_value(self) -> int | float | None:
        return self._bound(self.option.max)

    def _bound(self, value: float | None) -> int | float | None:
        if value is None or self.option.kind not in ("int", "float"):
            return None
        return int(value) if self.option.kind == "int" else float(value)

    @property
    def choices(self) -> list[app_commands.Choice[str]] | None:
        if self.option.kind != "choice":
            return None
        return [app_commands.Choice(name=v, value=v) for v in self.option.choices or ()]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> Any:
        # A UserError reaches the member through the tree's error handler (errors._cause).
        return self.option.read(value)


class SuggestedOption(SpecOption):
    """Free text with suggestions (keys, models, seeds, forms): suggested, not restricted."""

    async def autocomplete(self, interaction: discord.Interaction, value: Any,
                           /) -> list[app_commands.Choice[str]]:
        current = str(value)
        assert self.option.suggest is not None
        return suggest(await SUGGESTIONS[self.option.suggest](interaction, current), current)


class Options:
    """A command's options as parameter annotations: ``O = Options("compose")``, then
    ``bars: O.bars | None = None``."""

    def __init__(self, command: str) -> None:
        self._options = {o.name: (SuggestedOption(o) if o.suggest else SpecOption(o))
                         for o in COMMANDS[command].options}

    def __getattr__(self, name: str) -> SpecOption:
        try:
            return self.__dict__["_options"][name]
        except KeyError:
            raise AttributeError(name) from None
