"""Clips stay in the server they were made in: each server numbers its own from #1, another
server's clips cannot be shown, rated, continued, varied, rerolled or shared by any number, and
charts count a server's own clips. An owner may publish a clip: a random 12-digit number then
names it everywhere, until they withdraw it. The v5 migration keeps every clip, rating and
posted button of an older database."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from discord_double import DiscordDouble
from test_discord_bot import SLOW, cadenza, is_clip
from test_store import insert_old_clip, new_clip

from cadenza.app import Cadenza
from cadenza.errors import UserError
from cadenza.members import UserRef, Where
from cadenza.service import ComposeRequest
from cadenza.store import Store, load_migrations
from cadenza.store_rows import PUBLIC_ID_MAX, PUBLIC_ID_MIN

ALICE, BEA, CAL = UserRef(1, "alice"), UserRef(2, "bea"), UserRef(3, "cal")
A, B = Where(guild_id=100, channel_id=101), Where(guild_id=200, channel_id=201)
CONSOLE = Where()


async def make(app: Cadenza, user: UserRef, where: Where, seed: int):  # type: ignore[no-untyped-def]
    return await app.compose(ComposeRequest(style="folk", bars=1, seed=seed), user, where)


async def test_each_server_numbers_its_own_clips_and_sees_no_others(app: Cadenza) -> None:
    a1, a2 = await make(app, ALICE, A, 1), await make(app, ALICE, A, 2)
    b1 = await make(app, BEA, B, 3)
    c1 = await make(app, ALICE, CONSOLE, 4)
    assert (a1.number, a2.number, b1.number, c1.number) == (1, 2, 1, 1)
    assert len({a1.clip_id, a2.clip_id, b1.clip_id, c1.clip_id}) == 4
    assert b1.summary().startswith("clip #1: folk")
    # "#1" means each server's own first clip
    assert (await app.library.clip(1, where=A)).clip_id == a1.clip_id
    assert (await app.library.clip(1, where=B)).clip_id == b1.clip_id
    assert (await app.library.clip(1, where=CONSOLE)).clip_id == c1.clip_id
    # and A's second clip is out of B's reach, whatever B tries
    attempts = [
        app.library.clip(2, where=B), app.rate(2, BEA, 5, B),
        app.seeds.plan_continue(2, 4, viewer=BEA, where=B),
        app.seeds.plan_variation(2, viewer=BEA, where=B),
        app.seeds.plan_reroll(2, viewer=BEA, where=B),
        app.seeds.share_seed("stolen", BEA, B, clip_id=2),
    ]
    for attempt in attempts:
        with pytest.raises(UserError, match=r"^no clip #2$"):
            await attempt
    # no number of A's own (internal) ids reaches it either
    for ref in (a2.clip_id, a1.clip_id + 100, 2**53):
        with pytest.raises(UserError, match="no clip #"):
            await app.library.clip(ref, where=B)
    # charts and statistics count the server's own clips
    await app.rate(1, BEA, 4, A)
    await app.rate(1, ALICE, 5, B)
    assert [e.clip_id for e in await app.top(where=A)] == [a1.clip_id]
    assert [(e.clip_id, e.number) for e in await app.top(where=B)] == [(b1.clip_id, 1)]
    assert [g.clips for g in (await app.stats(where=B))["style"]] == [1]
    assert [g.clips for g in (await app.stats(where=A))["style"]] == [2]
    assert [g.clips for g in (await app.stats())["style"]] == [4]  # tools see everything


async def test_a_published_clip_is_reachable_everywhere_until_withdrawn(app: Cadenza) -> None:
    mine = await make(app, ALICE, A, 1)
    await make(app, BEA, B, 2)
    with pytest.raises(UserError, match="only alice, who made clip #1, can publish it"):
        await app.publish(1, CAL, A)
    public = await app.publish(1, ALICE, A)
    assert public is not None and PUBLIC_ID_MIN <= public <= PUBLIC_ID_MAX
    assert await app.publish(1, ALICE, A) == public  # publishing twice keeps the number
    # from B, by its public number: shown, rated, continued (credited by that number)
    shown = await app.library.clip(public, where=B)
    assert shown.clip_id == mine.clip_id and shown.number == public
    assert shown.summary().startswith(f"clip #{public}: folk")
    assert (await app.rate(public, BEA, 4, B)).clip_id == public
    resolved, origin = await app.seeds.plan_continue(public, 1, seed=5, viewer=BEA, where=B)
    more = await app.compose(resolved, BEA, B, origin=origin)
    assert more.number == 2  # B's second clip
    assert more.built_on == f"continues clip #{public} (folk) by alice · credits: alice"
    # the owner's own server still calls it #1, and sees B's continuation without a number
    lineage = await app.library.lineage(more.clip_id, A.scope)
    assert lineage.text() == "continues clip #1 (folk) by alice · credits: alice"
    assert await app.publish(1, ALICE, A, public=False) is None
    with pytest.raises(UserError, match=f"no clip #{public}"):
        await app.library.clip(public, where=B)
    # withdrawn, B's clip still credits it, as a clip of another server
    assert (await app.library.lineage(more.clip_id, B.scope)).text() == (
        "continues a clip by alice in another server · credits: alice")
    # the vote B's member cast while it was public stays
    assert (await app.store.get_clip(mine.clip_id)).rating_count == 1  # type: ignore[union-attr]


async def test_the_v5_migration_keeps_every_clip_vote_and_button(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    async with await Store.open(db, migrations=load_migrations()[:4]) as old:
        ids = [insert_old_clip(db, guild_id=g) for g in (100, 200, 100, None)]
        for clip_id in ids:
            await old.set_rating(clip_id, 9, 3, "voter")
    before = sqlite3.connect(db).execute("SELECT * FROM ratings ORDER BY clip_id").fetchall()
    async with await Store.open(db) as store:
        assert await store.schema_version() == store.latest_version
        # every clip keeps its id as its number in its own server: old buttons (rate:3:5 in
        # server 100) and "#3" in old messages still name the same clip there
        for clip_id, scope in zip(ids, (100, 200, 100, 0), strict=True):
            found = await store.find_clip(scope, clip_id)
            assert found is not None and (found.id, found.number, found.scope) == (
                clip_id, clip_id, scope)
        assert await store.find_clip(200, ids[0]) is None  # but not in another server
        # the next clip of server 100 follows its highest number; server 300 starts at 1
        for guild, number in ((100, ids[2] + 1), (300, 1)):
            made = await store.add_clip(new_clip(guild_id=guild))
            found = await store.find_clip(guild, number)
            assert found is not None and found.id == made
    after = sqlite3.connect(db).execute("SELECT * FROM ratings ORDER BY clip_id").fetchall()
    assert after == before and len(after) == 4


@pytest.fixture
async def api():
    async with DiscordDouble() as double:
        yield double


async def test_two_servers_on_discord_see_only_their_own_clips(api, tmp_path,
                                                               tiny_registry) -> None:
    other = api.add_guild("Other Guild")
    bea = api.add_member(name="bea", guild=other)
    async with cadenza(api, tmp_path, tiny_registry,
                       owner_ids=frozenset({api.guild.owner.id})) as h:
        synced = await (await api.slash("sync", {"scope": "global"},
                                        user=api.guild.owner)).wait_original()
        assert "command(s) everywhere" in synced.content
        first = await (await api.slash("compose", {"bars": 1, "seed": 1})).wait_original(
            is_clip, timeout=SLOW)
        second = await (await api.slash("compose", {"bars": 1, "seed": 2})).wait_original(
            is_clip, timeout=SLOW)
        theirs = await (await api.slash("compose", {"bars": 1, "seed": 3}, user=bea,
                                        channel_id=other.channel_id)).wait_original(
            is_clip, timeout=SLOW)

        async def in_b(name: str, options: dict) -> str:  # type: ignore[type-arg]
            inter = await api.slash(name, options, user=bea, channel_id=other.channel_id)
            answer = await inter.wait_original(lambda m: bool(m.content or m.embeds),
                                               timeout=SLOW)
            return answer.content or answer.embeds[0].get("title", "")

        refused = [await in_b("clip", {"clip": 2}), await in_b("rate", {"clip": 2, "stars": 5}),
                   await in_b("continue", {"clip": 2}), await in_b("vary", {"clip": 2})]
        chart_b = await (await api.slash("top", user=bea, channel_id=other.channel_id)
                         ).wait_original()
        published = await (await api.slash("publish", {"clip": 2})).wait_original(
            lambda m: "public" in m.content, timeout=10)
        public = int(re.search(r"/clip (\d+)", published.content)[1])  # type: ignore[index]
        shown = await (await api.slash("clip", {"clip": public}, user=bea,
                                       channel_id=other.channel_id)).wait_original(
            is_clip, timeout=SLOW)
        vote = await api.click(shown, f"rate:{public}:4", user=bea)
        voted = await vote.wait_original(lambda m: "rated" in m.content, timeout=10)
    assert first.embeds[0]["title"].startswith("Clip #1 —")
    assert second.embeds[0]["title"].startswith("Clip #2 —")
    assert theirs.embeds[0]["title"].startswith("Clip #1 —")  # B's own first clip
    assert theirs.custom_ids[0] == "rate:1:1"
    assert refused == ["No clip #2"] * 4
    assert "No rated clips yet" in chart_b.embeds[0]["description"]
    assert shown.embeds[0]["title"].startswith(f"Clip #{public} —")
    assert shown.custom_ids[0] == f"rate:{public}:1"
    assert voted.content.startswith(f"You rated clip #{public} ★★★★☆")
    conn = sqlite3.connect(h.db)
    assert conn.execute("SELECT clip_id, user_id, stars FROM ratings").fetchall() == [
        (2, bea.id, 4)]  # A's second clip, and nothing from the refused attempts
    assert conn.execute("SELECT id, scope, number FROM clips ORDER BY id").fetchall() == [
        (1, api.guild_id, 1), (2, api.guild_id, 2), (3, other.id, 1)]
