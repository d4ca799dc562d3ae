"""Seeds and lineage in the store (real SQLite files and PostgreSQL databases): names,
visibility, paging and search, soft deletion, the lineage walks on a literal history, and that
nothing half-made is ever stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_store import Clock, insert_old_clip, new_clip, raw

from cadenza.origin import lineage_of
from cadenza.seeds import SeedTree
from cadenza.store import Store, StoreError, load_migrations
from cadenza.store_rows import NewSeed, Parent

GUILD, OTHER_GUILD = 10, 11
ALICE, BOB, CAROL, DAVE = (1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")
MOTIF = ('{"notes":[[0,12,60,80]],"chords":[[0,0,"maj"]],"meter":[4,4],"key":[0,"major"],'
         '"tempo":120.0,"bars":1}')


def new_seed(name: str, user: tuple[int, str] = ALICE, *, guild: int | None = GUILD,
             public: bool = True, parents: tuple[Parent, ...] = ()) -> NewSeed:
    return NewSeed(name=name, user_id=user[0], user_name=user[1], guild_id=guild, public=public,
                   source_kind="clip" if parents else "notes", source_ref="C4/4",
                   motif_json=MOTIF, parents=parents)


@pytest.fixture
async def store(store_db: Path | str):
    async with await Store.open(store_db, clock=Clock()) as opened:
        yield opened


def counts(db: Path) -> dict[str, int]:
    return {t: raw(db, f"SELECT COUNT(*) FROM {t}")[0][0]
            for t in ("users", "clips", "seeds", "lineage", "jobs")}


# ---------------------------------------------------------------------------------------------
# Names, visibility, lists


async def test_names_are_unique_per_guild_ignoring_case_and_spaces(store: Store) -> None:
    first = await store.add_seed(new_seed("Blue  Riff"))
    for clash in ("blue riff", "BLUE RIFF", " Blue Riff "):
        with pytest.raises(StoreError, match="already a seed named “Blue Riff” here \\(by alice"):
            await store.add_seed(new_seed(clash, BOB))
    # Another guild, and the console (no guild), have their own names.
    other = await store.add_seed(new_seed("blue riff", BOB, guild=OTHER_GUILD))
    console = await store.add_seed(new_seed("Blue Riff", BOB, guild=None))
    with pytest.raises(StoreError, match="already a seed named"):
        await store.add_seed(new_seed("blue riff", CAROL, guild=None))
    assert len({first, other, console}) == 3
    found = await store.find_seed(GUILD, "BLUE riff")
    assert found is not None and found.id == first and found.name == "Blue Riff"
    assert (await store.find_seed(GUILD, "nothing")) is None
    # Unicode case folding, not just ASCII: "STRASSE" and "straße" are one name.
    await store.add_seed(new_seed("straße", CAROL))
    with pytest.raises(StoreError, match="already a seed named “straße”"):
        await store.add_seed(new_seed("STRASSE", DAVE))


async def test_lists_show_own_and_public_seeds_paged_and_searchable(store: Store) -> None:
    await store.ensure_user(7, "Ärger")
    for name, user, public in (("alpha", ALICE, True), ("bravo", BOB, False),
                               ("charlie", BOB, True), ("delta", CAROL, True),
                               ("echo", (7, "Ärger"), True), ("foxtrot", ALICE, False)):
        await store.add_seed(new_seed(name, user, public=public))
    await store.add_seed(new_seed("golf", ALICE, guild=OTHER_GUILD))

    alice_sees = await store.list_seeds(GUILD, ALICE[0])
    assert [s.name for s in alice_sees.seeds] == ["alpha", "charlie", "delta", "echo", "foxtrot"]
    assert (alice_sees.total, alice_sees.pages) == (5, 1)
    bob_sees = await store.list_seeds(GUILD, BOB[0], per_page=2, page=2)
    assert [s.name for s in bob_sees.seeds] == ["charlie", "delta"]
    assert (bob_sees.total, bob_sees.pages, bob_sees.page) == (5, 3, 2)
    # Search inside names and owners' names, case-insensitively (Unicode too).
    assert [s.name for s in (await store.list_seeds(GUILD, 2, query="BOB")).seeds] == [
        "bravo", "charlie"]
    assert [s.name for s in (await store.list_seeds(GUILD, 2, query="ärg")).seeds] == ["echo"]
    assert [s.name for s in (await store.list_seeds(GUILD, 2, query="LT")).seeds] == ["delta"]
    assert (await store.list_seeds(GUILD, 2, query="zzz")).total == 0
    # Autocomplete: names starting with the typed text first, then names containing it.
    assert await store.seed_names(GUILD, ALICE[0], "a") == ["alpha", "charlie", "delta"]
    assert await store.seed_names(GUILD, BOB[0], "") == ["alpha", "bravo", "charlie", "delta",
                                                         "echo"]
    with pytest.raises(StoreError, match="positive"):
        await store.list_seeds(GUILD, 1, page=0)


async def test_deleting_keeps_the_row_and_its_lineage_and_frees_the_name(store: Store,
                                                                          tmp_path: Path) -> None:
    seed_id = await store.add_seed(new_seed("riff"))
    clip_id = await store.add_clip(new_clip(*BOB, parents=(Parent("seed", seed_id,
                                                                  "continues"),)))
    await store.delete_seed(seed_id, by_user_id=DAVE[0], by_user_name=DAVE[1])
    with pytest.raises(StoreError, match="already deleted"):
        await store.delete_seed(seed_id, by_user_id=DAVE[0], by_user_name=DAVE[1])
    gone = await store.get_seed(seed_id)
    assert gone is not None and gone.deleted and gone.deleted_by == DAVE[0]
    assert gone.motif_json == MOTIF
    assert await store.find_seed(GUILD, "riff") is None
    assert (await store.list_seeds(GUILD, ALICE[0])).total == 0
    again = await store.add_seed(new_seed("Riff", CAROL))  # the name is free again
    assert again != seed_id
    # The clip still credits the deleted seed and its owner.
    [link] = await store.ancestors("clip", clip_id)
    assert (link.parent.id, link.parent.label, link.parent.user_name, link.parent.deleted) == (
        seed_id, "riff", "alice", True)
    assert counts(store.path)["seeds"] == 2


# ---------------------------------------------------------------------------------------------
# Lineage


async def history(store: Store) -> dict[str, int]:
    """riff (alice) <- #1 bob continues <- #2 carol continues <- #3 dave varies;
    hook (carol) cut from #2; #4 bob blends riff -> hook; #5 alice rerolls #1 (keeping riff);
    #6 dave, built on nothing."""
    ids: dict[str, int] = {}
    ids["riff"] = await store.add_seed(new_seed("riff"))
    ids["c1"] = await store.add_clip(new_clip(*BOB, parents=(Parent("seed", ids["riff"],
                                                                    "continues"),)))
    ids["c2"] = await store.add_clip(new_clip(*CAROL, parents=(Parent("clip", ids["c1"],
                                                                      "continues"),)))
    ids["c3"] = await store.add_clip(new_clip(*DAVE, parents=(Parent("clip", ids["c2"],
                                                                     "varies"),)))
    ids["hook"] = await store.add_seed(new_seed("hook", CAROL, parents=(
        Parent("clip", ids["c2"], "shares"),)))
    ids["c4"] = await store.add_clip(new_clip(*BOB, parents=(
        Parent("seed", ids["riff"], "blends", "a"), Parent("seed", ids["hook"], "blends", "b"))))
    ids["c5"] = await store.add_clip(new_clip(*ALICE, parents=(
        Parent("seed", ids["riff"], "continues"), Parent("clip", ids["c1"], "rerolls"))))
    ids["c6"] = await store.add_clip(new_clip(*DAVE))
    return ids


