"""A job whose process died after the clip was made but before it was posted: the next
gateway to start posts the member the clip, once (through discord.py and
the Discord double); a job already answered is never answered again."""

from __future__ import annotations

import asyncio

import pytest
from discord_double import DiscordDouble
from test_discord_bot import cadenza, clip_buttons, rows
from test_store import new_clip

from cadenza.store import Store


@pytest.fixture
async def api():  # type: ignore[no-untyped-def]
    async with DiscordDouble() as double:
        yield double


async def test_a_clip_made_before_a_crash_is_posted_once_after_it(api, tmp_path,
                                                                   tiny_registry) -> None:
    alice = api.add_member(name="alice")
    db = tmp_path / "cadenza.db"
    where = {"guild_id": api.guild_id, "channel_id": api.channel_id}
    async with await Store.open(db) as store:  # what the dead process left
        made = await store.add_clip(new_clip(alice.id, "alice", style="folk", bars=2, **where))
        done = await store.add_job(user_id=alice.id, user_name="alice", params={"x": 1},
                                   owner="gateway-dead", lease=0, **where)
        await store.finish_job(done, "done", clip_id=made)
        told = await store.add_job(user_id=alice.id, user_name="alice", params={"x": 2},
                                   owner="gateway-dead", lease=0, **where)
        await store.finish_job(told, "done", clip_id=made)
        await store.record_answer(told, 1234)  # its member saw it before the crash

    def notices() -> list:  # type: ignore[type-arg]
        return [m for m in api.channel_messages() if "made just before Cadenza restarted"
                in m.content]

    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as h:
        [notice] = await h.wait_until(lambda: notices() or None, "the clip's notice")
        # the clip itself, as it would have been posted: files, piano roll, its buttons
        assert notice.content == (f"{alice.mention} here is your clip (made just before "
                                  "Cadenza restarted).")
        assert notice.embeds[0]["title"] == "Clip #1 — folk"
        assert notice.custom_ids == clip_buttons(1)
        assert sorted(a["filename"] for a in notice.raw["attachments"]) == [
            "cadenza-1.mid", "cadenza-1.mp3", "cadenza-1.png"]
        await h.wait_until(lambda: rows(db, "SELECT answer_message_id FROM jobs WHERE id = ?",
                                        (done,)) == [(int(notice.id),)], "the answer recorded")
    # A process that died after editing its progress message into the clip, before it could
    # record that: the message already carries the clip, so nothing is posted again.
    async with await Store.open(db) as store:
        edited = await store.add_job(user_id=alice.id, user_name="alice", params={"x": 3},
                                     owner="gateway-dead", lease=0, **where)
        await store.set_job_message(edited, int(notice.id))
        await store.finish_job(edited, "done", clip_id=made)
    before = len(api.channel_messages())
    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as h:
        await h.wait_until(lambda: rows(db, "SELECT answer_message_id FROM jobs WHERE id = ?",
                                        (edited,)) == [(int(notice.id),)], "recorded as posted")
        await asyncio.sleep(0.5)
    assert len(api.channel_messages()) == before and len(notices()) == 1
    assert rows(db, "SELECT id, answer_message_id FROM jobs ORDER BY id") == [
        (done, int(notice.id)), (told, 1234), (edited, int(notice.id))]
