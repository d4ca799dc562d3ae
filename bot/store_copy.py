"""`cadenza db copy`: every row of one store (SQLite or PostgreSQL) into another, verified by
row counts and per-table checksums."""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cadenza.store import Store, StoreError

log = logging.getLogger(__name__)

# Every table, parents before children (foreign keys), with the columns that order its rows.
# Generated columns (lineage's kinds and ids) are computed by the target, not copied.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("users", ("id",)),
    ("clips", ("id",)),
    ("ratings", ("clip_id", "user_id")),
    ("jobs", ("id",)),
    ("seeds", ("id",)),
    ("lineage", ("id",)),
    ("arena_pairs", ("id",)),
    ("arena_votes", ("pair_id", "user_id")),
    ("parties", ("id",)),
    ("play_queue", ("id",)),
    ("players", ("guild_id",)),
)
GENERATED = {"lineage": ("child_kind", "child_id", "parent_kind", "parent_id")}


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    checksum: str  # sha256 of the rows in key order, values in one canonical encoding


def _encode(value: Any) -> bytes:
    """One canonical encoding per value, equal for equal values from either database."""
    if value is None:
        return b"N"
    if isinstance(value, bool):
        return b"I" + str(int(value)).encode()
    if isinstance(value, int):
        return b"I" + str(value).encode()
    if isinstance(value, float):
        return b"F" + struct.pack(">d", value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return b"B" + str(len(data)).encode() + b":" + data
    text = str(value).encode()
    return b"T" + str(len(text)).encode() + b":" + text


def checksum(rows: Sequence[tuple[Any, ...]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        for value in row:
            digest.update(_encode(value))
        digest.update(b"\n")
    return digest.hexdigest()


async def columns_of(store: Store, table: str) -> list[str]:
    """The table's stored columns (generated ones left out)."""
    skip = set(GENERATED.get(table, ()))
    return [c for c in await store.column_names(table) if c not in skip]


async def snapshot(store: Store, table: str, columns: Sequence[str],
                   order: Sequence[str]) -> tuple[list[tuple[Any, ...]], TableCopy]:
    rows = await store.read_table(table, columns, order)
    return rows, TableCopy(table, len(rows), checksum(rows))


async def copy_database(source: Store, target: Store, *, replace: bool = False
                        ) -> list[TableCopy]:
    """Copy every table of ``source`` into ``target`` (both at the same, latest schema) in one
    transaction, then read both back and compare counts and checksums. A target with any rows
    is refused unless ``replace`` (its rows are deleted first, in the same transaction)."""
    names = [t for t, _ in TABLES]
    for store, role in ((source, "source"), (target, "target")):
        version = await store.schema_version()
        if version != store.latest_version:
            raise StoreError(f"the {role} database {store.path} is at schema v{version}, not "
                             f"v{store.latest_version}: run `cadenza db upgrade --db "
                             f"{store.path}` first")
    existing = {t: n for t, n in (await target.count_rows(names)).items() if n}
    if existing and not replace:
        listed = ", ".join(f"{t} {n}" for t, n in existing.items())
        raise StoreError(f"the target database {target.path} is not empty ({listed} rows): "
                         "copy into an empty one, or pass --replace to delete its rows first")
    plan: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
    expected: list[TableCopy] = []
    for table, order in TABLES:
        columns = await columns_of(source, table)
        rows, summary = await snapshot(source, table, columns, order)
        plan.append((table, columns, rows))
        expected.append(summary)
    await target.write_tables(plan, clear=list(reversed(names)) if replace else ())
    for (table, columns, _), want in zip(plan, expected, strict=True):
        _, got = await snapshot(target, table, columns, dict(TABLES)[table])
        if got != want:
            raise StoreError(f"copy verification failed for table {table}: source has "
                             f"{want.rows} rows (sha256 {want.checksum[:12]}), target "
                             f"{got.rows} rows (sha256 {got.checksum[:12]})")
    log.info("copied %d rows in %d tables from %s to %s", sum(t.rows for t in expected),
             len(expected), source.path, target.path)
    return expected