async def test_ancestors_walk_up_to_every_member_to_credit(store: Store) -> None:
    ids = await history(store)
    up = await store.ancestors("clip", ids["c3"])
    assert [(link.child.id, link.relation, link.parent.kind, link.parent.id, link.depth)
            for link in up] == [(ids["c3"], "varies", "clip", ids["c2"], 0),
                                (ids["c2"], "continues", "clip", ids["c1"], 1),
                                (ids["c1"], "continues", "seed", ids["riff"], 2)]
    lineage = lineage_of(up)
    assert lineage.credits == ("carol", "bob", "alice")
    assert lineage.text() == "a variation of clip #2 (jazz) by carol · credits: carol, bob, alice"

    blend = lineage_of(await store.ancestors("clip", ids["c4"]))
    assert blend.phrases() == ['blends seed “riff” by alice → seed “hook” by carol']
    assert blend.credits == ("alice", "carol", "bob")
    reroll = lineage_of(await store.ancestors("clip", ids["c5"]))
    assert reroll.phrases() == ["continues seed “riff” by alice",
                                "a reroll of clip #1 (jazz) by bob"]
    assert reroll.credits == ("alice", "bob")
    seed_up = lineage_of(await store.ancestors("seed", ids["hook"]))
    assert seed_up.phrases() == ["cut from clip #2 (jazz) by carol"]
    assert await store.ancestors("clip", ids["c6"]) == []
    assert await store.ancestors("clip", 999) == []
    with pytest.raises(StoreError, match="not 'job'"):
        await store.ancestors("job", 1)


