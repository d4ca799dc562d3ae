"""Storage: the one SQLite file (users, clips, ratings, jobs, seeds, lineage, arena) behind an
async API; all SQL lives here."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import secrets
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiosqlite

from cadenza.config import db_target
from cadenza.errors import UserError
from cadenza.stats_math import mos_interval
from cadenza.store_rows import (
    ARENA_CHOICES,
    NODE_KINDS,
    PARTY_KINDS,
    PUBLIC_ID_MAX,
    PUBLIC_ID_MIN,
    RELATIONS,
    SEED_NAME_MAX,
    SEED_SOURCES,
    ArenaPair,
    ArenaVote,
    Clip,
    GroupStats,
    JobRow,
    Link,
    NewClip,
    NewPair,
    NewSeed,
    Node,
    PairCount,
    Parent,
    Party,
    PartyRank,
    PlayerRow,
    QueueEntry,
    Seed,
    SeedPage,
    TopEntry,
    VoteChange,
    scope_of,
)

if TYPE_CHECKING:
    from cadenza import store_pg

log = logging.getLogger(__name__)


def _pg(*, if_loaded: bool = False):  # type: ignore[no-untyped-def]
    """cadenza.store_pg, imported when a PostgreSQL store opens: it brings SQLAlchemy, which a
    SQLite store never needs and which cost a cold ``cadenza compose`` a tenth of a second.
    ``if_loaded``: None unless a PostgreSQL store already imported it (error handling that
    must not import it for a SQLite store's errors)."""
    if if_loaded:
        return sys.modules.get("cadenza.store_pg")
    from cadenza import store_pg

    return store_pg

# The row types and the statistics maths live in cadenza.store_rows and cadenza.stats_math:
# import them from there.
DB_ENV = "CADENZA_DB"
DEFAULT_DB_NAME = "cadenza.db"
# How long a request waits for a database another process is writing to: long enough to ride
# out a short write (a CLI export while the bot runs), short enough that the member hears back
# within Discord's 3 s either way (cadenza.deadlines: CADENZA_DEADLINE_STORE).
DEFAULT_WAIT = 2.0
# What work nobody is waiting on may wait (a finished clip, a job's record).
DEFAULT_PATIENT_WAIT = 20.0
# How long a job stays its process's without a renewal: a process killed mid-job has its
# jobs taken over by another (or by itself, restarted) this long after its last renewal.
DEFAULT_LEASE = 30.0
# SQLite waits for a lock in slices this long, so a cancelled wait (shutdown) returns soon.
BUSY_SLICE = 0.25
# STRICT tables (0001) need 3.37; RETURNING needs 3.35.
MIN_SQLITE = (3, 37, 0)
MAX_INT64 = 2**63 - 1

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Fixed width, so that text order in SQL is time order (created_at indexes, `since` filters).
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class StoreError(UserError):
    """A storage failure or refused request; ``str(e)`` is a one-line message fit for a user."""


class StoreBusy(StoreError):
    """Another process held the database longer than the wait allowed: nothing was stored."""


INTERRUPTED_MESSAGE = "interrupted: Cadenza restarted before this clip was finished"


def _casefold(text: object) -> str | None:
    return text.casefold() if isinstance(text, str) else None


def seed_name_key(name: str) -> str:
    """The form seed names are unique in: spaces collapsed, case folded (Unicode-aware)."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Migration:
    """One numbered schema step; ``statements`` are executed in order in one transaction."""

    version: int
    name: str
    statements: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Helpers


def default_db_path() -> Path | str:
    """The database: ``$CADENZA_DB`` if set (a file, or a postgresql:// URL), else
    ``./cadenza.db``."""
    raw = os.environ.get(DB_ENV, "").strip()
    return db_target(raw) if raw else Path(DEFAULT_DB_NAME)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def _from_ts(text: str) -> datetime:
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def _is_int64(value: object, *, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_INT64


def _check_user(user_id: int, name: str) -> None:
    if not _is_int64(user_id):
        raise StoreError(f"invalid user id {user_id!r}")
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"user {user_id} needs a non-empty name")


def _check_clip_id(clip_id: int) -> None:
    # Out-of-range ids cannot exist; answering like for any other missing clip keeps the
    # message simple (SQLite would raise OverflowError for ids beyond 64 bits).
    if not _is_int64(clip_id, minimum=1):
        raise StoreError(f"no clip #{clip_id}")


def split_sql(script: str, name: str = "script") -> tuple[str, ...]:
    """Split an SQL script into statements (triggers with inner ``;`` stay whole)."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";")[:-1]:
        buffer += piece + ";"
        # complete_statement knows about string literals, comments and CREATE TRIGGER bodies.
        if sqlite3.complete_statement(buffer):
            if _strip_comments(buffer).strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    rest = buffer + script.split(";")[-1]
    if _strip_comments(rest).strip():
        raise StoreError(f"{name}: incomplete SQL statement at the end: {rest.strip()[:60]!r}")
    return tuple(statements)


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL)


def load_migrations(source: Traversable | Path | None = None) -> tuple[Migration, ...]:
    """Every ``NNNN_name.sql`` in ``source`` (default: the packaged ``bot/migrations``)."""
    if source is None:
        return _packaged_migrations()
    found: dict[int, Migration] = {}
    for entry in source.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            raise StoreError(f"badly named migration {entry.name!r}: expected NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise StoreError(
                f"two migrations for schema v{version}: {found[version].name}, {entry.name}"
            )
        text = entry.read_text(encoding="utf-8")
        found[version] = Migration(version, entry.name, split_sql(text, entry.name))
    versions = sorted(found)
    # A gap would leave user_version pointing at a schema that was never fully built.
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migrations must be numbered 0001 upwards without gaps (got {versions})")
    return tuple(found[v] for v in versions)


@cache
def _pg_migrations() -> tuple[Migration, ...]:
    """The PostgreSQL schema: the same numbered steps as SQLite's, in its dialect."""
    return load_migrations(resources.files("cadenza").joinpath("migrations", "postgresql"))


async def _pg_version(conn: store_pg.PgConn) -> int:
    """The schema version of a PostgreSQL database (0: none yet)."""
    table = _pg().VERSION_TABLE
    rows = await conn.execute_fetchall(f"SELECT to_regclass('{table}') IS NOT NULL")
    if not rows[0][0]:
        return 0
    rows = await conn.execute_fetchall(f"SELECT max(version) FROM {table}")
    return int(rows[0][0] or 0)


@cache
def _packaged_migrations() -> tuple[Migration, ...]:
    # importlib.resources, not __file__: works from wheels and zipped installs too.
    return load_migrations(resources.files("cadenza").joinpath("migrations"))


def _is_busy(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _busy(what: str) -> StoreBusy:
    return StoreBusy(f"{what}: the database is busy (another program is writing to it); try "
                     "again in a moment")


def _translate(error: BaseException, what: str) -> StoreError:
    # only a PostgreSQL store (which imported cadenza.store_pg) raises SQLAlchemy's errors
    pg = _pg(if_loaded=True)
    if _is_busy(error) or (pg is not None and pg.is_busy(error)):
        return _busy(what)
    if pg is not None and isinstance(error, pg.SQLAlchemyError):
        return StoreError(f"{what}: {pg.error_message(error)}")
    return StoreError(f"{what}: {error}")


def _params_json(params: Mapping[str, Any]) -> str:
    if not isinstance(params, Mapping):
        kind = type(params).__name__
        raise StoreError(f"clip not stored: parameters must be a mapping, not {kind}")
    try:
        return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise StoreError(f"clip not stored: parameters are not JSON-serialisable ({e})") from e


# ---------------------------------------------------------------------------------------------
# SQL

_CLIP_COLUMNS = (
    "style, bars, tempo, key, meter, temperature, seed, model, checkpoint_sha, duration_s, "
    "user_id, guild_id, channel_id, message_id, created_at, params_json, midi, scope, number"
)

# The clip's number is the next one of its scope (clips_scope_number makes MAX a seek).
_INSERT_CLIP = f"""
INSERT INTO clips ({_CLIP_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
        (SELECT coalesce(max(number), 0) + 1 FROM clips WHERE scope = ?))
RETURNING id
"""

_UPSERT_USER = """
INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET name = excluded.name WHERE users.name <> excluded.name
"""

# Correlated subqueries use the ratings primary key, so one clip costs only its own votes.
_SELECT_CLIP = """
SELECT c.*, u.name AS user_name,
       (SELECT COUNT(*) FROM ratings AS r
        WHERE r.clip_id = c.id AND r.user_id <> c.user_id) AS rating_count,
       (SELECT AVG(r.stars) FROM ratings AS r
        WHERE r.clip_id = c.id AND r.user_id <> c.user_id) AS rating_mean
FROM clips AS c JOIN users AS u ON u.id = c.user_id
"""

_UPSERT_RATING = """
INSERT INTO ratings (clip_id, user_id, stars, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (clip_id, user_id)
DO UPDATE SET stars = excluded.stars, updated_at = excluded.updated_at
"""

# arena clips stay off the chart and out of the statistics by model: listing one, or a vote on
# one moving its model's row, would name the model behind a blind pair
_NOT_ARENA = ("AND c.id NOT IN (SELECT clip_a FROM arena_pairs "
              "UNION ALL SELECT clip_b FROM arena_pairs)")

# Bayesian average: every clip starts with `weight` phantom votes at the mean of all counted
# votes, so a single 5-star vote cannot outrank a clip with many 4.5-ish votes. The tally walks
# clips in id order and each clip's votes by primary key, so it needs no temporary sort.
_TOP = """
WITH tally AS (
    SELECT c.id AS clip_id, COUNT(*) AS n, SUM(r.stars) AS total
    FROM clips AS c JOIN ratings AS r ON r.clip_id = c.id AND r.user_id <> c.user_id
    GROUP BY c.id
),
prior AS (SELECT CAST(SUM(total) AS DOUBLE PRECISION) / SUM(n) AS mean FROM tally)
SELECT c.id, c.number, c.style, c.model, c.bars, c.tempo, c.key, c.meter, c.user_id,
       u.name AS user_name,
       c.guild_id, c.channel_id, c.message_id, c.created_at, t.n, t.total,
       (:weight * prior.mean + t.total) / (:weight + t.n) AS score
FROM tally AS t
JOIN clips AS c ON c.id = t.clip_id
JOIN users AS u ON u.id = c.user_id
CROSS JOIN prior
WHERE (CAST(:style AS TEXT) IS NULL OR c.style = :style)
  AND (CAST(:model AS TEXT) IS NULL OR c.model = :model)
  AND (CAST(:since AS TEXT) IS NULL OR c.created_at >= :since)
  AND (CAST(:scope AS BIGINT) IS NULL OR c.scope = :scope)
  """ + _NOT_ARENA + """
ORDER BY score DESC, t.n DESC, c.id
LIMIT :limit
"""

_EXPORT = """
SELECT r.clip_id, r.user_id, u.name AS user_name, r.stars, r.created_at AS rated_at,
       r.updated_at, r.user_id = c.user_id AS self_vote, c.style, c.bars, c.tempo, c.key,
       c.meter, c.temperature, c.seed, c.model, c.checkpoint_sha, c.params_json, c.duration_s,
       c.user_id AS author_id, c.created_at AS clip_created_at
FROM ratings AS r
JOIN clips AS c ON c.id = r.clip_id
JOIN users AS u ON u.id = r.user_id
ORDER BY r.clip_id, r.user_id
"""


# One row per model (or style): every clip counts, votes only from members other than the
# clip's author. The LEFT JOIN keeps unrated clips in `clips`. Per model, arena clips stay out
# (_NOT_ARENA; exports still carry their votes).
_STATS = """
SELECT c.{column} AS grp,
       COUNT(DISTINCT c.id) AS clips,
       COUNT(DISTINCT r.clip_id) AS rated_clips,
       COUNT(DISTINCT r.user_id) AS raters,
       COUNT(r.stars) AS votes,
       COALESCE(SUM(r.stars), 0) AS total,
       COALESCE(SUM(r.stars * r.stars), 0) AS total_sq
FROM clips AS c
LEFT JOIN ratings AS r ON r.clip_id = c.id AND r.user_id <> c.user_id
WHERE (CAST(:since AS TEXT) IS NULL OR c.created_at >= :since)
  AND (CAST(:scope AS BIGINT) IS NULL OR c.scope = :scope)
  {blind}
GROUP BY c.{column}
ORDER BY c.{column}
"""

_SELECT_PAIR = """
SELECT p.*, u.name AS user_name FROM arena_pairs AS p JOIN users AS u ON u.id = p.user_id
"""

_UPSERT_ARENA_VOTE = """
INSERT INTO arena_votes (pair_id, user_id, choice, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (pair_id, user_id)
DO UPDATE SET choice = excluded.choice, updated_at = excluded.updated_at
"""

# The pair (and side) a clip plays in, unless the member has already revealed its models.
_HIDDEN_ARENA_CLIP = """
SELECT p.id, CASE WHEN p.clip_a = :clip THEN 'A' ELSE 'B' END AS side
FROM arena_pairs AS p
LEFT JOIN arena_votes AS v ON v.pair_id = p.id AND v.user_id = :user
WHERE (p.clip_a = :clip OR p.clip_b = :clip) AND v.revealed_at IS NULL
ORDER BY p.id
LIMIT 1
"""

_ARENA_TALLY = "SELECT choice, COUNT(*) FROM arena_votes WHERE pair_id = ? GROUP BY choice"

_ARENA_VOTES = """
SELECT v.pair_id, v.user_id, v.choice, v.revealed_at IS NOT NULL AS revealed, p.model_a,
       p.model_b, p.style
FROM arena_votes AS v JOIN arena_pairs AS p ON p.id = v.pair_id
WHERE (CAST(:style AS TEXT) IS NULL OR p.style = :style)
ORDER BY v.pair_id, v.user_id
"""

# Per unordered model pair: how many pairs were posted and how many votes they drew (every
# choice counts: a pair nobody votes on has still been heard).
_ARENA_PAIR_COUNTS = """
SELECT CASE WHEN p.model_a < p.model_b THEN p.model_a ELSE p.model_b END AS first,
       CASE WHEN p.model_a < p.model_b THEN p.model_b ELSE p.model_a END AS second,
       COUNT(DISTINCT p.id) AS pairs, COUNT(v.user_id) AS votes
FROM arena_pairs AS p LEFT JOIN arena_votes AS v ON v.pair_id = p.id
WHERE (CAST(:style AS TEXT) IS NULL OR p.style = :style)
GROUP BY first, second
ORDER BY first, second
"""

# The prompt's fields come from clip A: both clips of a pair share them.
_ARENA_EXPORT = """
SELECT v.pair_id, v.user_id, u.name AS user_name, v.choice,
       CASE v.choice WHEN 'a' THEN p.model_a WHEN 'b' THEN p.model_b END AS winner,
       v.created_at AS voted_at, v.updated_at, v.revealed_at, p.model_a, p.model_b, p.clip_a,
       p.clip_b, p.style, c.bars, c.tempo, c.key, c.meter, c.seed,
       p.user_id AS requested_by, p.created_at AS pair_created_at
FROM arena_votes AS v
JOIN arena_pairs AS p ON p.id = v.pair_id
JOIN users AS u ON u.id = v.user_id
JOIN clips AS c ON c.id = p.clip_a
ORDER BY v.pair_id, v.user_id
"""

# A queue entry with what a listener sees of its clip: the number naming it in the playing
# server (its own there, or its public id for another server's published clip; NULL once
# withdrawn) and its prompt.
_SELECT_ENTRY = """
SELECT q.id, q.guild_id, q.clip_id,
       CASE WHEN c.scope = q.guild_id THEN c.number ELSE c.public_id END AS number,
       q.user_id, u.name AS user_name, q.party_id,
       q.status, c.style, c.bars, c.tempo, c.key, c.duration_s
FROM play_queue AS q JOIN clips AS c ON c.id = q.clip_id JOIN users AS u ON u.id = q.user_id
"""
_OPEN = "q.status IN ('queued', 'playing')"

_SELECT_PARTY = """
SELECT p.*, u.name AS user_name,
       (SELECT COUNT(*) FROM play_queue AS q WHERE q.party_id = p.id) AS composed
FROM parties AS p JOIN users AS u ON u.id = p.user_id
"""

# A party's clips that began to play, in play order, with their counted votes (a clip's
# maker's own are left out, as everywhere); best mean first, then more votes, then the one
# played first. Clips a /stop dropped before they played are not ranked.
_PARTY_RANKING = """
SELECT q.clip_id, c.number, ROW_NUMBER() OVER (ORDER BY q.id) AS position,
       COUNT(r.stars) AS votes, AVG(r.stars) AS mean
FROM play_queue AS q
JOIN clips AS c ON c.id = q.clip_id
LEFT JOIN ratings AS r ON r.clip_id = q.clip_id AND r.user_id <> c.user_id
WHERE q.party_id = ? AND q.started_at IS NOT NULL
GROUP BY q.id, q.clip_id, c.number
ORDER BY AVG(r.stars) IS NULL, AVG(r.stars) DESC, COUNT(r.stars) DESC, position
"""

_SELECT_JOB = """
SELECT j.*, u.name AS user_name FROM jobs AS j JOIN users AS u ON u.id = j.user_id
"""


_SELECT_SEED = """
SELECT s.*, u.name AS user_name FROM seeds AS s JOIN users AS u ON u.id = s.user_id
"""

# Live seeds of one guild (NULL: the console) that the viewer may use: their own and public
# ones. ``:q`` (case-folded, may be NULL) matches inside the name or the owner's name.
_VISIBLE_SEEDS = """
FROM seeds AS s JOIN users AS u ON u.id = s.user_id
WHERE s.deleted_at IS NULL AND ifnull(s.guild_id, 0) = ifnull(CAST(:guild AS BIGINT), 0)
  AND (s.public = 1 OR s.user_id = :viewer)
  AND (CAST(:q AS TEXT) IS NULL OR {match})
"""
_BY_NAME_OR_OWNER = _VISIBLE_SEEDS.format(
    match="instr(s.name_key, :q) > 0 OR instr(casefold(u.name), :q) > 0")
_BY_NAME = _VISIBLE_SEEDS.format(match="instr(s.name_key, :q) > 0")

_INSERT_LINK = """
INSERT INTO lineage (child_clip_id, child_seed_id, parent_clip_id, parent_seed_id, relation,
                     role, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

# The nodes reached from (:kind, :id) by walking lineage links up (to parents) or down (to
# children), each at its shortest distance. Lineage only ever points at older rows, so the walk
# ends; the depth cap bounds the work on a long chain of continuations all the same.
_WALK = """
WITH RECURSIVE walk(kind, id, depth) AS (
    SELECT CAST(:kind AS TEXT), CAST(:id AS BIGINT), 0
    UNION
    SELECT l.{to}_kind, l.{to}_id, walk.depth + 1
    FROM lineage AS l JOIN walk ON l.{start}_kind = walk.kind AND l.{start}_id = walk.id
    WHERE walk.depth < :max_depth
),
nodes AS (SELECT kind, id, MIN(depth) AS depth FROM walk GROUP BY kind, id)
SELECT l.relation, l.role, n.depth,
       l.child_kind, l.child_id, coalesce(cc.style, cs.name) AS child_label,
       cu.id AS child_user_id, cu.name AS child_user, cs.deleted_at IS NOT NULL AS child_deleted,
       cc.scope AS child_scope, cc.number AS child_number, cc.public_id AS child_public,
       l.parent_kind, l.parent_id, coalesce(pc.style, ps.name) AS parent_label,
       pu.id AS parent_user_id, pu.name AS parent_user,
       ps.deleted_at IS NOT NULL AS parent_deleted,
       pc.scope AS parent_scope, pc.number AS parent_number, pc.public_id AS parent_public
FROM nodes AS n
JOIN lineage AS l ON l.{from_node}_kind = n.kind AND l.{from_node}_id = n.id
LEFT JOIN clips AS cc ON l.child_kind = 'clip' AND cc.id = l.child_id
LEFT JOIN seeds AS cs ON l.child_kind = 'seed' AND cs.id = l.child_id
JOIN users AS cu ON cu.id = coalesce(cc.user_id, cs.user_id)
LEFT JOIN clips AS pc ON l.parent_kind = 'clip' AND pc.id = l.parent_id
LEFT JOIN seeds AS ps ON l.parent_kind = 'seed' AND ps.id = l.parent_id
JOIN users AS pu ON pu.id = coalesce(pc.user_id, ps.user_id)
WHERE {filter}
ORDER BY n.depth, l.child_kind, l.child_id, l.id
LIMIT :limit
"""
# Up: every link out of a reached node leads to its parents. Down: the links into a reached
# node (other than the start) whose parent was reached too.
_ANCESTORS = _WALK.format(to="parent", start="child", from_node="child", filter="1 = 1")
_DESCENDANTS = _WALK.format(
    to="child", start="parent", from_node="child",
    filter="n.depth > 0 AND (l.parent_kind, l.parent_id) IN (SELECT kind, id FROM nodes)")
MAX_LINEAGE_DEPTH = 64


def _pair_from_row(row: sqlite3.Row) -> ArenaPair:
    return ArenaPair(
        id=row["id"], clip_a=row["clip_a"], clip_b=row["clip_b"], model_a=row["model_a"],
        model_b=row["model_b"], style=row["style"], user_id=row["user_id"],
        user_name=row["user_name"], guild_id=row["guild_id"], channel_id=row["channel_id"],
        message_id=row["message_id"], created_at=_from_ts(row["created_at"]),
    )


def _vote_from_row(row: sqlite3.Row) -> ArenaVote:
    return ArenaVote(pair_id=row["pair_id"], user_id=row["user_id"], choice=row["choice"],
                     model_a=row["model_a"], model_b=row["model_b"], style=row["style"],
                     revealed=bool(row["revealed"]))


def _check_pair_id(pair_id: int) -> None:
    if not _is_int64(pair_id, minimum=1):
        raise StoreError(f"no arena #{pair_id}")


def _seed_from_row(row: sqlite3.Row) -> Seed:
    return Seed(
        id=row["id"],
        name=row["name"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        public=bool(row["public"]),
        source_kind=row["source_kind"],
        source_ref=row["source_ref"],
        motif_json=row["motif_json"],
        created_at=_from_ts(row["created_at"]),
        deleted_at=_from_ts(row["deleted_at"]) if row["deleted_at"] is not None else None,
        deleted_by=row["deleted_by"],
    )


def _link_from_row(row: sqlite3.Row) -> Link:
    def node(end: str) -> Node:
        return Node(kind=row[f"{end}_kind"], id=row[f"{end}_id"], label=row[f"{end}_label"],
                    user_id=row[f"{end}_user_id"], user_name=row[f"{end}_user"],
                    deleted=bool(row[f"{end}_deleted"]), scope=row[f"{end}_scope"] or 0,
                    number=row[f"{end}_number"], public_id=row[f"{end}_public"])

    return Link(child=node("child"), parent=node("parent"), relation=row["relation"],
                role=row["role"], depth=row["depth"])


def _check_parents(parents: Sequence[Parent]) -> None:
    for p in parents:
        if p.kind not in NODE_KINDS or p.relation not in RELATIONS or \
                not _is_int64(p.id, minimum=1) or (p.role is not None and p.role not in "ab"):
            raise StoreError(f"invalid lineage link {p!r}")


def _clip_from_row(row: sqlite3.Row) -> Clip:
    return Clip(
        id=row["id"],
        style=row["style"],
        bars=row["bars"],
        tempo=row["tempo"],
        key=row["key"],
        meter=row["meter"],
        temperature=row["temperature"],
        seed=row["seed"],
        model=row["model"],
        checkpoint_sha=row["checkpoint_sha"],
        params=json.loads(row["params_json"]),
        midi=bytes(row["midi"]),
        duration_s=row["duration_s"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        created_at=_from_ts(row["created_at"]),
        rating_count=row["rating_count"],
        rating_mean=row["rating_mean"],
        scope=row["scope"],
        number=row["number"],
        public_id=row["public_id"],
    )


def _entry_from_row(row: sqlite3.Row) -> QueueEntry:
    return QueueEntry(**{k: row[k] for k in row.keys()})  # noqa: SIM118 - sqlite3.Row


def _party_from_row(row: sqlite3.Row) -> Party:
    return Party(id=row["id"], guild_id=row["guild_id"], channel_id=row["channel_id"],
                 voice_channel_id=row["voice_channel_id"], user_id=row["user_id"],
                 user_name=row["user_name"], kind=row["kind"], style=row["style"],
                 bars=row["bars"], count=row["count"], status=row["status"],
                 job_id=row["job_id"], pair_id=row["pair_id"], message_id=row["message_id"],
                 composed=row["composed"])


def _job_from_row(row: sqlite3.Row) -> JobRow:
    def ts(key: str) -> datetime | None:
        return _from_ts(row[key]) if row[key] is not None else None

    return JobRow(
        id=row["id"],
        status=row["status"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        params=json.loads(row["params_json"]),
        clip_id=row["clip_id"],
        error=row["error"],
        interrupted=bool(row["interrupted"]),
        created_at=_from_ts(row["created_at"]),
        started_at=ts("started_at"),
        finished_at=ts("finished_at"),
        notified_at=ts("notified_at"),
        owner=row["owner"],
        lease_until=ts("lease_until"),
        answered_at=ts("answered_at"),
        answer_message_id=row["answer_message_id"],
    )


# ---------------------------------------------------------------------------------------------
# Store


class Store:
    """One SQLite file or one PostgreSQL database behind the same methods and the same SQL.

    SQLite: two connections, one writes, one reads, so a read never queues behind a write
    waiting for another process's lock (in WAL mode readers do not block on writers).
    PostgreSQL (``postgresql://`` URL): a pool of connections (cadenza.store_pg); writes take one
    advisory lock, so they run one at a time as on SQLite. Every public method is a short
    transaction or read with a bounded wait: past it the request is refused with ``StoreBusy``
    and nothing is stored.

    Create with ``await Store.open(path_or_url)``; use as ``async with await Store.open(p) as s``.
    """

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection | None,
        path: Path | str,
        migrations: Sequence[Migration],
        clock: Callable[[], datetime],
        *,
        wait: float = DEFAULT_WAIT,
        patient_wait: float = DEFAULT_PATIENT_WAIT,
        pg: store_pg.PgDatabase | None = None,
    ) -> None:
        self._pg = pg  # set: a PostgreSQL store (writer and reader are None)
        self._closed = False
        self._writer: aiosqlite.Connection | None = writer
        self._reader: aiosqlite.Connection | None = reader  # None: read on the writer
        self._path = path
        self._migrations = tuple(migrations)
        self._clock = clock
        self.wait = wait
        self.patient_wait = patient_wait
        # aiosqlite runs one statement at a time, but two tasks could still interleave their
        # statements inside one transaction on a shared connection: each connection has its
        # lock. Readers on their own connection never see a task's uncommitted writes.
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock() if reader is not None else self._write_lock

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrate: bool = True,
        migrations: Sequence[Migration] | None = None,
        clock: Callable[[], datetime] | None = None,
        wait: float = DEFAULT_WAIT,
        patient_wait: float = DEFAULT_PATIENT_WAIT,
    ) -> Store:
        """Open (creating if needed) and, with ``migrate``, upgrade the database at ``path``.

        ``migrations`` defaults to the packaged ones; ``clock`` (returning aware datetimes)
        defaults to the system's UTC time. Both exist for tests and tools. ``wait`` is how long
        a request waits for a database another process holds (then StoreBusy), ``patient_wait``
        the same for work nobody is waiting on (storing a finished clip, a job's record).
        ``path`` may be a ``postgresql://`` URL or ``sqlite:path`` (see ``db_target``).
        """
        target = db_target(path)
        if isinstance(target, str):
            return await cls._open_pg(target, migrate=migrate, migrations=migrations,
                                      clock=clock, wait=wait, patient_wait=patient_wait)
        path = target
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            need = ".".join(map(str, MIN_SQLITE))
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old: Cadenza needs {need}")
        path = Path(path).expanduser()
        steps = tuple(migrations) if migrations is not None else load_migrations()
        memory = str(path) == ":memory:"
        if not memory:
            if path.is_dir():
                raise StoreError(f"cannot open database {path}: it is a folder (give a file, "
                                 f"e.g. {path / 'cadenza.db'})")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the folder for database {path}: {e}") from e
            # After a failed connect aiosqlite stops its worker thread without waiting for it,
            # and the thread then fails against the closed event loop: tracebacks after our
            # one-line error. Plain sqlite3 finds an unopenable file first, and cleanly.
            try:
                await asyncio.to_thread(lambda: sqlite3.connect(path).close())
            except sqlite3.Error as e:
                raise StoreError(f"cannot open database {path}: {e}") from e
        store: Store | None = None
        try:
            writer = await cls._connect(path)
            store = cls(writer, None, path, steps, clock or _utc_now, wait=wait,
                        patient_wait=patient_wait)
            await store._configure(writer, first=True)
            if not memory:  # an in-memory database exists only on its one connection
                store._reader = await cls._connect(path)
                store._read_lock = asyncio.Lock()
                await store._configure(store._reader, first=False)
            if migrate:
                await store.upgrade()
        except BaseException:
            if store is not None:
                await store.close()
            raise
        return store

    @classmethod
    async def _open_pg(cls, url: str, *, migrate: bool, migrations: Sequence[Migration] | None,
                       clock: Callable[[], datetime] | None, wait: float,
                       patient_wait: float) -> Store:
        steps = tuple(migrations) if migrations is not None else _pg_migrations()
        pg = _pg()
        shown = pg.redact(url)
        store = cls(None, None, shown, steps, clock or _utc_now, wait=wait,
                    patient_wait=patient_wait, pg=pg.PgDatabase(url, wait=wait))
        try:
            try:
                async with store._pg_reading(max(wait, 5.0)) as conn:
                    version = await _pg_version(conn)
                    store._refuse_newer(version)
                    if version == 0:
                        rows = await conn.execute_fetchall(
                            "SELECT count(*) FROM pg_tables WHERE schemaname = "
                            "current_schema()")
                        if rows[0][0]:
                            raise StoreError(
                                f"{shown} is not a Cadenza database (it has tables but no "
                                "schema version); set CADENZA_DB to another database")
            except pg.ERRORS as e:
                raise _translate(e, f"cannot open database {shown}") from e
            if migrate:
                await store.upgrade()
        except BaseException:
            await store.close()
            raise
        return store

    @asynccontextmanager
    async def _pg_reading(self, wait: float) -> AsyncIterator[store_pg.PgConn]:
        assert self._pg is not None
        if self._closed:
            raise StoreError("the database is closed")
        async with self._pg.reading(wait) as conn:
            yield conn

    @staticmethod
    async def _connect(path: Path) -> aiosqlite.Connection:
        try:
            # isolation_level=None: the sqlite3 module must not open transactions behind our
            # back; every write goes through _transaction's explicit BEGIN IMMEDIATE.
            return await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_SLICE)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open database {path}: {e}") from e

    async def _configure(self, conn: aiosqlite.Connection, *, first: bool) -> None:
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute(f"PRAGMA busy_timeout = {round(self.wait * 1000):d}")
            if first:
                # Check the version before anything that writes (journal_mode): a database we
                # refuse must be left byte-for-byte as it was.
                version = await self._user_version(conn)
                self._refuse_newer(version)
                if version == 0:
                    rows = await conn.execute_fetchall("SELECT COUNT(*) FROM sqlite_master")
                    if next(iter(rows))[0]:
                        raise StoreError(
                            f"{self._path} is not a Cadenza database (it has tables but no "
                            "schema version); set CADENZA_DB to another file"
                        )
                rows = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
                mode = next(iter(rows))[0]
                if mode != "wal":
                    log.warning("database %s uses journal mode %s, not WAL", self._path, mode)
            await conn.execute("PRAGMA foreign_keys = ON")
            # Unicode-aware case folding for searches (SQLite's lower() knows only ASCII).
            await conn.create_function("casefold", 1, _casefold, deterministic=True)
        except (sqlite3.Error, OverflowError) as e:
            raise _translate(e, f"cannot open database {self._path}") from e

    async def close(self) -> None:
        """Close both connections, after a running transaction if it ends within ``wait``
        (else it is rolled back: a shutdown must not wait on another process's lock);
        idempotent."""
        if self._pg is not None:
            self._closed = True
            await self._pg.close()
            return
        for lock, name in ((self._write_lock, "_writer"), (self._read_lock, "_reader")):
            try:
                await asyncio.wait_for(lock.acquire(), self.wait)
                held = True
            except TimeoutError:
                log.warning("closing %s with a transaction still waiting", self._path)
                held = False
            try:
                conn = getattr(self, name)
                setattr(self, name, None)
                if conn is not None:
                    await conn.close()
            finally:
                if held:
                    lock.release()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "open" if self._writer is not None or (self._pg and not self._closed) \
            else "closed"
        return f"<Store {self._path} {state}>"

    @property
    def path(self) -> Path | str:
        """The SQLite file, or the PostgreSQL URL without its password."""
        return self._path

    @property
    def backend(self) -> str:
        return "postgresql" if self._pg is not None else "sqlite"

    @property
    def latest_version(self) -> int:
        """The schema version this code builds (the newest migration's number)."""
        return self._migrations[-1].version if self._migrations else 0

    # -- transactions -------------------------------------------------------------------------

    def _live(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None or self._writer is None:
            raise StoreError("the database is closed")
        return conn

    @staticmethod
    async def _acquire(lock: asyncio.Lock, wait: float, what: str) -> None:
        try:
            await asyncio.wait_for(lock.acquire(), max(wait, 0.001))
        except TimeoutError:
            raise _busy(what) from None

    @asynccontextmanager
    async def _reading(self, what: str) -> AsyncIterator[Any]:
        if self._pg is not None:
            try:
                async with self._pg_reading(self.wait) as conn:
                    yield conn
            except _pg().ERRORS as e:  # evaluated only when something was raised
                raise _translate(e, what) from e
            return
        await self._acquire(self._read_lock, self.wait, what)
        try:
            conn = self._live(self._reader or self._writer)
            try:
                yield conn
            except (sqlite3.Error, OverflowError) as e:
                raise _translate(e, what) from e
        finally:
            self._read_lock.release()

    @asynccontextmanager
    async def _transaction(self, what: str, *, patient: bool = False,
                           serial: bool = True) -> AsyncIterator[Any]:
        """BEGIN IMMEDIATE ... COMMIT; any exception rolls everything back and propagates.

        The wait for the write lock (this process's and the database's) is bounded by
        ``wait``, or ``patient_wait`` for work nobody is waiting on: past it, StoreBusy and
        nothing written. ``serial=False`` lets a PostgreSQL transaction run beside others (it
        skips the write lock): for single-row upserts and updates, whose races PostgreSQL's
        row locks and ON CONFLICT settle; SQLite writes one at a time regardless.
        """
        wait = self.patient_wait if patient else self.wait
        if self._pg is not None:
            if self._closed:
                raise StoreError("the database is closed")
            try:
                async with self._pg.transaction(wait, lock=serial) as pg_conn:
                    yield pg_conn
            except _pg().ERRORS as e:  # evaluated only when something was raised
                raise _translate(e, what) from e
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        await self._acquire(self._write_lock, wait, what)
        try:
            conn = self._live(self._writer)
            try:
                if conn.in_transaction:
                    # Only possible if a task was cancelled again while rolling back.
                    log.warning("rolling back a transaction left open on %s", self._path)
                    await conn.rollback()
                try:
                    # Inside the try: a task cancelled while its BEGIN is still queued on the
                    # connection's thread must queue a rollback behind it, or the next
                    # transaction would find that BEGIN open ("transaction within a
                    # transaction").
                    await self._begin(conn, deadline, what)
                    yield conn
                    await conn.execute("COMMIT")
                except BaseException:
                    await self._rollback(conn)
                    raise
            except (sqlite3.Error, OverflowError) as e:
                raise _translate(e, what) from e
        finally:
            self._write_lock.release()

    async def _begin(self, conn: aiosqlite.Connection, deadline: float, what: str) -> None:
        """BEGIN IMMEDIATE, waiting for another process's write lock until ``deadline`` in
        slices (a cancelled task's thread is back within one)."""
        loop = asyncio.get_running_loop()
        while True:
            slice_ms = max(0, round(min(deadline - loop.time(), BUSY_SLICE) * 1000))
            await conn.execute(f"PRAGMA busy_timeout = {slice_ms:d}")
            try:
                # IMMEDIATE takes the write lock up front, so a concurrent writer waits in the
                # busy handler instead of failing later when upgrading a read lock.
                await conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or loop.time() >= deadline:
                    raise

    async def _rollback(self, conn: aiosqlite.Connection) -> None:
        # Connection.rollback() checks for an open transaction on the worker thread, in queue
        # order: safe even when a cancelled COMMIT is still queued and may yet succeed.
        try:
            await conn.rollback()
        except sqlite3.Error:
            # The original error matters more; SQLite rolls back on close anyway.
            log.exception("rollback failed on %s", self._path)

    @staticmethod
    async def _user_version(conn: aiosqlite.Connection) -> int:
        rows = await conn.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    def _refuse_newer(self, version: int) -> None:
        if version > self.latest_version:
            raise StoreError(
                f"database schema v{version} is newer than this Cadenza "
                f"(v{self.latest_version}): upgrade Cadenza"
            )

    # -- schema -------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        async with self._reading("cannot read the schema version") as conn:
            if self._pg is not None:
                return await _pg_version(conn)
            return await self._user_version(conn)

    async def upgrade(self) -> list[int]:
        """Apply pending migrations, each in its own transaction; returns the versions applied."""
        current = await self.schema_version()
        self._refuse_newer(current)
        if current == self.latest_version:
            return []
        applied: list[int] = []
        for step in self._migrations:
            async with self._transaction(f"migration {step.name} failed", patient=True) as conn:
                if self._pg is not None:
                    done = await self._pg_step(conn, step)
                else:
                    done = await self._sqlite_step(conn, step)
            if done:
                applied.append(step.version)
                log.info("database %s: applied migration %s", self._path, step.name)
        return applied

    async def _sqlite_step(self, conn: aiosqlite.Connection, step: Migration) -> bool:
        # Re-read inside the write lock: another process may have migrated meanwhile.
        current = await self._user_version(conn)
        self._refuse_newer(current)
        if current >= step.version:
            return False
        for statement in step.statements:
            await conn.execute(statement)
        # foreign_keys cannot be switched off inside a transaction, and table rebuilds
        # in later migrations could still leave dangling references: check explicitly.
        broken = list(await conn.execute_fetchall("PRAGMA foreign_key_check"))
        if broken:
            raise StoreError(
                f"migration {step.name} failed: {len(broken)} rows break foreign keys "
                f"(first in table {broken[0][0]})"
            )
        await conn.execute(f"PRAGMA user_version = {step.version:d}")
        return True

    async def _pg_step(self, conn: store_pg.PgConn, step: Migration) -> bool:
        """One PostgreSQL migration, inside the write lock's transaction (DDL is transactional
        there: a failing step leaves nothing behind)."""
        table = _pg().VERSION_TABLE
        await conn.conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
        current = await _pg_version(conn)
        self._refuse_newer(current)
        if current >= step.version:
            return False
        for statement in step.statements:
            await conn.conn.exec_driver_sql(statement)
        await conn.conn.exec_driver_sql(f"DELETE FROM {table}")
        await conn.execute(f"INSERT INTO {table} (version) VALUES (?)",
                           (step.version,))
        return True

    async def diagnostics(self) -> dict[str, object]:
        """Connection settings and versions, for a status command and for tests."""
        if self._pg is not None:
            async with self._reading("cannot read database settings") as conn:
                rows = await conn.execute_fetchall(
                    "SELECT current_setting('server_version'), current_setting('lock_timeout')")
                return {"backend": "postgresql", "path": str(self._path),
                        "server_version": rows[0][0], "user_version": await _pg_version(conn),
                        "latest_version": self.latest_version}
        async with self._reading("cannot read database settings") as conn:
            values: dict[str, object] = {}
            for pragma in ("journal_mode", "foreign_keys", "busy_timeout", "user_version"):
                rows = await conn.execute_fetchall(f"PRAGMA {pragma}")
                values[pragma] = next(iter(rows))[0]
        values["path"] = str(self._path)
        values["latest_version"] = self.latest_version
        values["sqlite_version"] = sqlite3.sqlite_version
        return values

    # -- whole tables (cadenza.store_copy) --------------------------------------------------

    async def read_table(self, table: str, columns: Sequence[str],
                         order: Sequence[str]) -> list[tuple[Any, ...]]:
        """Every row of ``table`` (its ``columns``, in ``order``): for copying a database.
        Names come from cadenza.store_copy's fixed list, never from users."""
        sql = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(order)}"
        async with self._reading(f"cannot read table {table}") as conn:
            return [tuple(r) for r in await conn.execute_fetchall(sql)]

    async def column_names(self, table: str) -> list[str]:
        async with self._reading(f"cannot read table {table}") as conn:
            if self._pg is not None:
                rows = await conn.execute_fetchall(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                    "current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))
            else:  # table_info leaves generated columns out
                rows = await conn.execute_fetchall(
                    "SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))
        return [r[0] for r in rows]

    async def count_rows(self, tables: Sequence[str]) -> dict[str, int]:
        async with self._reading("cannot count rows") as conn:
            return {t: int((await conn.execute_fetchall(f"SELECT COUNT(*) FROM {t}"))[0][0])
                    for t in tables}

    async def write_tables(self, tables: Sequence[tuple[str, Sequence[str], Sequence[tuple]]],
                           *, clear: Sequence[str] = ()) -> None:
        """In one transaction: delete every row of ``clear`` (in that order), then insert each
        table's rows (in order) with their ids as given. PostgreSQL's id sequences are moved
        past the highest id, so new rows do not collide."""
        async with self._transaction("database not copied", patient=True) as conn:
            for table in clear:
                await conn.execute(f"DELETE FROM {table}")
            for table, columns, rows in tables:
                if not rows:
                    continue
                # Several rows per statement, under both databases' bound-parameter limits.
                per = max(1, 30000 // len(columns))
                one = "(" + ", ".join("?" * len(columns)) + ")"
                for start in range(0, len(rows), per):
                    chunk = rows[start:start + per]
                    await conn.execute(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                        + ", ".join([one] * len(chunk)),
                        [value for row in chunk for value in row])
            if self._pg is not None:
                for table, columns, _ in tables:
                    if "id" in columns:
                        await conn.execute(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")

    # -- users --------------------------------------------------------------------------------

    async def ensure_user(self, user_id: int, name: str) -> None:
        """Create the user, or update their display name."""
        _check_user(user_id, name)
        async with self._transaction(f"could not save user {user_id}", serial=False) as conn:
            await self._upsert_user(conn, user_id, name)

    async def _upsert_user(self, conn: aiosqlite.Connection, user_id: int, name: str) -> None:
        await conn.execute(_UPSERT_USER, (user_id, name, _to_ts(self._clock())))

    # -- clips --------------------------------------------------------------------------------

    async def add_clip(self, clip: NewClip) -> int:
        """Store a clip and return its id (1, 2, 3 ...); nothing is stored if anything fails."""
        params_json = _params_json(clip.params)
        # SQLite's STRICT tables refuse a float in an integer column; PostgreSQL (asyncpg)
        # would round it: refuse it here, the same on both.
        for name in ("bars", "seed", "user_id", "guild_id", "channel_id", "message_id"):
            value = getattr(clip, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise StoreError(f"clip not stored: {name} must be a whole number (got {value!r})")
        if clip.user_name is not None:
            _check_user(clip.user_id, clip.user_name)
        _check_parents(clip.parents)
        created_at = _to_ts(clip.created_at or self._clock())
        scope = scope_of(clip.guild_id, clip.channel_id)
        values = (
            clip.style, clip.bars, clip.tempo, clip.key, clip.meter, clip.temperature, clip.seed,
            clip.model, clip.checkpoint_sha, clip.duration_s, clip.user_id, clip.guild_id,
            clip.channel_id, clip.message_id, created_at, params_json, clip.midi, scope, scope,
        )  # fmt: skip
        try:
            async with self._transaction("clip not stored", patient=True) as conn:
                if clip.user_name is not None:
                    await self._upsert_user(conn, clip.user_id, clip.user_name)
                await self._check_parents_exist(conn, clip.parents, "clip not stored")
                rows = await conn.execute_fetchall(_INSERT_CLIP, values)
                clip_id = int(next(iter(rows))[0])
                await self._link(conn, "clip", clip_id, clip.parents, created_at)
        except StoreError as e:
            # users is the only table clips references, so this names the actual problem.
            cause = str(e.__cause__)
            if "FOREIGN KEY constraint failed" in cause or "violates foreign key" in cause:
                raise StoreError(f"clip not stored: unknown user {clip.user_id}") from e.__cause__
            raise
        log.debug("stored clip #%d (%s, %s)", clip_id, clip.style, clip.model)
        return clip_id

    async def get_clip(self, clip_id: int) -> Clip | None:
        if not _is_int64(clip_id, minimum=1):
            return None
        async with self._reading(f"cannot read clip #{clip_id}") as conn:
            rows = list(await conn.execute_fetchall(_SELECT_CLIP + "WHERE c.id = ?", (clip_id,)))
        return _clip_from_row(rows[0]) if rows else None

    async def find_clip(self, scope: int, ref: int) -> Clip | None:
        """The clip a member in ``scope`` means by "#``ref``": the one numbered so there, else
        a published clip with that public id. Another scope's clips are not found."""
        if not _is_int64(ref, minimum=1) or not _is_int64(abs(scope)):
            return None
        async with self._reading(f"cannot read clip #{ref}") as conn:
            rows = list(await conn.execute_fetchall(
                _SELECT_CLIP + "WHERE c.id = coalesce("
                "(SELECT id FROM clips WHERE scope = :scope AND number = :ref), "
                "(SELECT id FROM clips WHERE public_id = :ref))", {"scope": scope, "ref": ref}))
        return _clip_from_row(rows[0]) if rows else None

    async def set_public(self, clip_id: int, public: bool) -> int | None:
        """Publish a clip (a random public id that names it in every scope; kept if it has one)
        or withdraw it (the id is dropped: links to it stop working). Returns the public id."""
        _check_clip_id(clip_id)
        async with self._transaction(f"clip #{clip_id} not updated") as conn:
            rows = list(await conn.execute_fetchall(
                "SELECT public_id FROM clips WHERE id = ?", (clip_id,)))
            if not rows:
                raise StoreError(f"no clip #{clip_id}")
            current = rows[0][0]
            if not public:
                await conn.execute("UPDATE clips SET public_id = NULL WHERE id = ?", (clip_id,))
                return None
            if current is not None:
                return int(current)
            for _ in range(8):  # a collision among 9e11 ids is all but impossible; retry
                candidate = PUBLIC_ID_MIN + secrets.randbelow(PUBLIC_ID_MAX - PUBLIC_ID_MIN + 1)
                taken = list(await conn.execute_fetchall(
                    "SELECT 1 FROM clips WHERE public_id = ?", (candidate,)))
                if not taken:
                    await conn.execute("UPDATE clips SET public_id = ? WHERE id = ?",
                                       (candidate, clip_id))
                    return candidate
            raise StoreError(f"clip #{clip_id} not published: no free public id, try again")

    async def clip_by_message(self, message_id: int) -> Clip | None:
        """The clip posted as Discord message ``message_id``, if any."""
        if not _is_int64(message_id):
            return None
        async with self._reading(f"cannot look up message {message_id}") as conn:
            rows = list(
                await conn.execute_fetchall(
                    _SELECT_CLIP + "WHERE c.message_id = ? ORDER BY c.id LIMIT 1", (message_id,)
                )
            )
        return _clip_from_row(rows[0]) if rows else None

    async def set_clip_message(
        self, clip_id: int, *, guild_id: int | None, channel_id: int | None, message_id: int
    ) -> None:
        """Record where a clip was posted (known only after posting, which needs its id)."""
        _check_clip_id(clip_id)
        async with self._transaction(f"clip #{clip_id} not updated", patient=True,
                                     serial=False) as conn:
            cursor = await conn.execute(
                "UPDATE clips SET guild_id = ?, channel_id = ?, message_id = ? WHERE id = ?",
                (guild_id, channel_id, message_id, clip_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no clip #{clip_id}")

    async def clip_count(self) -> int:
        async with self._reading("cannot count clips") as conn:
            rows = await conn.execute_fetchall("SELECT COUNT(*) FROM clips")
        return int(next(iter(rows))[0])

    # -- lineage ------------------------------------------------------------------------------

    @staticmethod
    async def _check_parents_exist(conn: aiosqlite.Connection, parents: Sequence[Parent],
                                   what: str) -> None:
        for p in parents:
            table = "clips" if p.kind == "clip" else "seeds"
            # `table` is one of two fixed names, never user text.
            rows = list(await conn.execute_fetchall(f"SELECT 1 FROM {table} WHERE id = ?",
                                                    (p.id,)))
            if not rows:
                raise StoreError(f"{what}: it is built on {p.kind} #{p.id}, which does not exist")

    @staticmethod
    async def _link(conn: aiosqlite.Connection, kind: str, child_id: int,
                    parents: Sequence[Parent], created_at: str) -> None:
        for p in parents:
            await conn.execute(_INSERT_LINK, (
                child_id if kind == "clip" else None, child_id if kind == "seed" else None,
                p.id if p.kind == "clip" else None, p.id if p.kind == "seed" else None,
                p.relation, p.role, created_at))

    async def ancestors(self, kind: str, node_id: int, *, limit: int = 200) -> list[Link]:
        """Every link from the clip or seed up to what it was built on, nearest first (a
        link's ``depth`` is its child's distance from the start)."""
        return await self._walk(_ANCESTORS, kind, node_id, limit)

    async def descendants(self, kind: str, node_id: int, *, limit: int = 500) -> list[Link]:
        """Every link below the clip or seed (what was built on it, and on that ...), by depth;
        a clip built on two reached nodes (a reroll of a continuation) has a link to each."""
        return await self._walk(_DESCENDANTS, kind, node_id, limit)

    async def _walk(self, sql: str, kind: str, node_id: int, limit: int) -> list[Link]:
        if kind not in NODE_KINDS:
            raise StoreError(f"lineage is kept for clips and seeds, not {kind!r}")
        if not _is_int64(node_id, minimum=1):
            return []
        params = {"kind": kind, "id": node_id, "max_depth": MAX_LINEAGE_DEPTH, "limit": limit}
        async with self._reading(f"cannot read the lineage of {kind} #{node_id}") as conn:
            rows = await conn.execute_fetchall(sql, params)
        return [_link_from_row(row) for row in rows]

    # -- seeds --------------------------------------------------------------------------------

    async def add_seed(self, seed: NewSeed) -> int:
        """Store a seed (and its owner, and its lineage) in one transaction; returns its id.

        A live seed of the same name (case-insensitive) in the guild is refused.
        """
        _check_user(seed.user_id, seed.user_name)
        _check_parents(seed.parents)
        name = " ".join(seed.name.split())
        if not 1 <= len(name) <= SEED_NAME_MAX:
            raise StoreError(f"a seed name is 1-{SEED_NAME_MAX} characters (got {len(name)})")
        if seed.source_kind not in SEED_SOURCES:
            raise StoreError(f"unknown seed source {seed.source_kind!r}")
        key = seed_name_key(name)
        created_at = _to_ts(seed.created_at or self._clock())
        async with self._transaction(f"seed {name!r} not stored") as conn:
            taken = await self._live_seed(conn, seed.guild_id, key)
            if taken is not None:
                raise StoreError(f"there is already a seed named “{taken.name}” here (by "
                                 f"{taken.user_name}): pick another name")
            await self._upsert_user(conn, seed.user_id, seed.user_name)
            await self._check_parents_exist(conn, seed.parents, f"seed {name!r} not stored")
            rows = await conn.execute_fetchall(
                "INSERT INTO seeds (name, name_key, guild_id, user_id, public, source_kind, "
                "source_ref, created_at, motif_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (name, key, seed.guild_id, seed.user_id, int(bool(seed.public)),
                 seed.source_kind, seed.source_ref, created_at, seed.motif_json))
            seed_id = int(next(iter(rows))[0])
            await self._link(conn, "seed", seed_id, seed.parents, created_at)
        log.debug("stored seed #%d %r", seed_id, name)
        return seed_id

    @staticmethod
    async def _live_seed(conn: aiosqlite.Connection, guild_id: int | None,
                         key: str) -> Seed | None:
        rows = list(await conn.execute_fetchall(
            _SELECT_SEED + "WHERE s.deleted_at IS NULL AND ifnull(s.guild_id, 0) = "
            "ifnull(CAST(? AS BIGINT), 0) AND s.name_key = ?", (guild_id, key)))
        return _seed_from_row(rows[0]) if rows else None

    async def get_seed(self, seed_id: int) -> Seed | None:
        """A seed by id, deleted or not."""
        if not _is_int64(seed_id, minimum=1):
            return None
        async with self._reading(f"cannot read seed #{seed_id}") as conn:
            rows = list(await conn.execute_fetchall(_SELECT_SEED + "WHERE s.id = ?",
                                                    (seed_id,)))
        return _seed_from_row(rows[0]) if rows else None

    async def find_seed(self, guild_id: int | None, name: str) -> Seed | None:
        """The live seed called ``name`` (any case) in the guild, whoever may see it."""
        async with self._reading(f"cannot look up seed {name!r}") as conn:
            return await self._live_seed(conn, guild_id, seed_name_key(name))

    async def list_seeds(self, guild_id: int | None, viewer_id: int, *, query: str | None = None,
                         page: int = 1, per_page: int = 10) -> SeedPage:
        """The viewer's own and the public live seeds of a guild, by name; ``query`` matches
        inside seed names and owner names, ignoring case."""
        if not _is_int64(page, minimum=1) or not _is_int64(per_page, minimum=1):
            raise StoreError("page and per_page must be positive whole numbers")
        q = seed_name_key(query) if query and query.strip() else None
        params = {"guild": guild_id, "viewer": viewer_id, "q": q,
                  "limit": per_page, "offset": (page - 1) * per_page}
        async with self._reading("cannot list seeds") as conn:
            total = int(next(iter(await conn.execute_fetchall(
                "SELECT COUNT(*) " + _BY_NAME_OR_OWNER, params)))[0])
            rows = await conn.execute_fetchall(
                "SELECT s.*, u.name AS user_name " + _BY_NAME_OR_OWNER +
                "ORDER BY s.name_key, s.id LIMIT :limit OFFSET :offset", params)
        return SeedPage(seeds=[_seed_from_row(r) for r in rows], total=total, page=page,
                        per_page=per_page)

    async def seed_names(self, guild_id: int | None, viewer_id: int, typed: str = "", *,
                         limit: int = 25) -> list[str]:
        """Names for autocomplete: visible seeds whose name starts with ``typed`` first, then
        those containing it."""
        key = seed_name_key(typed)
        params = {"guild": guild_id, "viewer": viewer_id, "q": key or None, "key": key,
                  "limit": limit}
        async with self._reading("cannot list seed names") as conn:
            rows = await conn.execute_fetchall(
                "SELECT s.name " + _BY_NAME +
                "ORDER BY instr(s.name_key, :key) <> 1, s.name_key LIMIT :limit", params)
        return [r[0] for r in rows]

    async def delete_seed(self, seed_id: int, *, by_user_id: int, by_user_name: str) -> None:
        """Mark a live seed deleted (its row, motif and lineage stay; its name is freed)."""
        _check_user(by_user_id, by_user_name)
        async with self._transaction(f"seed #{seed_id} not deleted") as conn:
            await self._upsert_user(conn, by_user_id, by_user_name)
            cursor = await conn.execute(
                "UPDATE seeds SET deleted_at = ?, deleted_by = ? "
                "WHERE id = ? AND deleted_at IS NULL",
                (_to_ts(self._clock()), by_user_id, seed_id))
            if cursor.rowcount == 0:
                raise StoreError(f"no seed #{seed_id} to delete (already deleted?)")

    # -- ratings ------------------------------------------------------------------------------

    async def set_rating(
        self, clip_id: int, user_id: int, stars: int, user_name: str
    ) -> int | None:
        """Rate a clip (or change one's rating); returns the previous stars, or None."""
        if not _is_int64(stars, minimum=1) or stars > 5:
            raise StoreError(f"stars must be a whole number from 1 to 5 (got {stars})")
        _check_clip_id(clip_id)
        _check_user(user_id, user_name)
        now = _to_ts(self._clock())
        async with self._transaction(f"rating of clip #{clip_id} not stored",
                                     serial=False) as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT (SELECT 1 FROM clips WHERE id = ?), "
                    "(SELECT stars FROM ratings WHERE clip_id = ? AND user_id = ?)",
                    (clip_id, clip_id, user_id),
                )
            )
            exists, previous = rows[0]
            if not exists:
                raise StoreError(f"no clip #{clip_id}")
            await self._upsert_user(conn, user_id, user_name)
            await conn.execute(_UPSERT_RATING, (clip_id, user_id, stars, now, now))
        return previous

    async def top(
        self,
        *,
        style: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        limit: int = 10,
        prior_weight: float = 3.0,
        scope: int | None = None,
    ) -> list[TopEntry]:
        """Best-rated clips by Bayesian average, optionally only one style/model or newer clips,
        or only the clips of one ``scope`` (a server: what its members may see).

        ``since`` filters on the clip's creation time (naive means UTC). The prior mean is that
        of all counted votes in the database. Clips without counted votes are not listed.
        """
        if not _is_int64(limit, minimum=1):
            raise StoreError(f"limit must be a positive whole number (got {limit})")
        if not math.isfinite(prior_weight) or prior_weight < 0:
            raise StoreError(f"prior weight must be zero or more (got {prior_weight})")
        params = {
            "weight": float(prior_weight),
            "style": style,
            "model": model,
            "since": _to_ts(since) if since is not None else None,
            "limit": limit,
            "scope": scope,
        }
        async with self._reading("cannot read the chart") as conn:
            rows = await conn.execute_fetchall(_TOP, params)
        return [
            TopEntry(
                rank=rank,
                clip_id=row["id"],
                number=row["number"],
                style=row["style"],
                model=row["model"],
                bars=row["bars"],
                tempo=row["tempo"],
                key=row["key"],
                meter=row["meter"],
                user_id=row["user_id"],
                user_name=row["user_name"],
                guild_id=row["guild_id"],
                channel_id=row["channel_id"],
                message_id=row["message_id"],
                created_at=_from_ts(row["created_at"]),
                rating_count=row["n"],
                rating_mean=row["total"] / row["n"],
                score=row["score"],
            )
            for rank, row in enumerate(rows, start=1)
        ]

    async def export_ratings(self) -> list[dict[str, Any]]:
        """Every rating (self-votes included, flagged) with its clip's parameters.

        Values are JSON-ready: timestamps stay ISO-8601 text, ``params`` is a dict.
        """
        async with self._reading("cannot export ratings") as conn:
            rows: Iterable[sqlite3.Row] = await conn.execute_fetchall(_EXPORT)
            result = []
            for row in rows:
                record = dict(row)
                record["self_vote"] = bool(record["self_vote"])
                record["params"] = json.loads(record.pop("params_json"))
                result.append(record)
        return result

    # -- evaluation ---------------------------------------------------------------------------

    async def stats(self, by: str, *, since: datetime | None = None,
                    scope: int | None = None) -> list[GroupStats]:
        """Per-``model`` or per-``style`` clips, raters and MOS with its 95% interval.

        Votes on one's own clip are left out, and per model the arena's clips (their models
        are hidden); ``since`` keeps clips created from then on, ``scope`` the clips of one
        server (None: all of them).
        """
        if by not in ("model", "style"):
            raise StoreError(f"stats are by model or by style (got {by!r})")
        params = {"since": _to_ts(since) if since is not None else None, "scope": scope}
        async with self._reading("cannot read the statistics") as conn:
            # `by` is one of two fixed column names checked above, never user text.
            sql = _STATS.format(column=by, blind=_NOT_ARENA if by == "model" else "")
            rows = await conn.execute_fetchall(sql, params)
        result = []
        for row in rows:
            mos, sd, ci95 = mos_interval(row["votes"], row["total"], row["total_sq"])
            result.append(GroupStats(
                group=row["grp"], clips=row["clips"], rated_clips=row["rated_clips"],
                raters=row["raters"], votes=row["votes"], mos=mos, sd=sd, ci95=ci95,
            ))
        return result

    # -- arena ------------------------------------------------------------------------------

    async def add_pair(self, pair: NewPair) -> int:
        """Store an arena pair (and its requester) in one transaction; returns its id. Both
        clips must exist and be by the models named."""
        _check_user(pair.user_id, pair.user_name)
        for clip_id in (pair.clip_a, pair.clip_b):
            _check_clip_id(clip_id)
        created_at = _to_ts(pair.created_at or self._clock())
        async with self._transaction("arena pair not stored", patient=True) as conn:
            for clip_id, model in ((pair.clip_a, pair.model_a), (pair.clip_b, pair.model_b)):
                rows = list(await conn.execute_fetchall("SELECT model FROM clips WHERE id = ?",
                                                        (clip_id,)))
                if not rows:
                    raise StoreError(f"arena pair not stored: no clip #{clip_id}")
                if rows[0][0] != model:
                    raise StoreError(f"arena pair not stored: clip #{clip_id} is by "
                                     f"{rows[0][0]}, not {model}")
            await self._upsert_user(conn, pair.user_id, pair.user_name)
            rows = await conn.execute_fetchall(
                "INSERT INTO arena_pairs (clip_a, clip_b, model_a, model_b, style, user_id, "
                "guild_id, channel_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (pair.clip_a, pair.clip_b, pair.model_a, pair.model_b, pair.style,
                 pair.user_id, pair.guild_id, pair.channel_id, created_at))
            pair_id = int(next(iter(rows))[0])
        log.debug("stored arena pair #%d (%s vs %s)", pair_id, pair.model_a, pair.model_b)
        return pair_id

    async def get_pair(self, pair_id: int) -> ArenaPair | None:
        if not _is_int64(pair_id, minimum=1):
            return None
        async with self._reading(f"cannot read arena #{pair_id}") as conn:
            rows = list(await conn.execute_fetchall(_SELECT_PAIR + "WHERE p.id = ?",
                                                    (pair_id,)))
        return _pair_from_row(rows[0]) if rows else None

    async def set_pair_message(self, pair_id: int, *, guild_id: int | None,
                               channel_id: int | None, message_id: int) -> None:
        """Record where a pair was posted (known only after posting, which needs its id)."""
        _check_pair_id(pair_id)
        async with self._transaction(f"arena #{pair_id} not updated", patient=True) as conn:
            cursor = await conn.execute(
                "UPDATE arena_pairs SET guild_id = ?, channel_id = ?, message_id = ? "
                "WHERE id = ?", (guild_id, channel_id, message_id, pair_id))
            if cursor.rowcount == 0:
                raise StoreError(f"no arena #{pair_id}")

    async def set_arena_vote(self, pair_id: int, user_id: int, choice: str,
                             user_name: str) -> VoteChange:
        """Vote on a pair (or change one's vote). Refused once the member has seen which model
        was which: from then on the vote is no longer blind."""
        if choice not in ARENA_CHOICES:
            raise StoreError(f"an arena vote is one of {', '.join(ARENA_CHOICES)} (got "
                             f"{choice!r})")
        _check_pair_id(pair_id)
        _check_user(user_id, user_name)
        now = _to_ts(self._clock())
        async with self._transaction(f"vote on arena #{pair_id} not stored",
                                     serial=False) as conn:
            rows = list(await conn.execute_fetchall(
                "SELECT (SELECT 1 FROM arena_pairs WHERE id = ?), v.choice, v.revealed_at "
                "FROM (SELECT 1) AS one LEFT JOIN arena_votes AS v ON v.pair_id = ? AND "
                "v.user_id = ?",
                (pair_id, pair_id, user_id)))
            exists, previous, revealed_at = rows[0]
            if not exists:
                raise StoreError(f"no arena #{pair_id}")
            if revealed_at is not None and choice != previous:
                raise StoreError(f"you have seen which model made A and B on arena #{pair_id}, "
                                 "so your vote there is final")
            await self._upsert_user(conn, user_id, user_name)
            await conn.execute(_UPSERT_ARENA_VOTE, (pair_id, user_id, choice, now, now))
            tally = {c: 0 for c in ARENA_CHOICES}
            for key, count in await conn.execute_fetchall(_ARENA_TALLY, (pair_id,)):
                tally[key] = count
        return VoteChange(previous=previous, tally=tally)

    async def reveal_arena(self, pair_id: int, user_id: int) -> ArenaVote | None:
        """Mark that the member has seen the pair's models (their vote is final from now on)
        and return their vote; None, and nothing marked, when they have not voted."""
        _check_pair_id(pair_id)
        now = _to_ts(self._clock())
        async with self._transaction(f"arena #{pair_id} not revealed") as conn:
            await conn.execute(
                "UPDATE arena_votes SET revealed_at = ? "
                "WHERE pair_id = ? AND user_id = ? AND revealed_at IS NULL",
                (now, pair_id, user_id))
            rows = list(await conn.execute_fetchall(
                "SELECT v.pair_id, v.user_id, v.choice, 1 AS revealed, p.model_a, p.model_b, "
                "p.style FROM arena_votes AS v JOIN arena_pairs AS p ON p.id = v.pair_id "
                "WHERE v.pair_id = ? AND v.user_id = ?", (pair_id, user_id)))
        return _vote_from_row(rows[0]) if rows else None

    async def hidden_arena_clip(self, clip_id: int, user_id: int) -> tuple[int, str] | None:
        """``(pair id, "A" or "B")`` when the clip plays in an arena pair whose models the
        member has not revealed (so its model must not be shown to them); else None."""
        if not (_is_int64(clip_id, minimum=1) and _is_int64(user_id)):
            return None
        async with self._reading(f"cannot read clip #{clip_id}") as conn:
            rows = list(await conn.execute_fetchall(_HIDDEN_ARENA_CLIP,
                                                    {"clip": clip_id, "user": user_id}))
        return (rows[0]["id"], rows[0]["side"]) if rows else None

    async def arena_votes(self, *, style: str | None = None) -> list[ArenaVote]:
        """Every arena vote (optionally on pairs of one style), by pair and member."""
        async with self._reading("cannot read the arena votes") as conn:
            rows = await conn.execute_fetchall(_ARENA_VOTES, {"style": style})
        return [_vote_from_row(row) for row in rows]

    async def arena_pair_counts(self, *, style: str | None = None) -> list[PairCount]:
        """Pairs posted and votes cast per two models (names in order), for fair pairing."""
        async with self._reading("cannot count arena pairs") as conn:
            rows = await conn.execute_fetchall(_ARENA_PAIR_COUNTS, {"style": style})
        return [PairCount(first=r["first"], second=r["second"], pairs=r["pairs"],
                          votes=r["votes"]) for r in rows]

    async def export_arena(self) -> list[dict[str, Any]]:
        """Every arena vote with its pair: models, clips, the prompt, who voted and when.

        ``winner`` is the model voted better (None for a tie or 'both bad'); timestamps stay
        ISO-8601 text."""
        async with self._reading("cannot export the arena votes") as conn:
            rows: Iterable[sqlite3.Row] = await conn.execute_fetchall(_ARENA_EXPORT)
            return [dict(row) for row in rows]

    # -- jobs ---------------------------------------------------------------------------------

    async def add_job(
        self,
        *,
        user_id: int,
        user_name: str,
        params: Mapping[str, Any],
        guild_id: int | None = None,
        channel_id: int | None = None,
        party_id: int | None = None,
        owner: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> int:
        """Record an admitted compose request as 'queued'; returns the job id. With
        ``party_id`` the party learns it is composing this job in the same transaction, so no
        shutdown can leave a party's request looking like a member's (claim_party_jobs).
        With ``owner`` the job is that process's for ``lease`` seconds (``renew_leases``)."""
        _check_user(user_id, user_name)
        params_json = _params_json(params)
        moment = self._clock()
        now = _to_ts(moment)
        until = _to_ts(moment + timedelta(seconds=lease)) if owner is not None else None
        async with self._transaction("job not stored", serial=False) as conn:
            await self._upsert_user(conn, user_id, user_name)
            rows = await conn.execute_fetchall(
                "INSERT INTO jobs (status, user_id, guild_id, channel_id, params_json, "
                "created_at, owner, lease_until) VALUES ('queued', ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (user_id, guild_id, channel_id, params_json, now, owner, until),
            )
            job_id = int(next(iter(rows))[0])
            if party_id is not None:
                await conn.execute("UPDATE parties SET job_id = ? WHERE id = ?",
                                   (job_id, party_id))
            return job_id

    async def get_job(self, job_id: int) -> JobRow | None:
        if not _is_int64(job_id, minimum=1):
            return None
        async with self._reading(f"cannot read job {job_id}") as conn:
            rows = list(await conn.execute_fetchall(_SELECT_JOB + "WHERE j.id = ?", (job_id,)))
        return _job_from_row(rows[0]) if rows else None

    async def _update_job(self, job_id: int, what: str, sql: str, params: Sequence[Any]) -> None:
        async with self._transaction(what, patient=True, serial=False) as conn:
            cursor = await conn.execute(sql, (*params, job_id))
            if cursor.rowcount == 0:
                raise StoreError(f"{what}: no job {job_id}")

    async def set_job_message(self, job_id: int, message_id: int) -> None:
        """Remember the progress message, so a restart can find and update it."""
        await self._update_job(job_id, f"job {job_id} not updated",
                               "UPDATE jobs SET message_id = ? WHERE id = ?", (message_id,))

    async def start_job(self, job_id: int) -> None:
        await self._update_job(
            job_id, f"job {job_id} not started",
            "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?",
            (_to_ts(self._clock()),),
        )

    async def finish_job(
        self, job_id: int, status: str, *, clip_id: int | None = None, error: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Close a job as 'done' (with its clip), 'failed' (with the message shown) or
        'cancelled'. With ``owner``, only while the job is still that process's: a job another
        process took over (this one's lease ran out) keeps the outcome the taker gave it."""
        if status not in ("done", "failed", "cancelled"):
            raise StoreError(f"a job finishes as done, failed or cancelled (got {status!r})")
        now = _to_ts(self._clock())
        what = f"job {job_id} not finished"
        # A cancelled job was answered by the cancel itself.
        async with self._transaction(what, patient=True, serial=False) as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET status = ?, clip_id = ?, error = ?, finished_at = ?, "
                "answered_at = CASE WHEN ? = 'cancelled' THEN ? ELSE answered_at END "
                "WHERE id = ? AND (CAST(? AS TEXT) IS NULL OR owner IS NULL OR owner = ?)",
                (status, clip_id, error, now, status, now, job_id, owner, owner))
            if cursor.rowcount == 0:
                rows = await conn.execute_fetchall("SELECT owner FROM jobs WHERE id = ?",
                                                   (job_id,))
                if not rows:
                    raise StoreError(f"{what}: no job {job_id}")
                raise StoreError(f"{what}: another process ({rows[0][0]}) took it over")

    async def interrupt_open_jobs(self, owner: str | None = None,
                                  lease: float = DEFAULT_LEASE) -> list[JobRow]:
        """Take over the jobs whose process is gone, in one transaction; returns them, now
        ``owner``'s for ``lease`` seconds, for their members to be answered (once each).

        A job's process is gone when its lease has run out (or it never had one: a
        single-process Cadenza). Of those, a 'queued' or 'running' job is marked failed
        (interrupted); a job already interrupted whose notice was never posted is taken too;
        and a 'done' or 'failed' job whose answer was never posted is taken as it is (its clip
        or its message still has to reach the member). Jobs of live processes are left alone.
        Call at start-up, and now and then while running (a crashed peer's jobs).
        """
        moment = self._clock()
        now, until = _to_ts(moment), _to_ts(moment + timedelta(seconds=lease))
        expired = "(j.lease_until IS NULL OR j.lease_until < :now)"
        params = {"now": now, "until": until, "owner": owner, "error": INTERRUPTED_MESSAGE}
        async with self._transaction("could not close interrupted jobs", patient=True) as conn:
            rows = await conn.execute_fetchall(
                "UPDATE jobs AS j SET status = 'failed', interrupted = 1, error = :error, "
                "finished_at = :now, owner = :owner, answer_owner = :owner, lease_until = :until "
                f"WHERE j.status IN ('queued', 'running') AND {expired} RETURNING id", params)
            ids = sorted(int(r[0]) for r in rows)
            taken = await conn.execute_fetchall(
                "UPDATE jobs AS j SET owner = :owner, answer_owner = :owner, lease_until = :until "
                "WHERE j.answered_at IS NULL AND j.notified_at IS NULL AND j.status <> "
                f"'cancelled' AND j.status NOT IN ('queued', 'running') AND {expired} "
                "RETURNING id", params)
            ids = sorted({*ids, *(int(r[0]) for r in taken)})
            found = await conn.execute_fetchall(
                _SELECT_JOB + "WHERE j.id IN (SELECT id FROM jobs WHERE lease_until = :until "
                "AND answered_at IS NULL AND notified_at IS NULL) ORDER BY j.id",
                {"until": until})
        jobs = [job for job in (_job_from_row(r) for r in found) if job.id in ids]
        if jobs:
            log.warning("took over %d job(s) of a process that is gone: %s", len(jobs),
                        [(j.id, j.status) for j in jobs])
        return jobs

    async def renew_leases(self, owner: str, lease: float = DEFAULT_LEASE) -> int:
        """Keep ``owner``'s unanswered jobs its own for ``lease`` seconds more; returns how
        many it holds. Call every third of the lease or so."""
        until = _to_ts(self._clock() + timedelta(seconds=lease))
        async with self._transaction("job leases not renewed", patient=True,
                                     serial=False) as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET lease_until = ? WHERE owner = ? AND answered_at IS NULL AND "
                "notified_at IS NULL", (until, owner))
            return int(cursor.rowcount)

    async def release_leases(self, owner: str) -> int:
        """End ``owner``'s leases now (a clean shutdown): the next process to start takes
        its open jobs at once instead of after the lease."""
        now = _to_ts(self._clock() - timedelta(microseconds=1))
        async with self._transaction("job leases not released", patient=True,
                                     serial=False) as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET lease_until = ? WHERE owner = ? AND answered_at IS NULL AND "
                "notified_at IS NULL", (now, owner))
            return int(cursor.rowcount)

    async def claim_answer(self, job_id: int, owner: str) -> bool:
        """Claim the right to post the member's answer to a job (its clip, or a failure
        message) before posting it: True for exactly one claimer (or the same one again)
        while the job is unanswered; False if it was answered or another process claimed it."""
        async with self._transaction(f"job {job_id} not claimed", patient=True,
                                     serial=False) as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET answer_owner = ? WHERE id = ? AND answered_at IS NULL AND "
                "notified_at IS NULL AND (answer_owner IS NULL OR answer_owner = ?)",
                (owner, job_id, owner))
            return cursor.rowcount == 1

    async def record_answer(self, job_id: int, message_id: int | None) -> None:
        """The member got the job's answer (in ``message_id``, when it was a message)."""
        await self._update_job(
            job_id, f"job {job_id} not updated",
            "UPDATE jobs SET answered_at = ?, answer_message_id = coalesce(?, answer_message_id)"
            " WHERE id = ?", (_to_ts(self._clock()), message_id))

    async def jobs_to_notify(self) -> list[JobRow]:
        """Interrupted jobs whose members have not been told yet, oldest first."""
        async with self._reading("cannot read interrupted jobs") as conn:
            rows = await conn.execute_fetchall(
                _SELECT_JOB + "WHERE j.interrupted = 1 AND j.notified_at IS NULL ORDER BY j.id"
            )
        return [_job_from_row(row) for row in rows]

    async def mark_job_notified(self, job_id: int, message_id: int | None = None) -> None:
        now = _to_ts(self._clock())
        await self._update_job(job_id, f"job {job_id} not updated",
                               "UPDATE jobs SET notified_at = ?, answered_at = ?, "
                               "answer_message_id = coalesce(?, answer_message_id) WHERE id = ?",
                               (now, now, message_id))

    # -- listening: each server's play queue, its player and listening parties ---------------

    async def enqueue_clip(self, guild_id: int, clip_id: int, user_id: int, user_name: str, *,
                           party_id: int | None = None) -> QueueEntry:
        """Append a clip to the server's play queue (and, with ``party_id``, to the party)."""
        _check_clip_id(clip_id)
        _check_user(user_id, user_name)
        async with self._transaction(f"clip #{clip_id} not queued", patient=True) as conn:
            await self._upsert_user(conn, user_id, user_name)
            rows = await conn.execute_fetchall(
                "INSERT INTO play_queue (guild_id, clip_id, user_id, party_id, status, queued_at)"
                " VALUES (?, ?, ?, ?, 'queued', ?) RETURNING id",
                (guild_id, clip_id, user_id, party_id, _to_ts(self._clock())))
            entry_id = int(next(iter(rows))[0])
            if party_id is not None:
                await conn.execute("UPDATE parties SET job_id = NULL WHERE id = ?", (party_id,))
            found = list(await conn.execute_fetchall(_SELECT_ENTRY + "WHERE q.id = ?",
                                                     (entry_id,)))
        return _entry_from_row(found[0])

    async def open_queue(self, guild_id: int) -> list[QueueEntry]:
        """The server's queue in play order: the one playing (if any) first."""
        async with self._reading("cannot read the play queue") as conn:
            rows = await conn.execute_fetchall(
                _SELECT_ENTRY + f"WHERE q.guild_id = ? AND {_OPEN} ORDER BY q.id", (guild_id,))
        return [_entry_from_row(r) for r in rows]

    async def queued_guilds(self) -> list[int]:
        """Servers with something left in their queue (to resume after a restart)."""
        async with self._reading("cannot read the play queues") as conn:
            rows = await conn.execute_fetchall(
                f"SELECT DISTINCT q.guild_id FROM play_queue AS q WHERE {_OPEN} ORDER BY 1")
        return [r[0] for r in rows]

    async def start_next(self, guild_id: int) -> QueueEntry | None:
        """The entry to play now: one left playing (by a restart) first, else the oldest
        queued, marked playing; None when the queue is empty."""
        async with self._transaction("the play queue could not move on", patient=True) as conn:
            rows = list(await conn.execute_fetchall(
                "SELECT id FROM play_queue AS q WHERE q.guild_id = ? AND "
                f"{_OPEN} ORDER BY q.status <> 'playing', q.id LIMIT 1", (guild_id,)))
            if not rows:
                return None
            entry_id = rows[0][0]
            await conn.execute(
                "UPDATE play_queue SET status = 'playing', started_at = ? WHERE id = ?",
                (_to_ts(self._clock()), entry_id))
            found = list(await conn.execute_fetchall(_SELECT_ENTRY + "WHERE q.id = ?",
                                                     (entry_id,)))
        return _entry_from_row(found[0])

    async def finish_entry(self, entry_id: int, status: str) -> None:
        """Close an open entry as 'played' or 'skipped' (a closed one stays as it was)."""
        if status not in ("played", "skipped"):
            raise StoreError(f"a queue entry finishes as played or skipped (got {status!r})")
        async with self._transaction("the play queue was not updated", patient=True) as conn:
            await conn.execute(
                f"UPDATE play_queue AS q SET status = ?, finished_at = ? WHERE id = ? AND {_OPEN}",
                (status, _to_ts(self._clock()), entry_id))

    async def stop_queue(self, guild_id: int) -> int:
        """Empty the server's queue (entries end 'stopped') and stop its open parties; returns
        how many entries were still open."""
        now = _to_ts(self._clock())
        async with self._transaction("the play queue was not stopped") as conn:
            cursor = await conn.execute(
                f"UPDATE play_queue AS q SET status = 'stopped', finished_at = ? "
                f"WHERE guild_id = ? AND {_OPEN}", (now, guild_id))
            await conn.execute(
                "UPDATE parties SET status = 'stopped', job_id = NULL, finished_at = ? "
                "WHERE guild_id = ? AND status = 'open'", (now, guild_id))
            return cursor.rowcount

    async def newest_clip(self, scope: int, channel_id: int | None) -> Clip | None:
        """The newest clip made in the channel (any channel: None), arena clips left out
        (playing one would pair a number with a blind clip)."""
        async with self._reading("cannot read the newest clip") as conn:
            rows = list(await conn.execute_fetchall(
                _SELECT_CLIP + "WHERE c.scope = :scope AND (CAST(:channel AS BIGINT) IS NULL "
                "OR c.channel_id = :channel) AND c.id NOT IN (SELECT clip_a FROM arena_pairs "
                "UNION ALL SELECT clip_b FROM arena_pairs) ORDER BY c.id DESC LIMIT 1",
                {"scope": scope, "channel": channel_id}))
        return _clip_from_row(rows[0]) if rows else None

    async def set_player(self, guild_id: int, *, voice_channel_id: int | None,
                         text_channel_id: int | None, message_id: int | None) -> None:
        async with self._transaction("the player was not saved", patient=True) as conn:
            await conn.execute(
                "INSERT INTO players (guild_id, voice_channel_id, text_channel_id, message_id, "
                "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
                "voice_channel_id = excluded.voice_channel_id, text_channel_id = "
                "excluded.text_channel_id, message_id = excluded.message_id, updated_at = "
                "excluded.updated_at",
                (guild_id, voice_channel_id, text_channel_id, message_id,
                 _to_ts(self._clock())))

    async def get_player(self, guild_id: int) -> PlayerRow | None:
        async with self._reading("cannot read the player") as conn:
            rows = list(await conn.execute_fetchall(
                "SELECT guild_id, voice_channel_id, text_channel_id, message_id FROM players "
                "WHERE guild_id = ?", (guild_id,)))
        return PlayerRow(*rows[0]) if rows else None

    async def add_party(self, *, guild_id: int, channel_id: int, voice_channel_id: int,
                        user_id: int, user_name: str, kind: str, style: str, bars: int,
                        count: int) -> Party:
        if kind not in PARTY_KINDS:
            raise StoreError(f"unknown kind of party {kind!r}")
        _check_user(user_id, user_name)
        async with self._transaction("the party was not started") as conn:
            await self._upsert_user(conn, user_id, user_name)
            rows = await conn.execute_fetchall(
                "INSERT INTO parties (guild_id, channel_id, voice_channel_id, user_id, kind, "
                "style, bars, count, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                "'open', ?) RETURNING id",
                (guild_id, channel_id, voice_channel_id, user_id, kind, style, bars, count,
                 _to_ts(self._clock())))
            party_id = int(next(iter(rows))[0])
            found = list(await conn.execute_fetchall(_SELECT_PARTY + "WHERE p.id = ?",
                                                     (party_id,)))
        return _party_from_row(found[0])

    async def get_party(self, party_id: int) -> Party | None:
        if not _is_int64(party_id, minimum=1):
            return None
        async with self._reading(f"cannot read party #{party_id}") as conn:
            rows = list(await conn.execute_fetchall(_SELECT_PARTY + "WHERE p.id = ?",
                                                    (party_id,)))
        return _party_from_row(rows[0]) if rows else None

    async def open_parties(self, guild_id: int | None = None) -> list[Party]:
        async with self._reading("cannot read the parties") as conn:
            rows = await conn.execute_fetchall(
                _SELECT_PARTY + "WHERE p.status = 'open' AND (CAST(:g AS BIGINT) IS NULL "
                "OR p.guild_id = :g) ORDER BY p.id", {"g": guild_id})
        return [_party_from_row(r) for r in rows]

    async def update_party(self, party_id: int, **values: Any) -> None:
        """Set ``job_id``, ``pair_id``, ``message_id`` or ``status`` (done/stopped also set
        ``finished_at``)."""
        allowed = {"job_id", "pair_id", "message_id", "status"}
        if not values or set(values) - allowed:
            raise StoreError(f"a party's {sorted(set(values) - allowed)} cannot be set")
        if values.get("status", "open") not in ("open", "done", "stopped"):
            raise StoreError(f"unknown party status {values['status']!r}")
        sets = [f"{k} = :{k}" for k in values]  # names from the fixed set above
        if values.get("status") in ("done", "stopped"):
            sets.append("finished_at = :now")
        async with self._transaction(f"party #{party_id} not updated", patient=True) as conn:
            await conn.execute(f"UPDATE parties SET {', '.join(sets)} WHERE id = :id",
                               {**values, "id": party_id, "now": _to_ts(self._clock())})

    async def party_entries(self, party_id: int) -> list[QueueEntry]:
        """The party's clips in play order, open or not."""
        async with self._reading(f"cannot read party #{party_id}") as conn:
            rows = await conn.execute_fetchall(
                _SELECT_ENTRY + "WHERE q.party_id = ? ORDER BY q.id", (party_id,))
        return [_entry_from_row(r) for r in rows]

    async def party_ranking(self, party_id: int) -> list[PartyRank]:
        async with self._reading(f"cannot rank party #{party_id}") as conn:
            rows = await conn.execute_fetchall(_PARTY_RANKING, (party_id,))
        return [PartyRank(rank=i, clip_id=r["clip_id"], number=r["number"],
                          position=r["position"], votes=r["votes"], mean=r["mean"])
                for i, r in enumerate(rows, start=1)]

    async def claim_party_jobs(self, jobs: Sequence[JobRow]) -> list[JobRow]:
        """Of the interrupted ``jobs``, mark those an open party was composing as notified (the
        party composes their clips again itself) and return the others."""
        ids = [j.id for j in jobs]
        if not ids:
            return []
        async with self._reading("cannot read the parties") as conn:
            rows = await conn.execute_fetchall(
                "SELECT job_id FROM parties WHERE status = 'open' AND job_id IS NOT NULL")
        mine = {r[0] for r in rows} & set(ids)
        for job_id in sorted(mine):
            await self.mark_job_notified(job_id)
        return [j for j in jobs if j.id not in mine]
