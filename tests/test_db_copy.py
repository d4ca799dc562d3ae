"""`cadenza db copy`: a server's whole SQLite database into PostgreSQL (and back), verified by
row counts and checksums; a non-empty target is refused unless --replace; errors are one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_store import Clock, new_clip

from cadenza.store import Store
from cadenza.store_copy import TABLES, checksum
from cadenza.store_rows import NewPair, NewSeed, Parent
from tests.store_backends import raw

MOTIF = ('{"notes":[[0,12,60,80]],"chords":[[0,0,"maj"]],"meter":[4,4],"key":[0,"major"],'
         '"tempo":120.0,"bars":1}')


async def fill(target: Path | str) -> dict[str, int]:
    """A small server's history through the store: every table gets rows."""
    async with await Store.open(target, clock=Clock()) as store:
        a = await store.add_clip(new_clip(1, "alice", guild_id=100, channel_id=5, model="lstm"))
        b = await store.add_clip(new_clip(2, "bob", guild_id=100, channel_id=5, model="gru",
                                          tempo=97.5, params={"ü": "ñ", "n": [1, 2.5]}))
        await store.set_rating(a, 2, 4, "bob")
        await store.set_rating(b, 1, 5, "alice")
        await store.set_public(a, True)
        seed = await store.add_seed(NewSeed(name="Riff", user_id=1, user_name="alice",
                                            guild_id=100, public=True, source_kind="clip",
                                            source_ref="clip #1", motif_json=MOTIF,
                                            parents=(Parent("clip", a, "shares"),)))
        c = await store.add_clip(new_clip(3, "cäl", guild_id=100, model="vae",
                                          parents=(Parent("seed", seed, "continues"),)))
        await store.delete_seed(seed, by_user_id=3, by_user_name="cäl")
        pair = await store.add_pair(NewPair(clip_a=a, clip_b=b, model_a="lstm", model_b="gru",
                                            style="jazz", user_id=1, user_name="alice",
                                            guild_id=100))
        await store.set_arena_vote(pair, 3, "b", "cäl")
        job = await store.add_job(user_id=1, user_name="alice", params={"style": "jazz"},
                                  guild_id=100, channel_id=5, owner="gw-1")
        await store.finish_job(job, "done", clip_id=c)
        await store.add_job(user_id=2, user_name="bob", params={"style": "folk"})
        party = await store.add_party(guild_id=100, channel_id=5, voice_channel_id=6,
                                      user_id=1, user_name="alice", kind="compose",
                                      style="jazz", bars=2, count=3)
        await store.enqueue_clip(100, c, 1, "alice", party_id=party.id)
        await store.set_player(100, voice_channel_id=6, text_channel_id=5, message_id=77)
        return {"a": a, "b": b, "c": c, "seed": seed, "pair": pair}


def cadenza(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CADENZA_DB"}
    return subprocess.run([sys.executable, "-m", "cadenza", "db", *args], capture_output=True,
                          text=True, env=env, timeout=180, cwd=cwd)


async def tables_of(target: Path | str) -> dict[str, tuple[int, str]]:
    async with await Store.open(target, migrate=False) as store:
        out = {}
        for table, order in TABLES:
            columns = [c for c in await store.column_names(table)
                       if c not in ("child_kind", "child_id", "parent_kind", "parent_id")]
            rows = await store.read_table(table, sorted(columns), order)
            out[table] = (len(rows), checksum(rows))
        return out


async def test_copies_a_sqlite_server_into_postgresql_and_back(tmp_path: Path,
                                                               pg_server) -> None:
    source = tmp_path / "cadenza.db"
    ids = await fill(source)
    pg = pg_server.create_database()
    done = cadenza("copy", "--from", f"sqlite:{source}", "--to", pg)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [t for t, _ in TABLES]
    assert all(line.endswith("ok") for line in lines[:-1])
    assert lines[-1].startswith("copied ") and "every table's count and checksum match" in lines[-1]
    # Every table has rows, and the same rows on both sides (sorted column names: the two
    # schemas order their columns differently).
    want = await tables_of(source)
    assert all(n > 0 for n, _ in want.values())
    assert await tables_of(pg) == want

    async with await Store.open(source) as old, await Store.open(pg) as new:
        for clip_id in ids["a"], ids["b"], ids["c"]:
            assert await new.get_clip(clip_id) == await old.get_clip(clip_id)
        assert await new.top(scope=100) == await old.top(scope=100)
        assert await new.ancestors("clip", ids["c"]) == await old.ancestors("clip", ids["c"])
        assert await new.export_arena() == await old.export_arena()
        # New rows continue after the copied ids (the sequences were moved on).
        assert await new.add_clip(new_clip(guild_id=100)) == ids["c"] + 1
        assert (await new.find_clip(100, 4)) is not None

    # A second copy into the now non-empty database is refused, and changes nothing.
    again = cadenza("copy", "--from", f"sqlite:{source}", "--to", pg)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.startswith(f"error: the target database {pg} is not empty (users ")
    assert "pass --replace" in again.stderr and len(again.stderr.splitlines()) == 1
    assert raw(pg, "SELECT count(*) FROM clips") == [(4,)]
    # --replace deletes its rows first: the target is the source again.
    replaced = cadenza("copy", "--from", str(source), "--to", pg, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert await tables_of(pg) == want

    # And back: PostgreSQL into a new SQLite file.
    back = tmp_path / "back.db"
    home = cadenza("copy", "--from", pg, "--to", f"sqlite:{back}")
    assert home.returncode == 0, home.stderr
    assert await tables_of(back) == want


@pytest.mark.parametrize(("args", "message"), [
    (["copy", "--to", "sqlite:x.db"], "error: db copy needs --from and --to"),
    (["copy", "--from", "sqlite:missing.db", "--to", "sqlite:x.db"],
     "error: no database at missing.db to copy from"),
])
def test_copy_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = cadenza(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(message)
    assert len(done.stderr.splitlines()) == 1 and not (tmp_path / "x.db").exists()
