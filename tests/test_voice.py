"""Voice through the real discord.py: /play joins the member's voice channel over the double's
voice gateway (TLS websocket + UDP on loopback), and the receiving side decrypts every RTP
packet, counts the 20 ms Opus frames against the clip's length and decodes them with libopus;
/queue, /skip, /stop, the ▶ button, leaving when idle, and the short answers when voice cannot
work."""

from __future__ import annotations

import io
import itertools
import math
import re
import subprocess
from pathlib import Path

import discord.opus
import numpy as np
import pytest
from discord_double import DiscordDouble, payloads
from discord_double.voice import AEAD_MODE, OPUS_SILENCE
from test_discord_bot import SLOW, cadenza, is_clip, rows

from cadenza.console import Console, console_user


@pytest.fixture
async def api():
    async with DiscordDouble() as double:
        yield double


def ffmpeg_frames(mp3: Path) -> int:
    """20 ms frames in the MP3 at 48 kHz, as ffmpeg (not our decoder) counts them."""
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(mp3), "-f", "s16le", "-ar", "48000",
                          "-ac", "2", "pipe:1"], capture_output=True, check=True).stdout
    return math.ceil(len(pcm) / 3840)


def decode_opus(frames: list[bytes]) -> np.ndarray:
    decoder = discord.opus.Decoder()
    pcm = b"".join(decoder.decode(frame) for frame in frames)
    return np.frombuffer(pcm, dtype=np.int16)


async def compose(api: DiscordDouble, **options) -> int:  # type: ignore[no-untyped-def]
    inter = await api.slash("compose", {"bars": 1, "tempo": 200, **options})
    clip = await inter.wait_original(is_clip, timeout=SLOW)
    return int(clip.embeds[0]["title"].split("#")[1].split()[0])


async def test_play_sends_the_clip_as_encrypted_opus_that_decodes_to_its_music(
        api, tmp_path, tiny_registry):
    lounge = api.add_voice_channel("Lounge")
    fan = api.add_member(name="fan")
    await api.join_voice(fan, lounge)
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        number = await compose(api, seed=3)
        inter = await api.slash("play", {"clip": number}, user=fan)
        answer = await inter.wait_original(lambda m: not m.loading, timeout=SLOW)
        connection = await api.wait_voice(lambda c: c.mode is not None, timeout=SLOW)
        await h.wait_until(lambda: rows(h.db, "SELECT status FROM play_queue") == [("played",)],
                           "the clip to finish playing", timeout=SLOW)
        await api.changes.wait_for(lambda: connection.opus_frames()[-5:] == [OPUS_SILENCE] * 5,
                                   timeout=SLOW, what="the trailing silence")
    assert answer.content == f"▶ Playing clip #{number} in 🔊 Lounge."

    # The handshake discord.py went through: our modes, its choice, speaking on then off.
    assert connection.channel_id == lounge and connection.mode == AEAD_MODE
    assert connection.identified and connection.address is not None
    assert connection.speaking[0] == 0 and 1 in connection.speaking
    assert connection.undecryptable == 0

    # Every frame of the clip, in order, 20 ms apart, then discord.py's five silence frames.
    frames = connection.audio_frames()
    assert len(frames) == ffmpeg_frames(tmp_path / "out" / f"clip-{number}.mp3")
    packets = connection.packets[:len(frames)]
    assert [b.sequence - a.sequence for a, b in itertools.pairwise(packets)] == \
        [1] * (len(frames) - 1)
    assert {b.timestamp - a.timestamp for a, b in itertools.pairwise(packets)} == {960}

    # Decoded on this side with libopus: stereo 48 kHz music, not silence.
    pcm = decode_opus(frames)
    assert len(pcm) == len(frames) * 960 * 2
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 100
    api.assert_no_errors()


NOW_PLAYING = re.compile(r"Now playing clip (\d+) of (\d+)\*\*: clip #(\d+)")


def playing(position: int):  # type: ignore[no-untyped-def]
    return lambda m: (found := NOW_PLAYING.search(m.content)) is not None and \
        int(found[1]) == position


