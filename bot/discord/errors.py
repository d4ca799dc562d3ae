"""The one error handler for slash commands and buttons: short ephemeral messages, logged bugs."""

from __future__ import annotations

import logging
import re

import discord
from discord import app_commands

from cadenza.deadlines import StageTimeout
from cadenza.discord import respond
from cadenza.errors import UserError, new_error_id

log = logging.getLogger(__name__)


CONTENT_LIMIT = 2000  # characters in a message's content; Discord refuses more with 400
LONG_WORD = 100
# A run of non-space characters over LONG_WORD, keeping the closing quote or punctuation.
_LONG_WORD = re.compile(rf"(\S{{{LONG_WORD}}})\S+?([\"'`’”)\]:;,.!?]*)(?=\s|$)")


def fit_content(text: str, limit: int = CONTENT_LIMIT) -> str:
    """``text`` within Discord's content limit, unchanged when it fits.

    What overflows is nearly always the member's own input echoed back (``key:`` with 2,500
    characters): over-long words are shortened first, so the rest of the message (what to do
    instead) survives; only then is the end cut, at a space where there is one nearby.
    """
    if len(text) <= limit:
        return text
    text = _LONG_WORD.sub(lambda m: f"{m[1]}…{m[2]}", text)
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ", limit - LONG_WORD)
    return (cut[:space] if space > 0 else cut).rstrip() + "…"


class NotOwner(app_commands.CheckFailure):
    """Raised by owner-only commands for everybody else."""


def _cause(error: BaseException) -> BaseException:
    # discord.py wraps what a command raised (CommandInvokeError) and what a transformer raised
    # (TransformerError, with the original as __cause__).
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, app_commands.TransformerError) and isinstance(error.__cause__, UserError):
        error = error.__cause__
    return error


def describe(interaction: discord.Interaction, error: BaseException) -> str:
    """The message for the member; unexpected errors are logged here with their traceback."""
    cause = _cause(error)
    if isinstance(cause, UserError):
        text = str(cause)
        return text[:1].upper() + text[1:]
    if isinstance(cause, NotOwner):
        return "Only Cadenza's owners can do that."
    if isinstance(cause, app_commands.TransformerError):
        return f"{cause.value!r} is not a valid value for that option."
    if isinstance(cause, app_commands.CheckFailure):
        return "You can't use that command here."
    error_id = new_error_id()
    what = interaction.command.qualified_name if interaction.command else (
        (interaction.data or {}).get("custom_id", "interaction"))
    if isinstance(cause, StageTimeout):  # stopped past its deadline: no traceback to log
        log.error("%s in %s for user %s (error id %s)", cause, what, interaction.user.id,
                  error_id)
        return f"Sorry — {cause}; the admins have been told (error id `{error_id}`)."
    log.error("unexpected error in %s for user %s (error id %s)", what,
              interaction.user.id, error_id, exc_info=cause)
    return (f"Sorry, something went wrong on Cadenza's side (error id `{error_id}`). "
            "It has been logged; please try again.")


async def send_private(interaction: discord.Interaction, text: str) -> None:
    """Tell only the member, whatever state the interaction is in (a public "thinking…"
    placeholder is removed rather than turned into the message for everyone to see)."""
    text = fit_content(text)  # an over-long answer would be refused and the member told nothing
    try:
        await respond.answer(interaction, text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell user %s: %s", interaction.user.id, text, exc_info=True)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Answer a failed command or button press with a short ephemeral message."""
    if interaction.type == discord.InteractionType.autocomplete:
        log.warning("autocomplete failed: %s", error)
        return
    await send_private(interaction, describe(interaction, error))


class CadenzaTree(app_commands.CommandTree):
    """The command tree whose ``on_error`` is Cadenza's one error handler."""

    async def on_error(self, interaction: discord.Interaction,
                       error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)
