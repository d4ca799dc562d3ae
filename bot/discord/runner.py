"""Starting the bot for ``cadenza run``: wire the application, preload the model, connect."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator

import aiohttp
import discord

from cadenza.config import Settings
from cadenza.discord.client import CadenzaBot
from cadenza.errors import ResourceError, UserError
from cadenza.wiring import job_queue, open_app

log = logging.getLogger(__name__)

EXIT_SLOW_SHUTDOWN = 3  # the orderly shutdown overran CADENZA_DEADLINE_SHUTDOWN


def settle_heap() -> None:
    """Exempt everything loaded so far (torch, the model, discord.py) from garbage
    collection. A full collection walks every object while holding the GIL; over this heap it
    took 200-250 ms, stalling the event loop whenever a render in the worker thread triggered
    one. Frozen, those pauses drop to tens of ms (measured with bench/bot_load.py)."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def open_bot(settings: Settings) -> AsyncIterator[CadenzaBot]:
    """A ready-to-start bot with its application; everything is closed on exit."""
    async with open_app(settings) as app:
        jobs = job_queue(app, capacity=settings.queue_size, per_member=settings.per_user_queue,
                         workers=settings.workers, lease=settings.job_lease)
        bot = CadenzaBot(app=app, jobs=jobs, settings=settings)
        # Beside connecting, never before it: importing torch, loading the checkpoint and
        # starting a render process take seconds, and a warm-up stuck past its deadlines must
        # not keep the bot offline. A request arriving meanwhile simply loads what it needs.
        bot.spawn(_warm_up(app))
        try:
            yield bot
        finally:
            if not bot.is_closed():
                await bot.close()


async def _warm_up(app) -> None:  # type: ignore[no-untyped-def]
    took = await app.warm_up()
    settle_heap()
    log.info("warmed up in %.1f s", took)


def _exit_soon(seconds: float) -> threading.Timer:
    """The backstop of a bounded shutdown: if the orderly one has not finished in ``seconds``
    (a thread stuck in C, a wedged library), leave anyway; cancel the returned timer once it
    has. Nothing is lost: jobs left open are reported at the next start, and the database is
    never mid-transaction for long."""

    def leave() -> None:
        log.error("shutdown took longer than %g s; exiting now", seconds)
        logging.shutdown()
        os._exit(EXIT_SLOW_SHUTDOWN)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True
    timer.start()
    return timer


async def run_bot(settings: Settings) -> int:
    """Run until the bot is closed (Ctrl-C or SIGTERM close it cleanly)."""
    if not settings.token:
        raise UserError("no Discord token: set CADENZA_TOKEN")
    backstop: list[threading.Timer] = []  # armed by SIGTERM, disarmed once everything closed
    try:
        async with open_bot(settings) as bot:
            loop = asyncio.get_running_loop()
            closing: list[asyncio.Task[None]] = []  # a reference, so the task is not collected

            def stop() -> None:
                if not closing:
                    log.info("SIGTERM: shutting down")
                    backstop.append(_exit_soon(settings.deadlines.shutdown))
                    closing.append(asyncio.create_task(bot.close()))

            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
                loop.add_signal_handler(signal.SIGTERM, stop)
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
    finally:
        for timer in backstop:
            timer.cancel()
    return 0


def _reason(error: BaseException, token: str) -> str:
    """The error on one short line (aiohttp's name the host and the OS error; never the token,
    but make sure)."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = text.replace(token, "…")
    return text if len(text) <= 200 else text[:199] + "…"
