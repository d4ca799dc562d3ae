"""Builders for the Discord API v10 objects the double serves: snowflakes, users, roles, errors."""

from __future__ import annotations

import base64
import datetime
import logging
import secrets
import time
from typing import Any

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000
API_VERSION = 10

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
STREAM = 1 << 9
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
USE_VAD = 1 << 25
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
USE_EXTERNAL_APPS = 1 << 50
# Every bit defined up to PIN_MESSAGES (1 << 51); Discord grants all of them to owners and admins.
ALL_PERMISSIONS = (1 << 52) - 1

EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | STREAM
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | USE_VAD
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
    | USE_EXTERNAL_APPS
)
BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)

# Gateway intents that need a toggle in the developer portal.
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_VOICE_STATES = 1 << 7
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15

# Application flags: the "limited" intent flags are what an unverified bot under 100 guilds has.
APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
APP_FLAG_APPLICATION_COMMAND_BADGE = 1 << 23
DEFAULT_APP_FLAGS = (
    APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED
    | APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED
    | APP_FLAG_APPLICATION_COMMAND_BADGE
)

# Non-boosted guilds have had a 10 MiB upload limit since 2024.
DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard a guild's events go to (Discord's formula, as discord.py computes it)."""
    return (guild_id >> 22) % shard_count


class Snowflakes:
    """Monotonic snowflake ids whose timestamp part is the real current time."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        # Worker 1, process 0; the low bits absorb ids minted within the same millisecond.
        value = (now_ms << 22) | (1 << 17)
        if value <= self._last:
            value = self._last + 1
        self._last = value
        return value

    def on_shard(self, shard_id: int, shard_count: int) -> int:
        """The next id whose guild would live on ``shard_id`` of ``shard_count``: its
        timestamp moved forward by the few milliseconds that takes (ids stay increasing)."""
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} is not one of {shard_count}")
        value = self.next()
        while shard_of(value, shard_count) != shard_id:
            value = (((value >> 22) + 1) << 22) | (1 << 17)
        self._last = value
        return value


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def bot_token(application_id: int) -> str:
    """A token shaped like Discord's: base64(user id).timestamp.hmac."""
    head = base64.urlsafe_b64encode(str(application_id).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(28)}"


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(user_id),
        "username": name,
        "global_name": None if bot else name,
        "discriminator": "0",
        "avatar": None,
        "avatar_decoration_data": None,
        "banner": None,
        "accent_color": None,
        "public_flags": 0,
        "flags": 0,
        "collectibles": None,
        "primary_guild": None,
    }
    if bot:
        payload["bot"] = True
    return payload


def bot_self_user(user_id: int, name: str) -> dict[str, Any]:
    """The user object GET /users/@me and READY give a bot about itself."""
    payload = user(user_id, name, bot=True)
    payload.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
    return payload


def role(
    role_id: int,
    name: str,
    permissions: int,
    position: int,
    *,
    managed: bool = False,
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(role_id),
        "name": name,
        "description": None,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": managed,
        "mentionable": False,
        "flags": 0,
    }
    if tags is not None:
        payload["tags"] = tags
    return payload


def text_channel(channel_id: int, guild_id: int, name: str, position: int) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def voice_channel(channel_id: int, guild_id: int, name: str, position: int) -> dict[str, Any]:
    payload = text_channel(channel_id, guild_id, name, position)
    del payload["topic"]
    payload.update({"type": 2, "bitrate": 64000, "user_limit": 0, "rtc_region": None,
                    "video_quality_mode": 1})
    return payload


def voice_state(
    guild_id: int, channel_id: int | None, user_id: int, session_id: str
) -> dict[str, Any]:
    """A voice state object (https://discord.com/developers/docs/resources/voice)."""
    return {
        "guild_id": str(guild_id),
        "channel_id": str(channel_id) if channel_id is not None else None,
        "user_id": str(user_id),
        "session_id": session_id,
        "deaf": False,
        "mute": False,
        "self_deaf": False,
        "self_mute": False,
        "self_stream": False,
        "self_video": False,
        "suppress": False,
        "request_to_speak_timestamp": None,
    }


def error(code: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """Discord's JSON error body (https://discord.com/developers/docs/reference#error-messages)."""
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return body


def field_error(path: list[str | int], code: str, message: str) -> dict[str, Any]:
    """The nested `errors` object for one bad field, e.g. ['data', 'content']."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        node = {str(key): node}
    return node


def merge_errors(target: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if key in target and isinstance(target[key], dict) and key != "_errors":
            merge_errors(target[key], value)
        elif key == "_errors" and key in target:
            target[key].extend(value)
        else:
            target[key] = value
    return target


def invalid_form_body(errors: dict[str, Any]) -> dict[str, Any]:
    return error(50035, "Invalid Form Body", errors)


# Error codes the double answers with (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
UNKNOWN_CHANNEL = (10003, "Unknown Channel")
UNKNOWN_GUILD = (10004, "Unknown Guild")
UNKNOWN_MEMBER = (10007, "Unknown Member")
UNKNOWN_MESSAGE = (10008, "Unknown Message")
UNKNOWN_USER = (10013, "Unknown User")
UNKNOWN_WEBHOOK = (10015, "Unknown Webhook")
UNKNOWN_COMMAND = (10063, "Unknown application command")
UNKNOWN_INTERACTION = (10062, "Unknown interaction")
UNAUTHORIZED = (0, "401: Unauthorized")
NOT_FOUND = (0, "404: Not Found")
MISSING_PERMISSIONS = (50013, "Missing Permissions")
EMPTY_MESSAGE = (50006, "Cannot send an empty message")
ENTITY_TOO_LARGE = (40005, "Request entity too large")
ALREADY_ACKNOWLEDGED = (40060, "Interaction has already been acknowledged.")