async def wait_state(api: DiscordDouble, message_id: int, predicate):  # type: ignore[no-untyped-def]
    """The first state of a message (edited through its channel) matching ``predicate``."""
    return await api.changes.wait_for(
        lambda: next((m for m in api.history(message_id) if predicate(m)), None),
        timeout=SLOW, what="a state of the party message")


async def in_voice(api: DiscordDouble, *names: str):  # type: ignore[no-untyped-def]
    """Members (by name) in a new voice channel "Lounge"."""
    lounge = api.add_voice_channel("Lounge")
    members = [api.add_member(name=name) for name in names]
    for member in members:
        await api.join_voice(member, lounge)
    return members


async def first_party_clip(api: DiscordDouble, host, options):  # type: ignore[no-untyped-def]
    """/party new by ``host``: the party message as its first clip plays, and that clip's
    number."""
    inter = await api.slash("party new", options, user=host)
    party = await inter.wait_original(timeout=SLOW)
    message = await wait_state(api, party.id, playing(1))
    found = NOW_PLAYING.search(message.content)
    assert found is not None
    return message, int(found[3])


async def vote(api: DiscordDouble, message, number: int, voters, stars) -> None:  # type: ignore[no-untyped-def]
    for voter, value in zip(voters, stars, strict=True):
        click = await api.click(message, f"rate:{number}:{value}", user=voter)
        answer = await click.wait_original(lambda m: not m.loading, timeout=SLOW)
        assert answer.ephemeral and answer.content.startswith(f"You rated clip #{number}")


def ranking(api: DiscordDouble) -> list[str]:
    return [m.content for m in api.channel_messages() if m.content.startswith("🏆")]


async def test_a_party_of_three_plays_in_order_with_votes_on_the_clip_heard_and_a_ranking(
        api, tmp_path, tiny_registry):
    host, ann, bob = await in_voice(api, "host", "ann", "bob")
    stars = {1: (5, 4), 2: (2, 3), 3: (4, 4)}  # by ann and bob, per clip in play order
    heard: dict[int, int] = {}
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        inter = await api.slash("party new", {"style": "folk", "count": 3, "bars": 2}, user=host)
        party = await inter.wait_original(timeout=SLOW)
        for position in (1, 2, 3):
            message = await wait_state(api, party.id, playing(position))
            found = NOW_PLAYING.search(message.content)
            assert found is not None and found[2] == "3"
            heard[position] = int(found[3])
            assert message.custom_ids[:5] == [f"rate:{heard[position]}:{s}" for s in range(1, 6)]
            # the vote goes to the clip whose stars were pressed, while it plays
            assert rows(h.db, "SELECT c.number FROM play_queue AS q JOIN clips AS c ON "
                        "c.id = q.clip_id WHERE q.status = 'playing'") == [(heard[position],)]
            await vote(api, message, heard[position], (ann, bob), stars[position])
        await api.changes.wait_for(lambda: ranking(api), timeout=SLOW, what="the ranking")
    # Composed through the job queue one by one, played in that order, each once.
    assert rows(h.db, "SELECT status, clip_id FROM jobs ORDER BY id") == [
        ("done", heard[1]), ("done", heard[2]), ("done", heard[3])]
    assert rows(h.db, "SELECT party_id, c.number, status FROM play_queue JOIN clips AS c ON "
                "c.id = clip_id ORDER BY play_queue.id") == [
        (1, heard[p], "played") for p in (1, 2, 3)]
    assert rows(h.db, "SELECT c.number, r.user_id, r.stars FROM ratings AS r JOIN clips AS c "
                "ON c.id = r.clip_id ORDER BY c.number, r.user_id") == sorted(
        (heard[p], voter.id, stars[p][i]) for p in (1, 2, 3) for i, voter in enumerate((ann, bob)))
    assert rows(h.db, "SELECT status FROM parties") == [("done",)]
    # Best mean first: clip 1 (4.5), clip 3 (4.0), clip 2 (2.5).
    assert ranking(api) == [
        "🏆 **Listening party #1 is over** — 3 clip(s), 6 vote(s) counted (a clip's own maker's "
        "vote is not)\n"
        f"1. clip #{heard[1]} — 4.50★ from 2 vote(s) (played 1st)\n"
        f"2. clip #{heard[3]} — 4.00★ from 2 vote(s) (played 3rd)\n"
        f"3. clip #{heard[2]} — 2.50★ from 2 vote(s) (played 2nd)"]
    api.assert_no_errors()


