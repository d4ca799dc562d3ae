"""The double's voice server: the voice gateway (a TLS websocket, as discord.py only dials wss://)
and the UDP media endpoint, on loopback.

The main gateway answers a bot's op 4 VOICE_STATE_UPDATE with VOICE_STATE_UPDATE and
VOICE_SERVER_UPDATE (``VoiceServer.join``); discord.py's ``VoiceClient`` then opens the voice
websocket: HELLO, IDENTIFY -> READY (ssrc, ip, port, modes), UDP IP discovery, SELECT_PROTOCOL
-> SESSION_DESCRIPTION (mode, secret key, ``dave_protocol_version`` 0: this server does not
offer DAVE end-to-end encryption), heartbeats, SPEAKING; then RTP packets over UDP, which the
double decrypts (``aead_xchacha20_poly1305_rtpsize``) and keeps per connection for the test to
decode (``opus_frames``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import nacl.exceptions
import nacl.secret
import trustme
from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .guild import Guild
    from .server import DiscordDouble

log = logging.getLogger(__name__)

# Voice gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
IDENTIFY, SELECT_PROTOCOL, READY, HEARTBEAT, SESSION_DESCRIPTION, SPEAKING = 0, 1, 2, 3, 4, 5
HEARTBEAT_ACK, RESUME, HELLO, RESUMED = 6, 7, 8, 9
UNKNOWN_OPCODE, NOT_AUTHENTICATED, AUTHENTICATION_FAILED, SESSION_NO_LONGER_VALID = (
    4001, 4003, 4004, 4006)
UNKNOWN_ENCRYPTION_MODE = 4016

AEAD_MODE = "aead_xchacha20_poly1305_rtpsize"
# What Discord offers today; discord.py picks the first it supports (the AES-GCM one it does not).
MODES = ["aead_aes256_gcm_rtpsize", AEAD_MODE]
HEARTBEAT_INTERVAL_MS = 13750
OPUS_SILENCE = b"\xf8\xff\xfe"  # the frame discord.py sends five of when it stops
RTP_HEADER = 12
DISCOVERY_LENGTH = 74


@dataclass
class RtpPacket:
    sequence: int
    timestamp: int
    ssrc: int
    opus: bytes


@dataclass
class VoiceConnection:
    """One bot's voice session in one guild: what it asked for, and everything it sent."""

    guild_id: int
    channel_id: int
    user_id: int
    session_id: str
    token: str
    ssrc: int
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    identified: bool = False
    mode: str | None = None
    address: tuple[str, int] | None = None  # what the client discovered and selected
    speaking: list[int] = field(default_factory=list)
    heartbeats: int = 0
    packets: list[RtpPacket] = field(default_factory=list)
    undecryptable: int = 0
    closed: bool = False
    close_code: int | None = None

    def opus_frames(self) -> list[bytes]:
        """The Opus payloads in the order sent."""
        return [packet.opus for packet in self.packets]

    def audio_frames(self) -> list[bytes]:
        """The payloads without the silence frames discord.py sends after each source."""
        return [frame for frame in self.opus_frames() if frame != OPUS_SILENCE]


