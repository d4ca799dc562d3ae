"""Arena storage on real SQLite files: pairs, one vote per member per pair (changeable until
revealed), refusals that keep stored data, counts for fair pairing, the export, and the v3 -> v4
upgrade. ``literal_votes`` is the vote set the leaderboard tests reuse."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mido
import pytest
from test_store import insert_old_clip

from cadenza.store import Store, StoreError, load_migrations
from cadenza.store_rows import ArenaVote, NewClip, NewPair, PairCount
from tests.store_backends import CHECK_FAILED, UNIQUE_FAILED, raw, sqlite_only

T0 = datetime(2024, 7, 1, 18, 0, tzinfo=UTC)


def midi_bytes() -> bytes:
    track = mido.MidiTrack([mido.Message("note_on", note=67, velocity=80, time=0),
                            mido.Message("note_off", note=67, velocity=0, time=480)])
    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


async def add_clip(store: Store, model: str, style: str = "jazz", user_id: int = 1) -> int:
    return await store.add_clip(NewClip(
        style=style, bars=2, tempo=132.0, key="F", meter="4/4", temperature=1.0, seed=77,
        model=model, midi=midi_bytes(), duration_s=4.0, user_id=user_id, user_name="alice"))


async def add_pair(store: Store, model_a: str, model_b: str, style: str = "jazz",
                   user_id: int = 1) -> int:
    """Two clips of one prompt and the pair made of them."""
    a = await add_clip(store, model_a, style, user_id)
    b = await add_clip(store, model_b, style, user_id)
    return await store.add_pair(NewPair(clip_a=a, clip_b=b, model_a=model_a, model_b=model_b,
                                        style=style, user_id=user_id, user_name="alice",
                                        guild_id=5, channel_id=6))


# (pair: models A, B and style) and (pair, member, choice): the literal vote set.
PAIRS = [("lstm", "gru", "jazz"), ("gru", "vae", "jazz"), ("vae", "lstm", "jazz"),
         ("lstm", "vae", "folk"), ("rnn", "lstm", "blues")]
VOTES = [
    (1, 10, "a"), (1, 11, "a"), (1, 12, "tie"), (1, 13, "bad"),
    (2, 10, "a"), (2, 11, "b"), (2, 12, "bad"),
    (3, 10, "b"), (3, 11, "b"), (3, 12, "a"),
    (4, 10, "a"), (4, 14, "tie"),
    (5, 13, "bad"),
    # member 15 votes three times, every time for lstm: the one-sided rater
    (1, 15, "a"), (3, 15, "b"), (4, 15, "a"),
]


async def literal_votes(store: Store) -> None:
    for model_a, model_b, style in PAIRS:
        await add_pair(store, model_a, model_b, style)
    for pair_id, user_id, choice in VOTES:
        await store.set_arena_vote(pair_id, user_id, choice, f"user{user_id}")


@pytest.fixture
async def store(store_db: Path | str):
    now = [T0]

    def clock() -> datetime:
        now[0] += timedelta(seconds=1)
        return now[0]

    async with await Store.open(store_db, clock=clock) as opened:
        yield opened


async def test_one_vote_per_member_per_pair_changeable_until_revealed(store: Store) -> None:
    pair_id = await add_pair(store, "lstm", "gru")
    first = await store.set_arena_vote(pair_id, 2, "a", "bob")
    assert (first.previous, first.tally) == (None, {"a": 1, "b": 0, "tie": 0, "bad": 0})
    other = await store.set_arena_vote(pair_id, 3, "bad", "carol")
    assert other.tally == {"a": 1, "b": 0, "tie": 0, "bad": 1}
    changed = await store.set_arena_vote(pair_id, 2, "b", "bob")
    assert (changed.previous, changed.tally) == ("a", {"a": 0, "b": 1, "tie": 0, "bad": 1})
    assert raw(store.path, "SELECT pair_id, user_id, choice FROM arena_votes "
                           "ORDER BY user_id") == [(1, 2, "b"), (1, 3, "bad")]
    created, updated = raw(store.path, "SELECT created_at, updated_at FROM arena_votes "
                                       "WHERE user_id = 2")[0]
    assert created < updated  # the first vote's time stays; the change is dated

    # Nobody who has not voted is shown the models, and nothing is marked for them.
    assert await store.reveal_arena(pair_id, 4) is None
    seen = await store.reveal_arena(pair_id, 2)
    assert seen == ArenaVote(pair_id=1, user_id=2, choice="b", model_a="lstm", model_b="gru",
                             style="jazz", revealed=True)
    with pytest.raises(StoreError, match=r"^you have seen which model made A and B on arena "
                                         r"#1, so your vote there is final$"):
        await store.set_arena_vote(pair_id, 2, "a", "bob")
    assert (await store.set_arena_vote(pair_id, 2, "b", "bob")).previous == "b"  # no change
    assert raw(store.path, "SELECT user_id, choice, revealed_at IS NOT NULL FROM arena_votes "
                           "ORDER BY user_id") == [(2, "b", 1), (3, "bad", 0)]


async def test_refusals_store_nothing(store: Store) -> None:
    pair_id = await add_pair(store, "lstm", "gru")
    with pytest.raises(StoreError, match=r"^no arena #99$"):
        await store.set_arena_vote(99, 2, "a", "bob")
    with pytest.raises(StoreError, match=r"^an arena vote is one of a, b, tie, bad \(got 'c'\)$"):
        await store.set_arena_vote(pair_id, 2, "c", "bob")
    with pytest.raises(StoreError, match=r"^no arena #0$"):
        await store.set_arena_vote(0, 2, "a", "bob")
    assert raw(store.path, "SELECT COUNT(*) FROM arena_votes") == [(0,)]
    assert raw(store.path, "SELECT COUNT(*) FROM users WHERE id = 2") == [(0,)]

    third = await add_clip(store, "vae")
    with pytest.raises(StoreError, match=r"^arena pair not stored: clip #3 is by vae, not "
                                         r"lstm$"):
        await store.add_pair(NewPair(clip_a=third, clip_b=2, model_a="lstm", model_b="gru",
                                     style="jazz", user_id=9, user_name="ivan"))
    with pytest.raises(StoreError, match=r"^arena pair not stored: no clip #42$"):
        await store.add_pair(NewPair(clip_a=3, clip_b=42, model_a="vae", model_b="gru",
                                     style="jazz", user_id=9, user_name="ivan"))
    fourth = await add_clip(store, "lstm")
    with pytest.raises(StoreError, match=CHECK_FAILED):  # two clips of one model
        await store.add_pair(NewPair(clip_a=fourth, clip_b=1, model_a="lstm", model_b="lstm",
                                     style="jazz", user_id=9, user_name="ivan"))
    with pytest.raises(StoreError, match=UNIQUE_FAILED):  # clip 1 is in pair 1
        await store.add_pair(NewPair(clip_a=1, clip_b=third, model_a="lstm", model_b="vae",
                                     style="jazz", user_id=9, user_name="ivan"))
    assert raw(store.path, "SELECT id, clip_a, clip_b FROM arena_pairs") == [(1, 1, 2)]
    assert raw(store.path, "SELECT COUNT(*) FROM users WHERE id = 9") == [(0,)]


@sqlite_only
async def test_pairs_and_votes_cannot_be_deleted_from_under_each_other(store: Store) -> None:
    pair_id = await add_pair(store, "lstm", "gru")
    await store.set_arena_vote(pair_id, 2, "tie", "bob")
    conn = sqlite3.connect(store.path)
    conn.execute("PRAGMA foreign_keys = ON")
    for sql in ("DELETE FROM clips WHERE id = 1", "DELETE FROM arena_pairs WHERE id = 1",
                "DELETE FROM users WHERE id = 2"):
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute(sql)
    conn.close()
    assert raw(store.path, "SELECT COUNT(*) FROM arena_votes") == [(1,)]


async def test_pair_rows_message_and_counts_for_fair_pairing(store: Store) -> None:
    await literal_votes(store)
    pair = await store.get_pair(2)
    assert pair is not None
    assert (pair.clip_a, pair.clip_b, pair.model_a, pair.model_b, pair.style, pair.user_name) == (
        3, 4, "gru", "vae", "jazz", "alice")
    assert pair.message_id is None and await store.get_pair(77) is None
    await store.set_pair_message(2, guild_id=5, channel_id=6, message_id=900)
    assert (await store.get_pair(2)).message_id == 900  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="no arena #77"):
        await store.set_pair_message(77, guild_id=5, channel_id=6, message_id=1)

    # Models in name order, however they were shown; every vote counts, 'both bad' too.
    assert await store.arena_pair_counts(style="jazz") == [
        PairCount(first="gru", second="lstm", pairs=1, votes=5),
        PairCount(first="gru", second="vae", pairs=1, votes=3),
        PairCount(first="lstm", second="vae", pairs=1, votes=4),
    ]
    assert [(c.first, c.second, c.pairs) for c in await store.arena_pair_counts()] == [
        ("gru", "lstm", 1), ("gru", "vae", 1), ("lstm", "rnn", 1), ("lstm", "vae", 2)]
    folk = await store.arena_votes(style="folk")
    assert [(v.pair_id, v.user_id, v.choice, v.model_a, v.model_b) for v in folk] == [
        (4, 10, "a", "lstm", "vae"), (4, 14, "tie", "lstm", "vae"), (4, 15, "a", "lstm", "vae")]
    assert len(await store.arena_votes()) == len(VOTES)


async def test_export_has_every_vote_with_its_pair_and_prompt(store: Store) -> None:
    await literal_votes(store)
    rows = await store.export_arena()
    assert len(rows) == len(VOTES)
    assert [(r["pair_id"], r["user_id"], r["choice"], r["winner"]) for r in rows[:5]] == [
        (1, 10, "a", "lstm"), (1, 11, "a", "lstm"), (1, 12, "tie", None), (1, 13, "bad", None),
        (1, 15, "a", "lstm")]
    b_vote = next(r for r in rows if (r["pair_id"], r["user_id"]) == (2, 11))
    assert b_vote["winner"] == "vae" and b_vote["user_name"] == "user11"
    assert (b_vote["model_a"], b_vote["model_b"], b_vote["clip_a"], b_vote["clip_b"]) == (
        "gru", "vae", 3, 4)
    assert (b_vote["style"], b_vote["bars"], b_vote["tempo"], b_vote["key"], b_vote["meter"],
            b_vote["seed"], b_vote["requested_by"]) == ("jazz", 2, 132.0, "F", "4/4", 77, 1)
    assert b_vote["voted_at"].startswith("2024-07-01T18:00:") and b_vote["revealed_at"] is None


async def test_v3_database_gains_the_arena_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "cadenza.db"
    async with await Store.open(db, migrations=load_migrations()[:3]) as old:
        clip_id = insert_old_clip(db, model="lstm")
        await old.set_rating(clip_id, 2, 4, "bob")
    assert raw(db, "PRAGMA user_version") == [(3,)]
    async with await Store.open(db) as store:
        assert await store.schema_version() == store.latest_version
        other = await add_clip(store, "gru")
        pair_id = await store.add_pair(NewPair(clip_a=clip_id, clip_b=other, model_a="lstm",
                                               model_b="gru", style="jazz", user_id=1,
                                               user_name="alice"))
        assert (await store.set_arena_vote(pair_id, 2, "a", "bob")).previous is None
        clip = await store.get_clip(clip_id)
    assert clip is not None and clip.rating_count == 1


async def test_arena_clips_stay_blind_until_revealed_and_off_the_chart(store: Store) -> None:
    pair = await add_pair(store, "lstm", "gan")
    plain = await add_clip(store, "gru")
    a, b = pair * 2 - 1, pair * 2  # add_pair stores A then B before the plain clip
    # alice (1) asked for the pair, bob (2) and carol (3) rate everything
    for clip in (a, b, plain):
        await store.set_rating(clip, 2, 5, "bob")
        await store.set_rating(clip, 3, 4, "carol")
    assert [e.clip_id for e in await store.top()] == [plain]
    assert await store.hidden_arena_clip(a, 2) == (pair, "A")
    assert await store.hidden_arena_clip(b, 2) == (pair, "B")
    assert await store.hidden_arena_clip(plain, 2) is None
    await store.set_arena_vote(pair, 2, "b", "bob")
    assert await store.hidden_arena_clip(b, 2) == (pair, "B")  # voted, vote still open
    await store.reveal_arena(pair, 2)
    assert (await store.hidden_arena_clip(a, 2), await store.hidden_arena_clip(b, 2)) == (
        None, None)
    assert await store.hidden_arena_clip(a, 3) == (pair, "A")  # carol has not revealed
    assert await store.hidden_arena_clip(10**30, 2) is None  # no such clip: nothing hidden
    # the ratings themselves are kept (exports carry them), but the model statistics leave
    # the arena's clips out (one vote moving a model's row would name it); the style's count
    assert {g.group: (g.clips, g.votes) for g in await store.stats("model")} == {"gru": (1, 2)}
    assert {g.group: (g.clips, g.votes) for g in await store.stats("style")} == {"jazz": (3, 6)}
    assert len([r for r in await store.export_ratings() if r["clip_id"] in (a, b)]) == 4
