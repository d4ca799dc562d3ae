"""Tests for cadenza.store against real SQLite files: migrations, transactions, ratings, charts."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import aiosqlite
import mido
import pytest

from cadenza.errors import UserError
from cadenza.stats_math import mos_interval, t_quantile
from cadenza.store import Store, StoreError, default_db_path, load_migrations, split_sql
from cadenza.store_rows import NewClip
from tests.store_backends import CHECK_FAILED, is_pg, raw, sqlite_only

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def make_midi(pitch: int = 60) -> bytes:
    """A real one-note Standard MIDI File."""
    track = mido.MidiTrack(
        [
            mido.Message("note_on", note=pitch, velocity=90, time=0),
            mido.Message("note_off", note=pitch, velocity=0, time=480),
        ]
    )
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


MIDI = make_midi()
LATEST = len(load_migrations())  # the schema version this code builds


def new_clip(user_id: int = 1, user_name: str | None = "alice", **changes: object) -> NewClip:
    values: dict[str, object] = {
        "style": "jazz",
        "bars": 8,
        "tempo": 120.0,
        "key": "Dm",
        "meter": "4/4",
        "temperature": 0.9,
        "seed": 1234,
        "model": "transformer-small",
        "checkpoint_sha": "ab12cd34",
        "params": {"style": "jazz", "bars": 8, "chords": ["Dm7", "G7", "Cmaj7"]},
        "midi": MIDI,
        "duration_s": 16.0,
        "user_id": user_id,
        "user_name": user_name,
    }
    values.update(changes)
    return NewClip(**values)  # type: ignore[arg-type]


def insert_old_clip(db: Path, *, user_id: int = 1, user_name: str = "alice",
                    model: str = "lstm", guild_id: int | None = None) -> int:
    """A clip row as a Cadenza before clip scopes (schema v4 and older) stored it."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("INSERT OR IGNORE INTO users (id, name, created_at) VALUES (?, ?, 'then')",
                     (user_id, user_name))
        cursor = conn.execute(
            "INSERT INTO clips (style, bars, tempo, key, meter, temperature, seed, model, "
            "duration_s, user_id, guild_id, created_at, params_json, midi) VALUES ('jazz', 2, "
            "120.0, 'F', '4/4', 1.0, 77, ?, 4.0, ?, ?, '2024-01-01T00:00:00.000000Z', '{}', ?)",
            (model, user_id, guild_id, MIDI))
        conn.commit()
        return int(cursor.lastrowid or 0)
    finally:
        conn.close()