async def test_a_restart_during_a_party_keeps_its_queue_and_votes_and_the_party_plays_on(
        api, tmp_path, tiny_registry):
    host, ann = await in_voice(api, "host", "ann")
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        message, first = await first_party_clip(
            api, host, {"style": "folk", "count": 3, "bars": 2})
        await vote(api, message, first, (ann,), (5,))
        await h.wait_until(lambda: len(rows(h.db, "SELECT id FROM play_queue")) >= 2,
                           "a second clip in the queue", timeout=SLOW)
    # Stopped mid-party: the clip playing and those waiting are still queued, the vote kept.
    kept = rows(h.db, "SELECT status FROM play_queue ORDER BY id")
    assert kept[0] == ("playing",) and set(kept[1:]) <= {("queued",)}
    assert rows(h.db, "SELECT status FROM parties") == [("open",)]
    assert rows(h.db, "SELECT c.number, r.user_id, r.stars FROM ratings AS r JOIN clips AS c "
                "ON c.id = r.clip_id") == [(first, ann.id, 5)]

    # A new process on the same database: it rejoins the voice channel, plays the clip that was
    # cut off and the rest, composes what is missing, and ranks with the vote from before.
    async with cadenza(api, tmp_path, tiny_registry, voice=True, dev_guild=False) as again:
        await api.changes.wait_for(lambda: ranking(api), timeout=SLOW * 2, what="the ranking")
    assert rows(again.db, "SELECT status FROM play_queue ORDER BY id") == [("played",)] * 3
    assert rows(again.db, "SELECT status FROM parties") == [("done",)]
    assert len(api.voice.connections) == 2  # one voice session per process
    text = ranking(api)[0]
    assert text.startswith("🏆 **Listening party #1 is over** — 3 clip(s), 1 vote(s) counted")
    assert f"1. clip #{first} — 5.00★ from 1 vote(s) (played 1st)" in text
    # The party's own requests are never offered back to its host as "Try again".
    assert not [m for m in api.channel_messages() if m.custom_ids and
                m.custom_ids[0].startswith("retry:")]
    api.assert_no_errors()


async def test_voice_refusals_are_short_and_specific_and_text_keeps_working(
        api, tmp_path, tiny_registry):
    lounge = api.add_voice_channel("Lounge")
    away, fan = api.add_member(name="away"), api.add_member(name="fan")
    await api.join_voice(fan, lounge)
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        empty = await (await api.slash("play", user=fan)).wait_original()
        number = await compose(api, seed=5)
        not_in_voice = await (await api.slash("play", {"clip": number}, user=away)).wait_original()
        unknown = await (await api.slash("play", {"clip": 99}, user=fan)).wait_original()
        idle_queue = await (await api.slash("queue", user=fan)).wait_original()
        skip = await (await api.slash("skip", user=fan)).wait_original()
        api.guild.set_role_permissions(api.guild.id, payloads.EVERYONE_PERMISSIONS
                                       & ~payloads.CONNECT)
        # the bot's cached permissions change with a GUILD_ROLE_UPDATE, which the double does
        # not send: a new process sees the new role
    async with cadenza(api, tmp_path, tiny_registry, voice=True, dev_guild=False) as h:
        no_connect = await (await api.slash("play", user=fan)).wait_original()
        text = await (await api.slash("clip", {"clip": number}, user=fan)).wait_original(
            lambda m: bool(m.embeds), timeout=SLOW)
    assert all(m.ephemeral for m in (empty, not_in_voice, unknown, idle_queue, skip, no_connect))
    assert empty.content == ("No clip has been made in this channel yet: /compose one, or "
                             "/play clip:<number>")
    assert not_in_voice.content == "Join a voice channel first: I play in the one you are in"
    assert unknown.content == "No clip #99"
    assert idle_queue.content.startswith("Nothing is playing or queued.")
    assert skip.content == "Nothing is playing in voice here"
    assert no_connect.content == ("I may not connect in 🔊 Lounge: a server admin can give "
                                  "Cadenza the Connect permission there")
    assert text.embeds[0]["title"].startswith(f"Clip #{number}")
    assert api.voice.connections == [] and rows(h.db, "SELECT * FROM play_queue") == []


