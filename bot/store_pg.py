"""The store's PostgreSQL side: SQLAlchemy Core's async engine over asyncpg, running the store's
own SQL (written to mean the same in both dialects) through a connection shaped like aiosqlite's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import NullType

from cadenza.config import PG_URL_PREFIXES as URL_PREFIXES

SQLAlchemyError = sa_exc.SQLAlchemyError
# What a PostgreSQL store's statements may raise: the server's errors (SQLAlchemy wraps them),
# a lost connection, or a value out of range for its column.
ERRORS = (SQLAlchemyError, OSError, OverflowError)

VERSION_TABLE = "cadenza_schema"
# A write transaction takes this advisory lock first, so writes run one at a time as with
# SQLite's BEGIN IMMEDIATE and the store's read-then-write steps (a clip's next number in its
# server, a seed name still free) mean the same on both. Single-row upserts and updates (votes,
# a job's progress, leases) skip it: PostgreSQL's row locks and ON CONFLICT settle those.
WRITE_LOCK_KEY = 0x43414445  # "CADE"
# SQLSTATEs that mean "waited too long": lock_timeout, statement_timeout.
BUSY_STATES = {"55P03", "57014"}


def is_pg_url(target: object) -> bool:
    return isinstance(target, str) and target.strip().startswith(URL_PREFIXES)


def engine_url(url: str) -> str:
    """``postgresql://`` as users write it, with SQLAlchemy's asyncpg driver named."""
    url = url.strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


_POSITIONAL = re.compile(r"\?")
_FUNCTIONS = ((re.compile(r"\bifnull\("), "coalesce("), (re.compile(r"\binstr\("), "strpos("),
              (re.compile(r"\bcasefold\("), "lower("))


@lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """The store's SQL for PostgreSQL: ``?`` placeholders become named ones (``:_p0`` ...) and
    SQLite's ifnull/instr/casefold become coalesce/strpos/lower (same argument order; the
    server's lower() folds Unicode under a UTF-8 locale)."""
    counter = iter(range(10_000))
    sql = _POSITIONAL.sub(lambda _: f":_p{next(counter)}", sql)
    for pattern, replacement in _FUNCTIONS:
        sql = pattern.sub(replacement, sql)
    return sql


def _statement(sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> TextClause:
    """The statement with its values bound untyped: PostgreSQL takes each parameter's type from
    where it is used, and asyncpg then refuses a value of another type (4.5 for an integer
    column) as SQLite's STRICT tables do, where a typed bind would be cast (and rounded)."""
    if params is None:
        values: dict[str, Any] = {}
    elif isinstance(params, Mapping):
        values = dict(params)
    else:
        values = {f"_p{i}": value for i, value in enumerate(params)}
    statement = text(to_postgres(sql))
    names = set(statement._bindparams)  # only those the SQL uses: text() refuses others
    return statement.bindparams(*(bindparam(k, v, type_=NullType())
                                  for k, v in values.items() if k in names))


class PgRow:
    """A result row readable like sqlite3.Row: by name, by index, unpacked, ``dict(row)``.
    NUMERIC results (PostgreSQL's AVG and SUM of integers) come back as floats, as SQLite's."""

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        self._keys = tuple(keys)
        self._values = tuple(float(v) if isinstance(v, Decimal) else v for v in values)

    def keys(self) -> list[str]:
        return list(self._keys)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._keys.index(key)]
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class PgCursor:
    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class PgConn:
    """What the store's SQL methods use of a connection (aiosqlite's names), on SQLAlchemy."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Any = None) -> PgCursor:
        result = await self.conn.execute(_statement(sql, params))
        return PgCursor(result.rowcount)

    async def execute_fetchall(self, sql: str, params: Any = None) -> list[PgRow]:
        result = await self.conn.execute(_statement(sql, params))
        if not result.returns_rows:
            return []
        keys = list(result.keys())
        return [PgRow(keys, tuple(row)) for row in result.fetchall()]


def error_state(error: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error wrapped by SQLAlchemy (None if there is none)."""
    orig = getattr(error, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), error):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def error_message(error: BaseException) -> str:
    """The server's one-line message (without SQLAlchemy's statement dump)."""
    orig = getattr(error, "orig", None)
    inner = getattr(orig, "__cause__", None) or orig or error
    lines = str(inner).strip().splitlines()
    message = lines[0] if lines else type(inner).__name__
    return re.sub(r"^<class '[^']+'>: ", "", message)


def is_busy(error: BaseException) -> bool:
    return isinstance(error, sa_exc.TimeoutError) or error_state(error) in BUSY_STATES


class PgDatabase:
    """The engine and its pool; transactions and reads bounded by a wait in seconds.

    Round trips are what a PostgreSQL store pays for: a read is one statement on a pooled
    connection in autocommit (no BEGIN/COMMIT), with the wait as the connection's
    statement_timeout; a write is BEGIN, one statement taking the write lock (and, for a
    patient write, the longer timeouts), its own statements, COMMIT.
    """

    def __init__(self, url: str, *, wait: float, pool_size: int = 5) -> None:
        self.url = url
        self.wait = wait
        ms = str(max(1, round(wait * 1000)))
        self.engine: AsyncEngine = create_async_engine(
            engine_url(url), pool_size=pool_size, max_overflow=pool_size,
            connect_args={"server_settings": {"statement_timeout": ms, "lock_timeout": ms}})
        self.reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def connection(self, wait: float, *, read: bool = False
                         ) -> AsyncIterator[AsyncConnection]:
        """A pooled connection within ``wait`` seconds (else sqlalchemy TimeoutError)."""
        try:
            async with asyncio.timeout(max(wait, 0.001)):
                conn = await (self.reader if read else self.engine).connect()
        except TimeoutError:
            raise sa_exc.TimeoutError("no database connection free in time") from None
        try:
            yield conn
        finally:
            await asyncio.shield(conn.close())

    @asynccontextmanager
    async def transaction(self, wait: float, *, lock: bool = True) -> AsyncIterator[PgConn]:
        """BEGIN ... COMMIT with lock and statement waits bounded by ``wait``; any exception
        rolls back and propagates."""
        async with self.connection(wait) as conn, conn.begin():
            settings = ""
            if wait != self.wait:
                ms = max(1, round(wait * 1000))
                settings = (f"set_config('lock_timeout', '{ms:d}', true), "
                            f"set_config('statement_timeout', '{ms:d}', true)")
            if lock:
                # One round trip: the timeouts (set first, so the lock wait obeys them), then
                # the write lock, held until COMMIT or ROLLBACK.
                await conn.execute(text(f"SELECT {settings}{', ' if settings else ''}"
                                        "pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
            elif settings:
                await conn.execute(text(f"SELECT {settings}"))
            yield PgConn(conn)

    @asynccontextmanager
    async def reading(self, wait: float) -> AsyncIterator[PgConn]:
        async with self.connection(wait, read=True) as conn:
            yield PgConn(conn)
