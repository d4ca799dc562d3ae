"""What only the PostgreSQL store has: its schema versioning, refusals, and bounded waits on a
lock another process holds (the rest of the store's suite runs on both databases)."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest
from test_store import new_clip

from cadenza.config import Settings, db_target
from cadenza.store import Store, StoreBusy, StoreError, load_migrations
from cadenza.store_pg import WRITE_LOCK_KEY, redact, to_postgres
from tests.store_backends import raw

LATEST = len(load_migrations())


async def test_migrates_an_empty_database_once(pg_url: str) -> None:
    async with await Store.open(pg_url) as store:
        assert store.backend == "postgresql"
        assert await store.schema_version() == LATEST == store.latest_version
        settings = await store.diagnostics()
        assert settings["user_version"] == LATEST and str(settings["server_version"])[:2] >= "12"
    tables = {r[0] for r in raw(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = "
                                       "'public'")}
    assert {"users", "clips", "ratings", "jobs", "seeds", "lineage", "arena_pairs",
            "arena_votes", "parties", "play_queue", "players", "cadenza_schema"} <= tables
    async with await Store.open(pg_url) as store:
        assert await store.upgrade() == []
    assert raw(pg_url, "SELECT version FROM cadenza_schema") == [(LATEST,)]


async def test_refuses_a_newer_schema_and_a_foreign_database(pg_server, pg_url: str) -> None:
    async with await Store.open(pg_url):
        pass
    raw(pg_url, "UPDATE cadenza_schema SET version = 99")
    with pytest.raises(StoreError, match=rf"schema v99 is newer than this Cadenza \(v{LATEST}\)"):
        await Store.open(pg_url)
    other = pg_server.create_database()
    raw(other, "CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StoreError, match="is not a Cadenza database"):
        await Store.open(other)
    assert raw(other, "SELECT to_regclass('cadenza_schema') IS NULL") == [(True,)]


async def test_an_unreachable_server_is_one_line(pg_server) -> None:
    url = f"postgresql://cadenza@127.0.0.1:{pg_server.port}/no_such_db"
    with pytest.raises(StoreError, match=r"^cannot open database .*no_such_db.*does not exist"):
        await Store.open(url)


async def test_rated_clip_cannot_be_deleted(pg_url: str) -> None:
    async with await Store.open(pg_url) as store:
        clip_id = await store.add_clip(new_clip())
        await store.set_rating(clip_id, 2, 4, "bob")
        with pytest.raises(StoreError, match=r"^clip not stored: unknown user 777$"):
            await store.add_clip(new_clip(user_id=777, user_name=None))
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        raw(pg_url, "DELETE FROM clips WHERE id = ?", (clip_id,))
    assert raw(pg_url, "SELECT COUNT(*) FROM ratings") == [(1,)]


async def test_locks_held_elsewhere_are_refused_within_the_wait(pg_url: str) -> None:
    """Another process holding what a write needs (the store's write lock, or the ratings
    table): the member's request is refused with StoreBusy after the store's wait (under
    Discord's 3 s), and nothing is stored."""
    async with await Store.open(pg_url, wait=0.5) as store:
        clip_id = await store.add_clip(new_clip())
        other = await asyncpg.connect(pg_url)
        try:
            await other.execute("SELECT pg_advisory_lock($1)", WRITE_LOCK_KEY)
            started = time.monotonic()
            with pytest.raises(StoreBusy, match=r"^clip not stored: the database is busy"):
                await store.add_clip(new_clip())
            assert 0.4 < time.monotonic() - started < 2.0
            await other.execute("SELECT pg_advisory_unlock($1)", WRITE_LOCK_KEY)

            # A vote does not queue behind the write lock, but behind a lock on its table.
            async with other.transaction():
                await other.execute("LOCK TABLE ratings IN EXCLUSIVE MODE")
                started = time.monotonic()
                with pytest.raises(StoreBusy, match="the database is busy"):
                    await store.set_rating(clip_id, 2, 5, "bob")
                assert 0.4 < time.monotonic() - started < 2.0
            assert await store.clip_count() == 1
            assert (await store.get_clip(clip_id)).rating_count == 0  # type: ignore[union-attr]
            assert await store.set_rating(clip_id, 2, 5, "bob") is None
        finally:
            await other.close()


def test_cadenza_db_names_a_file_or_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://cadenza:secret@db.example:5432/cadenza"
    assert db_target(url) == url
    assert db_target("sqlite:music.db") == Path("music.db")
    assert db_target("sqlite:///srv/c.db") == Path("/srv/c.db")
    assert db_target("/srv/c.db") == Path("/srv/c.db")
    monkeypatch.setenv("CADENZA_DB", url)
    assert Settings.from_env().db_path == url
    assert redact(url) == "postgresql://cadenza:***@db.example:5432/cadenza"


def test_sql_is_carried_to_postgres_placeholders_and_functions() -> None:
    assert to_postgres("SELECT ifnull(?, 0), instr(casefold(name), ?) FROM t WHERE a = ?") == (
        "SELECT coalesce(:_p0, 0), strpos(lower(name), :_p1) FROM t WHERE a = :_p2")


def test_both_schemas_have_the_same_numbered_steps() -> None:
    from importlib import resources

    pg = load_migrations(resources.files("cadenza").joinpath("migrations", "postgresql"))
    assert [m.name for m in pg] == [m.name for m in load_migrations()]


def test_job_lease_comes_from_the_environment() -> None:
    from cadenza.errors import UserError

    assert Settings.from_env({}).job_lease is None
    assert Settings.from_env({"CADENZA_JOB_LEASE": "2.5"}).job_lease == 2.5
    with pytest.raises(UserError, match="CADENZA_JOB_LEASE must be a number of seconds"):
        Settings.from_env({"CADENZA_JOB_LEASE": "soon"})
