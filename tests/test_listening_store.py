"""The listening tables through the store, on SQLite and PostgreSQL alike: a server's play
queue in order, the player, a party's clips and its ranking (the maker's own votes left out)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_store import Clock, new_clip

from cadenza.store import Store, StoreError
from cadenza.store_rows import NewPair

GUILD = 100


@pytest.fixture
async def store(store_db: Path | str):
    async with await Store.open(store_db, clock=Clock()) as opened:
        yield opened


async def test_a_queue_plays_in_order_and_stops(store: Store) -> None:
    clips = [await store.add_clip(new_clip(1, "alice", guild_id=GUILD, channel_id=5, seed=s))
             for s in (1, 2, 3)]
    other = await store.add_clip(new_clip(2, "bob", guild_id=GUILD, channel_id=6))
    pair_a = await store.add_clip(new_clip(2, "bob", guild_id=GUILD, channel_id=6, model="gru"))
    await store.add_pair(NewPair(clip_a=other, clip_b=pair_a, model_a="transformer-small",
                                 model_b="gru", style="jazz", user_id=2, user_name="bob"))
    # arena clips are never "the newest": playing one would name a blind clip
    newest = await store.newest_clip(GUILD, None)
    assert newest is not None and newest.id == clips[-1]
    assert (await store.newest_clip(GUILD, 5)).id == clips[-1]  # type: ignore[union-attr]
    assert await store.newest_clip(GUILD, 6) is None
    for clip_id in clips:
        await store.enqueue_clip(GUILD, clip_id, 2, "bob")
    assert await store.queued_guilds() == [GUILD]
    first = await store.start_next(GUILD)
    assert first is not None and (first.clip_id, first.status, first.number) == (
        clips[0], "playing", 1)
    # a restart finds the one left playing first
    assert (await store.start_next(GUILD)).id == first.id  # type: ignore[union-attr]
    await store.finish_entry(first.id, "played")
    with pytest.raises(StoreError, match="played or skipped"):
        await store.finish_entry(first.id, "lost")
    assert [e.clip_id for e in await store.open_queue(GUILD)] == clips[1:]
    assert await store.stop_queue(GUILD) == 2
    assert await store.open_queue(GUILD) == [] and await store.queued_guilds() == []
    await store.set_player(GUILD, voice_channel_id=7, text_channel_id=5, message_id=70)
    await store.set_player(GUILD, voice_channel_id=None, text_channel_id=5, message_id=71)
    player = await store.get_player(GUILD)
    assert player is not None and (player.voice_channel_id, player.message_id) == (None, 71)


async def test_a_party_ranks_the_clips_that_played(store: Store) -> None:
    party = await store.add_party(guild_id=GUILD, channel_id=5, voice_channel_id=7, user_id=1,
                                  user_name="alice", kind="compose", style="jazz", bars=2,
                                  count=3)
    job = await store.add_job(user_id=1, user_name="alice", params={"x": 1}, party_id=party.id)
    assert (await store.get_party(party.id)).job_id == job  # type: ignore[union-attr]
    made = []
    for seed in (1, 2, 3):
        clip_id = await store.add_clip(new_clip(1, "alice", guild_id=GUILD, seed=seed))
        made.append(clip_id)
        await store.enqueue_clip(GUILD, clip_id, 1, "alice", party_id=party.id)
    # the first two played, the third was dropped by a stop before it began
    for _ in range(2):
        entry = await store.start_next(GUILD)
        await store.finish_entry(entry.id, "played")  # type: ignore[union-attr]
    await store.stop_queue(GUILD)
    for voter, stars in ((2, 3), (3, 4)):
        await store.set_rating(made[0], voter, stars, f"v{voter}")
    await store.set_rating(made[1], 2, 5, "v2")
    await store.set_rating(made[1], 1, 1, "alice")  # her own: not counted
    await store.set_rating(made[2], 2, 5, "v2")  # never played: not ranked
    ranking = await store.party_ranking(party.id)
    assert [(r.rank, r.clip_id, r.position, r.votes, r.mean) for r in ranking] == [
        (1, made[1], 2, 1, 5.0), (2, made[0], 1, 2, 3.5)]
    assert [e.clip_id for e in await store.party_entries(party.id)] == made
    stopped = await store.get_party(party.id)
    assert stopped is not None and stopped.status == "stopped" and stopped.composed == 3
    assert await store.open_parties(GUILD) == [] and await store.open_parties() == []
    with pytest.raises(StoreError, match="cannot be set"):
        await store.update_party(party.id, user_id=5)