def voice_open(api: DiscordDouble):  # type: ignore[no-untyped-def]
    return api.voice.active(api.guild_id)


async def test_queue_skip_stop_the_play_button_and_leaving_when_idle(api, tmp_path, tiny_registry):
    lounge, den = api.add_voice_channel("Lounge"), api.add_voice_channel("Den")
    fan, other = api.add_member(name="fan"), api.add_member(name="other")
    await api.join_voice(fan, lounge)
    await api.join_voice(other, den)
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        long_one = await compose(api, bars=4, tempo=60, seed=1)  # 16 s: skipped long before
        second = await api.slash("compose", {"bars": 4, "tempo": 60, "seed": 2})
        second_post = await second.wait_original(is_clip, timeout=SLOW)
        playing = await (await api.slash("play", {"clip": long_one}, user=fan)).wait_original(
            lambda m: not m.loading, timeout=SLOW)
        # ▶ under the second clip queues it behind the first
        pressed = await (await api.click(second_post, "play:2", user=fan)).wait_original(
            lambda m: not m.loading, timeout=SLOW)
        queue = await (await api.slash("queue", user=fan)).wait_original()
        elsewhere = await (await api.slash("play", {"clip": 2}, user=other)).wait_original()
        outsider = await (await api.slash("skip", user=other)).wait_original()
        skipped = await (await api.slash("skip", user=fan)).wait_original(
            lambda m: not m.loading)
        await h.wait_until(lambda: rows(h.db, "SELECT status FROM play_queue ORDER BY id") ==
                           [("skipped",), ("playing",)], "the second clip to play", timeout=SLOW)
        stopped = await (await api.slash("stop", user=fan)).wait_original(
            lambda m: not m.loading, timeout=SLOW)
        await api.changes.wait_for(lambda: voice_open(api) is None, timeout=SLOW,
                                   what="the bot to leave voice")
        after_stop = rows(h.db, "SELECT status FROM play_queue ORDER BY id")

        # Nothing left to play: it leaves on its own after its idle time.
        h.bot.get_cog("Listen").idle = 0.2  # type: ignore[union-attr]
        short = await compose(api, seed=3)
        await (await api.slash("play", {"clip": short}, user=fan)).wait_original(
            lambda m: not m.loading, timeout=SLOW)
        left = await api.changes.wait_for(
            lambda: [m for m in api.channel_messages() if m.content.startswith("👋 Left")],
            timeout=SLOW, what="the bot to leave when idle")
    assert playing.content == f"▶ Playing clip #{long_one} in 🔊 Lounge."
    assert pressed.content == ("➕ Queued clip #2 in 🔊 Lounge: 1 ahead of it. `/queue` shows "
                               "them.")
    assert queue.ephemeral and queue.content.splitlines()[0] == "**Queue** in 🔊 Lounge"
    assert queue.content.splitlines()[1].startswith(f"▶ clip #{long_one} · ")
    assert queue.content.splitlines()[2].startswith("2. clip #2 · ")
    assert elsewhere.ephemeral and elsewhere.content == (
        "I'm already playing in 🔊 Lounge: join it there, or /stop first")
    assert outsider.ephemeral and outsider.content == "Only members in 🔊 Lounge can do that"
    assert skipped.content == f"⏭ Skipped clip #{long_one}."
    assert stopped.content == ("⏹ Stopped by fan: 1 clip(s) dropped from the queue, and I left "
                               "voice.")
    assert after_stop == [("skipped",), ("stopped",)]
    assert rows(h.db, "SELECT status FROM play_queue ORDER BY id")[-1] == ("played",)
    assert left[0].content == "👋 Left 🔊 Lounge after 0.2 s with nothing to play."
    assert left[0].custom_ids == [] and voice_open(api) is None
    api.assert_no_errors()


