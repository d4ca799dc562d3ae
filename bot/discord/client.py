"""CadenzaBot: the discord.py client, built from the application, its job queue and settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.app import Cadenza
from cadenza.config import Settings
from cadenza.discord import redact, respond
from cadenza.discord.errors import CadenzaTree
from cadenza.discord.lag import LagMonitor
from cadenza.discord.reply import DEFAULT_TOKEN_TTL
from cadenza.errors import new_error_id
from cadenza.jobs import JobQueue
from cadenza.store_rows import JobRow

log = logging.getLogger(__name__)

# how long close() waits for the bot's background tasks after cancelling them
CLOSE_GRACE = 10.0

# One cog per feature (``cog_<feature>.py`` beside this file), loaded as extensions by
# ``setup_hook``.
EXTENSIONS = tuple(f"cadenza.discord.cog_{name}" for name in (
    "compose", "seeds", "ratings", "charts", "admin", "help", "arena", "party", "listen"))


def intents() -> discord.Intents:
    """Slash commands and buttons arrive as interactions, which need no intent at all; the
    guilds intent keeps channels and permissions cached, the voice states intent who is in
    which voice channel (for /play and parties). Nothing privileged."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.voice_states = True
    return wanted


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that hears a guild's events (Discord's rule)."""
    return (guild_id >> 22) % shard_count


class CadenzaBot(commands.AutoShardedBot):
    """Everything it needs is passed in; ``setup_hook`` loads one cog per feature, starts the
    queue (reporting jobs a previous run left unfinished) and syncs to the dev guild if set.

    Sharded: it runs ``settings.shard_ids`` of ``settings.shard_count`` (several processes
    together cover every shard; docs/deploy.md), or, unset, every shard Discord recommends.
    Commands are published by the owner's ``/sync``, never by a process starting."""

    def __init__(self, *, app: Cadenza, jobs: JobQueue, settings: Settings,
                 token_ttl: timedelta = DEFAULT_TOKEN_TTL,
                 lag: LagMonitor | None = None, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            tree_cls=CadenzaTree,
            help_command=None,
            owner_ids=set(settings.owner_ids) or None,
            allowed_mentions=discord.AllowedMentions.none(),
            shard_ids=list(settings.shard_ids) if settings.shard_ids is not None else None,
            shard_count=settings.shard_count,
            **options,
        )
        redact.install()  # interaction tokens stay out of discord.py's DEBUG lines
        self.app = app
        self.jobs = jobs
        self.settings = settings
        self.token_ttl = token_ttl
        self.lag = lag or LagMonitor()
        self._background: set[asyncio.Task[Any]] = set()

    async def setup_hook(self) -> None:
        self.lag.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # A listening party composes its interrupted clip again itself (cog_party).
        self.jobs.on_takeover = self._answer_taken_over  # a dead peer's jobs, while running
        await self._answer_taken_over(await self.jobs.start(), spawn=True)
        if self.settings.dev_guild and self._runs_guild(self.settings.dev_guild):
            await self._sync_dev_guild(self.settings.dev_guild)

    async def _answer_taken_over(self, jobs: list[JobRow], *, spawn: bool = False) -> None:
        """Tell the members of jobs a process that died left behind (once each)."""
        interrupted = await self.app.listening.claim_party_jobs(jobs)
        if interrupted:
            compose = self.get_cog("Compose")
            notify = compose.notify_interrupted(interrupted)  # type: ignore[union-attr]
            if spawn:
                self.spawn(notify)
            else:
                await notify

    def _runs_guild(self, guild_id: int) -> bool:
        """Whether this process runs the guild's shard: of several gateway processes, only
        that one copies the commands to the dev guild."""
        if self.settings.shard_ids is None or self.settings.shard_count is None:
            return True
        return shard_of(guild_id, self.settings.shard_count) in self.settings.shard_ids

    async def _sync_dev_guild(self, guild_id: int) -> None:
        """A convenience for development: a dev guild the bot is not in (or a typo'd id, 403
        Missing Access) must not keep the bot from starting, so the failure is one warning."""
        try:
            synced = await self.sync_commands("guild", guild_id)
        except discord.HTTPException as e:
            log.warning("could not sync commands to CADENZA_DEV_GUILD %s (%s %s): check the id "
                        "and that the bot was invited to that server with the "
                        "applications.commands scope; starting without the guild copy",
                        guild_id, e.status, e.text or e.__class__.__name__)
            return
        log.info("synced %d commands to the dev guild %s", len(synced), guild_id)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A background task the bot keeps a reference to and cancels on close."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)
        return task

    async def sync_commands(self, scope: str, guild_id: int) -> list[app_commands.AppCommand]:
        """``guild``: copy every command to the guild (instant); ``global``: publish everywhere;
        ``clear``: remove the guild's copies."""
        guild = discord.Object(guild_id)
        if scope == "global":
            return await self.tree.sync()
        if scope == "guild":
            self.tree.copy_global_to(guild=guild)
        elif scope == "clear":
            self.tree.clear_commands(guild=guild)
        else:
            raise ValueError(f"unknown sync scope {scope!r}")
        return await self.tree.sync(guild=guild)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # Every command and button is answered within Discord's 3 s: one its handler has not
        # answered after respond.ACK_AFTER is deferred for it (cadenza.discord.respond).
        respond.watch(interaction, self.spawn)

    async def on_ready(self) -> None:
        log.info("connected as %s to %d guild(s)", self.user, len(self.guilds))

    async def close(self) -> None:
        # The queue first: followers stop editing messages before the HTTP session goes away.
        await self.jobs.close()
        # Cogs with loops of their own (voice players, parties) end them at their next wait: a
        # cancellation alone can be lost inside an HTTP call to Discord.
        for cog in list(self.cogs.values()):
            shut = getattr(cog, "shut", None)
            if shut is not None:
                shut()
        for task in list(self._background):
            task.cancel()
        if self._background:
            # bounded: a task whose cancellation was lost inside a library call (discord.py's
            # voice disconnect swallows one) must not hold the shutdown up for ever
            _, stuck = await asyncio.wait(set(self._background), timeout=CLOSE_GRACE)
            for task in stuck:
                log.error("background task %s did not end within %g s of its cancellation",
                          task.get_name(), CLOSE_GRACE)
        await self.lag.stop()
        await super().close()


def _log_failure(task: asyncio.Task[Any]) -> None:
    """A background task that died is logged with an error id (asyncio would only say so at
    garbage collection, without one)."""
    if task.cancelled() or task.exception() is None:
        return
    log.error("background task %s failed (error id %s)", task.get_name(), new_error_id(),
              exc_info=task.exception())
