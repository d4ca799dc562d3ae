"""Messages and attachments the bot creates, as Discord message objects with their edit history."""

from __future__ import annotations

import copy
import logging
import mimetypes
import secrets
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import payloads as p

log = logging.getLogger(__name__)

# Flags a bot may set itself; LOADING and EPHEMERAL are decided by the interaction flow.
_CREATE_FLAGS = p.FLAG_SUPPRESS_EMBEDS | p.FLAG_SUPPRESS_NOTIFICATIONS | p.FLAG_IS_COMPONENTS_V2
_EDIT_FLAGS = p.FLAG_SUPPRESS_EMBEDS | p.FLAG_IS_COMPONENTS_V2
# What Discord reports for files uploaded as octet-stream; fixed here because the host's
# mime.types differs between machines (Debian maps .mid to audio/sp-midi).
_CONTENT_TYPES = {
    ".mid": "audio/midi",
    ".midi": "audio/midi",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/x-wav",
    ".flac": "audio/flac",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json; charset=utf-8",
}


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request, exactly as the bot sent it."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Upload:
    """Bytes behind one attachment object, served at `payload['url']`."""

    id: int
    filename: str
    content_type: str
    data: bytes
    payload: dict[str, Any]

    @property
    def url(self) -> str:
        return self.payload["url"]


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, depth first, through rows, containers, sections and labels."""
    for component in components:
        yield component
        yield from walk_components(component.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                yield from walk_components([component[key]])


@dataclass(frozen=True)
class MessageSnapshot:
    """A message as it was at one moment (creation, an edit, or its deletion)."""

    raw: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    deleted: bool = False

    @property
    def id(self) -> int:
        return int(self.raw["id"])

    @property
    def channel_id(self) -> int:
        return int(self.raw["channel_id"])

    @property
    def content(self) -> str:
        return self.raw.get("content") or ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.raw.get("embeds") or []

    @property
    def flags(self) -> int:
        return int(self.raw.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & p.FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred response's 'Bot is thinking...' placeholder."""
        return bool(self.flags & p.FLAG_LOADING)

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.raw.get("components") or []

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]

    def component(self, custom_id: str) -> dict[str, Any]:
        for component in walk_components(self.components):
            if component.get("custom_id") == custom_id:
                return component
        raise LookupError(f"no component {custom_id!r} in message {self.id}: {self.custom_ids}")

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return self.raw.get("attachments") or []

    @property
    def filenames(self) -> list[str]:
        return [a["filename"] for a in self.attachments]

    def file(self, filename: str) -> bytes:
        try:
            return self.files[filename]
        except KeyError:
            raise LookupError(
                f"no attachment {filename!r} in message {self.id}: {self.filenames}"
            ) from None

    @property
    def interaction_metadata(self) -> dict[str, Any] | None:
        return self.raw.get("interaction_metadata")

    @property
    def edited(self) -> bool:
        return self.raw.get("edited_timestamp") is not None

    def __repr__(self) -> str:
        state = " deleted" if self.deleted else ""
        return (
            f"<MessageSnapshot id={self.id}{state} flags={self.flags} content={self.content!r} "
            f"embeds={len(self.embeds)} files={self.filenames} custom_ids={self.custom_ids}>"
        )


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


