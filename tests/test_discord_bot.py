"""Cadenza's Discord bot driven over the wire through the loopback Discord double: /compose with
its queue, progress and attachments, the persistent buttons, restarts, limits and fallbacks.

Real parts throughout: discord.py talking HTTP and websocket to the double, real SQLite files,
tiny random-weight models, FluidSynth and ffmpeg. ``GatedComposer`` only holds the real composer
back until a test opens its gate, so queue states can be observed deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from discord_double import ClientWouldRefuse, DiscordDouble, MessageSnapshot
from pydub import AudioSegment

from cadenza.app import Cadenza
from cadenza.config import Settings
from cadenza.discord.client import CadenzaBot
from cadenza.jobs import JobQueue
from cadenza.service import Composer, Resolved
from cadenza.store import Store
from cadenza.wiring import job_queue

SLOW = 60.0  # seconds to wait for a whole compose on a busy CI machine


class GatedComposer(Composer):
    """The real composer, held at the start of each generation until ``gate`` is set."""

    def __init__(self, registry) -> None:  # type: ignore[no-untyped-def]
        super().__init__(registry)
        self.gate = threading.Event()
        self.entered: list[int] = []

    def compose(self, r: Resolved, motif=None):  # type: ignore[no-untyped-def]
        self.entered.append(r.seed)
        if not self.gate.wait(timeout=SLOW):
            raise TimeoutError("the test never opened the gate")
        return super().compose(r, motif)


@dataclass
class Harness:
    api: DiscordDouble
    bot: CadenzaBot
    app: Cadenza
    jobs: JobQueue
    composer: Composer
    db: Path

    async def wait_until(self, predicate, what: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        """Polls: some conditions (database rows, the composer's threads) change without the
        double seeing a request."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            await asyncio.sleep(0.02)
        return result


def _dev_guild(api: DiscordDouble, dev_guild: bool | int) -> int | None:
    """True: the double's guild; False: none; an int: that id (e.g. a guild the bot is not in)."""
    if dev_guild is True:
        return api.guild_id
    return dev_guild or None


@contextlib.asynccontextmanager
async def cadenza(api: DiscordDouble, tmp_path: Path, registry, *, gated: bool = False,  # type: ignore[no-untyped-def]
                  capacity: int = 16, per_member: int = 3,
                  token_ttl: timedelta = timedelta(minutes=14), dev_guild: bool | int = True,
                  owner_ids: frozenset[int] = frozenset(),
                  warm: bool = False, voice: bool = False) -> AsyncIterator[Harness]:
    """A CadenzaBot over ``tmp_path/cadenza.db``, running against the double; with ``voice``
    it trusts the double's voice gateway (TLS)."""
    db = tmp_path / "cadenza.db"
    composer = GatedComposer(registry) if gated else Composer(registry)
    composer_gate = composer.gate if isinstance(composer, GatedComposer) else None
    store = await Store.open(db)
    app = Cadenza(composer, store, output_dir=tmp_path / "out")
    if warm:
        await app.warm_up()  # as the runner does before connecting
    jobs = job_queue(app, capacity=capacity, per_member=per_member)
    settings = Settings(token=api.token, db_path=db, output_dir=tmp_path / "out",
                        dev_guild=_dev_guild(api, dev_guild), owner_ids=owner_ids)
    bot = CadenzaBot(app=app, jobs=jobs, settings=settings, token_ttl=token_ttl,
                     connector=api.voice_connector() if voice else None)
    try:
        async with api.running(bot):
            yield Harness(api, bot, app, jobs, composer, db)
    finally:
        if composer_gate is not None:
            composer_gate.set()  # let a held worker thread finish so the pool can shut down
        await app.close()
        await store.close()


@pytest.fixture
async def api() -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble() as double:
        yield double


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def clip_buttons(clip_id: int) -> list[str]:
    """The custom_ids under a clip: five stars, then Reroll, Continue +4/+8, Variation and Play."""
    return [*(f"rate:{clip_id}:{s}" for s in range(1, 6)), f"reroll:{clip_id}",
            f"continue:{clip_id}:4", f"continue:{clip_id}:8", f"vary:{clip_id}",
            f"play:{clip_id}"]


def noting_threads(method, threads: list[int]):  # type: ignore[no-untyped-def]
    """``method`` itself, noting the id of each thread that calls it in ``threads``."""

    def call(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return method(*args, **kwargs)

    return call


def is_clip(message: MessageSnapshot) -> bool:
    return bool(message.embeds) and message.embeds[0].get("title", "").startswith("Clip #")


# ---------------------------------------------------------------------------------------------
# /compose


async def test_compose_defers_shows_progress_and_posts_the_clip(api, tmp_path, tiny_registry):
    api.callback_deadline = 2.0  # stricter than Discord's 3 s: a later answer is refused
    loop_thread = threading.get_ident()  # the bot runs on the test's event loop
    threads: dict[str, list[int]] = {"compose": []}
    async with cadenza(api, tmp_path, tiny_registry, warm=True) as h:
        for name, calls in threads.items():
            setattr(h.composer, name, noting_threads(getattr(h.composer, name), calls))
        inter = await api.slash("compose", {"style": "blues", "bars": 1, "tempo": 100,
                                            "key": "e minor", "seed": 42})
        response = await inter.wait_response()
        clip = await inter.wait_original(is_clip, timeout=SLOW)
    assert response.type == 5 and not response.ephemeral

    # @original: the placeholder, the queue position, each stage in order, then the clip.
    states = [m.content for m in inter.original_history]
    assert inter.original_history[0].loading
    assert states[1].startswith("⏳ Queued — position 1 (next up)")
    stages = [s.split("—", 1)[1].split("(")[0].strip() for s in states if s.startswith("🎼")]
    order = ["writing the melody and arrangement", "rendering the audio", "encoding the MP3",
             "drawing the piano roll", "saving the clip"]
    assert stages == sorted(set(stages), key=order.index) and len(stages) >= 3
    assert "blues · 1 bar · Em · 100 bpm · 4/4 · seed 42 · lstm @ 0.7" in states[1]

    # The final message: embed with every parameter, the piano roll inside it, MP3 + MIDI.
    embed = clip.embeds[0]
    assert embed["title"] == "Clip #1 — blues"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"Style": "blues", "Key": "Em", "Tempo": "100 bpm", "Meter": "4/4",
                      "Bars": "1", "Seed": "42", "Model": "lstm", "Temperature": "0.7"}
    assert clip.filenames == ["cadenza-1.mp3", "cadenza-1.mid", "cadenza-1.png"]
    assert embed["image"]["url"] == clip.attachments[2]["url"]
    assert clip.file("cadenza-1.mid")[:4] == b"MThd"
    assert clip.file("cadenza-1.png")[:8] == b"\x89PNG\r\n\x1a\n"
    audio = AudioSegment.from_file(io.BytesIO(clip.file("cadenza-1.mp3")), format="mp3")
    assert audio.channels == 2 and audio.duration_seconds > 1.0 and audio.rms > 0
    assert clip.custom_ids == clip_buttons(1)
    assert clip.content == "" and not clip.ephemeral

    # Stored: the clip (with where it was posted) and the finished job.
    assert rows(h.db, "SELECT id, style, seed, key, message_id FROM clips") == [
        (1, "blues", 42, "Em", clip.id)]
    assert rows(h.db, "SELECT status, clip_id, message_id FROM jobs") == [("done", 1, clip.id)]
    # Generation ran once, off the event loop's thread (bench/bot_load.py measures how long
    # the loop stalls); rendering in a child process (cadenza.clip_pool).
    assert len(threads["compose"]) == 1 and loop_thread not in threads["compose"]
    assert h.app.workers.clip_pool.pids and os.getpid() not in h.app.workers.clip_pool.pids
    api.assert_no_errors()


async def test_bad_options_get_the_shared_validators_message_ephemerally(
        api, tmp_path, tiny_registry):
    async with cadenza(api, tmp_path, tiny_registry) as h:
        key = await api.slash("compose", {"key": "H", "bars": 1})
        model = await api.slash("compose", {"model": "nope", "bars": 1})
        with pytest.raises(ClientWouldRefuse, match=r"must be in \[1, 32\]"):
            await api.slash("compose", {"bars": 40})  # the registered Range
        low_level = await api.slash("compose", {"bars": 40}, validate=False)
        for inter in (key, model, low_level):
            await inter.wait_original()
    assert key.original.content == ("Unknown key 'H': use a note name with an optional m, "
                                    "e.g. C, F#m, Bb")
    installed = ", ".join(tiny_registry.names())
    assert model.original.content == f"Unknown model 'nope' (available: {installed})"
    # Discord's client would not send bars:40 (the Range); if it arrives anyway the shared
    # validator still refuses it, in the console's words.
    assert low_level.original.content == "Bars must be between 1 and 32 (got 40)"
    for inter in (key, model, low_level):
        assert inter.response.type == 4 and inter.original.ephemeral
    assert api.channel_messages() == []
    assert rows(h.db, "SELECT COUNT(*) FROM jobs") == [(0,)]
    assert rows(h.db, "SELECT COUNT(*) FROM clips") == [(0,)]


# ---------------------------------------------------------------------------------------------
# The queue


def custom_id(message: MessageSnapshot, prefix: str) -> str:
    return next(c for c in message.custom_ids if c.startswith(prefix))


async def test_queue_positions_member_limit_queue_full_and_cancel(api, tmp_path, tiny_registry):
    alice, bob, carol = (api.add_member(name=n) for n in ("alice", "bob", "carol"))
    async with cadenza(api, tmp_path, tiny_registry, gated=True, capacity=3) as h:
        first = await api.slash("compose", {"bars": 1, "seed": 1}, user=alice)
        await h.wait_until(lambda: h.composer.entered, "the first job to start")
        second = await api.slash("compose", {"bars": 1, "seed": 2}, user=alice)
        third = await api.slash("compose", {"bars": 1, "seed": 3}, user=alice)
        waiting2 = await second.wait_original(lambda m: "Queued" in m.content)
        waiting3 = await third.wait_original(lambda m: "Queued" in m.content)
        assert waiting2.content.startswith("⏳ Queued — position 1 (next up)")
        assert waiting3.content.startswith("⏳ Queued — position 2 (1 ahead of you)")
        assert waiting2.custom_ids == ["cancel:2"] and waiting3.custom_ids == ["cancel:3"]

        # A fourth from alice: one composing and two waiting is the most a member may have.
        fourth = await api.slash("compose", {"bars": 1}, user=alice)
        refused = await fourth.wait_original()
        assert refused.ephemeral and fourth.response.type == 4
        assert refused.content.startswith("You already have 3 clip(s) in the queue")

        in_bobs = await api.slash("compose", {"bars": 1, "seed": 4}, user=bob)
        bobs = await in_bobs.wait_original(lambda m: "Queued" in m.content)
        assert bobs.content.startswith("⏳ Queued — position 3 (2 ahead of you)")
        full = await api.slash("compose", {"bars": 1}, user=carol)
        assert (await full.wait_original()).content == (
            "The queue is full (3 clips waiting): try again in a moment")
        assert full.original.ephemeral

        # Only the member who asked may cancel; then everyone behind moves up.
        meddle = await api.click(waiting2, "cancel:2", user=bob)
        assert (await meddle.wait_original()).content == (
            "Only alice, who asked for this clip, can cancel it")
        assert meddle.original.ephemeral
        cancel = await api.click(waiting2, "cancel:2", user=alice)
        assert (await cancel.wait_response()).type == 7  # the message itself is updated
        await second.wait_original(lambda m: m.content.startswith("✖ Cancelled"))
        await third.wait_original(lambda m: "position 1 (next up)" in m.content)
        await in_bobs.wait_original(lambda m: "position 2 (1 ahead of you)" in m.content)
        assert api.message(waiting2.id).custom_ids == []  # the button went with the job

        h.composer.gate.set()
        for inter in (first, third, in_bobs):
            await inter.wait_original(is_clip, timeout=SLOW)
    assert h.composer.entered == [1, 3, 4]
    assert rows(h.db, "SELECT id, status, clip_id FROM jobs ORDER BY id") == [
        (1, "done", 1), (2, "cancelled", None), (3, "done", 2), (4, "done", 3)]
    api.assert_no_errors()


# ---------------------------------------------------------------------------------------------
# Buttons, and what survives a restart


async def test_rating_clicks_are_stored_changed_and_work_after_a_restart(
        api, tmp_path, tiny_registry):
    fan, critic = api.add_member(name="fan"), api.add_member(name="critic")
    async with cadenza(api, tmp_path, tiny_registry) as h:
        inter = await api.slash("compose", {"style": "folk", "bars": 1, "seed": 5})
        clip = await inter.wait_original(is_clip, timeout=SLOW)
        votes = []
        for user, custom in ((fan, "rate:1:4"), (fan, "rate:1:2"), (api.member, "rate:1:5")):
            click = await api.click(clip, custom, user=user)
            votes.append(await click.wait_original())
    assert all(v.ephemeral for v in votes)
    assert [v.content for v in votes] == [
        "You rated clip #1 ★★★★☆. The clip now has 1 vote(s), average 4.00.",
        "You rated clip #1 ★★☆☆☆ (was ★★★★☆). The clip now has 1 vote(s), average 2.00.",
        "You rated clip #1 ★★★★★. It's your own clip, so the vote is stored but not counted "
        "in /top or /stats.",
    ]
    assert rows(h.db, "SELECT user_id, stars FROM ratings ORDER BY stars") == [
        (fan.id, 2), (api.member.id, 5)]

    # A new process: new store, app and bot on the same file, no stored views, no sync.
    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as again:
        vote = await api.click(clip, "rate:1:3", user=critic)
        assert (await vote.wait_original()).content == (
            "You rated clip #1 ★★★☆☆. The clip now has 2 vote(s), average 2.50.")
        reroll = await api.click(clip, "reroll:1", user=critic)
        assert (await reroll.wait_response()).type == 5  # a new deferred message
        rerolled = await reroll.wait_original(is_clip, timeout=SLOW)
    assert rows(again.db, "SELECT user_id, stars FROM ratings ORDER BY stars") == [
        (fan.id, 2), (critic.id, 3), (api.member.id, 5)]
    syncs = api.requests_to("PUT /applications/{application_id}/guilds/{guild_id}/commands")
    assert len(syncs) == 1  # the restarted bot did not sync
    # Reroll: same options, new seed; the clicking member asked for it.
    first, second = rows(again.db, "SELECT style, bars, model, temperature, seed, user_id "
                                   "FROM clips ORDER BY id")
    assert second[:4] == first[:4] == ("folk", 1, "lstm", 0.7)
    assert second[4] != first[4] and second[5] == critic.id
    assert rerolled.embeds[0]["title"] == "Clip #2 — folk"
    assert rerolled.custom_ids == clip_buttons(2)
    api.assert_no_errors()


async def test_jobs_in_flight_at_shutdown_fail_and_members_are_told_on_restart(
        api, tmp_path, tiny_registry):
    alice, bob = api.add_member(name="alice"), api.add_member(name="bob")
    async with cadenza(api, tmp_path, tiny_registry, gated=True) as h:
        running = await api.slash("compose", {"style": "celtic", "bars": 1, "seed": 11},
                                  user=alice)
        await h.wait_until(lambda: h.composer.entered, "the first job to start")
        waiting = await api.slash("compose", {"style": "jazz", "bars": 2, "seed": 12}, user=bob)
        await waiting.wait_original(lambda m: "Queued" in m.content)
    # The process is gone with one job composing and one waiting: nothing was finished.
    assert rows(h.db, "SELECT id, status FROM jobs ORDER BY id") == [(1, "running"),
                                                                     (2, "queued")]
    assert rows(h.db, "SELECT COUNT(*) FROM clips") == [(0,)]

    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as h2:
        def both_notices() -> list[MessageSnapshot] | None:
            found = [m for m in api.channel_messages() if "interrupted" in m.content]
            return found if len(found) == 2 else None

        notices = await h2.wait_until(both_notices, "two restart notices")
        await h2.wait_until(lambda: rows(h2.db, "SELECT COUNT(*) FROM jobs WHERE notified_at "
                                                "IS NOT NULL") == [(2,)], "notices recorded")
        by_user = {m.content.split(">")[0] + ">": m for m in notices}
        notice = by_user[bob.mention]
        assert "jazz · 2 bars" in notice.content and "seed 12" in notice.content
        assert notice.custom_ids == ["retry:2"]
        assert alice.mention in by_user and by_user[alice.mention].custom_ids == ["retry:1"]
        # The progress messages say what happened and lost their Cancel button.
        for inter in (running, waiting):
            old = api.message(inter.original.id)
            assert old.content.startswith("✖ Interrupted") and old.custom_ids == []
        # Only the member whose request it was may try it again...
        meddling = await (await api.click(notice, "retry:2", user=alice)).wait_original()
        assert meddling.ephemeral and meddling.content == (
            "Only bob, whose request this was, can try it again")
        # ... and only once, even pressing twice in quick succession.
        presses = await asyncio.gather(api.click(notice, "retry:2", user=bob),
                                       api.click(notice, "retry:2", user=bob))
        answers = [await p.wait_original() for p in presses]
        [refused] = [a for a in answers if a.ephemeral]
        assert refused.content == "This request has already been tried again"
        retry = presses[answers.index(refused) ^ 1]
        clip = await retry.wait_original(is_clip, timeout=SLOW)
        # The notice lost its button and says what became of it.
        tried = api.message(notice.id)
        assert tried.custom_ids == [] and tried.content == (
            notice.content + "\n🔁 Tried again (request #3).")
    # Had that edit failed, leaving the button in place, a press after a restart is still
    # refused: the job row remembers the retry.
    api.store.edit(notice.id, {"components": notice.raw["components"]}, [])
    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as h2:
        stale = await api.click(notice, "retry:2", user=bob)
        assert (await stale.wait_original()).content == (
            "This request has already been tried again")
    interrupted = "interrupted: Cadenza restarted before this clip was finished"
    assert rows(h2.db, "SELECT id, status, interrupted, error FROM jobs ORDER BY id") == [
        (1, "failed", 1, interrupted),
        (2, "failed", 1, interrupted + "; tried again as request #3"),
        (3, "done", 0, None)]
    assert rows(h2.db, "SELECT style, bars, seed, user_id FROM clips") == [
        ("jazz", 2, 12, bob.id)]
    assert clip.embeds[0]["title"] == "Clip #1 — jazz"

    # A third start has nothing left to tell.
    before = len(api.channel_messages())
    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False):
        await asyncio.sleep(0.2)
    assert len(api.channel_messages()) == before


