"""Settings from environment variables (and CLI flags), documented in the README."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _int_or_none(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class Settings:
    token: str | None = field(default=None, repr=False)  # never printed
    db_path: Path = Path("cadenza.db")
    output_dir: Path = Path("cadenza-output")
    soundfont: Path | None = None
    dev_guild: int | None = None
    owner_ids: frozenset[int] = frozenset()
    default_model: str = "lstm"
    mp3_bitrate: str = "192k"
    workers: int = 1  # generation threads
    queue_size: int = 16
    per_user_queue: int = 3

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        e = os.environ if env is None else env
        owners = frozenset(int(x) for x in (e.get("CADENZA_OWNER_IDS") or "").replace(",", " ")
                           .split() if x.isdigit())
        values: dict[str, object] = {
            "token": (e.get("CADENZA_TOKEN") or "").strip() or None,
            "db_path": Path(e.get("CADENZA_DB") or "cadenza.db").expanduser(),
            "output_dir": Path(e.get("CADENZA_OUTPUT") or "cadenza-output").expanduser(),
            "soundfont": Path(e["CADENZA_SOUNDFONT"]).expanduser()
            if e.get("CADENZA_SOUNDFONT") else None,
            "dev_guild": _int_or_none(e.get("CADENZA_DEV_GUILD")),
            "owner_ids": owners,
            "default_model": e.get("CADENZA_MODEL") or "lstm",
        }
        for var, name in (("CADENZA_WORKERS", "workers"), ("CADENZA_QUEUE_SIZE", "queue_size"),
                          ("CADENZA_PER_MEMBER", "per_user_queue")):
            if _int_or_none(e.get(var)):
                values[name] = _int_or_none(e.get(var))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        token = "set" if self.token else "unset"
        return f"Settings(token={token}, db_path={self.db_path}, output_dir={self.output_dir})"