async def test_party_arena_plays_a_then_b_blind_and_takes_the_arena_vote(
        api, tmp_path, tiny_registry):
    host, fan = await in_voice(api, "host", "fan")
    models = tiny_registry.names()
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        inter = await api.slash("party arena", {"style": "folk", "bars": 1}, user=host)
        party = await inter.wait_original(timeout=SLOW)
        a = await wait_state(api, party.id, lambda m: "Now playing A" in m.content)
        b = await wait_state(api, party.id, lambda m: "Now playing B" in m.content)
        voted = await (await api.click(b, "arena:1:b", user=fan)).wait_original(
            lambda m: not m.loading, timeout=SLOW)
        heard = await api.changes.wait_for(
            lambda: [m for m in api.channel_messages() if m.content.startswith("🏁")],
            timeout=SLOW, what="the end of the arena party")
    clip_a, clip_b = rows(h.db, "SELECT clip_a, clip_b FROM arena_pairs")[0]
    assert rows(h.db, "SELECT clip_id, status FROM play_queue ORDER BY id") == [
        (clip_a, "played"), (clip_b, "played")]
    assert a.custom_ids[:4] == ["arena:1:a", "arena:1:b", "arena:1:tie", "arena:1:bad"]
    for message in (a, b, *heard):  # blind: no model named anywhere
        assert not [m for m in models if m in message.content]
    assert voted.ephemeral and voted.content.startswith("Your vote on arena #1: **B better**")
    assert rows(h.db, "SELECT pair_id, user_id, choice FROM arena_votes") == [(1, fan.id, "b")]
    assert rows(h.db, "SELECT kind, status, pair_id FROM parties") == [("arena", "done", 1)]
    api.assert_no_errors()


async def test_the_console_names_the_file_to_play_and_says_voice_needs_discord(app):
    out = io.StringIO()
    console = Console(app, console_user("console"), out)
    for line in ("/play", "/compose bars:1 seed:4", "/play", "/play clip:1", "/queue", "/skip",
                 "/stop", "/party style:jazz count:3", "/party arena", "/party new count:1"):
        await console.execute(line)
    said = out.getvalue().splitlines()
    mp3 = app.output_dir / "clip-1.mp3"
    assert said[0] == ("error: no clip has been made in this channel yet: /compose one, or "
                       "/play clip:<number>")
    plays = [s for s in said if s.startswith("clip #1: ") and "play " in s]
    assert len(plays) == 2 and all(s.endswith(f": play {mp3} (voice needs Discord to play it "
                                              "for a channel)") for s in plays)
    assert mp3.exists()
    needs = "error: voice needs Discord: the console has no voice channel to play in"
    assert [s.startswith(needs) for s in said[-6:-1]] == [True] * 5
    assert said[-1] == "error: count must be between 2 and 10 (got 1)"


async def test_without_the_voice_libraries_play_says_what_is_missing(
        api, tmp_path, tiny_registry, monkeypatch):
    lounge = api.add_voice_channel("Lounge")
    fan = api.add_member(name="fan")
    await api.join_voice(fan, lounge)
    monkeypatch.setattr("discord.voice_client.has_nacl", False)
    async with cadenza(api, tmp_path, tiny_registry, voice=True):
        refused = await (await api.slash("play", user=fan)).wait_original()
        party = await (await api.slash("party new", user=fan)).wait_original()
        helped = await (await api.slash("help", user=fan)).wait_original()
    missing = ("Voice is not available on this Cadenza: the PyNaCl package is not installed "
               "(./run.sh installs it). Everything else works as usual: /compose, the buttons, "
               "/top")
    assert refused.ephemeral and refused.content == missing
    assert party.ephemeral and party.content == missing
    assert helped.embeds and api.voice.connections == []


