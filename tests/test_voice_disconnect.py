"""Leaving voice is bounded by the voice deadline and never eats a cancellation.

discord.py's ``VoiceClient.disconnect`` waits for Discord's confirmation and catches a
CancelledError that arrives meanwhile; these stand-ins do the same two things so the bound is
tested without a Discord that misbehaves (tests/test_voice.py drives the real leave paths)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from cadenza.discord.player import disconnect


class _Silent:
    """Discord never confirms the disconnect."""

    async def disconnect(self, *, force: bool) -> None:
        await asyncio.sleep(3600)


class _Swallowing:
    """A cancellation while waiting is caught, as discord.py's voice state does."""

    async def disconnect(self, *, force: bool) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)


async def test_a_disconnect_discord_never_confirms_ends_at_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await disconnect(_Silent(), 0.2)  # type: ignore[arg-type]
    assert loop.time() - t0 < 5


async def test_a_cancellation_during_a_disconnect_still_ends_the_caller() -> None:
    task = asyncio.create_task(disconnect(_Swallowing(), 60))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