class VoiceServer:
    """Started by the double on first use; ``connections`` holds every voice session."""

    def __init__(self, double: DiscordDouble) -> None:
        self._double = double
        self.connections: list[VoiceConnection] = []
        # (guild, channel) joins refused because the bot lacks Connect there
        self.refused: list[tuple[int, int]] = []
        self.ws_port: int | None = None
        self.udp_port: int | None = None
        self._ca = trustme.CA()
        self._runner: web.AppRunner | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._by_ssrc: dict[int, VoiceConnection] = {}
        self._sockets: set[web.WebSocketResponse] = set()

    # -- TLS --------------------------------------------------------------------------------

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the double's certificate authority."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def connector(self) -> aiohttp.TCPConnector:
        """For ``discord.Client(connector=...)``: discord.py dials the voice gateway over TLS
        through the same aiohttp session as REST and the main gateway."""
        return aiohttp.TCPConnector(ssl=self.client_ssl_context())

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1").configure_cert(server_context)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.ws_port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=server_context).start()
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=("127.0.0.1", 0))
        self.udp_port = self._transport.get_extra_info("sockname")[1]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"double shutting down")
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the main gateway's side ------------------------------------------------------------

    async def join(self, guild: Guild, user_id: int, channel_id: int) -> tuple[str, dict[str, Any]]:
        """A new voice session for the bot: its session id and the VOICE_SERVER_UPDATE body."""
        await self.start()
        connection = VoiceConnection(
            guild_id=guild.id, channel_id=channel_id, user_id=user_id,
            session_id=secrets.token_hex(16), token=secrets.token_hex(8),
            ssrc=1 + secrets.randbelow(2**31))
        self.connections.append(connection)
        self._by_ssrc[connection.ssrc] = connection
        server = {"token": connection.token, "guild_id": str(guild.id),
                  "endpoint": f"127.0.0.1:{self.ws_port}"}
        return connection.session_id, server

    def active(self, guild_id: int) -> VoiceConnection | None:
        """The bot's newest voice session in the guild that has not been closed."""
        live = [c for c in self.connections if c.guild_id == guild_id and not c.closed]
        return live[-1] if live else None

    def leave(self, guild_id: int) -> None:
        for connection in self.connections:
            if connection.guild_id == guild_id:
                connection.closed = True

    # -- the voice websocket ----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        seq = 0
        connection: VoiceConnection | None = None

        async def send(op: int, data: Any) -> None:
            nonlocal seq
            seq += 1
            await ws.send_str(json.dumps({"op": op, "d": data, "seq": seq}))

        try:
            await send(HELLO, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS, "v": 8})
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    continue  # DAVE's MLS frames; never sent when DAVE is not offered
                if message.type != WSMsgType.TEXT:
                    break
                payload = json.loads(message.data)
                op, data = payload.get("op"), payload.get("d") or {}
                if op == HEARTBEAT:
                    if connection is not None:
                        connection.heartbeats += 1
                    await send(HEARTBEAT_ACK, {"t": data.get("t")})
                elif op in (IDENTIFY, RESUME):
                    connection = self._authenticate(data)
                    if connection is None:
                        await ws.close(code=AUTHENTICATION_FAILED,
                                       message=b"Authentication failed.")
                        break
                    if op == RESUME:
                        await send(RESUMED, None)
                        continue
                    connection.identified = True
                    await send(READY, {"ssrc": connection.ssrc, "ip": "127.0.0.1",
                                       "port": self.udp_port, "modes": MODES,
                                       "heartbeat_interval": HEARTBEAT_INTERVAL_MS})
                elif connection is None:
                    await ws.close(code=NOT_AUTHENTICATED, message=b"Not authenticated.")
                    break
                elif op == SELECT_PROTOCOL:
                    mode = (data.get("data") or {}).get("mode")
                    if mode != AEAD_MODE:
                        await ws.close(code=UNKNOWN_ENCRYPTION_MODE,
                                       message=b"Unknown encryption mode.")
                        break
                    address = data["data"]
                    connection.mode = mode
                    connection.address = (address["address"], int(address["port"]))
                    await send(SESSION_DESCRIPTION, {
                        "mode": mode, "secret_key": list(connection.secret_key),
                        "dave_protocol_version": 0, "audio_codec": "opus",
                        "video_codec": None, "media_session_id": secrets.token_hex(16)})
                elif op == SPEAKING:
                    connection.speaking.append(int(data.get("speaking", 0)))
                else:
                    await ws.close(code=UNKNOWN_OPCODE, message=b"Unknown opcode.")
                    break
                self._double.changes.notify()
        finally:
            self._sockets.discard(ws)
            if connection is not None:
                connection.close_code = ws.close_code
            self._double.changes.notify()
        return ws

    def _authenticate(self, data: dict[str, Any]) -> VoiceConnection | None:
        for connection in self.connections:
            if (str(connection.guild_id) == str(data.get("server_id"))
                    and connection.session_id == data.get("session_id")
                    and connection.token == data.get("token")
                    and not connection.closed):
                return connection
        return None

    # -- UDP --------------------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) == DISCOVERY_LENGTH and data[:2] == b"\x00\x01":
            ssrc = struct.unpack_from(">I", data, 4)[0]
            reply = bytearray(DISCOVERY_LENGTH)
            struct.pack_into(">HHI", reply, 0, 2, 70, ssrc)
            host = addr[0].encode()
            reply[8:8 + len(host)] = host
            struct.pack_into(">H", reply, DISCOVERY_LENGTH - 2, addr[1])
            assert self._transport is not None
            self._transport.sendto(bytes(reply), addr)
            return
        if len(data) < RTP_HEADER + 4 or data[0] & 0xC0 != 0x80:
            return
        sequence, timestamp, ssrc = struct.unpack_from(">HII", data, 2)
        connection = self._by_ssrc.get(ssrc)
        if connection is None or connection.mode != AEAD_MODE:
            return
        # rtpsize: the header (with any CSRCs and the extension's 4-byte head) is the
        # additional data; the nonce's first 4 bytes trail the packet.
        header_end = RTP_HEADER + 4 * (data[0] & 0x0F) + (4 if data[0] & 0x10 else 0)
        header, body, nonce = data[:header_end], data[header_end:-4], data[-4:]
        try:
            opus = nacl.secret.Aead(connection.secret_key).decrypt(
                body, header, nonce + bytes(20))
        except nacl.exceptions.CryptoError:
            connection.undecryptable += 1
            return
        connection.packets.append(RtpPacket(sequence, timestamp, ssrc, opus))
        self._double.changes.notify()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: VoiceServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._server._datagram(data, addr)
