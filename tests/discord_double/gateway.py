"""The double's gateway websocket: HELLO, IDENTIFY/READY, heartbeats, RESUME and event dispatch.

Sharding as Discord does it: IDENTIFY's ``shard: [id, count]`` picks the guilds a session gets
(READY, GUILD_CREATE and every later guild event go only to the session whose shard is
``(guild_id >> 22) % count``; DMs to shard 0); an impossible shard closes with 4010 and a shard
left with more than ``max_guilds_per_shard`` guilds with 4011 (sharding required).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import payloads as p

if TYPE_CHECKING:
    from .server import DiscordDouble

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, VOICE_STATE_UPDATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_GUILD_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11

# Close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway).
UNKNOWN_OPCODE, DECODE_ERROR, NOT_AUTHENTICATED, AUTHENTICATION_FAILED = 4001, 4002, 4003, 4004
ALREADY_AUTHENTICATED, INVALID_INTENTS, DISALLOWED_INTENTS = 4005, 4013, 4014
INVALID_SHARD, SHARDING_REQUIRED = 4010, 4011


class Connection:
    """One websocket; a session outlives it when the client resumes on a new one."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self.zlib_stream = zlib_stream
        # One zlib context per connection, as Discord's zlib-stream transport compression does.
        self._compressor = zlib.compressobj() if zlib_stream else None
        # Compression and send must stay in order, or the client's shared zlib stream breaks.
        self._lock = asyncio.Lock()
        self.heartbeats = 0
        self.received: list[dict[str, Any]] = []

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def send(self, payload: dict[str, Any]) -> bool:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return False
            try:
                if self._compressor is not None:
                    data = self._compressor.compress(text.encode())
                    await self.ws.send_bytes(data + self._compressor.flush(zlib.Z_SYNC_FLUSH))
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                # The client went away mid-send; its session keeps the event for a RESUME.
                return False
        return True

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())


@dataclass
class GatewaySession:
    """An identified gateway session: what the client asked for and every event it was sent."""

    id: str
    identify: dict[str, Any]
    connection: Connection | None = None
    seq: int = 0
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    ready: bool = False
    invalidated: bool = False
    resumes: int = 0
    close_codes: list[int | None] = field(default_factory=list)
    # Whether the client asked for zlib-stream transport compression (discord.py does).
    zlib_stream: bool = False

    @property
    def intents(self) -> int:
        return int(self.identify.get("intents") or 0)

    @property
    def shard(self) -> tuple[int, int]:
        """``(shard_id, shard_count)``; a session that sent no ``shard`` is shard 0 of 1."""
        raw = self.identify.get("shard") or (0, 1)
        return int(raw[0]), int(raw[1])

    def covers(self, guild_id: int | None) -> bool:
        """Whether this session gets the guild's events (``None``: a DM, shard 0's)."""
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return p.shard_of(guild_id, count) == shard_id

    @property
    def open(self) -> bool:
        return self.connection is not None and self.connection.open and not self.invalidated

    def event_names(self) -> list[str]:
        return [name for _, name, _ in self.events]

    async def dispatch(self, name: str, data: dict[str, Any]) -> None:
        # Events sent while the client is between connections wait here for its RESUME.
        self.seq += 1
        self.events.append((self.seq, name, data))
        if self.connection is not None:
            await self.connection.send({"op": DISPATCH, "t": name, "s": self.seq, "d": data})


