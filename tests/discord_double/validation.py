"""Discord's documented limits on messages, components and commands, as Invalid Form Body."""

from __future__ import annotations

import logging
import re
from typing import Any

from . import payloads as p

log = logging.getLogger(__name__)

Errors = dict[str, Any]

_EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_INTERACTIVE = {2, 3, 5, 6, 7, 8}  # buttons and the select menus


def _max_length(errors: Errors, path: list[str | int], value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        p.merge_errors(
            errors,
            p.field_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."),
        )


def _embed_errors(errors: Errors, path: list[str | int], embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > 10:
        p.merge_errors(
            errors, p.field_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        )
    total = 0
    for index, embed in enumerate(embeds):
        here = [*path, index]
        for key, limit in _EMBED_TEXT_LIMITS.items():
            _max_length(errors, [*here, key], embed.get(key), limit)
            total += len(embed.get(key) or "")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            p.merge_errors(
                errors,
                p.field_error(
                    [*here, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                ),
            )
        for f_index, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                value = fld.get(key)
                if not value:
                    p.merge_errors(
                        errors,
                        p.field_error(
                            [*here, "fields", f_index, key],
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        ),
                    )
                _max_length(errors, [*here, "fields", f_index, key], value, limit)
                total += len(value or "")
        footer = (embed.get("footer") or {}).get("text")
        _max_length(errors, [*here, "footer", "text"], footer, 2048)
        author = (embed.get("author") or {}).get("name")
        _max_length(errors, [*here, "author", "name"], author, 256)
        total += len(footer or "") + len(author or "")
    if total > 6000:
        p.merge_errors(
            errors,
            p.field_error(
                path, "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            ),
        )


def _component_errors(
    errors: Errors, path: list[str | int], components: list[dict[str, Any]], v2: bool
) -> None:
    if not v2 and len(components) > 5:
        p.merge_errors(
            errors, p.field_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        )
    seen: set[str] = set()

    def visit(component: dict[str, Any], here: list[str | int]) -> None:
        kind = component.get("type")
        children = component.get("components")
        if kind == 1 and children is not None and len(children) > 5:
            p.merge_errors(
                errors,
                p.field_error(
                    [*here, "components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
                ),
            )
        if kind in _INTERACTIVE:
            custom_id = component.get("custom_id")
            link_like = kind == 2 and component.get("style") in (5, 6)
            if custom_id is None and not link_like:
                p.merge_errors(
                    errors,
                    p.field_error(
                        [*here, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required"
                    ),
                )
            _max_length(errors, [*here, "custom_id"], custom_id, 100)
            if custom_id is not None and custom_id in seen:
                p.merge_errors(
                    errors,
                    p.field_error(
                        [*here, "custom_id"],
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    ),
                )
            if custom_id is not None:
                seen.add(custom_id)
        if kind == 2:
            _max_length(errors, [*here, "label"], component.get("label"), 80)
        if kind == 3:
            options = component.get("options") or []
            if not 1 <= len(options) <= 25:
                p.merge_errors(
                    errors,
                    p.field_error(
                        [*here, "options"],
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 25 in length.",
                    ),
                )
        for index, child in enumerate(children or []):
            visit(child, [*here, "components", index])
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                visit(component[key], [*here, key])

    for index, component in enumerate(components):
        visit(component, [*path, index])


def message_errors(
    body: dict[str, Any],
    *,
    files: int,
    creating: bool,
    prefix: list[str | int] | None = None,
) -> dict[str, Any] | None:
    """The Discord error body for a bad message create/edit payload, or None if it is valid."""
    prefix = prefix or []
    errors: Errors = {}
    flags = int(body.get("flags") or 0)
    _max_length(errors, [*prefix, "content"], body.get("content"), 2000)
    if body.get("embeds"):
        _embed_errors(errors, [*prefix, "embeds"], body["embeds"])
    if body.get("components"):
        _component_errors(
            errors,
            [*prefix, "components"],
            body["components"],
            bool(flags & p.FLAG_IS_COMPONENTS_V2),
        )
    if errors:
        return p.invalid_form_body(errors)
    has_anything = any(
        body.get(key) for key in ("content", "embeds", "components", "sticker_ids", "poll")
    )
    if creating and not has_anything and not files:
        return p.error(*p.EMPTY_MESSAGE)
    return None


def command_errors(commands: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Checks the bulk-overwrite body the way Discord does for the rules bots commonly break."""
    errors: Errors = {}
    if len(commands) > 100:
        p.merge_errors(errors, p.field_error([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer."))
    names: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        kind = int(command.get("type", 1))
        name = command.get("name", "")
        if kind == 1 and (not _COMMAND_NAME.match(name) or name != name.lower()):
            p.merge_errors(
                errors,
                p.field_error(
                    [index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                ),
            )
        if (kind, name) in names:
            p.merge_errors(
                errors,
                p.field_error(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                ),
            )
        names.add((kind, name))
        if kind == 1 and not 1 <= len(command.get("description") or "") <= 100:
            p.merge_errors(
                errors,
                p.field_error(
                    [index, "description"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                ),
            )
        _option_errors(errors, [index, "options"], command.get("options") or [])
    return p.invalid_form_body(errors) if errors else None


def _option_errors(errors: Errors, path: list[str | int], options: list[dict[str, Any]]) -> None:
    if len(options) > 25:
        p.merge_errors(
            errors, p.field_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        )
    seen_optional = False
    for index, option in enumerate(options):
        here = [*path, index]
        if option.get("type") in (1, 2):
            _option_errors(errors, [*here, "options"], option.get("options") or [])
            continue
        if option.get("required"):
            if seen_optional:
                p.merge_errors(
                    errors,
                    p.field_error(
                        [*here, "required"],
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    ),
                )
        else:
            seen_optional = True
        name = option.get("name", "")
        if not _COMMAND_NAME.match(name) or name != name.lower():
            p.merge_errors(
                errors,
                p.field_error(
                    [*here, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                ),
            )
        if not 1 <= len(option.get("description") or "") <= 100:
            p.merge_errors(
                errors,
                p.field_error(
                    [*here, "description"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                ),
            )
        if len(option.get("choices") or []) > 25:
            p.merge_errors(
                errors,
                p.field_error(
                    [*here, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                ),
            )