async def test_descendants_tree_of_a_seed(store: Store) -> None:
    ids = await history(store)
    links = await store.descendants("seed", ids["riff"])
    children = {(link.child.kind, link.child.id) for link in links}
    assert children == {("clip", ids[c]) for c in ("c1", "c2", "c3", "c4", "c5")} | {
        ("seed", ids["hook"])}
    assert ("clip", ids["c6"]) not in children
    riff = await store.get_seed(ids["riff"])
    assert riff is not None
    assert SeedTree(riff, links).lines() == [
        "🌱 seed “riff” by alice",
        "└─ clip #1 (jazz) by bob — continues",
        "   ├─ clip #2 (jazz) by carol — continues",
        "   │  ├─ clip #3 (jazz) by dave — varies",
        "   │  └─ seed “hook” by carol — cut from it",
        "   │     └─ clip #4 (jazz) by bob — blends (as B); also blends (as A) seed “riff” by "
        "alice",
        "   └─ clip #5 (jazz) by alice — rerolls; also continues seed “riff” by alice",
    ]
    assert SeedTree(riff, links).lines(limit=4)[-1] == "… and 4 more"
    hook = await store.descendants("seed", ids["hook"])
    assert [(link.child.id, link.relation, link.role) for link in hook] == [
        (ids["c4"], "blends", "b")]


async def test_a_missing_parent_stores_nothing(store: Store, tmp_path: Path) -> None:
    db = store.path
    before = counts(db)
    with pytest.raises(StoreError, match="clip not stored: it is built on clip #41, which does "
                                         "not exist"):
        await store.add_clip(new_clip(9, "newcomer", parents=(Parent("clip", 41, "varies"),)))
    with pytest.raises(StoreError, match="it is built on clip #41"):
        await store.add_seed(new_seed("x", (9, "newcomer"), parents=(
            Parent("clip", 41, "shares"),)))
    with pytest.raises(StoreError, match="invalid lineage link"):
        await store.add_clip(new_clip(parents=(Parent("clip", 1, "borrows"),)))
    assert counts(db) == before  # not even the new member's user row


def test_the_schema_refuses_links_that_make_no_sense(tmp_path: Path) -> None:
    db = tmp_path / "raw.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys = ON")
    for migration in load_migrations():
        for statement in migration.statements:
            conn.execute(statement)
    conn.execute("INSERT INTO users VALUES (1, 'alice', 'now')")
    conn.execute("INSERT INTO clips (style, bars, tempo, key, meter, temperature, seed, model, "
                 "duration_s, user_id, created_at, params_json, midi) VALUES ('jazz', 1, 120, "
                 "'C', '4/4', 1, 1, 'lstm', 1, 1, 'now', '{}', X'4D546864')")
    conn.execute("INSERT INTO seeds (name, name_key, user_id, source_kind, source_ref, "
                 "created_at, motif_json) VALUES ('a', 'a', 1, 'notes', 'C', 'now', '{}')")
    bad = [
        (None, 1, None, 1, "rerolls", None),  # a seed cannot reroll
        (1, None, None, 1, "shares", None),  # a clip is not cut from a seed
        (1, None, None, 1, "blends", None),  # a blend says which end
        (1, None, 1, None, "continues", None),  # a clip cannot continue itself
        (1, 1, None, 1, "continues", None),  # one child
        (1, None, 2, None, "varies", None),  # no clip #2 (foreign key)
    ]
    for row in bad:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO lineage (child_clip_id, child_seed_id, parent_clip_id, "
                         "parent_seed_id, relation, role, created_at) VALUES (?, ?, ?, ?, ?, ?, "
                         "'now')", row)
    conn.close()


async def test_v2_database_gains_seeds_and_keeps_its_clips(tmp_path: Path) -> None:
    db = tmp_path / "cadenza.db"
    async with await Store.open(db, migrations=load_migrations()[:2]):
        clip_id = insert_old_clip(db)
    async with await Store.open(db) as store:
        assert await store.schema_version() == store.latest_version
        assert (await store.get_clip(clip_id)) is not None
        assert await store.ancestors("clip", clip_id) == []
        seed_id = await store.add_seed(new_seed("after", parents=(
            Parent("clip", clip_id, "shares"),)))
        assert [link.parent.id for link in await store.ancestors("seed", seed_id)] == [clip_id]
