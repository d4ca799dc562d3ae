"""A loopback Discord API v10 (gateway, REST, CDN) for driving a real discord.py bot in tests."""

from __future__ import annotations

from .commands import ClientWouldRefuse
from .gateway import GatewaySession
from .guild import GuildMember
from .interactions import Callback, InteractionHandle
from .messages import MessageSnapshot, Upload, UploadedFile
from .rest import RecordedRequest
from .server import DiscordDouble, point_discord_at

__all__ = [
    "Callback",
    "ClientWouldRefuse",
    "DiscordDouble",
    "GatewaySession",
    "GuildMember",
    "InteractionHandle",
    "MessageSnapshot",
    "RecordedRequest",
    "Upload",
    "UploadedFile",
    "point_discord_at",
]
