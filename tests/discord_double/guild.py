"""The double's one test guild: roles, channels, members and their computed permissions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from . import payloads as p

log = logging.getLogger(__name__)


@dataclass
class GuildMember:
    """A user in the test guild; pass it as `user=` to slash/click so they act as this member."""

    id: int
    name: str
    roles: list[int] = field(default_factory=list)
    bot: bool = False
    nick: str | None = None
    joined_at: str = field(default_factory=p.now_iso)

    def user_payload(self) -> dict[str, Any]:
        return p.user(self.id, self.name, bot=self.bot)

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


class Guild:
    def __init__(
        self,
        ids: p.Snowflakes,
        *,
        name: str,
        bot_user_id: int,
        bot_name: str,
        bot_permissions: int,
        everyone_permissions: int,
        guild_id: int | None = None,
    ) -> None:
        self._ids = ids
        self.id = guild_id if guild_id is not None else ids.next()
        self.name = name
        self.roles: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.members: dict[int, GuildMember] = {}
        # Who is in which voice channel (the bot included), as voice state objects.
        self.voice_states: dict[int, dict[str, Any]] = {}
        self.roles[self.id] = p.role(self.id, "@everyone", everyone_permissions, 0)
        # Discord gives every bot a managed role holding the permissions its invite asked for.
        self.bot_role_id = self.add_role(
            bot_name, bot_permissions, managed=True, tags={"bot_id": str(bot_user_id)}
        )
        self.owner = self.add_member(ids.next(), "guild-owner")
        self.bot = self.add_member(bot_user_id, bot_name, roles=[self.bot_role_id], bot=True)
        self.channel_id = self.add_channel("general")

    # -- building ---------------------------------------------------------------------------

    def add_role(
        self,
        name: str,
        permissions: int,
        *,
        managed: bool = False,
        tags: dict[str, Any] | None = None,
    ) -> int:
        role_id = self._ids.next()
        self.roles[role_id] = p.role(
            role_id, name, permissions, len(self.roles), managed=managed, tags=tags
        )
        return role_id

    def add_channel(self, name: str) -> int:
        channel_id = self._ids.next()
        self.channels[channel_id] = p.text_channel(channel_id, self.id, name, len(self.channels))
        return channel_id

    def add_voice_channel(self, name: str) -> int:
        channel_id = self._ids.next()
        self.channels[channel_id] = p.voice_channel(channel_id, self.id, name, len(self.channels))
        return channel_id

    def set_voice_state(self, user_id: int, channel_id: int | None, session_id: str) -> dict:
        """Move a member (or the bot) into a voice channel, or out (None); returns the
        VOICE_STATE_UPDATE body, with the member."""
        state = p.voice_state(self.id, channel_id, user_id, session_id)
        if channel_id is None:
            self.voice_states.pop(user_id, None)
        else:
            self.voice_states[user_id] = state
        return {**state, "member": self.member_payload(self.members[user_id])}

    def add_member(
        self, user_id: int, name: str, *, roles: list[int] | None = None, bot: bool = False
    ) -> GuildMember:
        unknown = [r for r in roles or [] if r not in self.roles]
        if unknown:
            raise ValueError(f"unknown role ids {unknown}; create them with add_role first")
        member = GuildMember(id=user_id, name=name, roles=list(roles or []), bot=bot)
        self.members[user_id] = member
        return member

    # -- permissions ------------------------------------------------------------------------

    def permissions(self, member: GuildMember) -> int:
        """Guild-level permissions; channels carry no overwrites in the double."""
        if member.id == self.owner.id:
            return p.ALL_PERMISSIONS
        value = int(self.roles[self.id]["permissions"])
        for role_id in member.roles:
            value |= int(self.roles[role_id]["permissions"])
        if value & p.ADMINISTRATOR:
            return p.ALL_PERMISSIONS
        return value

    def set_role_permissions(self, role_id: int, permissions: int) -> None:
        self.roles[role_id]["permissions"] = str(permissions)

    # -- payloads ---------------------------------------------------------------------------

    def member_payload(
        self, member: GuildMember, *, with_user: bool = True, permissions: bool = False
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "roles": [str(r) for r in member.roles],
            "nick": member.nick,
            "avatar": None,
            "banner": None,
            "joined_at": member.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }
        if with_user:
            payload["user"] = member.user_payload()
        if permissions:
            payload["permissions"] = str(self.permissions(member))
        return payload

    def channel_payload(self, channel_id: int, *, viewer: GuildMember | None = None) -> dict:
        payload = dict(self.channels[channel_id])
        if viewer is not None:
            # Interaction payloads carry the invoking member's computed channel permissions.
            payload["permissions"] = str(self.permissions(viewer))
        return payload

    def role_payloads(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.roles.values()]

    def object_payload(self) -> dict[str, Any]:
        """The REST guild object (GET /guilds/{id})."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self.role_payloads(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "max_presences": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "incidents_data": None,
        }

    def create_payload(self, *, all_members: bool) -> dict[str, Any]:
        """The GUILD_CREATE dispatch body: the guild object plus gateway-only fields.

        Without the presences intent Discord lists only the bot itself (and voice users), so a
        bot with the members intent must request the rest (op 8).
        """
        # Discord lists the members in voice channels as well.
        members = list(self.members.values()) if all_members else [self.bot] + [
            m for m in self.members.values() if m.id in self.voice_states and m is not self.bot]
        payload = self.object_payload()
        payload.update(
            {
                "joined_at": self.bot.joined_at,
                "large": False,
                "unavailable": False,
                "member_count": len(self.members),
                "voice_states": [
                    {k: v for k, v in s.items() if k != "guild_id"}
                    for s in self.voice_states.values()
                ],
                "members": [self.member_payload(m) for m in members],
                "channels": [
                    {k: v for k, v in c.items() if k != "guild_id"} for c in self.channels.values()
                ],
                "threads": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
                "lazy": True,
            }
        )
        return payload

    def partial_payload(self) -> dict[str, Any]:
        """The partial guild interactions carry since 2024."""
        return {"id": str(self.id), "locale": "en-US", "features": []}