async def test_stop_ends_a_party_and_ranks_what_was_heard(api, tmp_path, tiny_registry):
    host, fan = await in_voice(api, "host", "fan")
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        message, first = await first_party_clip(
            api, host, {"style": "classical", "count": 4, "bars": 4})
        await vote(api, message, first, (fan,), (3,))
        stopped = await (await api.slash("stop", user=fan)).wait_original(
            lambda m: not m.loading, timeout=SLOW)
        text = (await api.changes.wait_for(lambda: ranking(api), timeout=SLOW,
                                           what="the ranking"))[0]
    assert stopped.content.startswith("⏹ Stopped by fan: ")
    assert text == ("🏆 **Listening party #1 stopped** — 1 clip(s), 1 vote(s) counted (a clip's "
                    f"own maker's vote is not)\n1. clip #{first} — 3.00★ from 1 vote(s) "
                    "(played 1st)")
    assert rows(h.db, "SELECT status FROM parties") == [("stopped",)]
    assert ("playing",) not in rows(h.db, "SELECT status FROM play_queue")
    assert api.voice.active(api.guild_id) is None


async def test_another_servers_published_clip_plays_and_is_rated_as_itself(
        api, tmp_path, tiny_registry):
    """A published clip of server A played in server B: B hears A's clip (not B's own clip
    with the same number), and the stars under it rate A's clip by its public id."""
    other = api.add_guild("Other Guild")
    lounge = api.add_voice_channel("Lounge", guild=other)
    bea = api.add_member(name="bea", guild=other)
    await api.join_voice(bea, lounge)
    async with cadenza(api, tmp_path, tiny_registry, voice=True,
                       owner_ids=frozenset({api.guild.owner.id})) as h:
        await (await api.slash("sync", {"scope": "global"}, user=api.guild.owner)
               ).wait_original()  # the commands in every server, B included
        await compose(api, seed=1)  # A's #1 (1 bar)
        await compose(api, bars=3, seed=2)  # A's #2 (3 bars), to be published
        theirs = await (await api.slash("compose", {"bars": 1, "tempo": 200, "seed": 3},
                                        user=bea, channel_id=other.channel_id)).wait_original(
            is_clip, timeout=SLOW)
        published = await (await api.slash("publish", {"clip": 2})).wait_original(
            lambda m: "public" in m.content, timeout=SLOW)
        public = int(re.search(r"/clip (\d+)", published.content)[1])  # type: ignore[index]
        inter = await api.slash("play", {"clip": public}, user=bea, channel_id=other.channel_id)
        answer = await inter.wait_original(lambda m: not m.loading, timeout=SLOW)
        connection = await api.wait_voice(lambda c: c.mode is not None, guild_id=other.id,
                                          timeout=SLOW)
        now_playing = await api.changes.wait_for(
            lambda: next((m for m in api.channel_messages(other.channel_id)
                          if "Now playing" in m.content), None),
            timeout=SLOW, what="the now playing message")
        click = await api.click(now_playing, f"rate:{public}:5", user=bea)
        voted = await click.wait_original(lambda m: not m.loading, timeout=SLOW)
        await h.wait_until(lambda: rows(h.db, "SELECT status FROM play_queue") == [("played",)],
                           "the clip to finish playing", timeout=SLOW)
    assert theirs.embeds[0]["title"].startswith("Clip #1 —")  # B's own #1 exists
    assert answer.content == f"▶ Playing clip #{public} in 🔊 Lounge."
    assert f"clip #{public} · " in now_playing.content
    assert f"rate:{public}:5" in now_playing.custom_ids
    # what B heard is A's 3-bar clip, frame for frame
    assert len(connection.audio_frames()) == ffmpeg_frames(tmp_path / "out" / "clip-2.mp3")
    assert voted.content.startswith(f"You rated clip #{public} ★★★★★")
    assert rows(h.db, "SELECT clip_id, stars FROM ratings") == [(2, 5)]
    api.assert_no_errors()