class Clock:
    """A settable clock so timestamps in assertions are exact."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db(store_db: Path | str) -> Path | str:
    """A SQLite file or a PostgreSQL database (conftest's store_db runs each test on both)."""
    return store_db


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(db: Path, clock: Clock):
    async with await Store.open(db, clock=clock) as opened:
        yield opened


# ---------------------------------------------------------------------------------------------
# Opening and migrations


@sqlite_only
async def test_migrates_empty_file_and_reopening_is_idempotent(db: Path) -> None:
    async with await Store.open(db) as store:
        assert await store.schema_version() == LATEST
        assert store.latest_version == LATEST
        assert await store.upgrade() == []
    names = {row[0] for row in raw(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "clips", "ratings", "jobs", "seeds", "lineage", "arena_pairs",
            "arena_votes"} <= names
    indexes = {row[0] for row in raw(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"clips_style", "clips_model", "clips_created_at", "clips_user_id",
            "seeds_live_name", "lineage_child", "lineage_parent"} <= indexes
    assert raw(db, "PRAGMA user_version") == [(LATEST,)]

    async with await Store.open(db) as store:
        assert await store.schema_version() == LATEST
        assert await store.upgrade() == []
    assert raw(db, "PRAGMA user_version") == [(LATEST,)]


async def test_open_without_migrate_leaves_schema_alone(db: Path) -> None:
    async with await Store.open(db, migrate=False) as store:
        assert await store.schema_version() == 0
        assert await store.upgrade() == list(range(1, LATEST + 1))
        assert await store.schema_version() == LATEST


async def test_packaged_migrations_are_found_through_importlib_resources() -> None:
    migrations = load_migrations()
    assert [(m.version, m.name) for m in migrations] == [(1, "0001_initial.sql"),
                                                          (2, "0002_jobs.sql"),
                                                          (3, "0003_seeds.sql"),
                                                          (4, "0004_arena.sql"),
                                                          (5, "0005_clip_scopes.sql"),
                                                          (6, "0006_listening.sql"),
                                                          (7, "0007_job_leases.sql")]
    assert any(s.startswith("CREATE TABLE clips") for s in migrations[0].statements)


@sqlite_only
async def test_refuses_newer_schema_and_leaves_file_unchanged(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x INTEGER)")
    conn.execute("INSERT INTO future VALUES (42)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = digest(db)
    files_before = sorted(p.name for p in db.parent.iterdir())

    for migrate in (True, False):
        with pytest.raises(StoreError) as info:
            await Store.open(db, migrate=migrate)
        assert str(info.value) == (
            f"database schema v99 is newer than this Cadenza (v{LATEST}): upgrade Cadenza"
        )

    assert digest(db) == before
    # No -wal/-shm: the refused file was not even switched to WAL.
    assert sorted(p.name for p in db.parent.iterdir()) == files_before
    assert raw(db, "SELECT x FROM future") == [(42,)]


async def test_refuses_a_foreign_database_and_a_non_database(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.commit()
    conn.close()
    before = digest(other)
    with pytest.raises(StoreError, match="is not a Cadenza database"):
        await Store.open(other)
    assert digest(other) == before

    text = tmp_path / "notes.txt"
    text.write_text("this is not SQLite, " * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        await Store.open(text)
    assert text.read_text() == "this is not SQLite, " * 100


@sqlite_only
async def test_wal_foreign_keys_and_busy_timeout_are_on(store: Store, db: Path) -> None:
    settings = await store.diagnostics()
    assert settings["journal_mode"] == "wal"
    assert settings["foreign_keys"] == 1
    assert settings["busy_timeout"] == 2000  # under Discord's 3 s (cadenza.store.DEFAULT_WAIT)
    assert raw(db, "PRAGMA journal_mode") == [("wal",)]  # persistent in the file
    # Behaviour, not only the pragma: a clip by a user who does not exist is refused.
    with pytest.raises(StoreError, match=r"^clip not stored: unknown user 777$"):
        await store.add_clip(new_clip(user_id=777, user_name=None))
    assert await store.clip_count() == 0


@sqlite_only
async def test_rated_clip_cannot_be_deleted(store: Store, db: Path) -> None:
    clip_id = await store.add_clip(new_clip())
    await store.set_rating(clip_id, 2, 4, "bob")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("DELETE FROM clips WHERE id = ?", (clip_id,))
    conn.close()
    assert raw(db, "SELECT COUNT(*) FROM ratings") == [(1,)]


def write_migrations(folder: Path, extra: dict[str, str]) -> Path:
    """The packaged migrations plus ``extra`` ones (numbered after them)."""
    folder.mkdir()
    for packaged in resources.files("cadenza").joinpath("migrations").iterdir():
        if packaged.name.endswith(".sql"):
            (folder / packaged.name).write_text(packaged.read_text(encoding="utf-8"))
    for name, sql in extra.items():
        (folder / name).write_text(sql)
    return folder


@sqlite_only
async def test_runner_discovers_and_applies_a_new_migration(tmp_path: Path, db: Path) -> None:
    async with await Store.open(db) as store:
        clip_id = await store.add_clip(new_clip())

    folder = write_migrations(
        tmp_path / "migrations",
        {
            f"{LATEST + 1:04d}_tags.sql": """
                -- tags; the trigger body has inner semicolons the splitter must keep whole
                CREATE TABLE tags (clip_id INTEGER NOT NULL REFERENCES clips (id), tag TEXT);
                CREATE TRIGGER tags_lower AFTER INSERT ON tags BEGIN
                    UPDATE tags SET tag = lower(NEW.tag) WHERE rowid = NEW.rowid;
                    SELECT 'done; really';
                END;
                INSERT INTO tags (clip_id, tag) SELECT id, 'Imported' FROM clips;
            """,
        },
    )
    migrations = load_migrations(folder)
    assert [m.version for m in migrations] == list(range(1, LATEST + 2))
    assert len(migrations[LATEST].statements) == 3

    async with await Store.open(db, migrate=False, migrations=migrations) as store:
        assert await store.schema_version() == LATEST
        assert await store.upgrade() == [LATEST + 1]
        assert await store.schema_version() == LATEST + 1
        assert (await store.get_clip(clip_id)) is not None
    assert raw(db, "SELECT clip_id, tag FROM tags") == [(clip_id, "imported")]

    newer = rf"schema v{LATEST + 1} is newer than this Cadenza \(v{LATEST}\)"
    with pytest.raises(StoreError, match=newer):
        await Store.open(db)


@sqlite_only
async def test_failing_migration_is_rolled_back_whole(tmp_path: Path, db: Path) -> None:
    async with await Store.open(db) as store:
        await store.add_clip(new_clip())
    folder = write_migrations(
        tmp_path / "migrations",
        {f"{LATEST + 1:04d}_broken.sql":
         "CREATE TABLE half (x INTEGER);\nCREATE TABLE half (y INTEGER);\n"},
    )
    broken = rf"^migration {LATEST + 1:04d}_broken.sql failed: .*already exists"
    with pytest.raises(StoreError, match=broken):
        await Store.open(db, migrations=load_migrations(folder))
    assert raw(db, "PRAGMA user_version") == [(LATEST,)]
    assert raw(db, "SELECT name FROM sqlite_master WHERE name = 'half'") == []
    async with await Store.open(db) as store:
        assert await store.clip_count() == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["0001_a.sql", "2_b.sql"], "badly named migration '2_b.sql'"),
        (["0001_a.sql", "0003_c.sql"], "without gaps"),
        (["0001_a.sql", "0001_b.sql"], "two migrations for schema v1"),
    ],
)
def test_bad_migration_folders_are_rejected(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        (tmp_path / name).write_text("CREATE TABLE t (x INTEGER);")
    with pytest.raises(StoreError, match=message):
        load_migrations(tmp_path)


def test_split_sql_rejects_a_trailing_incomplete_statement() -> None:
    assert split_sql("-- c\nSELECT 1; /* x */ SELECT ';';\n-- end\n") == (
        "-- c\nSELECT 1;",
        "/* x */ SELECT ';';",
    )
    with pytest.raises(StoreError, match="incomplete SQL statement"):
        split_sql("SELECT 1; SELECT 2")


def test_default_db_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CADENZA_DB", raising=False)
    assert default_db_path() == Path("cadenza.db")
    monkeypatch.setenv("CADENZA_DB", "/srv/cadenza/music.db")
    assert default_db_path() == Path("/srv/cadenza/music.db")
    monkeypatch.setenv("CADENZA_DB", "  ")
    assert default_db_path() == Path("cadenza.db")


async def test_closed_store_says_so(db: Path) -> None:
    store = await Store.open(db)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match=r"^the database is closed$"):
        await store.clip_count()
    assert issubclass(StoreError, UserError)


# ---------------------------------------------------------------------------------------------
# Clips


async def test_clip_ids_are_sequential_and_round_trip(store: Store, clock: Clock) -> None:
    ids = []
    for pitch in (60, 62, 64):
        ids.append(await store.add_clip(new_clip(midi=make_midi(pitch), seed=pitch)))
        clock.advance(seconds=1)
    assert ids == [1, 2, 3]
    assert await store.clip_count() == 3

    clip = await store.get_clip(2)
    assert clip is not None
    assert (clip.id, clip.style, clip.bars, clip.tempo, clip.key, clip.meter) == (
        2, "jazz", 8, 120.0, "Dm", "4/4",
    )  # fmt: skip
    assert (clip.temperature, clip.seed, clip.model, clip.checkpoint_sha) == (
        0.9, 62, "transformer-small", "ab12cd34",
    )  # fmt: skip
    assert clip.params == {"style": "jazz", "bars": 8, "chords": ["Dm7", "G7", "Cmaj7"]}
    assert clip.midi == make_midi(62)
    assert mido.MidiFile(file=io.BytesIO(clip.midi)).tracks[0][0].note == 62
    assert (clip.user_id, clip.user_name, clip.duration_s) == (1, "alice", 16.0)
    assert (clip.guild_id, clip.channel_id, clip.message_id) == (None, None, None)
    assert clip.created_at == T0 + timedelta(seconds=1)
    assert (clip.rating_count, clip.rating_mean) == (0, None)
    assert await store.get_clip(4) is None
    assert await store.get_clip(0) is None
    assert await store.get_clip(2**70) is None


async def test_clip_message_is_recorded_and_found(store: Store) -> None:
    clip_id = await store.add_clip(new_clip(guild_id=5, channel_id=6))
    assert await store.clip_by_message(999) is None
    await store.set_clip_message(clip_id, guild_id=5, channel_id=6, message_id=999)
    found = await store.clip_by_message(999)
    assert found is not None
    assert (found.id, found.guild_id, found.channel_id, found.message_id) == (clip_id, 5, 6, 999)
    with pytest.raises(StoreError, match=r"^no clip #42$"):
        await store.set_clip_message(42, guild_id=None, channel_id=None, message_id=1)


async def test_failed_add_clip_stores_nothing(store: Store, db: Path) -> None:
    first = await store.add_clip(new_clip())
    users_before = raw(db, "SELECT id, name FROM users ORDER BY id")

    # The new user is written first in the same transaction; the clip then violates a CHECK.
    if is_pg(db):
        bars, midi = '"clips_bars_check"$', '"clips_midi_check"$'
    else:
        bars, midi = "bars > 0$", "substr"
    real = r"^clip not stored: bars must be a whole number \(got 4\.5\)$"
    check = r"^clip not stored: .*" + CHECK_FAILED + ".*"
    with pytest.raises(StoreError, match=check + bars):
        await store.add_clip(new_clip(user_id=50, user_name="newcomer", bars=0))
    with pytest.raises(StoreError, match=check + midi):
        await store.add_clip(new_clip(user_id=50, user_name="newcomer", midi=b"RIFF....WAVE"))
    with pytest.raises(StoreError, match=real):
        await store.add_clip(new_clip(user_id=50, user_name="newcomer", bars=4.5))
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.add_clip(new_clip(params={"when": datetime.now()}))

    assert await store.clip_count() == 1
    assert raw(db, "SELECT id, name FROM users ORDER BY id") == users_before
    # The rolled-back inserts did not consume ids either on SQLite; PostgreSQL's sequences are
    # outside transactions, so ids there may skip (members see per-server numbers, not ids).
    later = await store.add_clip(new_clip())
    assert later == first + 1 if not is_pg(db) else later > first
    assert (await store.get_clip(later)).number == 2  # type: ignore[union-attr]


async def test_ensure_user_inserts_then_renames(store: Store, db: Path) -> None:
    await store.ensure_user(0, "console")
    await store.ensure_user(0, "Console User")
    assert raw(db, "SELECT id, name FROM users") == [(0, "Console User")]
    with pytest.raises(StoreError, match="needs a non-empty name"):
        await store.ensure_user(3, " ")


# ---------------------------------------------------------------------------------------------
# Ratings


async def test_rating_upsert_keeps_one_row_per_user_and_clip(
    store: Store, db: Path, clock: Clock
) -> None:
    clip_id = await store.add_clip(new_clip())
    assert await store.set_rating(clip_id, 2, 3, "bob") is None
    clock.advance(minutes=5)
    assert await store.set_rating(clip_id, 2, 5, "Bobby") == 3
    assert await store.set_rating(clip_id, 3, 4, "carol") is None

    rows = raw(
        db,
        "SELECT user_id, stars, created_at, updated_at FROM ratings WHERE clip_id = ? "
        "ORDER BY user_id",
        (clip_id,),
    )
    assert rows == [
        (2, 5, "2024-05-01T12:00:00.000000Z", "2024-05-01T12:05:00.000000Z"),
        (3, 4, "2024-05-01T12:05:00.000000Z", "2024-05-01T12:05:00.000000Z"),
    ]
    assert raw(db, "SELECT name FROM users WHERE id = 2") == [("Bobby",)]
    clip = await store.get_clip(clip_id)
    assert clip is not None
    assert (clip.rating_count, clip.rating_mean) == (2, 4.5)


async def test_unknown_clip_and_bad_stars_are_refused(store: Store, db: Path) -> None:
    clip_id = await store.add_clip(new_clip())
    with pytest.raises(StoreError, match=r"^no clip #12$"):
        await store.set_rating(12, 9, 4, "stranger")
    with pytest.raises(StoreError, match=r"^no clip #-1$"):
        await store.set_rating(-1, 9, 4, "stranger")
    for stars in (0, 6, 2.5, True):
        with pytest.raises(StoreError, match=r"^stars must be a whole number from 1 to 5 \(got "):
            await store.set_rating(clip_id, 9, stars, "stranger")  # type: ignore[arg-type]
    assert raw(db, "SELECT COUNT(*) FROM ratings") == [(0,)]
    # The unknown-clip transaction did not leave the would-be rater behind either.
    assert raw(db, "SELECT COUNT(*) FROM users WHERE id = 9") == [(0,)]


async def seed_chart(store: Store, clock: Clock) -> dict[str, int]:
    """Four clips with a literal vote set (voters 10.. are never authors)."""
    await store.ensure_user(1, "alice")
    await store.ensure_user(2, "bob")
    votes = {
        "A": (1, "jazz", [5]),
        "B": (2, "jazz", [5, 5, 4, 5, 4, 5, 4, 5]),
        "C": (1, "pop", [3, 2, 3]),
        "D": (2, "pop", [4, 4]),
    }
    ids = {}
    for label, (author, style, stars) in votes.items():
        ids[label] = await store.add_clip(
            new_clip(user_id=author, user_name=None, style=style, model=f"model-{label}")
        )
        clock.advance(days=1)
        for voter, value in enumerate(stars, start=10):
            await store.set_rating(ids[label], voter, value, f"voter{voter}")
    return ids


async def test_top_uses_bayesian_average(store: Store, clock: Clock) -> None:
    ids = await seed_chart(store, clock)
    # 14 counted votes summing to 58: prior mean m = 58/14; with weight 3:
    #   A: (3m + 5)  / 4  = 244/56 = 4.357142...
    #   B: (3m + 37) / 11 = 692/154 = 4.493506...
    #   D: (3m + 8)  / 5  = 286/70 = 4.085714...
    #   C: (3m + 8)  / 6  = 286/84 = 3.404761...
    chart = await store.top()
    assert [e.clip_id for e in chart] == [ids["B"], ids["A"], ids["D"], ids["C"]]
    assert [e.rank for e in chart] == [1, 2, 3, 4]
    assert [e.score for e in chart] == pytest.approx(
        [4.4935065, 4.3571429, 4.0857143, 3.4047619], rel=1e-6
    )
    assert [(e.rating_count, e.rating_mean) for e in chart] == [
        (8, 4.625), (1, 5.0), (2, 4.0), (3, pytest.approx(8 / 3)),
    ]  # fmt: skip
    assert chart[0].user_name == "bob"
    assert chart[0].created_at == T0 + timedelta(days=1)

    # Without the prior it is the plain mean, and the single 5-star vote wins.
    plain = await store.top(prior_weight=0)
    assert [e.clip_id for e in plain] == [ids["A"], ids["B"], ids["D"], ids["C"]]

    assert [e.clip_id for e in await store.top(limit=2)] == [ids["B"], ids["A"]]
    assert [e.clip_id for e in await store.top(style="pop")] == [ids["D"], ids["C"]]
    assert [e.clip_id for e in await store.top(model="model-C")] == [ids["C"]]
    # Clips were created one day apart from T0: A at T0, B T0+1d, C T0+2d, D T0+3d.
    since = await store.top(since=T0 + timedelta(days=2))
    assert [e.clip_id for e in since] == [ids["D"], ids["C"]]
    assert await store.top(style="blues") == []


async def test_top_rejects_bad_arguments(store: Store) -> None:
    with pytest.raises(StoreError, match="limit must be a positive whole number"):
        await store.top(limit=0)
    with pytest.raises(StoreError, match="prior weight must be zero or more"):
        await store.top(prior_weight=-1)


async def test_self_votes_are_stored_but_not_counted(store: Store, db: Path) -> None:
    x = await store.add_clip(new_clip(user_id=1, user_name="alice"))
    y = await store.add_clip(new_clip(user_id=2, user_name="bob"))
    only_self = await store.add_clip(new_clip(user_id=3, user_name="carol"))
    await store.set_rating(x, 1, 1, "alice")  # own clip
    await store.set_rating(x, 2, 4, "bob")
    await store.set_rating(x, 3, 4, "carol")
    await store.set_rating(y, 2, 5, "bob")  # own clip
    await store.set_rating(y, 3, 3, "carol")
    await store.set_rating(only_self, 3, 5, "carol")  # own clip

    assert raw(db, "SELECT COUNT(*) FROM ratings") == [(6,)]
    clip_x = await store.get_clip(x)
    clip_y = await store.get_clip(y)
    clip_self = await store.get_clip(only_self)
    assert clip_x is not None and clip_y is not None and clip_self is not None
    assert (clip_x.rating_count, clip_x.rating_mean) == (2, 4.0)
    assert (clip_y.rating_count, clip_y.rating_mean) == (1, 3.0)
    assert (clip_self.rating_count, clip_self.rating_mean) == (0, None)

    # Counted votes 4, 4, 3: m = 11/3. x: (11 + 8) / 5 = 3.8; y: (11 + 3) / 4 = 3.5.
    chart = await store.top()
    assert [(e.clip_id, e.rating_count) for e in chart] == [(x, 2), (y, 1)]
    assert [e.score for e in chart] == pytest.approx([3.8, 3.5])


async def test_export_ratings_joins_clip_parameters(store: Store, clock: Clock) -> None:
    clip_id = await store.add_clip(new_clip(user_id=1, user_name="alice"))
    clock.advance(hours=1)
    await store.set_rating(clip_id, 2, 4, "bob")
    await store.set_rating(clip_id, 1, 5, "alice")
    clock.advance(hours=1)
    await store.set_rating(clip_id, 2, 2, "bob")

    common = {
        "clip_id": clip_id,
        "style": "jazz",
        "bars": 8,
        "tempo": 120.0,
        "key": "Dm",
        "meter": "4/4",
        "temperature": 0.9,
        "seed": 1234,
        "model": "transformer-small",
        "checkpoint_sha": "ab12cd34",
        "params": {"style": "jazz", "bars": 8, "chords": ["Dm7", "G7", "Cmaj7"]},
        "duration_s": 16.0,
        "author_id": 1,
        "clip_created_at": "2024-05-01T12:00:00.000000Z",
    }
    assert await store.export_ratings() == [
        {
            **common,
            "user_id": 1,
            "user_name": "alice",
            "stars": 5,
            "rated_at": "2024-05-01T13:00:00.000000Z",
            "updated_at": "2024-05-01T13:00:00.000000Z",
            "self_vote": True,
        },
        {
            **common,
            "user_id": 2,
            "user_name": "bob",
            "stars": 2,
            "rated_at": "2024-05-01T13:00:00.000000Z",
            "updated_at": "2024-05-01T14:00:00.000000Z",
            "self_vote": False,
        },
    ]


# ---------------------------------------------------------------------------------------------
# Concurrency


async def test_concurrent_ratings_from_many_tasks_all_land(db: Path) -> None:
    async with await Store.open(db) as first, await Store.open(db) as second:
        clips = [await first.add_clip(new_clip()) for _ in range(3)]
        # Two connections (as the bot and a CLI would have) plus many tasks on each.
        jobs = [
            (first if voter % 2 else second).set_rating(
                clip_id, voter, 1 + (voter + clip_id) % 5, f"voter{voter}"
            )
            for voter in range(100, 140)
            for clip_id in clips
        ]
        results = await asyncio.gather(*jobs)
        assert results == [None] * len(jobs)

        expected = {
            (clip_id, voter): 1 + (voter + clip_id) % 5
            for voter in range(100, 140)
            for clip_id in clips
        }
        rows = raw(db, "SELECT clip_id, user_id, stars FROM ratings")
        assert {(c, u): s for c, u, s in rows} == expected
        assert len(rows) == len(expected)
        for clip_id in clips:
            clip = await second.get_clip(clip_id)
            assert clip is not None and clip.rating_count == 40


async def test_cancelled_writers_leave_the_store_consistent(store: Store, db: Path) -> None:
    clip_id = await store.add_clip(new_clip())
    voters = range(200, 230)
    tasks = [asyncio.create_task(store.set_rating(clip_id, v, 3, f"voter{v}")) for v in voters]
    # The store runs one write at a time: let ten finish, then cancel every task while the
    # others wait their turn (and one is usually mid-transaction).
    pending = set(tasks)
    while len(tasks) - len(pending) < 10:
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    outcomes = dict(zip(voters, await asyncio.gather(*tasks, return_exceptions=True),
                        strict=True))
    returned = {v for v, o in outcomes.items() if o is None}
    cancelled = {v for v, o in outcomes.items() if isinstance(o, asyncio.CancelledError)}
    assert returned | cancelled == set(voters)  # no other outcome
    assert len(returned) >= 10 and 0 < len(cancelled) < 30

    stored = dict(raw(db, "SELECT user_id, stars FROM ratings WHERE user_id BETWEEN 200 AND 229"))
    # Every rating whose call returned is stored.
    assert returned <= set(stored)
    # A task cancelled after its COMMIT was queued is stored although its caller saw the
    # cancellation. SQLite runs one write at a time, so at most one such; PostgreSQL runs votes
    # side by side (at most one per pooled connection).
    at_once = 1 if not is_pg(db) else 10
    assert set(stored) - returned <= cancelled and len(set(stored) - returned) <= at_once
    # Every stored rating is whole: its stars and its user, nothing of the others.
    assert set(stored.values()) <= {3}
    users = raw(db, "SELECT id, name FROM users WHERE id BETWEEN 200 AND 229")
    assert sorted(users) == [(v, f"voter{v}") for v in sorted(stored)]
    if not is_pg(db):
        assert raw(db, "PRAGMA foreign_key_check") == []
    # The store still works.
    assert await store.set_rating(clip_id, 999, 5, "after") is None
    clip = await store.get_clip(clip_id)
    assert clip is not None and clip.rating_count == len(stored) + 1


@sqlite_only
@pytest.mark.parametrize(("statement", "stored"), [
    ("BEGIN", False), ("INSERT INTO users", False), ("INSERT INTO ratings", False),
    ("COMMIT", True),
])
async def test_a_rating_cancelled_mid_transaction_is_stored_whole_or_not_at_all(
        store: Store, db: Path, monkeypatch: pytest.MonkeyPatch, statement: str,
        stored: bool) -> None:
    clip_id = await store.add_clip(new_clip())
    real_execute = aiosqlite.Connection.execute

    async def execute(self, sql, *args):  # type: ignore[no-untyped-def]
        # The cancellation lands while the statement is queued on the connection's thread,
        # which runs it anyway: a cancelled COMMIT still commits.
        if sql.lstrip().startswith(statement):
            asyncio.current_task().cancel()  # type: ignore[union-attr]
        return await real_execute(self, sql, *args)

    monkeypatch.setattr(aiosqlite.Connection, "execute", execute)
    rating = asyncio.create_task(store.set_rating(clip_id, 300, 4, "late"))
    with pytest.raises(asyncio.CancelledError):
        await rating
    assert rating.cancelled()
    monkeypatch.undo()
    expected = ([(300, 4)], [(300, "late")]) if stored else ([], [])
    assert (raw(db, "SELECT user_id, stars FROM ratings"),
            raw(db, "SELECT id, name FROM users WHERE id = 300")) == expected
    assert await store.set_rating(clip_id, 301, 5, "next") is None  # the store still works
    assert raw(db, "SELECT user_id FROM ratings WHERE user_id = 301") == [(301,)]


# ---------------------------------------------------------------------------------------------
# Jobs (schema v2)


@sqlite_only
async def test_v1_database_is_upgraded_to_jobs_keeping_its_data(db: Path) -> None:
    v1 = load_migrations()[:1]
    async with await Store.open(db, migrations=v1) as old:
        clip_id = insert_old_clip(db)
        await old.set_rating(clip_id, 2, 4, "bob")
    assert raw(db, "PRAGMA user_version") == [(1,)]
    async with await Store.open(db) as store:
        assert await store.schema_version() == LATEST
        clip = await store.get_clip(clip_id)
        assert clip is not None and (clip.rating_count, clip.rating_mean) == (1, 4.0)
        assert await store.jobs_to_notify() == []


async def test_job_lifecycle_is_recorded(store: Store, db: Path, clock: Clock) -> None:
    params = {"style": "jazz", "bars": 2, "meter": "4/4", "seed": 5}
    job_id = await store.add_job(user_id=7, user_name="gina", params=params, guild_id=3,
                                 channel_id=4)
    await store.set_job_message(job_id, 555)
    clock.advance(seconds=2)
    await store.start_job(job_id)
    clip_id = await store.add_clip(new_clip(user_id=7, user_name="gina"))
    clock.advance(seconds=3)
    await store.finish_job(job_id, "done", clip_id=clip_id)
    job = await store.get_job(job_id)
    assert job is not None
    assert (job.status, job.user_name, job.guild_id, job.channel_id, job.message_id) == (
        "done", "gina", 3, 4, 555)
    assert (job.params, job.clip_id, job.error, job.interrupted) == (params, clip_id, None, False)
    assert job.created_at == T0 and job.started_at == T0 + timedelta(seconds=2)
    assert job.finished_at == T0 + timedelta(seconds=5) and job.notified_at is None
    assert await store.get_job(job_id + 1) is None and await store.get_job(0) is None

    with pytest.raises(StoreError, match="a job finishes as done, failed or cancelled"):
        await store.finish_job(job_id, "running")
    with pytest.raises(StoreError, match=r"no job 99$"):
        await store.start_job(99)
    # A 'done' job must name its clip: the schema refuses anything else.
    other = await store.add_job(user_id=7, user_name="gina", params=params)
    with pytest.raises(StoreError, match=CHECK_FAILED):
        await store.finish_job(other, "done")
    assert raw(db, "SELECT status FROM jobs WHERE id = ?", (other,)) == [("queued",)]


async def test_open_jobs_are_interrupted_once_and_reported_until_notified(
        store: Store, clock: Clock) -> None:
    params = {"style": "folk", "bars": 1, "meter": "3/4", "seed": 1}
    queued = await store.add_job(user_id=1, user_name="alice", params=params, channel_id=9)
    running = await store.add_job(user_id=2, user_name="bob", params=params, channel_id=9)
    finished = await store.add_job(user_id=2, user_name="bob", params=params)
    await store.start_job(running)
    await store.finish_job(finished, "cancelled")
    clock.advance(minutes=1)

    interrupted = await store.interrupt_open_jobs()
    assert [(j.id, j.status, j.interrupted) for j in interrupted] == [
        (queued, "failed", True), (running, "failed", True)]
    assert interrupted[0].error == "interrupted: Cadenza restarted before this clip was finished"
    assert interrupted[0].finished_at == T0 + timedelta(minutes=1)
    # A second start finds nothing new to interrupt but still has both to report...
    assert await store.interrupt_open_jobs() == []
    assert [j.id for j in await store.jobs_to_notify()] == [queued, running]
    await store.mark_job_notified(queued)
    # ...until each member has been told.
    assert [j.id for j in await store.jobs_to_notify()] == [running]
    job = await store.get_job(queued)
    assert job is not None and job.notified_at == T0 + timedelta(minutes=1)
    cancelled = await store.get_job(finished)
    assert cancelled is not None and not cancelled.interrupted


# ---------------------------------------------------------------------------------------------
# Evaluation statistics


@pytest.mark.parametrize(("df", "expected"), [
    (1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (10, 2.2281389), (30, 2.0422725),
    (1000, 1.9623391),
])
def test_t_quantile_matches_published_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)


def test_mos_interval_by_hand() -> None:
    # votes 4, 5, 3, 2, 3: mean 3.4, sample variance 5.2 / 4 = 1.3
    mean, sd, ci = mos_interval(5, 17, 63)
    assert mean == pytest.approx(3.4) and sd == pytest.approx(1.3**0.5)
    assert ci == pytest.approx(2.7764451 * (1.3 / 5) ** 0.5)
    assert mos_interval(1, 4, 16) == (4.0, None, None)
    assert mos_interval(0, 0, 0) == (None, None, None)
    assert mos_interval(3, 12, 48) == (4.0, 0.0, 0.0)  # unanimous votes: no spread


async def test_stats_per_model_and_style_exclude_self_votes(store: Store, clock: Clock) -> None:
    await store.ensure_user(1, "alice")
    await store.ensure_user(2, "bob")
    ids = []
    for model, style, author in (("lstm", "jazz", 1), ("lstm", "blues", 2),
                                 ("gru", "jazz", 1), ("rnn", "folk", 2)):
        ids.append(await store.add_clip(new_clip(user_id=author, user_name=None, model=model,
                                                 style=style)))
    clock.advance(days=10)
    late = await store.add_clip(new_clip(user_id=2, user_name=None, model="gru", style="folk"))
    votes = [(0, 1, 5), (0, 10, 4), (0, 11, 5), (0, 12, 3), (1, 10, 2), (1, 11, 3),
             (2, 12, 5), (2, 2, 4), (2, 1, 1)]
    for index, voter, stars in votes:
        await store.set_rating(ids[index], voter, stars, f"voter{voter}")
    await store.set_rating(late, 10, 1, "voter10")

    by_model = {g.group: g for g in await store.stats("model")}
    lstm, gru, rnn = by_model["lstm"], by_model["gru"], by_model["rnn"]
    assert (lstm.clips, lstm.rated_clips, lstm.raters, lstm.votes) == (2, 2, 3, 5)
    assert lstm.mos == pytest.approx(3.4) and lstm.ci95 == pytest.approx(1.41571, abs=1e-5)
    # gru: clip 3 (5, 4; alice's own 1 left out) and the late clip (1)
    assert (gru.clips, gru.raters, gru.votes) == (2, 3, 3)
    assert gru.mos == pytest.approx(10 / 3)
    assert (rnn.clips, rnn.raters, rnn.votes, rnn.mos, rnn.ci95) == (1, 0, 0, None, None)

    by_style = {g.group: g for g in await store.stats("style")}
    assert (by_style["jazz"].votes, by_style["jazz"].raters) == (5, 4)
    assert by_style["jazz"].mos == pytest.approx(4.2)
    assert by_style["jazz"].ci95 == pytest.approx(2.7764451 * (0.7 / 5) ** 0.5, abs=1e-6)

    # Only clips created from T0 + 10 days: the late one.
    recent = await store.stats("model", since=T0 + timedelta(days=10))
    assert [(g.group, g.clips, g.votes, g.mos) for g in recent] == [("gru", 1, 1, 1.0)]
    with pytest.raises(StoreError, match="stats are by model or by style"):
        await store.stats("user_id; DROP TABLE clips")


async def test_a_folder_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"cannot open database {tmp_path}: it is a folder"):
        await Store.open(tmp_path)


def test_db_upgrade_on_a_folder_is_one_line_without_thread_tracebacks(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, CADENZA_DB=str(tmp_path))
    res = subprocess.run([sys.executable, "-m", "cadenza", "db", "upgrade"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 2
    assert res.stderr == (f"error: cannot open database {tmp_path}: it is a folder (give a "
                          f"file, e.g. {tmp_path / 'cadenza.db'})\n")
