"""Settings from environment variables (and CLI flags), documented in the README."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cadenza.deadlines import Deadlines
from cadenza.errors import UserError, shown

MAX_SNOWFLAKE = 2**63 - 1  # Discord ids are positive 64-bit integers (stored as SQLite ints)
COUNTS = (("CADENZA_WORKERS", "workers"), ("CADENZA_QUEUE_SIZE", "queue_size"),
          ("CADENZA_PER_MEMBER", "per_user_queue"))


# Bad values are echoed back (shortened) to show the typo; only number and id variables pass
# through here, never the token.
def _seconds(env: Mapping[str, str], var: str) -> float | None:
    """A positive number of seconds, or None when unset."""
    raw = (env.get(var) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise UserError(f"{var} must be a number of seconds above 0 (got {shown(raw)})")
    return value


def _count(env: Mapping[str, str], var: str) -> int | None:
    """A positive whole number, or None when unset. A typo used to be dropped silently (the
    default applied without a word), so a bad value now stops start-up with one line."""
    raw = (env.get(var) or "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise UserError(f"{var} must be a whole number of at least 1 (got {shown(raw)})")
    return int(raw)


def _snowflake(var: str, raw: str, what: str) -> int:
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_SNOWFLAKE:
        raise UserError(f"{var} must be {what} (got {shown(raw)})")
    return int(raw)


def default_workers() -> int:
    """Jobs composed at once by default: two per CPU this process may use. A job spends its
    time in turn on the generation thread (its sampling steps batched with the other jobs'),
    in a render process and waiting on Discord, so with one job per core a core idles
    whenever its job changes stage; render processes stay at one per CPU (RenderPool size),
    the extra jobs generate meanwhile."""
    return 2 * cpu_count()


def parse_shard_ids(raw: str, var: str = "--shard-ids") -> tuple[int, ...]:
    """``0-3``, ``4,5`` or ``0-1,6``: the shards one gateway process runs."""
    ids: list[int] = []
    for part in raw.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise UserError(f"{var} wants shard numbers like 0-3 or 0,2 (got {shown(raw)})")
        lo, hi = int(first), int(last) if dash else int(first)
        if hi < lo:
            raise UserError(f"{var}: {shown(part)} runs backwards")
        ids.extend(range(lo, hi + 1))
    if len(set(ids)) != len(ids):
        raise UserError(f"{var} names a shard twice (got {shown(raw)})")
    return tuple(sorted(ids))


def check_shards(shard_ids: tuple[int, ...] | None, shard_count: int | None) -> None:
    """Shards are all or nothing: ids need a count, and every id is below it."""
    if shard_ids is not None and shard_count is None:
        raise UserError("--shard-ids needs --shard-count (CADENZA_SHARD_COUNT): the total "
                        "number of shards over every gateway process")
    if shard_ids and shard_count is not None and max(shard_ids) >= shard_count:
        raise UserError(f"shard {max(shard_ids)} does not exist: shards are numbered 0 to "
                        f"{shard_count - 1} (shard count {shard_count})")


def cpu_count() -> int:
    """The cores this process may run on (``os.process_cpu_count`` from Python 3.13)."""
    counter = getattr(os, "process_cpu_count", None)
    if counter is not None:
        return counter() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


PG_URL_PREFIXES = ("postgresql://", "postgres://", "postgresql+asyncpg://")
DEFAULT_DB = "cadenza.db"


def db_target(raw: str | Path) -> Path | str:
    """What ``CADENZA_DB`` (or ``--db``) names: a ``postgresql://`` URL (kept as text), or a
    SQLite file, given as a path or ``sqlite:path`` (``sqlite:///abs/path`` too)."""
    if isinstance(raw, Path):
        return raw.expanduser()
    text = raw.strip()
    if text.startswith(PG_URL_PREFIXES):
        return text
    if text.startswith("sqlite:"):
        text = text[len("sqlite:"):]
        # sqlite:///abs/path (URL form) is /abs/path; sqlite://rel is rel
        text = text[2:] if text.startswith("//") else text
    return Path(text or DEFAULT_DB).expanduser()


@dataclass(frozen=True)
class Settings:
    token: str | None = field(default=None, repr=False)  # never printed
    db_path: Path | str = Path(DEFAULT_DB)  # a SQLite file, or a postgresql:// URL
    output_dir: Path = Path("cadenza-output")
    soundfont: Path | None = None
    dev_guild: int | None = None
    owner_ids: frozenset[int] = frozenset()
    default_model: str = "lstm"
    mp3_bitrate: str = "192k"
    # concurrent jobs (generation threads; render processes up to one per CPU): see
    # default_workers
    workers: int = field(default_factory=default_workers)
    deadlines: Deadlines = field(default_factory=Deadlines)
    queue_size: int = 16
    per_user_queue: int = 3
    # Seconds a job stays its gateway process's without renewal (CADENZA_JOB_LEASE); None: 30
    # on PostgreSQL (shared by several processes), 0 on a SQLite file (one process)
    job_lease: float | None = None
    # Gateway sharding (docs/deploy.md): the shards this process runs, of shard_count over
    # every process; None: one process, Discord's recommended count (AutoShardedBot's default)
    shard_ids: tuple[int, ...] | None = None
    shard_count: int | None = None
    # Ray Serve workers: a cluster address, or "local" to start one here; None: in-process
    serve: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        e = os.environ if env is None else env
        owners = frozenset(
            _snowflake("CADENZA_OWNER_IDS", x, "Discord user ids (numbers, as Copy User ID "
                       "gives them) separated by commas or spaces")
            for x in (e.get("CADENZA_OWNER_IDS") or "").replace(",", " ").split())
        guild = (e.get("CADENZA_DEV_GUILD") or "").strip()
        values: dict[str, object] = {
            "token": (e.get("CADENZA_TOKEN") or "").strip() or None,
            "db_path": db_target(e.get("CADENZA_DB") or DEFAULT_DB),
            "output_dir": Path(e.get("CADENZA_OUTPUT") or "cadenza-output").expanduser(),
            "soundfont": Path(e["CADENZA_SOUNDFONT"]).expanduser()
            if e.get("CADENZA_SOUNDFONT") else None,
            "dev_guild": _snowflake("CADENZA_DEV_GUILD", guild, "a Discord server id (a number, "
                                    "as Copy Server ID gives it)") if guild else None,
            "owner_ids": owners,
            "default_model": e.get("CADENZA_MODEL") or "lstm",
            "deadlines": Deadlines.from_env(e),
            "job_lease": _seconds(e, "CADENZA_JOB_LEASE"),
            "shard_ids": parse_shard_ids(e["CADENZA_SHARD_IDS"], "CADENZA_SHARD_IDS")
            if (e.get("CADENZA_SHARD_IDS") or "").strip() else None,
            "shard_count": _count(e, "CADENZA_SHARD_COUNT"),
            "serve": (e.get("CADENZA_SERVE") or "").strip() or None,
        }
        for var, name in COUNTS:
            count = _count(e, var)
            if count is not None:
                values[name] = count
        values.update({k: v for k, v in overrides.items() if v is not None})
        check_shards(values.get("shard_ids"), values.get("shard_count"))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        token = "set" if self.token else "unset"
        return f"Settings(token={token}, db_path={self.db_path}, output_dir={self.output_dir})"
