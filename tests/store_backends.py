"""Helpers for running the store's tests on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")
# Tests of SQLite's own machinery (PRAGMAs, the file, aiosqlite) run on SQLite only.
sqlite_only = pytest.mark.parametrize("store_db", ["sqlite"], indirect=True)
# A CHECK constraint refused the row, as each database says it.
CHECK_FAILED = r"(CHECK constraint failed|violates check constraint)"
UNIQUE_FAILED = r"(UNIQUE constraint failed|violates unique constraint)"


def is_pg(target: Path | str) -> bool:
    return isinstance(target, str)


def _pg_sql(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


async def _pg_fetch(url: str, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(_pg_sql(sql), *params)
    finally:
        await conn.close()
    return [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


def raw(target: Path | str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL on the database with a connection of its own, as another process would (``?``
    placeholders on both)."""
    if not is_pg(target):
        import sqlite3

        conn = sqlite3.connect(target)
        try:
            result = conn.execute(sql, params).fetchall()
            conn.commit()
            return result
        finally:
            conn.close()
    # A thread of its own: the calling test's event loop is running.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(_pg_fetch(str(target), sql, params))).result()
