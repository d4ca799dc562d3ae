"""Interaction payloads the double dispatches, and handles to await the bot's answers with."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import payloads as p
from .guild import Guild, GuildMember
from .messages import MessageSnapshot, UploadedFile
from .waiting import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from .server import DiscordDouble, RecordedRequest

log = logging.getLogger(__name__)

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5

# Interaction callback types.
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Which callbacks Discord accepts for which interaction type.
ALLOWED_CALLBACKS = {
    PING: {PONG},
    APPLICATION_COMMAND: {CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, MODAL},
    MESSAGE_COMPONENT: {
        CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
        MODAL,
    },
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {
        CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
    },
}


@dataclass(frozen=True)
class Callback:
    """One accepted POST /interactions/{id}/{token}/callback."""

    type: int
    data: dict[str, Any] | None
    files: list[UploadedFile] = field(default_factory=list)

    @property
    def flags(self) -> int:
        return int((self.data or {}).get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & p.FLAG_EPHEMERAL)

    @property
    def deferred(self) -> bool:
        return self.type in (DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_UPDATE_MESSAGE)

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Autocomplete suggestions (type 8)."""
        return list((self.data or {}).get("choices") or [])


def user_metadata(handle: InteractionHandle) -> dict[str, Any]:
    """The `interaction_metadata` Discord puts on messages created in reply to an interaction."""
    metadata: dict[str, Any] = {
        "id": str(handle.id),
        "type": handle.type,
        "user": handle.user.user_payload(),
        "authorizing_integration_owners": handle.payload["authorizing_integration_owners"],
    }
    if handle.type == APPLICATION_COMMAND:
        metadata["name"] = handle.command_name
        metadata["command_type"] = handle.payload["data"]["type"]
    if handle.type == MESSAGE_COMPONENT and handle.source_message_id is not None:
        metadata["interacted_message_id"] = str(handle.source_message_id)
    if handle.type == MODAL_SUBMIT and handle.opened_by is not None:
        metadata["triggering_interaction_metadata"] = user_metadata(handle.opened_by)
    return metadata


class InteractionHandle:
    """A dispatched interaction; await its callback, its @original message and its followups."""

    def __init__(
        self,
        double: DiscordDouble,
        payload: dict[str, Any],
        user: GuildMember,
        *,
        command_name: str | None = None,
        source_message_id: int | None = None,
        opened_by: InteractionHandle | None = None,
        created_at: float,
    ) -> None:
        self._double = double
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.user = user
        self.command_name = command_name
        self.source_message_id = source_message_id
        self.opened_by = opened_by
        self.created_at = created_at
        self.callbacks: list[Callback] = []
        self.original_id: int | None = None
        # Every state of the @original message this interaction produced, in order.
        self.original_history: list[MessageSnapshot] = []
        self.followup_ids: list[int] = []
        self.requests: list[RecordedRequest] = []

    def __repr__(self) -> str:
        return (
            f"<InteractionHandle id={self.id} type={self.type} name={self.command_name!r} "
            f"callbacks={[c.type for c in self.callbacks]}>"
        )

    # -- state ------------------------------------------------------------------------------

    @property
    def response(self) -> Callback | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def errors(self) -> list[RecordedRequest]:
        """Requests on this interaction's token that the double rejected."""
        return [r for r in self.requests if r.status >= 400]

    @property
    def original(self) -> MessageSnapshot | None:
        if self.original_id is None:
            return None
        return self._double.store.snapshot(self.original_id)

    @property
    def edits(self) -> list[MessageSnapshot]:
        """The @original message's states after the first (placeholder or initial) one."""
        return self.original_history[1:]

    @property
    def followups(self) -> list[MessageSnapshot]:
        return [self._double.store.snapshot(i) for i in self.followup_ids]

    @property
    def modal(self) -> dict[str, Any] | None:
        response = self.response
        return response.data if response is not None and response.type == MODAL else None

    # -- waiting ----------------------------------------------------------------------------

    def _waiting_for(self, what: str) -> Callable[[], str]:
        # Evaluated at timeout, so the message shows the final state and Discord's refusals.
        def describe() -> str:
            lines = [f"{what} of {self!r}", f"  @original states: {self.original_history}"]
            lines += [f"  refused: {r.summary()} {r.response}" for r in self.errors]
            return "\n".join(lines)

        return describe

    async def wait_response(self, timeout: float = DEFAULT_TIMEOUT) -> Callback:
        """The bot's accepted callback. A refused one (see `errors`) does not count: discord.py
        lets an error handler answer again after a failed first attempt."""
        return await self._double.changes.wait_for(
            lambda: self.response, timeout=timeout, what=self._waiting_for("the callback")
        )

    async def wait_original(
        self,
        predicate: Callable[[MessageSnapshot], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> MessageSnapshot:
        """The first state of @original matching `predicate` (default: past the placeholder)."""
        wanted = predicate or (lambda m: not m.loading)
        return await self._double.changes.wait_for(
            lambda: next((m for m in self.original_history if wanted(m)), None),
            timeout=timeout,
            what=self._waiting_for("a matching @original"),
        )

    async def wait_followup(
        self,
        predicate: Callable[[MessageSnapshot], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> MessageSnapshot:
        """The latest state of the first followup message matching `predicate`."""
        wanted = predicate or (lambda m: True)
        return await self._double.changes.wait_for(
            lambda: next((m for m in self.followups if wanted(m)), None),
            timeout=timeout,
            what=self._waiting_for("a matching followup"),
        )


def interaction_payload(
    *,
    interaction_id: int,
    application_id: int,
    kind: int,
    data: dict[str, Any],
    guild: Guild,
    member: GuildMember,
    channel_id: int,
    message: dict[str, Any] | None,
    locale: str,
    attachment_size_limit: int,
    app_permissions: int,
) -> dict[str, Any]:
    """An INTERACTION_CREATE body in a guild channel, as Discord documents it."""
    payload: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(application_id),
        "type": kind,
        "data": data,
        "guild": guild.partial_payload(),
        "guild_id": str(guild.id),
        "channel": guild.channel_payload(channel_id, viewer=member),
        "channel_id": str(channel_id),
        "member": guild.member_payload(member, permissions=True),
        "token": f"aW50ZXJhY3Rpb246{secrets.token_urlsafe(96)}",
        "version": 1,
        "app_permissions": str(app_permissions),
        "locale": locale,
        "guild_locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        # Key "0" is GUILD_INSTALL: the app is installed to this guild.
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": attachment_size_limit,
    }
    if message is not None:
        payload["message"] = message
    return payload
