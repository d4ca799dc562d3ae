"""DiscordDouble: a loopback Discord API v10 (gateway, REST, CDN) for a real discord.py bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from . import payloads as p
from .actions import Actions
from .commands import CommandStore
from .gateway import Gateway, GatewaySession
from .guild import Guild, GuildMember
from .interactions import InteractionHandle
from .messages import MessageSnapshot, MessageStore, Upload
from .rest import RecordedRequest, Rest
from .voice import VoiceConnection, VoiceServer
from .waiting import DEFAULT_TIMEOUT, Changes

log = logging.getLogger(__name__)

__all__ = ["DiscordDouble", "RecordedRequest", "point_discord_at"]

_active: DiscordDouble | None = None


def point_discord_at(api_url: str, gateway_url: str) -> Callable[[], None]:
    """Points discord.py in this process at a Discord API (REST base and gateway); returns the
    undo. discord.py builds every REST URL from Route.BASE (webhooks and interaction callbacks
    included) and a plain Client connects straight to DEFAULT_GATEWAY. A double running in
    another process is reached by calling this with its `api_url` and `gateway_url`."""
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = api_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    def undo() -> None:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved

    return undo


class DiscordDouble(Actions):
    """Start with `async with DiscordDouble() as api:`; discord.py is pointed at it until exit.

    Typical use (the bot must use `api.token` and sync its commands, e.g. in setup_hook)::

        async with DiscordDouble() as api, api.running(make_bot()):
            inter = await api.slash("compose", {"style": "jazz", "bars": 8})
            assert (await inter.wait_response()).type == 5        # deferred
            done = await inter.wait_original(lambda m: "Done" in m.content)
            clip = await inter.wait_followup()                    # MessageSnapshot
            assert clip.file("clip.mid").startswith(b"MThd")
            click = await api.click(clip, "rate:12:4", user=api.add_member(name="fan"))
            assert (await click.wait_original()).ephemeral

    State lives in the double, not the client: messages, commands and attachments survive a
    bot restart (run a second client with `api.running(...)` again). Everything the bot sent is
    in `api.requests`; `api.errors` lists what the double refused as Discord would.
    """

    def __init__(
        self,
        *,
        bot_name: str = "Cadenza",
        guild_name: str = "Cadenza Test Guild",
        bot_permissions: int = p.BOT_PERMISSIONS,
        everyone_permissions: int = p.EVERYONE_PERMISSIONS,
        attachment_size_limit: int = p.DEFAULT_ATTACHMENT_SIZE_LIMIT,
        callback_deadline: float | None = 3.0,
        heartbeat_interval_ms: int = 41250,
        allowed_privileged_intents: int = p.PRIVILEGED_INTENTS,
        application_flags: int = p.DEFAULT_APP_FLAGS,
        max_guilds_per_shard: int = 2500,
    ) -> None:
        self.ids = p.Snowflakes()
        # Bots made since 2019 share their application's id.
        self.application_id = self.ids.next()
        self.bot_name = bot_name
        self.token = p.bot_token(self.application_id)
        self.attachment_size_limit = attachment_size_limit
        # Seconds the bot has to send its first callback; None disables the check.
        self.callback_deadline = callback_deadline
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged_intents = allowed_privileged_intents
        self.application_flags = application_flags
        # A shard with more guilds than this is refused with 4011 (Discord's limit is 2,500).
        self.max_guilds_per_shard = max_guilds_per_shard
        self.guild = Guild(
            self.ids,
            name=guild_name,
            bot_user_id=self.application_id,
            bot_name=bot_name,
            bot_permissions=bot_permissions,
            everyone_permissions=everyone_permissions,
        )
        # Every guild the bot is in, by id; `guild` is the first, where tests act by default.
        self.guilds: dict[int, Guild] = {self.guild.id: self.guild}
        self._bot_permissions = bot_permissions
        self._everyone_permissions = everyone_permissions
        # The member slash/click act as when a test names no user.
        self.member = self.guild.add_member(self.ids.next(), "tester")
        self.store = MessageStore(self.ids, lambda: self.base_url)
        self.commands = CommandStore(self.ids, self.application_id)
        self.interactions: dict[int, InteractionHandle] = {}
        self.interactions_by_token: dict[str, InteractionHandle] = {}
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.changes = Changes(self._describe)
        self.gateway = Gateway(self)
        self.rest = Rest(self)
        self.voice = VoiceServer(self)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._undo_pointing: Callable[[], None] | None = None

    # -- addresses --------------------------------------------------------------------------

    @property
    def guild_id(self) -> int:
        return self.guild.id

    @property
    def channel_id(self) -> int:
        return self.guild.channel_id

    @property
    def bot_user_id(self) -> int:
        return self.application_id

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the double is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v{p.API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        global _active
        if _active is not None:
            raise RuntimeError("another DiscordDouble is active; discord.py has one API base")
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=1 << 30)
        app.router.add_get("/", self.gateway.handle)
        app.router.add_routes(self.rest.routes())
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._undo_pointing = point_discord_at(self.api_url, self.gateway_url)
        _active = self
        log.debug("Discord double listening on %s", self.base_url)

    async def close(self) -> None:
        global _active
        if self._undo_pointing is not None:
            self._undo_pointing()
            self._undo_pointing = None
            _active = None
        await self.gateway.close_all()
        await self.voice.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def running(
        self, client: discord.Client, *, timeout: float = 10.0
    ) -> AsyncIterator[discord.Client]:
        """Runs `client.start(token)` until the double has sent it READY; closes it on exit."""
        after = len(self.gateway.sessions)
        task = asyncio.create_task(client.start(self.token), name="discord-double-client")
        body_failed = False
        try:
            waiter = asyncio.ensure_future(self.wait_identified(timeout=timeout, after=after))
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                waiter.cancel()
                await asyncio.gather(waiter, return_exceptions=True)
                task.result()  # the startup error (login, setup_hook, intents...) if any
                raise RuntimeError("client.start() returned before it identified")
            waiter.result()
            yield client
        except BaseException:
            body_failed = True
            raise
        finally:
            if not client.is_closed():
                await client.close()
            # discord.py leaves its "wait for more GUILD_CREATEs" task running after close
            # (up to guild_ready_timeout, 2 s by default); end it so no task outlives the test.
            ready_task = getattr(getattr(client, "_connection", None), "_ready_task", None)
            if ready_task is not None and not ready_task.done():
                ready_task.cancel()
            try:
                await asyncio.wait_for(task, timeout)
            except Exception:
                # An error in the test body (or the startup error already raised) comes first.
                if not body_failed:
                    raise
                log.debug("the client failed as well", exc_info=True)

    # -- guild setup ------------------------------------------------------------------------

    def add_guild(self, name: str = "Another Guild", *,
                  shard: tuple[int, int] | None = None) -> Guild:
        """Another guild the bot is in (with its own channel, owner and roles); clients that
        identify afterwards get it in READY and GUILD_CREATE. Act in it by passing one of its
        channels (`guild.channel_id`) and members (`add_member(..., guild=...)`). With
        ``shard=(shard_id, shard_count)`` its id puts it on that shard."""
        guild = Guild(
            self.ids,
            name=name,
            bot_user_id=self.application_id,
            bot_name=self.bot_name,
            bot_permissions=self._bot_permissions,
            everyone_permissions=self._everyone_permissions,
            guild_id=self.ids.on_shard(*shard) if shard is not None else None,
        )
        self.guilds[guild.id] = guild
        return guild

    @property
    def recommended_shards(self) -> int:
        """What GET /gateway/bot recommends: one shard per 1,000 guilds, as Discord does."""
        return max(1, -(-len(self.guilds) // 1000))

    def guild_of(self, channel_id: int) -> Guild | None:
        """The guild a channel belongs to."""
        return next((g for g in self.guilds.values() if channel_id in g.channels), None)

    def add_role(self, name: str, permissions: int) -> int:
        return self.guild.add_role(name, permissions)

    def add_channel(self, name: str) -> int:
        """A new text channel; clients that identify afterwards see it in GUILD_CREATE."""
        return self.guild.add_channel(name)

    def add_voice_channel(self, name: str = "Lounge", *, guild: Guild | None = None) -> int:
        """A voice channel; clients that identify afterwards see it in GUILD_CREATE."""
        return (guild or self.guild).add_voice_channel(name)

    async def join_voice(self, member: GuildMember, channel_id: int | None) -> None:
        """The member joins (or, with None, leaves) a voice channel: clients with the voice
        states intent get VOICE_STATE_UPDATE, later ones see it in GUILD_CREATE."""
        guild = self.guild_of(channel_id) if channel_id is not None else next(
            (g for g in self.guilds.values() if member.id in g.voice_states), self.guild)
        assert guild is not None
        state = guild.set_voice_state(member.id, channel_id, f"member-{member.id}")
        await self.gateway.dispatch_all("VOICE_STATE_UPDATE", state, p.INTENT_GUILD_VOICE_STATES,
                                        guild.id)
        self.changes.notify()

    def voice_connector(self) -> Any:
        """An aiohttp connector trusting the voice gateway's TLS certificate: pass it to the
        bot as ``connector=`` (discord.py dials voice gateways only over wss://)."""
        return self.voice.connector()

    async def wait_voice(
        self,
        check: Callable[[VoiceConnection], bool],
        *,
        guild_id: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "a voice connection",
    ) -> VoiceConnection:
        """The first voice connection (of the guild, if given) for which ``check`` holds."""

        def find() -> VoiceConnection | None:
            return next((c for c in self.voice.connections
                         if (guild_id is None or c.guild_id == guild_id) and check(c)), None)

        return await self.changes.wait_for(find, timeout=timeout, what=what)

    def add_member(
        self,
        user_id: int | None = None,
        name: str = "member",
        *,
        permissions: int | None = None,
        roles: list[int] | tuple[int, ...] = (),
        bot: bool = False,
        guild: Guild | None = None,
    ) -> GuildMember:
        """A guild member; `permissions` gives them a role with exactly those extra bits.

        Members added after a client identified are not announced over the gateway (bots rarely
        have the members intent); interactions still carry the member in full.
        """
        guild = guild or self.guild
        role_ids = list(roles)
        if permissions is not None:
            role_ids.append(guild.add_role(f"{name} permissions", permissions))
        return guild.add_member(
            user_id if user_id is not None else self.ids.next(), name, roles=role_ids, bot=bot
        )

    def attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        channel_id: int | None = None,
    ) -> Upload:
        """A file a user attaches to an ATTACHMENT option; the double serves it at `.url`."""
        return self.store.make_upload(
            channel_id or self.channel_id, filename, data, content_type=content_type, ephemeral=True
        )

    # -- gateway ----------------------------------------------------------------------------

    @property
    def sessions(self) -> list[GatewaySession]:
        return self.gateway.sessions

    async def wait_identified(
        self, timeout: float = DEFAULT_TIMEOUT, *, after: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> GatewaySession:
        """A session (the `after`-th or later; of ``shard``, if given) that identified and got
        READY and GUILD_CREATE."""

        def check() -> GatewaySession | None:
            for session in reversed(self.gateway.sessions[after:]):
                if session.ready and session.open and shard in (None, session.shard):
                    return session
            return None

        return await self.changes.wait_for(check, timeout=timeout, what="a client to identify")

    async def reconnect(self, timeout: float = DEFAULT_TIMEOUT) -> GatewaySession:
        """Sends op 7 RECONNECT and waits until the client has RESUMEd the same session."""
        session = await self.wait_identified(timeout)
        resumes = session.resumes
        await self.gateway.reconnect(session)
        return await self.changes.wait_for(
            lambda: session if session.resumes > resumes and session.open else None,
            timeout=timeout,
            what="the client to resume",
        )

    async def broadcast_message(self, event: str, snapshot: MessageSnapshot) -> None:
        data = dict(snapshot.raw)
        guild = self.guild_of(snapshot.channel_id) or self.guild
        data["guild_id"] = str(guild.id)
        author = guild.members.get(int(data["author"]["id"]))
        if author is not None:
            data["member"] = guild.member_payload(author, with_user=False)
        await self.gateway.dispatch_all(event, data, p.INTENT_GUILD_MESSAGES, guild.id)

    async def broadcast_delete(self, snapshot: MessageSnapshot) -> None:
        guild = self.guild_of(snapshot.channel_id) or self.guild
        data = {
            "id": str(snapshot.id),
            "channel_id": str(snapshot.channel_id),
            "guild_id": str(guild.id),
        }
        await self.gateway.dispatch_all("MESSAGE_DELETE", data, p.INTENT_GUILD_MESSAGES, guild.id)

    # -- what the bot did -------------------------------------------------------------------

    @property
    def errors(self) -> list[RecordedRequest]:
        """Requests the double refused (4xx), unknown routes included."""
        return [r for r in self.requests if r.status >= 400]

    def assert_no_errors(self) -> None:
        if self.errors:
            raise AssertionError(
                "the double refused requests:\n"
                + "\n".join(f"  {r.summary()} {r.response}" for r in self.errors)
            )

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """Requests to a route template, e.g. 'PUT /applications/{application_id}/commands'."""
        return [r for r in self.requests if r.route == route]

    async def wait_for_request(
        self, predicate: Callable[[RecordedRequest], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> RecordedRequest:
        """The first answered request (past or future) matching `predicate`."""
        return await self.changes.wait_for(
            lambda: next((r for r in self.requests if r.status and predicate(r)), None),
            timeout=timeout,
            what="a matching request",
        )

    def message(self, message_id: int) -> MessageSnapshot:
        return self.store.snapshot(message_id)

    def history(self, message_id: int) -> list[MessageSnapshot]:
        return list(self.store.history[message_id])

    def channel_messages(self, channel_id: int | None = None) -> list[MessageSnapshot]:
        """Messages everyone in the channel sees now (not ephemeral, not deleted), oldest first."""
        channel_id = channel_id or self.channel_id
        return [
            self.store.snapshot(mid)
            for mid, raw in self.store.messages.items()
            if int(raw["channel_id"]) == channel_id
            and mid not in self.store.deleted
            and not int(raw.get("flags") or 0) & p.FLAG_EPHEMERAL
        ]

    @property
    def global_commands(self) -> list[dict[str, Any]]:
        return self.commands.list(None)

    @property
    def guild_commands(self) -> list[dict[str, Any]]:
        return self.commands.list(self.guild.id)

    def _describe(self) -> str:
        lines = ["recent requests:"]
        lines += [
            f"  {r.summary()}" + (f" {r.response}" if r.status >= 400 else "")
            for r in self.requests[-10:]
        ] or ["  (none)"]
        if self.unknown_requests:
            lines.append(f"unknown routes: {[r.summary() for r in self.unknown_requests]}")
        active = self.gateway.active()
        state = "none" if active is None else f"{active.id} open={active.open}"
        lines.append(f"active gateway session: {state}")
        return "\n".join(lines)
