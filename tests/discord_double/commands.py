"""Registered application commands, and typing option values the way Discord's client does."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from . import payloads as p

log = logging.getLogger(__name__)

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)
_OPTION_TYPE_NAMES = {
    STRING: "string",
    INTEGER: "integer",
    BOOLEAN: "boolean",
    USER: "user",
    CHANNEL: "channel",
    ROLE: "role",
    MENTIONABLE: "mentionable",
    NUMBER: "number",
    ATTACHMENT: "attachment",
}
# Options whose value is an id Discord resolves into `data.resolved`.
RESOLVED_TYPES = {USER, CHANNEL, ROLE, MENTIONABLE, ATTACHMENT}

Resolver = Callable[[int, Any, dict[str, Any]], str]


class ClientWouldRefuse(ValueError):
    """The test asked for an invocation Discord's client cannot produce (pass validate=False)."""


class CommandStore:
    def __init__(self, ids: p.Snowflakes, application_id: int) -> None:
        self._ids = ids
        self._application_id = application_id
        # None holds global commands; guild ids hold guild commands.
        self.scopes: dict[int | None, list[dict[str, Any]]] = {}

    def list(self, guild_id: int | None) -> list[dict[str, Any]]:
        return self.scopes.setdefault(guild_id, [])

    def _stored(
        self, body: dict[str, Any], guild_id: int | None, previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        command = copy.deepcopy(body)
        kind = int(command.get("type", 1))
        permissions = command.get("default_member_permissions")
        # Discord keeps a command's id when a bulk overwrite re-sends the same name and type.
        command.update(
            {
                "id": previous["id"] if previous else str(self._ids.next()),
                "application_id": str(self._application_id),
                "version": str(self._ids.next()),
                "type": kind,
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "default_member_permissions": None if permissions is None else str(permissions),
                "nsfw": bool(command.get("nsfw", False)),
                "integration_types": command.get("integration_types") or [0],
                "contexts": command.get("contexts"),
            }
        )
        if guild_id is None:
            command["dm_permission"] = command.get("dm_permission", True)
        else:
            command.pop("dm_permission", None)
            command["guild_id"] = str(guild_id)
        if not command.get("options"):
            command.pop("options", None)
        return command

    def overwrite(self, guild_id: int | None, bodies: list[dict[str, Any]]) -> list[dict]:
        old = {(c["type"], c["name"]): c for c in self.list(guild_id)}
        commands = [
            self._stored(b, guild_id, old.get((int(b.get("type", 1)), b.get("name"))))
            for b in bodies
        ]
        self.scopes[guild_id] = commands
        return copy.deepcopy(commands)

    def upsert(self, guild_id: int | None, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        commands = self.list(guild_id)
        key = (int(body.get("type", 1)), body.get("name"))
        for index, command in enumerate(commands):
            if (command["type"], command["name"]) == key:
                commands[index] = self._stored(body, guild_id, command)
                return copy.deepcopy(commands[index]), False
        command = self._stored(body, guild_id, None)
        commands.append(command)
        return copy.deepcopy(command), True

    def get(self, guild_id: int | None, command_id: int) -> dict[str, Any] | None:
        for command in self.list(guild_id):
            if int(command["id"]) == command_id:
                return command
        return None

    def delete(self, guild_id: int | None, command_id: int) -> bool:
        commands = self.list(guild_id)
        for index, command in enumerate(commands):
            if int(command["id"]) == command_id:
                del commands[index]
                return True
        return False

    def find(self, name: str, guild_id: int | None, kind: int = 1) -> dict[str, Any]:
        # A guild command shadows a global one of the same name in that guild's command picker.
        for scope in (guild_id, None):
            for command in self.scopes.get(scope, []):
                if command["name"] == name and command["type"] == kind:
                    return command
        known = sorted(c["name"] for scope in self.scopes.values() for c in scope)
        raise LookupError(
            f"no registered command {name!r} (registered: {known}); "
            "the bot must sync its tree before the double can invoke it"
        )


def _check_value(option: dict[str, Any], value: Any) -> None:
    name, kind = option["name"], option["type"]
    expected = {
        STRING: (str,),
        INTEGER: (int,),
        NUMBER: (int, float),
        BOOLEAN: (bool,),
    }[kind]
    if not isinstance(value, expected) or (kind != BOOLEAN and isinstance(value, bool)):
        raise ClientWouldRefuse(f"option {name!r} is a {_OPTION_TYPE_NAMES[kind]}; got {value!r}")
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ClientWouldRefuse(
            f"option {name!r} only offers {[c['value'] for c in choices]}; got {value!r}"
        )
    if kind in (INTEGER, NUMBER):
        low, high = option.get("min_value"), option.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ClientWouldRefuse(f"option {name!r} must be in [{low}, {high}]; got {value!r}")
    if kind == STRING:
        low, high = option.get("min_length", 0), option.get("max_length", 6000)
        if not low <= len(value) <= high:
            raise ClientWouldRefuse(
                f"option {name!r} must be {low}..{high} characters; got {len(value)}"
            )


def _leaf_options(
    definitions: list[dict[str, Any]],
    values: dict[str, Any],
    resolve: Resolver,
    resolved: dict[str, Any],
    *,
    validate: bool,
    focused: str | None,
) -> list[dict[str, Any]]:
    known = {d["name"] for d in definitions}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ClientWouldRefuse(f"unknown options {unknown}; the command has {sorted(known)}")
    if focused is not None and focused not in values:
        raise ValueError(f"focused option {focused!r} needs a (partial) value in the options")
    options = []
    # The client sends options in the order the command declares them.
    for definition in definitions:
        name, kind = definition["name"], definition["type"]
        if name not in values:
            if validate and focused is None and definition.get("required"):
                raise ClientWouldRefuse(f"required option {name!r} is missing")
            continue
        value = values[name]
        if name == focused:
            # Autocomplete sends what the user has typed so far, always as a string.
            options.append({"name": name, "type": kind, "value": str(value), "focused": True})
            continue
        if kind in RESOLVED_TYPES:
            value = resolve(kind, value, resolved)
        elif validate:
            _check_value(definition, value)
        options.append({"name": name, "type": kind, "value": value})
    return options


def command_data(
    command: dict[str, Any],
    path: list[str],
    values: dict[str, Any],
    resolve: Resolver,
    *,
    validate: bool = True,
    focused: str | None = None,
) -> dict[str, Any]:
    """The `data` of an APPLICATION_COMMAND (or autocomplete) interaction for `/name sub ...`."""
    chain: list[dict[str, Any]] = []
    definitions = command.get("options") or []
    for part in path:
        match = next(
            (
                o
                for o in definitions
                if o["name"] == part and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
            ),
            None,
        )
        if match is None:
            subs = [o["name"] for o in definitions if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
            raise ClientWouldRefuse(f"{command['name']!r} has no subcommand {part!r} ({subs})")
        chain.append(match)
        definitions = match.get("options") or []
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in definitions):
        raise ClientWouldRefuse(
            f"{' '.join([command['name'], *path])!r} is a group; name one of its subcommands"
        )
    resolved: dict[str, Any] = {}
    options = _leaf_options(
        definitions, values, resolve, resolved, validate=validate, focused=focused
    )
    for link in reversed(chain):
        options = [{"name": link["name"], "type": link["type"], "options": options}]
    data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": command["type"]}
    if options:
        data["options"] = options
    if resolved:
        data["resolved"] = resolved
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    return data