async def test_a_dev_guild_the_bot_is_not_in_is_a_warning_not_a_failed_start(
        api, tmp_path, tiny_registry, caplog):
    caplog.set_level(logging.WARNING)
    elsewhere = api.guild_id + 12345  # a typo'd id, or a server the bot was never invited to
    async with cadenza(api, tmp_path, tiny_registry, dev_guild=elsewhere) as h:
        # Started regardless: connected, the queue's workers running.
        assert not h.bot.is_closed() and api.sessions[-1].open and h.jobs._tasks
    [refused] = api.requests_to("PUT /applications/{application_id}/guilds/{guild_id}/commands")
    assert refused.status == 403
    [warning] = [r for r in caplog.records if "CADENZA_DEV_GUILD" in r.getMessage()]
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert str(elsewhere) in warning.getMessage() and "403" in warning.getMessage()
    assert "invited" in warning.getMessage()


# ---------------------------------------------------------------------------------------------
# Limits and fallbacks


async def test_an_mp3_over_the_upload_limit_is_left_out_and_the_member_told(
        api, tmp_path, tiny_registry):
    async with cadenza(api, tmp_path, tiny_registry) as h:
        inter = await api.slash("compose", {"bars": 1, "seed": 3}, attachment_size_limit=60_000)
        clip = await inter.wait_original(is_clip, timeout=SLOW)
    mp3 = (tmp_path / "out" / "clip-1.mp3").stat().st_size
    assert mp3 > 60_000  # the premise: this MP3 cannot be uploaded here
    assert clip.filenames == ["cadenza-1.mid", "cadenza-1.png"]
    assert clip.content == (f"⚠️ The MP3 ({mp3 / 2**20:.1f} MB) is too large for this server's "
                            "0.1 MB upload limit, so only the MIDI file and the piano roll are "
                            "attached. Try fewer bars for an MP3.")
    assert clip.file("cadenza-1.mid") == rows(h.db, "SELECT midi FROM clips")[0][0]
    assert clip.embeds[0]["image"]["url"] == clip.attachments[1]["url"]
    api.assert_no_errors()  # nothing was refused with 413