class MessageStore:
    def __init__(self, ids: p.Snowflakes, base_url: Callable[[], str]) -> None:
        self._ids = ids
        self._base_url = base_url
        self.messages: dict[int, dict[str, Any]] = {}
        self.history: dict[int, list[MessageSnapshot]] = {}
        self.uploads: dict[int, Upload] = {}
        self.deleted: set[int] = set()

    # -- attachments ------------------------------------------------------------------------

    def make_upload(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> Upload:
        attachment_id = self._ids.next()
        # Discord stores names with spaces replaced; assertions should see what users see.
        filename = filename.replace(" ", "_")
        if content_type in (None, "application/octet-stream"):
            suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
            content_type = (
                _CONTENT_TYPES.get(suffix)
                or mimetypes.guess_type(filename)[0]
                or "application/octet-stream"
            )
        now = int(time.time())
        # Real CDN links carry signed expiry parameters; bots must not depend on their absence.
        signature = f"?ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        url = f"{self._base_url()}/attachments/{channel_id}/{attachment_id}/{filename}{signature}"
        payload: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url.replace("/attachments/", "/media-proxy/attachments/", 1),
            "content_type": content_type,
        }
        size = _png_size(data)
        if size is not None:
            payload["width"], payload["height"] = size
        if description is not None:
            payload["description"] = description
        if ephemeral:
            payload["ephemeral"] = True
        upload = Upload(attachment_id, filename, content_type, data, payload)
        self.uploads[attachment_id] = upload
        return upload

    def _attachments(
        self,
        channel_id: int,
        existing: list[dict[str, Any]],
        wanted: list[dict[str, Any]] | None,
        files: list[UploadedFile],
        ephemeral: bool,
    ) -> list[dict[str, Any]]:
        by_field = {f.field: f for f in files}
        if wanted is None:
            # No `attachments` array: keep what is there and append every uploaded file.
            wanted = [{"id": i} for i in range(len(files))]
            result = list(existing)
        else:
            result = []
        kept = {a["id"]: a for a in existing}
        for entry in wanted:
            key = str(entry.get("id"))
            upload_field = f"files[{key}]"
            if upload_field in by_field:
                part = by_field[upload_field]
                upload = self.make_upload(
                    channel_id,
                    entry.get("filename") or part.filename,
                    part.data,
                    content_type=part.content_type,
                    description=entry.get("description"),
                    ephemeral=ephemeral,
                )
                result.append(upload.payload)
            elif key in kept:
                result.append(kept[key])
            else:
                raise KeyError(key)
        return result

    def _embeds(self, embeds: list[dict[str, Any]], attachments: list[dict]) -> list[dict]:
        by_name = {a["filename"]: a for a in attachments}
        normalized = []
        for embed in embeds:
            embed = copy.deepcopy(embed)
            embed.setdefault("type", "rich")
            for key in ("image", "thumbnail", "footer", "author"):
                part = embed.get(key)
                url_key = "url" if key in ("image", "thumbnail") else "icon_url"
                if not isinstance(part, dict) or not str(part.get(url_key, "")).startswith(
                    "attachment://"
                ):
                    continue
                target = by_name.get(part[url_key].removeprefix("attachment://"))
                if target is not None:
                    part[url_key] = target["url"]
                    part["proxy_url" if key in ("image", "thumbnail") else "proxy_icon_url"] = (
                        target["proxy_url"]
                    )
                    if "width" in target:
                        part["width"], part["height"] = target["width"], target["height"]
            normalized.append(embed)
        return normalized

    @staticmethod
    def _components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
        components = copy.deepcopy(components)
        # Discord numbers components that lack an `id`, in depth-first order, unique per message.
        used = {c["id"] for c in walk_components(components) if "id" in c}
        counter = 0
        for component in walk_components(components):
            if "id" not in component:
                counter += 1
                while counter in used:
                    counter += 1
                component["id"] = counter
        return components

    def _apply(
        self,
        message: dict[str, Any],
        body: dict[str, Any],
        files: list[UploadedFile],
    ) -> None:
        ephemeral = bool(int(message.get("flags") or 0) & p.FLAG_EPHEMERAL)
        # Attachments first: an unknown attachment id must fail before anything is changed.
        if files or "attachments" in body:
            message["attachments"] = self._attachments(
                int(message["channel_id"]),
                message.get("attachments") or [],
                body.get("attachments"),
                files,
                ephemeral,
            )
        if "content" in body:
            message["content"] = body["content"] or ""
        if "embeds" in body:
            message["embeds"] = self._embeds(body["embeds"] or [], message["attachments"])
        if "components" in body:
            message["components"] = self._components(body["components"] or [])
        if "tts" in body:
            message["tts"] = bool(body["tts"])

    # -- lifecycle --------------------------------------------------------------------------

    def create(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        author: dict[str, Any],
        message_type: int = 0,
        flags: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> MessageSnapshot:
        message_id = self._ids.next()
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": "",
            "timestamp": p.now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": message_type,
            "flags": flags | (int(body.get("flags") or 0) & _CREATE_FLAGS),
        }
        message.update(extra or {})
        self._apply(message, body, files)
        self.messages[message_id] = message
        self.history[message_id] = []
        return self._record(message_id)

    def edit(
        self, message_id: int, body: dict[str, Any], files: list[UploadedFile]
    ) -> MessageSnapshot:
        message = self.messages[message_id]
        self._apply(message, body, files)
        flags = int(message.get("flags") or 0)
        if "flags" in body and body["flags"] is not None:
            flags = (flags & ~_EDIT_FLAGS) | (int(body["flags"]) & _EDIT_FLAGS)
        if flags & p.FLAG_LOADING:
            # Resolving a deferred placeholder is its first real content, not an edit.
            flags &= ~p.FLAG_LOADING
        else:
            message["edited_timestamp"] = p.now_iso()
        message["flags"] = flags
        return self._record(message_id)

    def delete(self, message_id: int) -> MessageSnapshot:
        self.deleted.add(message_id)
        snapshot = MessageSnapshot(
            copy.deepcopy(self.messages[message_id]), self._files(message_id), deleted=True
        )
        self.history[message_id].append(snapshot)
        return snapshot

    def get(self, message_id: int) -> dict[str, Any] | None:
        if message_id in self.deleted:
            return None
        return self.messages.get(message_id)

    def snapshot(self, message_id: int) -> MessageSnapshot:
        return self.history[message_id][-1]

    def _files(self, message_id: int) -> dict[str, bytes]:
        return {
            a["filename"]: self.uploads[int(a["id"])].data
            for a in self.messages[message_id].get("attachments") or []
        }

    def _record(self, message_id: int) -> MessageSnapshot:
        snapshot = MessageSnapshot(
            copy.deepcopy(self.messages[message_id]), self._files(message_id)
        )
        self.history[message_id].append(snapshot)
        return snapshot
