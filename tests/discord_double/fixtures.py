"""pytest fixture for the Discord double; import `discord_double` into a test module or conftest."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest_asyncio

from .server import DiscordDouble

log = logging.getLogger(__name__)


@pytest_asyncio.fixture
async def discord_double() -> AsyncIterator[DiscordDouble]:
    """A started double with discord.py pointed at it; restored and shut down after the test."""
    async with DiscordDouble() as api:
        yield api