async def test_after_the_token_lifetime_the_clip_is_posted_in_the_channel(
        api, tmp_path, tiny_registry):
    async with cadenza(api, tmp_path, tiny_registry, token_ttl=timedelta(0)) as h:
        inter = await api.slash("compose", {"bars": 1, "seed": 8})
        await inter.wait_response()
        clip = await h.wait_until(
            lambda: next((m for m in api.channel_messages() if is_clip(m)), None), "the clip",
            timeout=SLOW)
        progress = await h.wait_until(
            lambda: api.message(inter.original.id).content.startswith("✔ Done")
            and api.message(inter.original.id), "the progress message to point at the clip")
    # No webhook edits after the deferral: the token was treated as expired.
    assert api.requests_to(
        "PATCH /webhooks/{application_id}/{token}/messages/{message_id}") == []
    assert clip.content == f"{api.member.mention} your clip is ready"
    assert clip.filenames == ["cadenza-1.mp3", "cadenza-1.mid", "cadenza-1.png"]
    assert clip.custom_ids == clip_buttons(1)
    assert progress.content == (f"✔ Done — https://discord.com/channels/{api.guild_id}/"
                                f"{api.channel_id}/{clip.id}")
    # The progress edits went through the channel route too, and the clip's place is stored.
    assert [r.status for r in api.requests_to(
        "PATCH /channels/{channel_id}/messages/{message_id}")][:2] == [200, 200]
    assert rows(h.db, "SELECT message_id FROM clips") == [(clip.id,)]
    api.assert_no_errors()


