"""What a test's simulated users do: slash commands, autocomplete, clicks, selects, modals."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Any

from . import commands as c
from . import interactions as i
from .guild import Guild, GuildMember
from .messages import MessageSnapshot, Upload
from .waiting import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from .server import DiscordDouble

log = logging.getLogger(__name__)

_SELECTS = {3, 5, 6, 7, 8}  # string, user, role, mentionable, channel


class Actions:
    """Mixed into DiscordDouble; each action dispatches INTERACTION_CREATE and returns a handle."""

    async def slash(
        self: DiscordDouble,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: GuildMember | None = None,
        channel_id: int | None = None,
        locale: str = "en-US",
        attachment_size_limit: int | None = None,
        app_permissions: int | None = None,
        validate: bool = True,
    ) -> i.InteractionHandle:
        """Invokes `/name` (or `/group sub`) with options typed from the registered command.

        With validate=True (the default) anything Discord's client would not send raises
        ClientWouldRefuse: missing required options, wrong types, values outside choices or
        ranges, and commands the member's permissions hide. In another guild, pass one of its
        channels as ``channel_id`` (and one of its members as ``user``).
        """
        user = user or self.member
        guild = self._guild_for(channel_id)
        top, *path = name.split()
        command = self.commands.find(top, guild.id)
        required = command.get("default_member_permissions")
        if validate and required is not None:
            needed = int(required)
            if guild.permissions(user) & needed != needed:
                raise c.ClientWouldRefuse(
                    f"/{top} needs permissions {needed}; {user.name} lacks them, so it is hidden"
                )
        data = c.command_data(
            command,
            path,
            options or {},
            lambda kind, value, resolved: self._resolve(kind, value, resolved, user, guild),
            validate=validate,
        )
        return await self._dispatch(
            i.APPLICATION_COMMAND,
            data,
            user=user,
            channel_id=channel_id,
            command_name=name,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
            app_permissions=app_permissions,
        )

    async def autocomplete(
        self: DiscordDouble,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        user: GuildMember | None = None,
        channel_id: int | None = None,
    ) -> i.InteractionHandle:
        """The user typing `options[focused]` in an autocompleted option; see response.choices."""
        user = user or self.member
        guild = self._guild_for(channel_id)
        top, *path = name.split()
        command = self.commands.find(top, guild.id)
        data = c.command_data(
            command,
            path,
            options,
            lambda kind, value, resolved: self._resolve(kind, value, resolved, user, guild),
            validate=True,
            focused=focused,
        )
        return await self._dispatch(
            i.AUTOCOMPLETE, data, user=user, channel_id=channel_id, command_name=name
        )

    async def click(
        self: DiscordDouble,
        message: MessageSnapshot | int,
        custom_id: str,
        *,
        user: GuildMember | None = None,
        validate: bool = True,
    ) -> i.InteractionHandle:
        """Clicks a button on the message as it is now (the latest edit, even across restarts)."""
        snapshot, component = self._component(message, custom_id)
        if validate:
            if component.get("type") != 2:
                raise c.ClientWouldRefuse(f"{custom_id!r} is not a button; use select()")
            if component.get("disabled"):
                raise c.ClientWouldRefuse(f"button {custom_id!r} is disabled")
        data = {"custom_id": custom_id, "component_type": 2, "id": component.get("id")}
        return await self._component_interaction(snapshot, data, user)

    async def select(
        self: DiscordDouble,
        message: MessageSnapshot | int,
        custom_id: str,
        values: list[Any],
        *,
        user: GuildMember | None = None,
        validate: bool = True,
    ) -> i.InteractionHandle:
        """Picks `values` in a select menu (option values, or members/role ids/channel ids)."""
        snapshot, component = self._component(message, custom_id)
        kind = component.get("type")
        if kind not in _SELECTS:
            raise c.ClientWouldRefuse(f"{custom_id!r} is not a select menu; use click()")
        if validate:
            low, high = component.get("min_values", 1), component.get("max_values", 1)
            if not low <= len(values) <= high or component.get("disabled"):
                raise c.ClientWouldRefuse(
                    f"select {custom_id!r} takes {low}..{high} values (disabled="
                    f"{bool(component.get('disabled'))}); got {values!r}"
                )
            if kind == 3:
                offered = [o["value"] for o in component.get("options") or []]
                if any(v not in offered for v in values):
                    raise c.ClientWouldRefuse(
                        f"select {custom_id!r} offers {offered}; got {values}"
                    )
        data: dict[str, Any] = {
            "custom_id": custom_id,
            "component_type": kind,
            "id": component.get("id"),
        }
        user = user or self.member
        if kind == 3:
            data["values"] = list(values)
        else:
            resolved: dict[str, Any] = {}
            option_kind = {5: c.USER, 6: c.ROLE, 7: c.MENTIONABLE, 8: c.CHANNEL}[kind]
            guild = self._guild_for(snapshot.channel_id)
            data["values"] = [self._resolve(option_kind, v, resolved, user, guild)
                              for v in values]
            data["resolved"] = resolved
        return await self._component_interaction(snapshot, data, user)

    async def submit_modal(
        self: DiscordDouble,
        opened_by: i.InteractionHandle,
        values: dict[str, Any],
        *,
        user: GuildMember | None = None,
        validate: bool = True,
    ) -> i.InteractionHandle:
        """Submits the modal `opened_by` was answered with; `values` maps input custom_ids."""
        modal = opened_by.modal
        if modal is None:
            raise ValueError(f"{opened_by!r} was not answered with a modal")
        seen: set[str] = set()

        def field(component: dict[str, Any]) -> dict[str, Any] | None:
            kind, custom_id = component.get("type"), component.get("custom_id")
            out: dict[str, Any] = {"type": kind}
            if "id" in component:
                out["id"] = component["id"]
            if kind == 1:
                out["components"] = [f for f in map(field, component["components"]) if f]
                return out
            if kind == 18:
                inner = field(component["component"])
                return {**out, "component": inner} if inner else None
            if kind == 4:
                seen.add(custom_id)
                value = str(values.get(custom_id, component.get("value") or ""))
                low, high = component.get("min_length", 0), component.get("max_length", 4000)
                if validate and (component.get("required", True) and not value):
                    raise c.ClientWouldRefuse(f"text input {custom_id!r} is required")
                if validate and value and not low <= len(value) <= high:
                    raise c.ClientWouldRefuse(f"text input {custom_id!r} takes {low}..{high} chars")
                return {**out, "custom_id": custom_id, "value": value}
            if kind in _SELECTS:
                seen.add(custom_id)
                return {**out, "custom_id": custom_id, "values": list(values.get(custom_id, []))}
            return None

        components = [f for f in map(field, modal["components"]) if f]
        unknown = sorted(set(values) - seen)
        if unknown:
            raise c.ClientWouldRefuse(f"modal has no inputs {unknown} (it has {sorted(seen)})")
        source = opened_by.source_message_id
        message = self.store.get(source) if source is not None else None
        return await self._dispatch(
            i.MODAL_SUBMIT,
            {"custom_id": modal["custom_id"], "components": components},
            user=user or opened_by.user,
            channel_id=int(opened_by.payload["channel_id"]),
            message=copy.deepcopy(message) if message is not None else None,
            source_message_id=source if message is not None else None,
            opened_by=opened_by,
        )

    # -- helpers ----------------------------------------------------------------------------

    def _guild_for(self: DiscordDouble, channel_id: int | None) -> Guild:
        if channel_id is None:
            return self.guild
        guild = self.guild_of(channel_id)
        if guild is None:
            raise ValueError(f"no guild has channel {channel_id}")
        return guild

    def _component(
        self: DiscordDouble, message: MessageSnapshot | int, custom_id: str
    ) -> tuple[MessageSnapshot, dict[str, Any]]:
        message_id = message.id if isinstance(message, MessageSnapshot) else int(message)
        if self.store.get(message_id) is None:
            raise LookupError(f"message {message_id} does not exist (or was deleted)")
        snapshot = self.store.snapshot(message_id)
        return snapshot, snapshot.component(custom_id)

    async def _component_interaction(
        self: DiscordDouble,
        snapshot: MessageSnapshot,
        data: dict[str, Any],
        user: GuildMember | None,
    ) -> i.InteractionHandle:
        return await self._dispatch(
            i.MESSAGE_COMPONENT,
            data,
            user=user or self.member,
            channel_id=snapshot.channel_id,
            message=copy.deepcopy(snapshot.raw),
            source_message_id=snapshot.id,
        )

    def _resolve(
        self: DiscordDouble,
        kind: int,
        value: Any,
        resolved: dict[str, Any],
        viewer: GuildMember,
        guild: Guild,
    ) -> str:
        """Puts the object behind an id-valued option into `data.resolved`; returns the id."""
        if kind == c.ATTACHMENT:
            if not isinstance(value, Upload):
                raise c.ClientWouldRefuse("attachment options take api.attachment(data, filename)")
            resolved.setdefault("attachments", {})[str(value.id)] = dict(value.payload)
            return str(value.id)
        target = value.id if isinstance(value, GuildMember) else int(value)
        if kind in (c.USER, c.MENTIONABLE) and target in guild.members:
            member = guild.members[target]
            resolved.setdefault("users", {})[str(target)] = member.user_payload()
            resolved.setdefault("members", {})[str(target)] = guild.member_payload(
                member, with_user=False, permissions=True
            )
            return str(target)
        if kind in (c.ROLE, c.MENTIONABLE) and target in guild.roles:
            resolved.setdefault("roles", {})[str(target)] = dict(guild.roles[target])
            return str(target)
        if kind == c.CHANNEL and target in guild.channels:
            channel = guild.channel_payload(target, viewer=viewer)
            resolved.setdefault("channels", {})[str(target)] = {
                key: channel[key]
                for key in ("id", "name", "type", "permissions", "parent_id", "flags", "guild_id")
            }
            return str(target)
        raise c.ClientWouldRefuse(f"nothing in the guild matches {value!r} for option type {kind}")

    async def _dispatch(
        self: DiscordDouble,
        kind: int,
        data: dict[str, Any],
        *,
        user: GuildMember,
        channel_id: int | None = None,
        message: dict[str, Any] | None = None,
        command_name: str | None = None,
        source_message_id: int | None = None,
        opened_by: i.InteractionHandle | None = None,
        locale: str = "en-US",
        attachment_size_limit: int | None = None,
        app_permissions: int | None = None,
    ) -> i.InteractionHandle:
        channel_id = channel_id or self.channel_id
        guild = self._guild_for(channel_id)
        # The interaction goes to the session of the guild's shard, once one is connected.
        await self.changes.wait_for(
            lambda: any(s.ready and s.open and s.covers(guild.id) for s in self.gateway.sessions),
            timeout=DEFAULT_TIMEOUT, what=f"a gateway session for the shard of {guild.name}")
        session = self.gateway.active(guild.id)
        assert session is not None
        if user.id not in guild.members:
            raise ValueError(f"{user.name} is not a member of {guild.name}; use add_member")
        payload = i.interaction_payload(
            interaction_id=self.ids.next(),
            application_id=self.application_id,
            kind=kind,
            data=data,
            guild=guild,
            member=user,
            channel_id=channel_id,
            message=message,
            locale=locale,
            attachment_size_limit=(
                self.attachment_size_limit
                if attachment_size_limit is None
                else attachment_size_limit
            ),
            app_permissions=(
                guild.permissions(guild.bot)
                if app_permissions is None
                else app_permissions
            ),
        )
        handle = i.InteractionHandle(
            self,
            payload,
            user,
            command_name=command_name,
            source_message_id=source_message_id,
            opened_by=opened_by,
            created_at=asyncio.get_running_loop().time(),
        )
        self.interactions[handle.id] = handle
        self.interactions_by_token[handle.token] = handle
        await session.dispatch("INTERACTION_CREATE", payload)
        self.changes.notify()
        return handle
