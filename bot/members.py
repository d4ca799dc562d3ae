"""Who asks and where: the member behind a request and the server/channel it came from."""

from __future__ import annotations

from dataclasses import dataclass

from cadenza.store_rows import scope_of

CONSOLE_USER_ID = 0


@dataclass(frozen=True)
class UserRef:
    id: int
    name: str


@dataclass(frozen=True)
class Where:
    """Where a request came from (None outside Discord)."""

    guild_id: int | None = None
    channel_id: int | None = None

    @property
    def scope(self) -> int:
        """Where its clips are numbered and seen (``cadenza.store_rows.scope_of``)."""
        return scope_of(self.guild_id, self.channel_id)
