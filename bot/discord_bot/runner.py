"""Starting the bot for ``cadenza run``: wire the application, preload the model, connect."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
import discord

from bot.config import Settings
from bot.discord_bot.client import CadenzaBot
from bot.errors import ResourceError, UserError
from bot.jobs import JobQueue

log = logging.getLogger(__name__)


def settle_heap() -> None:
    """Exempt everything loaded so far (torch, the model, matplotlib, discord.py) from garbage
    collection. A full collection walks every object while holding the GIL; over this heap it
    took 200-250 ms, stalling the event loop whenever a render in the worker thread triggered
    one. Frozen, those pauses drop to tens of ms (measured with bench/bot_load.py)."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def open_bot(settings: Settings) -> AsyncIterator[CadenzaBot]:
    """A ready-to-start bot with its application; everything is closed on exit."""
    from bot.cli import close_app, open_app

    app = await open_app(settings)
    try:
        # Before connecting: importing torch and loading the checkpoint takes seconds of CPU
        # and should not compete with the first member's interaction.
        await app.warm_up()
        settle_heap()
        jobs = JobQueue(app, capacity=settings.queue_size, per_member=settings.per_user_queue,
                        workers=settings.workers)
        bot = CadenzaBot(app=app, jobs=jobs, settings=settings)
        try:
            yield bot
        finally:
            if not bot.is_closed():
                await bot.close()
    finally:
        await close_app(app)  # the worker pool, the batcher's thread, the store


async def run_bot(settings: Settings) -> int:
    """Run until the bot is closed (Ctrl-C or SIGTERM close it cleanly)."""
    if not settings.token:
        raise UserError("no Discord token: set CADENZA_TOKEN")
    async with open_bot(settings) as bot:
        loop = asyncio.get_running_loop()
        closing: list[asyncio.Task[None]] = []  # a reference, so the task is not collected
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signal.SIGTERM,
                                    lambda: closing.append(asyncio.create_task(bot.close())))
        try:
            await bot.start(settings.token)
        except discord.LoginFailure:
            # discord.py's message does not contain the token, and neither may ours.
            raise UserError("Discord refused the bot token in CADENZA_TOKEN: copy a fresh one "
                            "from the Developer Portal (Bot → Reset Token)") from None
        except discord.PrivilegedIntentsRequired:
            raise UserError("Discord refused the gateway intents Cadenza asked for") from None
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            # Logging in is the first request: with no network (or DNS, or a proxy in the way)
            # it fails here, and a full aiohttp traceback says less than one line does.
            raise ResourceError(f"cannot reach Discord ({_reason(e, settings.token)}): check "
                                "this machine's network connection, DNS and any proxy or "
                                "firewall, then start again") from None
        except discord.DiscordServerError as e:
            raise ResourceError(f"Discord is having trouble ({e.status}): try again in a few "
                                "minutes (https://discordstatus.com)") from None
        finally:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGTERM)
    return 0


def _reason(error: BaseException, token: str) -> str:
    """The error on one short line (aiohttp's name the host and the OS error; never the token,
    but make sure)."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = text.replace(token, "…")
    return text if len(text) <= 200 else text[:199] + "…"