async def test_a_clip_that_fails_to_play_is_reported_with_an_error_id_and_the_next_plays(
        api, tmp_path, tiny_registry, monkeypatch):
    lounge = api.add_voice_channel("Lounge")
    fan = api.add_member(name="fan")
    await api.join_voice(fan, lounge)
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        first, second = await compose(api, seed=1), await compose(api, seed=2)
        real_pcm = h.app.listening.pcm

        async def pcm(entry):  # type: ignore[no-untyped-def]
            if entry.number == first:
                raise RuntimeError("a bug while decoding")
            return await real_pcm(entry)

        monkeypatch.setattr(h.app.listening, "pcm", pcm)
        for number in (first, second):
            await (await api.slash("play", {"clip": number}, user=fan)).wait_original(
                lambda m: not m.loading, timeout=SLOW)
        await h.wait_until(lambda: rows(h.db, "SELECT status FROM play_queue ORDER BY id") ==
                           [("skipped",), ("played",)], "the second clip to play", timeout=SLOW)
    told = [m.content for m in api.channel_messages() if m.content.startswith("⚠️")]
    assert len(told) == 1
    assert re.fullmatch(rf"⚠️ Clip #{first} could not be played; the admins have been told "
                        r"\(error id `[0-9a-f]+`\)\. Moving on\.", told[0])
    assert "a bug" not in told[0]
    api.assert_no_errors()


async def test_a_party_whose_voice_connection_fails_does_not_block_the_next_party(
        api, tmp_path, tiny_registry, monkeypatch):
    from cadenza.deadlines import StageTimeout
    from cadenza.discord.player import GuildPlayer

    (host,) = await in_voice(api, "host")

    async def connect(self, channel):  # type: ignore[no-untyped-def]
        raise StageTimeout("voice", 20.0)  # as when Discord's voice server never answers

    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        with monkeypatch.context() as m:
            m.setattr(GuildPlayer, "connect", connect)
            failed = await api.slash("party new", {"count": 2}, user=host)
            # the party's message was posted; the error follows it (and it is taken down)
            first = await failed.wait_followup(lambda msg: msg.content.startswith("Sorry"),
                                               timeout=SLOW)
        again, _ = await first_party_clip(api, host, {"count": 2})
        statuses = rows(h.db, "SELECT status FROM parties ORDER BY id")
    assert "joining the voice channel took longer than 20 s" in first.content
    assert "Listening party #2" in again.content
    assert statuses[0] == ("stopped",)


@pytest.mark.parametrize("missing, named", [
    ("davey", "the davey package (Discord's voice encryption)"),
    ("opus", "the Opus library (Debian package libopus0)"),
])
def test_each_missing_voice_library_is_named(missing, named, monkeypatch):
    from cadenza.discord import player

    if missing == "davey":
        monkeypatch.setattr("discord.voice_state.has_dave", False)
    else:
        monkeypatch.setattr("discord.opus.is_loaded", lambda: False)
        monkeypatch.setattr("ctypes.util.find_library", lambda name: None)
    assert player.voice_problem() == (
        f"voice is not available on this Cadenza: {named} is not installed (./run.sh installs "
        "it). Everything else works as usual: /compose, the buttons, /top")


async def test_without_the_speak_permission_play_says_so(api, tmp_path, tiny_registry):
    lounge = api.add_voice_channel("Lounge")
    fan = api.add_member(name="fan")
    await api.join_voice(fan, lounge)
    api.guild.set_role_permissions(api.guild.id, payloads.EVERYONE_PERMISSIONS & ~payloads.SPEAK)
    async with cadenza(api, tmp_path, tiny_registry, voice=True) as h:
        number = await compose(api, seed=5)
        refused = await (await api.slash("play", {"clip": number}, user=fan)).wait_original()
    assert refused.ephemeral and refused.content == (
        "I may not speak in 🔊 Lounge: a server admin can give Cadenza the Speak permission "
        "there")
    assert api.voice.connections == [] and rows(h.db, "SELECT * FROM play_queue") == []
