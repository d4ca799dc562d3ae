"""Answering an interaction within Discord's 3 s, whatever its handler is waiting on.

Discord drops an interaction not acknowledged within 3 s, and the member hears nothing. Handlers
answer through these helpers, which take a per-interaction lock, so the bot's watchdog
(``watch``) can defer any interaction still unanswered after ``ACK_AFTER`` seconds without racing
the handler: whoever comes second finds it acknowledged and edits the placeholder, or replaces
it when it shows the wrong audience (a private "thinking…" for a public answer, or the reverse).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import discord
from discord.utils import MISSING

log = logging.getLogger(__name__)

ACK_AFTER = 2.0  # seconds after an interaction arrives: then the watchdog defers it
DISCORD_LIMIT = 3.0


TOKEN_LIFETIME = 15 * 60  # seconds an interaction can be answered at all
KEEP = 4096  # states kept before old ones (past their token's life) are dropped


@dataclass
class _State:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    thinking: bool = False  # a "thinking…" placeholder is the original response
    ephemeral: bool = False  # ... and only the member sees it
    by_watchdog: bool = False
    born: float = field(default_factory=time.monotonic)


# By interaction id: discord.py's Interaction takes no attributes and no weak references.
_states: dict[int, _State] = {}


def _state(interaction: discord.Interaction) -> _State:
    state = _states.get(interaction.id)
    if state is None:
        if len(_states) >= KEEP:
            old = time.monotonic() - TOKEN_LIFETIME
            for key in [k for k, v in _states.items() if v.born < old]:
                del _states[key]
        state = _states[interaction.id] = _State()
    return state


async def defer(interaction: discord.Interaction, *, ephemeral: bool = False,
                thinking: bool = True) -> Any:
    """Acknowledge now with a "thinking…" placeholder (or, ``thinking=False`` on a button, a
    silent acknowledgement). Returns discord.py's callback response, or None when the
    interaction was already acknowledged."""
    state = _state(interaction)
    async with state.lock:
        if interaction.response.is_done():
            return None
        callback = await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)
        state.thinking, state.ephemeral = thinking, ephemeral
        return callback


async def answer(interaction: discord.Interaction, content: str | None = None, *,
                 ephemeral: bool = False, embed: discord.Embed | None = None,
                 view: discord.ui.View | None = None,
                 files: list[discord.File] | None = None) -> None:
    """The answer, however the interaction stands: the first response; or the deferred
    placeholder edited into it; or, when the placeholder shows the wrong audience, the
    placeholder removed and the answer sent as a follow-up."""
    state = _state(interaction)
    async with state.lock:
        response = interaction.response
        if not response.is_done():
            await response.send_message(content, embed=embed or MISSING, view=view or MISSING,
                                        files=files or MISSING, ephemeral=ephemeral)
            return
        if state.thinking and state.ephemeral == ephemeral:
            await interaction.edit_original_response(content=content, embed=embed,
                                                     view=view, attachments=files or [])
            return
        if state.thinking:
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            state.thinking = False
        await interaction.followup.send(content or MISSING, embed=embed or MISSING,
                                        view=view or MISSING, files=files or MISSING,
                                        ephemeral=ephemeral)


async def progress_message(interaction: discord.Interaction) -> tuple[int, bool]:
    """A public message to show a job's progress in: ``(message id, is the original
    response)``. Normally the public "thinking…" placeholder; when the watchdog already gave
    the interaction a private one, a public follow-up (edited through the webhook)."""
    callback = await defer(interaction, thinking=True)
    if callback is not None:
        message_id = getattr(callback, "message_id", None)
        if message_id is None:
            message_id = (await interaction.original_response()).id
        return message_id, True
    state = _state(interaction)
    async with state.lock:
        if state.thinking and not state.ephemeral:
            return (await interaction.original_response()).id, True
        if state.thinking:
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            state.thinking = False
        message = await interaction.followup.send("⏳ …", wait=True)
        return message.id, False


async def update(interaction: discord.Interaction, *, content: str | None,
                 view: discord.ui.View | None = None) -> None:
    """Edit the message a button is on (e.g. after Cancel). If the watchdog acknowledged the
    press first, the message is edited through the channel and the placeholder answered."""
    state = _state(interaction)
    async with state.lock:
        if not interaction.response.is_done():
            await interaction.response.edit_message(content=content, view=view)
            return
    if interaction.message is not None:
        await interaction.message.edit(content=content, view=view)
    await answer(interaction, content, ephemeral=True)


def watch(interaction: discord.Interaction, spawn: Any) -> None:
    """Defer ``interaction`` if its handler has not answered ``ACK_AFTER`` seconds from now
    (sooner if it arrived late): a private "thinking…", which the handler's answer replaces."""
    if interaction.type not in (discord.InteractionType.application_command,
                                discord.InteractionType.component,
                                discord.InteractionType.modal_submit):
        return
    age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    delay = max(0.0, min(ACK_AFTER, DISCORD_LIMIT - 0.6 - max(0.0, age)))

    def check() -> None:
        if not interaction.response.is_done():
            spawn(_rescue(interaction))

    asyncio.get_running_loop().call_later(delay, check)


async def _rescue(interaction: discord.Interaction) -> None:
    state = _state(interaction)
    try:
        if await defer(interaction, ephemeral=True, thinking=True) is not None:
            state.by_watchdog = True
            log.info("deferred a slow %s for its handler", interaction.type.name)
    except discord.HTTPException:
        log.warning("could not defer a slow interaction", exc_info=True)