async def test_unexpected_failures_apologise_with_an_error_id_that_is_in_the_log(
        api, tmp_path, tiny_registry, caplog):
    caplog.set_level(logging.ERROR)
    (tmp_path / "out").write_text("a file where the output folder should be")
    async with cadenza(api, tmp_path, tiny_registry):
        inter = await api.slash("compose", {"bars": 1, "seed": 1})
        answer = await inter.wait_followup(timeout=SLOW)
    assert answer.ephemeral
    match = re.fullmatch(r"Sorry — this clip could not be made: something went wrong while "
                         r"composing \(error id ([0-9a-f]{8})\)", answer.content)
    assert match, answer.content
    # The public "thinking" placeholder was removed rather than turned into the error.
    assert api.history(inter.original_history[0].id)[-1].deleted
    logged = [r for r in caplog.records if match[1] in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # with the traceback
    assert "FileExistsError" in caplog.text or "NotADirectoryError" in caplog.text


async def test_a_clip_whose_message_was_deleted_meanwhile_is_not_lost(
        api, tmp_path, tiny_registry):
    async with cadenza(api, tmp_path, tiny_registry, gated=True) as h:
        inter = await api.slash("compose", {"bars": 1, "seed": 31})
        queued = await inter.wait_original(lambda m: "Queued" in m.content)
        await h.wait_until(lambda: h.composer.entered, "the job to start")
        await api.broadcast_delete(api.store.delete(queued.id))  # a moderator tidies up
        h.composer.gate.set()
        note = await inter.wait_followup(timeout=SLOW)
    assert note.ephemeral and note.content == (
        "Sorry — clip #1 was made and saved, but Discord would not take the post (404): "
        "`/clip 1` shows it again")
    assert rows(h.db, "SELECT id, message_id FROM clips") == [(1, None)]
    assert rows(h.db, "SELECT status, clip_id FROM jobs") == [("done", 1)]