class Gateway:
    def __init__(self, double: DiscordDouble) -> None:
        self._double = double
        self.sessions: list[GatewaySession] = []
        self.connections: set[Connection] = set()
        self.heartbeats = 0

    # -- queries ----------------------------------------------------------------------------

    def active(self, guild_id: int | None = None) -> GatewaySession | None:
        """Where the guild's interactions go (``None``: DMs): the newest open session of its
        shard, else the newest resumable one (which buffers events until the client
        RESUMEs)."""
        live = [s for s in self.sessions if s.ready and not s.invalidated and s.covers(guild_id)]
        open_sessions = [s for s in live if s.open]
        if open_sessions:
            return open_sessions[-1]
        return live[-1] if live else None

    async def dispatch_all(self, name: str, data: dict[str, Any], intent: int,
                           guild_id: int | None = None) -> None:
        """To every session with ``intent`` whose shard holds ``guild_id``."""
        for session in self.sessions:
            if not session.invalidated and session.ready and session.intents & intent \
                    and session.covers(guild_id):
                await session.dispatch(name, data)

    async def close_all(self) -> None:
        for connection in list(self.connections):
            # 1001: the server is going away; a still-running client would try to reconnect.
            await connection.close(1001, "double shutting down")

    # -- websocket --------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        connection = Connection(ws, zlib_stream=request.query.get("compress") == "zlib-stream")
        self.connections.add(connection)
        session: GatewaySession | None = None
        try:
            if request.query.get("encoding", "json") != "json":
                await connection.close(DECODE_ERROR, "Only JSON encoding is supported.")
                return ws
            await connection.send(
                {
                    "op": HELLO,
                    "d": {
                        "heartbeat_interval": self._double.heartbeat_interval_ms,
                        "_trace": ['["gateway-double",{"micros":0}]'],
                    },
                    "s": None,
                    "t": None,
                }
            )
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    await connection.close(DECODE_ERROR, "Error while decoding payload.")
                    break
                try:
                    payload = json.loads(message.data)
                except ValueError:
                    await connection.close(DECODE_ERROR, "Error while decoding payload.")
                    break
                connection.received.append(payload)
                session = await self._on_payload(connection, session, payload)
                self._double.changes.notify()
        finally:
            self.connections.discard(connection)
            if session is not None and session.connection is connection:
                session.connection = None
                session.close_codes.append(ws.close_code)
                # A client's own clean close (1000/1001) ends the session; other codes may resume.
                if ws.close_code in (1000, 1001):
                    session.invalidated = True
            self._double.changes.notify()
        return ws

    async def _on_payload(
        self, connection: Connection, session: GatewaySession | None, payload: dict[str, Any]
    ) -> GatewaySession | None:
        op, data = payload.get("op"), payload.get("d")
        if op == HEARTBEAT:
            connection.heartbeats += 1
            self.heartbeats += 1
            await connection.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            return session
        if op == IDENTIFY:
            if session is not None:
                await connection.close(ALREADY_AUTHENTICATED, "Already authenticated.")
                return session
            return await self._identify(connection, data or {})
        if op == RESUME:
            return await self._resume(connection, data or {})
        if session is None:
            await connection.close(NOT_AUTHENTICATED, "Not authenticated.")
            return None
        if op == REQUEST_GUILD_MEMBERS:
            await self._member_chunk(session, data or {})
        elif op == VOICE_STATE_UPDATE:
            await self._voice_state_update(session, data or {})
        elif op != PRESENCE_UPDATE:
            await connection.close(UNKNOWN_OPCODE, "Unknown opcode.")
        return session

    async def _identify(
        self, connection: Connection, data: dict[str, Any]
    ) -> GatewaySession | None:
        double = self._double
        if data.get("token") != double.token:
            await connection.close(AUTHENTICATION_FAILED, "Authentication failed.")
            return None
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            await connection.close(INVALID_INTENTS, "Invalid intent(s).")
            return None
        if intents & p.PRIVILEGED_INTENTS & ~double.allowed_privileged_intents:
            await connection.close(DISALLOWED_INTENTS, "Disallowed intent(s).")
            return None
        shard = data.get("shard", [0, 1])
        if not (isinstance(shard, list) and len(shard) == 2
                and all(type(x) is int for x in shard) and 0 <= shard[0] < shard[1]):
            await connection.close(INVALID_SHARD, "Invalid shard.")
            return None
        guilds = [g for g in double.guilds.values() if p.shard_of(g.id, shard[1]) == shard[0]]
        if len(guilds) > double.max_guilds_per_shard:
            await connection.close(SHARDING_REQUIRED, "Sharding required.")
            return None
        session = GatewaySession(
            id=secrets.token_hex(16),
            identify=data,
            connection=connection,
            zlib_stream=connection.zlib_stream,
        )
        self.sessions.append(session)
        ready: dict[str, Any] = {
            "v": p.API_VERSION,
            "user_settings": {},
            "user": p.bot_self_user(double.application_id, double.bot_name),
            "session_type": "normal",
            "session_id": session.id,
            "resume_gateway_url": double.gateway_url,
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "auth": {},
            "application": {"id": str(double.application_id), "flags": double.application_flags},
            "_trace": ['["gateway-double",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = shard
        await session.dispatch("READY", ready)
        for guild in guilds:
            await session.dispatch(
                "GUILD_CREATE",
                guild.create_payload(all_members=bool(intents & p.INTENT_GUILD_PRESENCES)),
            )
        session.ready = True
        return session

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> GatewaySession | None:
        session = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        if (
            session is None
            or session.invalidated
            or data.get("token") != self._double.token
            or not isinstance(data.get("seq"), int)
        ):
            # d=false: not resumable; the client must IDENTIFY afresh.
            await connection.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        if session.connection is not None and session.connection is not connection:
            await session.connection.close(4000, "Session resumed elsewhere.")
        session.connection = connection
        for seq, name, event in list(session.events):
            if seq > data["seq"]:
                await connection.send({"op": DISPATCH, "t": name, "s": seq, "d": event})
        session.resumes += 1
        await session.dispatch("RESUMED", {"_trace": ['["gateway-double",{"micros":0}]']})
        return session

    async def _member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        double = self._double
        guild = double.guilds.get(int(data.get("guild_id") or 0), double.guild)
        members = list(guild.members.values())
        if data.get("user_ids"):
            wanted = {int(u) for u in data["user_ids"]}
            members = [m for m in members if m.id in wanted]
        elif data.get("query"):
            members = [m for m in members if m.name.startswith(data["query"])]
        limit = data.get("limit") or 0
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [guild.member_payload(m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if "nonce" in data:
            chunk["nonce"] = data["nonce"]
        await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _voice_state_update(self, session: GatewaySession, data: dict[str, Any]) -> None:
        """The bot joins, moves within or leaves voice (op 4). Discord answers a join with the
        bot's VOICE_STATE_UPDATE and a VOICE_SERVER_UPDATE naming the voice server; a channel
        the bot may not connect to gets no answer at all (discord.py then times out)."""
        double = self._double
        guild = double.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        raw_channel = data.get("channel_id")
        bot_id = double.application_id
        if raw_channel is None:
            double.voice.leave(guild.id)
            state = guild.set_voice_state(bot_id, None, "")
            await session.dispatch("VOICE_STATE_UPDATE", state)
            double.changes.notify()
            return
        channel_id = int(raw_channel)
        channel = guild.channels.get(channel_id)
        if channel is None or channel.get("type") != 2:
            return
        if not guild.permissions(guild.bot) & p.CONNECT:
            double.voice.refused.append((guild.id, channel_id))
            double.changes.notify()
            return
        double.voice.leave(guild.id)
        session_id, server = await double.voice.join(guild, bot_id, channel_id)
        state = guild.set_voice_state(bot_id, channel_id, session_id)
        state["self_mute"] = bool(data.get("self_mute"))
        state["self_deaf"] = bool(data.get("self_deaf"))
        await session.dispatch("VOICE_STATE_UPDATE", state)
        await session.dispatch("VOICE_SERVER_UPDATE", server)
        double.changes.notify()

    async def reconnect(self, session: GatewaySession) -> None:
        """Ask the client to reconnect and RESUME (op 7), as Discord does before maintenance."""
        if session.connection is None:
            raise RuntimeError("session has no live connection to ask for a reconnect")
        await session.connection.send({"op": RECONNECT, "d": None, "s": None, "t": None})
