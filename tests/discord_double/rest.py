"""REST routes of the double: users, commands, interaction callbacks, webhooks, messages, CDN."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import interactions as i
from . import payloads as p
from .messages import MessageSnapshot, UploadedFile
from .validation import command_errors, message_errors

if TYPE_CHECKING:
    from .server import DiscordDouble

log = logging.getLogger(__name__)

API_PREFIX = f"/api/v{p.API_VERSION}"
Reply = tuple[int, Any]
# aiohttp >= 3.13 wants typed request keys; older versions only have plain strings.
RECORD: Any = (
    web.RequestKey("record", object) if hasattr(web, "RequestKey") else "discord_double.record"
)


@dataclass
class RecordedRequest:
    """One HTTP request the bot made, with its parsed body and the double's answer."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    route: str = ""
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0
    response: Any = None

    def summary(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.summary()}>"


def _reply(status: int, body: Any = None) -> Reply:
    return status, body


def _not_found(kind: tuple[int, str]) -> Reply:
    return 404, p.error(*kind)


class Rest:
    def __init__(self, double: DiscordDouble) -> None:
        self._d = double

    # -- plumbing ---------------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        a = API_PREFIX
        app = "/applications/{application_id}"
        hook = "/webhooks/{application_id}/{token}"
        table = [
            ("GET", "/users/@me", self.get_me),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway),
            ("GET", app + "/commands", self.list_commands),
            ("PUT", app + "/commands", self.overwrite_commands),
            ("POST", app + "/commands", self.upsert_command),
            ("GET", app + "/commands/{command_id}", self.command),
            ("PATCH", app + "/commands/{command_id}", self.command),
            ("DELETE", app + "/commands/{command_id}", self.command),
            ("GET", app + "/guilds/{guild_id}/commands", self.list_commands),
            ("PUT", app + "/guilds/{guild_id}/commands", self.overwrite_commands),
            ("POST", app + "/guilds/{guild_id}/commands", self.upsert_command),
            ("GET", app + "/guilds/{guild_id}/commands/{command_id}", self.command),
            ("PATCH", app + "/guilds/{guild_id}/commands/{command_id}", self.command),
            ("DELETE", app + "/guilds/{guild_id}/commands/{command_id}", self.command),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.callback),
            ("POST", hook, self.followup),
            ("GET", hook + "/messages/{message_id}", self.webhook_message),
            ("PATCH", hook + "/messages/{message_id}", self.webhook_message),
            ("DELETE", hook + "/messages/{message_id}", self.webhook_message),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("GET", "/channels/{channel_id}/messages", self.channel_history),
            ("POST", "/channels/{channel_id}/messages", self.create_channel_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.channel_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.channel_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.channel_message),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild),
            ("GET", "/guilds/{guild_id}/roles", self.get_guild),
            ("GET", "/guilds/{guild_id}/members", self.get_guild),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]
        defs = [web.route(method, a + path, handler) for method, path, handler in table]
        defs += [
            web.get("/attachments/{channel_id}/{attachment_id}/{filename}", self.cdn),
            web.get("/media-proxy/attachments/{channel_id}/{attachment_id}/{filename}", self.cdn),
            web.route("*", "/{tail:.*}", self.unknown),
        ]
        return defs

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/" or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        record = RecordedRequest(
            method=request.method,
            path=request.path.removeprefix(API_PREFIX),
            query=dict(request.query),
            headers=dict(request.headers),
            route=f"{request.method} {request.match_info.route.resource.canonical}".replace(
                API_PREFIX, ""
            )
            if request.match_info.route.resource is not None
            else "",
        )
        self._d.requests.append(record)
        try:
            await self._parse_body(request, record)
        except ValueError:
            result: Any = (400, p.error(50109, "The request body contains invalid JSON."))
        else:
            request[RECORD] = record
            if not self._authorized(request, record):
                result = (401, p.error(*p.UNAUTHORIZED))
            else:
                result = await handler(request)
        if isinstance(result, web.StreamResponse):
            record.status = result.status
            response = result
        else:
            record.status, record.response = result
            if record.status == 204:
                response = web.Response(status=204)
            else:
                # discord.py only parses bodies whose Content-Type is exactly application/json.
                response = web.Response(
                    body=json.dumps(record.response).encode(),
                    status=record.status,
                    content_type="application/json",
                )
        if record.status >= 400:
            log.info("double answered %s: %s", record.summary(), record.response)
        self._d.changes.notify()
        return response

    async def _parse_body(self, request: web.Request, record: RecordedRequest) -> None:
        if not request.body_exists:
            return
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                name = part.name or ""
                if part.filename is not None:
                    record.files.append(
                        UploadedFile(
                            field=name,
                            filename=part.filename,
                            content_type=part.headers.get("Content-Type", ""),
                            data=bytes(await part.read(decode=False)),
                        )
                    )
                elif name == "payload_json":
                    record.json = json.loads(await part.text())
            return
        raw = await request.read()
        if raw:
            record.json = json.loads(raw)

    def _authorized(self, request: web.Request, record: RecordedRequest) -> bool:
        # Webhook-token routes and the CDN are authorized by their URL, the rest by the bot token.
        if record.path.startswith(("/webhooks/", "/interactions/", "/attachments/", "/media-")):
            return True
        return request.headers.get("Authorization") == f"Bot {self._d.token}"

    async def unknown(self, request: web.Request) -> Reply:
        self._d.unknown_requests.append(request[RECORD])
        return _not_found(p.NOT_FOUND)

    # -- identity ---------------------------------------------------------------------------

    async def get_me(self, request: web.Request) -> Reply:
        return 200, p.bot_self_user(self._d.application_id, self._d.bot_name)

    async def get_user(self, request: web.Request) -> Reply:
        user_id = int(request.match_info["user_id"])
        member = next((g.members[user_id] for g in self._d.guilds.values()
                       if user_id in g.members), None)
        if member is None:
            return _not_found(p.UNKNOWN_USER)
        return 200, member.user_payload()

    async def get_application(self, request: web.Request) -> Reply:
        d = self._d
        return 200, {
            "id": str(d.application_id),
            "name": d.bot_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": d.application_flags,
            "owner": d.guild.owner.user_payload(),
            "team": None,
            "bot": p.user(d.application_id, d.bot_name, bot=True),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
            "integration_types_config": {"0": {}},
            "approximate_guild_count": 1,
            "approximate_user_install_count": 0,
            "guild_id": None,
        }

    async def get_gateway(self, request: web.Request) -> Reply:
        body: dict[str, Any] = {"url": self._d.gateway_url.rstrip("/")}
        if request.path.endswith("/bot"):
            body["shards"] = self._d.recommended_shards
            body["session_start_limit"] = {
                "total": 1000,
                "remaining": 1000,
                "reset_after": 0,
                "max_concurrency": 1,
            }
        return 200, body

    # -- commands ---------------------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | Reply | None:
        if int(request.match_info["application_id"]) != self._d.application_id:
            return 403, p.error(50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if int(guild_id) not in self._d.guilds:
            return 403, p.error(50001, "Missing Access")
        return int(guild_id)

    async def list_commands(self, request: web.Request) -> Reply:
        scope = self._command_scope(request)
        if isinstance(scope, tuple):
            return scope
        return 200, self._d.commands.list(scope)

    async def overwrite_commands(self, request: web.Request) -> Reply:
        scope = self._command_scope(request)
        if isinstance(scope, tuple):
            return scope
        body = request[RECORD].json
        if not isinstance(body, list):
            return 400, p.invalid_form_body(
                p.field_error([], "BASE_TYPE_ARRAY", "Must be an array.")
            )
        errors = command_errors(body)
        if errors:
            return 400, errors
        return 200, self._d.commands.overwrite(scope, body)

    async def upsert_command(self, request: web.Request) -> Reply:
        scope = self._command_scope(request)
        if isinstance(scope, tuple):
            return scope
        body = request[RECORD].json or {}
        errors = command_errors([body])
        if errors:
            return 400, errors
        command, created = self._d.commands.upsert(scope, body)
        return (201 if created else 200), command

    async def command(self, request: web.Request) -> Reply:
        scope = self._command_scope(request)
        if isinstance(scope, tuple):
            return scope
        store = self._d.commands
        command = store.get(scope, int(request.match_info["command_id"]))
        if command is None:
            return _not_found(p.UNKNOWN_COMMAND)
        if request.method == "DELETE":
            store.delete(scope, int(command["id"]))
            return 204, None
        if request.method == "PATCH":
            merged = {**command, **(request[RECORD].json or {})}
            errors = command_errors([merged])
            if errors:
                return 400, errors
            command, _ = store.upsert(scope, merged)
        return 200, command

    # -- interaction callbacks --------------------------------------------------------------

    def _too_large(self, files: list[UploadedFile], limit: int) -> Reply | None:
        if any(len(f.data) > limit for f in files):
            return 413, p.error(*p.ENTITY_TOO_LARGE)
        return None

    async def callback(self, request: web.Request) -> Reply:
        d = self._d
        record: RecordedRequest = request[RECORD]
        handle = d.interactions.get(int(request.match_info["interaction_id"]))
        if handle is None or handle.token != request.match_info["token"]:
            return _not_found(p.UNKNOWN_INTERACTION)
        handle.requests.append(record)
        if handle.callbacks:
            return 400, p.error(*p.ALREADY_ACKNOWLEDGED)
        late = asyncio.get_running_loop().time() - handle.created_at
        if d.callback_deadline is not None and late > d.callback_deadline:
            # Discord forgets interactions that are not answered within three seconds.
            return _not_found(p.UNKNOWN_INTERACTION)
        body = record.json or {}
        kind, data = body.get("type"), body.get("data")
        allowed = i.ALLOWED_CALLBACKS[handle.type]
        if (
            kind in (i.DEFERRED_UPDATE_MESSAGE, i.UPDATE_MESSAGE)
            and handle.source_message_id is None
        ):
            allowed = allowed - {i.DEFERRED_UPDATE_MESSAGE, i.UPDATE_MESSAGE}
        if kind not in allowed:
            return 400, p.invalid_form_body(
                p.field_error(
                    ["type"], "BASE_TYPE_CHOICES", f"Value must be one of {sorted(allowed)}."
                )
            )
        result = await self._answer(handle, kind, data or {}, record.files)
        if result is not None:
            return result
        handle.callbacks.append(i.Callback(kind, data, list(record.files)))
        response: dict[str, Any] = {"interaction": {"id": str(handle.id), "type": handle.type}}
        resource: dict[str, Any] = {"type": kind}
        original = handle.original
        if kind in (i.CHANNEL_MESSAGE_WITH_SOURCE, i.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE):
            assert original is not None
            response["interaction"].update(
                {
                    "response_message_id": str(original.id),
                    "response_message_loading": original.loading,
                    "response_message_ephemeral": original.ephemeral,
                }
            )
        if kind in (i.CHANNEL_MESSAGE_WITH_SOURCE, i.UPDATE_MESSAGE):
            assert original is not None
            resource["message"] = original.raw
        response["resource"] = resource
        if request.query.get("with_response", "").lower() in ("1", "true"):
            return 200, response
        return 204, None

    async def _answer(
        self,
        handle: i.InteractionHandle,
        kind: int,
        data: dict[str, Any],
        files: list[UploadedFile],
    ) -> Reply | None:
        """Applies a callback's effect; returns an error reply if Discord would refuse it."""
        d = self._d
        limit = handle.payload["attachment_size_limit"]
        if kind == i.CHANNEL_MESSAGE_WITH_SOURCE:
            error = self._create_errors(data, files, limit, ["data"])
            if error:
                return error
            flags = int(data.get("flags") or 0) & p.FLAG_EPHEMERAL
            await self._set_original(handle, await self._create(handle, data, files, flags=flags))
        elif kind == i.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = int(data.get("flags") or 0)
            if flags & ~p.FLAG_EPHEMERAL:
                # Only EPHEMERAL may be set when deferring; the rest is decided by the later edit.
                return 400, p.invalid_form_body(
                    p.field_error(["data", "flags"], "MESSAGE_FLAGS_INVALID", "Invalid flags")
                )
            created = await self._create(handle, {}, [], flags=flags | p.FLAG_LOADING)
            await self._set_original(handle, created)
        elif kind == i.DEFERRED_UPDATE_MESSAGE:
            handle.original_id = handle.source_message_id
        elif kind == i.UPDATE_MESSAGE:
            target = handle.source_message_id
            assert target is not None
            if d.store.get(target) is None:
                return _not_found(p.UNKNOWN_MESSAGE)
            error = self._edit_errors(target, data, files, limit, ["data"])
            if error:
                return error
            handle.original_id = target
            snapshot = await self._edit(target, data, files)
            handle.original_history.append(snapshot)
        elif kind == i.AUTOCOMPLETE_RESULT:
            if len(data.get("choices") or []) > 25:
                return 400, p.invalid_form_body(
                    p.field_error(
                        ["data", "choices"],
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 25 or fewer in length.",
                    )
                )
        elif kind == i.MODAL:
            rows = data.get("components") or []
            if not data.get("custom_id") or not data.get("title") or not 1 <= len(rows) <= 5:
                return 400, p.invalid_form_body(
                    p.field_error(
                        ["data"], "MODAL_INVALID", "Modal needs custom_id, title and 1-5 rows"
                    )
                )
            if len(data["title"]) > 45:
                return 400, p.invalid_form_body(
                    p.field_error(
                        ["data", "title"], "BASE_TYPE_MAX_LENGTH", "Must be 45 or fewer in length."
                    )
                )
        return None

    async def _set_original(self, handle: i.InteractionHandle, snapshot: MessageSnapshot) -> None:
        handle.original_id = snapshot.id
        handle.original_history.append(snapshot)

    async def _create(
        self,
        handle: i.InteractionHandle,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        flags: int,
        followup: bool = False,
    ) -> MessageSnapshot:
        d = self._d
        metadata = i.user_metadata(handle)
        if followup and handle.original_id is not None:
            metadata["original_response_message_id"] = str(handle.original_id)
        extra: dict[str, Any] = {
            "webhook_id": str(d.application_id),
            "application_id": str(d.application_id),
            "interaction_metadata": metadata,
        }
        if handle.type == i.APPLICATION_COMMAND:
            # The deprecated `interaction` field is still sent alongside interaction_metadata.
            extra["interaction"] = {
                "id": str(handle.id),
                "type": handle.type,
                "name": handle.command_name,
                "user": handle.user.user_payload(),
            }
        snapshot = d.store.create(
            int(handle.payload["channel_id"]),
            body,
            files,
            author=p.user(d.application_id, d.bot_name, bot=True),
            # CHAT_INPUT_COMMAND for slash command replies, DEFAULT for component/modal replies.
            message_type=20 if handle.type == i.APPLICATION_COMMAND else 0,
            flags=flags,
            extra=extra,
        )
        if not snapshot.ephemeral:
            await d.broadcast_message("MESSAGE_CREATE", snapshot)
        return snapshot

    async def _edit(
        self, message_id: int, body: dict[str, Any], files: list[UploadedFile]
    ) -> MessageSnapshot:
        snapshot = self._d.store.edit(message_id, body, files)
        if not snapshot.ephemeral:
            await self._d.broadcast_message("MESSAGE_UPDATE", snapshot)
        return snapshot

    # -- interaction webhooks ---------------------------------------------------------------

    def _webhook_handle(self, request: web.Request) -> i.InteractionHandle | None:
        d = self._d
        if int(request.match_info["application_id"]) != d.application_id:
            return None
        handle = d.interactions_by_token.get(request.match_info["token"])
        if handle is not None:
            handle.requests.append(request[RECORD])
        return handle

    async def followup(self, request: web.Request) -> Reply:
        handle = self._webhook_handle(request)
        # Followups need an acknowledged interaction: until then its webhook does not exist.
        if handle is None or not handle.callbacks:
            return _not_found(p.UNKNOWN_WEBHOOK)
        record: RecordedRequest = request[RECORD]
        body, files = record.json or {}, record.files
        error = self._create_errors(body, files, handle.payload["attachment_size_limit"])
        if error:
            return error
        original = handle.original
        if original is not None and original.loading and not original.deleted:
            # Discord treats a followup to an unresolved deferral as resolving it: it edits the
            # placeholder, which keeps the deferral's ephemerality whatever the followup asks.
            body = {k: v for k, v in body.items() if k != "flags"}
            snapshot = await self._edit(original.id, body, files)
            handle.original_history.append(snapshot)
            return 200, snapshot.raw
        flags = int(body.get("flags") or 0) & p.FLAG_EPHEMERAL
        snapshot = await self._create(handle, body, files, flags=flags, followup=True)
        handle.followup_ids.append(snapshot.id)
        return 200, snapshot.raw

    async def webhook_message(self, request: web.Request) -> Reply:
        d = self._d
        handle = self._webhook_handle(request)
        if handle is None:
            return _not_found(p.UNKNOWN_WEBHOOK)
        raw_id = request.match_info["message_id"]
        target = handle.original_id if raw_id == "@original" else int(raw_id)
        owned = target is not None and (
            target == handle.original_id or target in handle.followup_ids
        )
        if target is None or not owned or d.store.get(target) is None:
            return _not_found(p.UNKNOWN_MESSAGE)
        if request.method == "GET":
            return 200, d.store.snapshot(target).raw
        if request.method == "DELETE":
            snapshot = d.store.delete(target)
            if target == handle.original_id:
                handle.original_history.append(snapshot)
            if not snapshot.ephemeral:
                await d.broadcast_delete(snapshot)
            return 204, None
        record: RecordedRequest = request[RECORD]
        body, files = record.json or {}, record.files
        error = self._edit_errors(target, body, files, handle.payload["attachment_size_limit"])
        if error:
            return error
        snapshot = await self._edit(target, body, files)
        if target == handle.original_id:
            handle.original_history.append(snapshot)
        return 200, snapshot.raw

    @staticmethod
    def _attachment_errors(
        body: dict[str, Any],
        files: list[UploadedFile],
        known: set[str],
        prefix: list[str | int],
    ) -> Reply | None:
        """Each `attachments` entry must name an uploaded files[n] part or a kept attachment."""
        fields = {f.field for f in files}
        for index, entry in enumerate(body.get("attachments") or []):
            key = str(entry.get("id"))
            if key not in known and f"files[{key}]" not in fields:
                return 400, p.invalid_form_body(
                    p.field_error(
                        [*prefix, "attachments", index, "id"],
                        "ATTACHMENT_NOT_FOUND",
                        "Unknown attachment",
                    )
                )
        return None

    def _create_errors(
        self,
        body: dict[str, Any],
        files: list[UploadedFile],
        limit: int,
        prefix: list[str | int] | None = None,
    ) -> Reply | None:
        prefix = prefix or []
        error = message_errors(body, files=len(files), creating=True, prefix=prefix)
        if error:
            return 400, error
        return self._too_large(files, limit) or self._attachment_errors(body, files, set(), prefix)

    def _edit_errors(
        self,
        target: int,
        body: dict[str, Any],
        files: list[UploadedFile],
        limit: int,
        prefix: list[str | int] | None = None,
    ) -> Reply | None:
        prefix = prefix or []
        error = message_errors(body, files=len(files), creating=False, prefix=prefix)
        if error:
            return 400, error
        too_large = self._too_large(files, limit)
        if too_large:
            return too_large
        current = self._d.store.snapshot(target)
        # An edit may not leave a message with nothing in it (a loading placeholder included).
        after = {
            key: body[key] if key in body else current.raw.get(key)
            for key in ("content", "embeds", "components", "attachments")
        }
        if not any(after.values()) and not files:
            return 400, p.error(*p.EMPTY_MESSAGE)
        known = {a["id"] for a in current.attachments}
        return self._attachment_errors(body, files, known, prefix)

    # -- channels and guild -----------------------------------------------------------------

    def _channel(self, request: web.Request) -> int | None:
        channel_id = int(request.match_info["channel_id"])
        return channel_id if self._d.guild_of(channel_id) is not None else None

    async def get_channel(self, request: web.Request) -> Reply:
        channel_id = self._channel(request)
        if channel_id is None:
            return _not_found(p.UNKNOWN_CHANNEL)
        guild = self._d.guild_of(channel_id)
        assert guild is not None
        return 200, guild.channel_payload(channel_id)

    def _bot_can(self, permissions: int, channel_id: int | None = None) -> bool:
        guild = (self._d.guild_of(channel_id) if channel_id is not None else None) or self._d.guild
        return guild.permissions(guild.bot) & permissions == permissions

    async def create_channel_message(self, request: web.Request) -> Reply:
        d = self._d
        channel_id = self._channel(request)
        if channel_id is None:
            return _not_found(p.UNKNOWN_CHANNEL)
        record: RecordedRequest = request[RECORD]
        body, files = record.json or {}, record.files
        needed = p.VIEW_CHANNEL | p.SEND_MESSAGES | (p.ATTACH_FILES if files else 0)
        if not self._bot_can(needed, channel_id):
            return 403, p.error(*p.MISSING_PERMISSIONS)
        error = self._create_errors(body, files, d.attachment_size_limit)
        if error:
            return error
        extra: dict[str, Any] = {}
        if body.get("message_reference"):
            extra["message_reference"] = {**body["message_reference"], "type": 0}
        snapshot = d.store.create(
            channel_id,
            body,
            files,
            author=p.user(d.application_id, d.bot_name, bot=True),
            message_type=19 if extra else 0,
            extra=extra,
        )
        guild = d.guild_of(channel_id)
        assert guild is not None
        guild.channels[channel_id]["last_message_id"] = str(snapshot.id)
        await d.broadcast_message("MESSAGE_CREATE", snapshot)
        return 200, snapshot.raw

    async def channel_history(self, request: web.Request) -> Reply:
        d = self._d
        channel_id = self._channel(request)
        if channel_id is None:
            return _not_found(p.UNKNOWN_CHANNEL)
        if not self._bot_can(p.VIEW_CHANNEL | p.READ_MESSAGE_HISTORY, channel_id):
            return 403, p.error(*p.MISSING_PERMISSIONS)
        limit = max(1, min(100, int(request.query.get("limit", 50))))
        visible = [
            d.store.snapshot(mid).raw
            for mid, raw in d.store.messages.items()
            if int(raw["channel_id"]) == channel_id
            and d.store.get(mid) is not None
            and not int(raw.get("flags") or 0) & p.FLAG_EPHEMERAL
        ]
        return 200, list(reversed(visible))[:limit]

    async def channel_message(self, request: web.Request) -> Reply:
        d = self._d
        channel_id = self._channel(request)
        if channel_id is None:
            return _not_found(p.UNKNOWN_CHANNEL)
        message_id = int(request.match_info["message_id"])
        raw = d.store.get(message_id)
        # Ephemeral messages only exist for their recipient; the channel API cannot see them.
        if (
            raw is None
            or int(raw["channel_id"]) != channel_id
            or int(raw.get("flags") or 0) & p.FLAG_EPHEMERAL
        ):
            return _not_found(p.UNKNOWN_MESSAGE)
        if request.method == "GET":
            return 200, d.store.snapshot(message_id).raw
        own = int(raw["author"]["id"]) == d.application_id
        if request.method == "DELETE":
            if not own and not self._bot_can(p.MANAGE_MESSAGES, channel_id):
                return 403, p.error(*p.MISSING_PERMISSIONS)
            await d.broadcast_delete(d.store.delete(message_id))
            return 204, None
        if not own:
            return 403, p.error(50005, "Cannot edit a message authored by another user")
        record: RecordedRequest = request[RECORD]
        error = self._edit_errors(
            message_id, record.json or {}, record.files, d.attachment_size_limit
        )
        if error:
            return error
        return 200, (await self._edit(message_id, record.json or {}, record.files)).raw

    async def get_guild(self, request: web.Request) -> Reply:
        guild = self._d.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            return _not_found(p.UNKNOWN_GUILD)
        tail = request.path.rsplit("/", 1)[-1]
        if tail == "channels":
            return 200, [guild.channel_payload(c) for c in guild.channels]
        if tail == "roles":
            return 200, guild.role_payloads()
        if tail == "members":
            return 200, [guild.member_payload(m) for m in guild.members.values()]
        return 200, guild.object_payload()

    async def get_member(self, request: web.Request) -> Reply:
        guild = self._d.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            return _not_found(p.UNKNOWN_GUILD)
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            return _not_found(p.UNKNOWN_MEMBER)
        return 200, guild.member_payload(member)

    # -- CDN --------------------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.StreamResponse | Reply:
        upload = self._d.store.uploads.get(int(request.match_info["attachment_id"]))
        if upload is None or upload.filename != request.match_info["filename"]:
            return 404, {"message": "This content is no longer available."}
        return web.Response(body=upload.data, content_type=upload.content_type)
