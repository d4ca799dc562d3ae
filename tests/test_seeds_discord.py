"""Seeds through the real discord.py bot and the loopback Discord double: /seed share with typed
notes and attachments (good, malformed, over the size cap), list/show/tree/delete with their
permissions, /compose motif:, /seed blend, the Continue and Variation buttons (also after a
restart), "built on" in /clip, seeded jobs surviving a restart, and console parity."""

from __future__ import annotations

import io

import mido
import pytest
from discord_double import DiscordDouble, MessageSnapshot
from test_discord_bot import SLOW, cadenza, clip_buttons, is_clip, rows

from cadenza.console import Console
from cadenza.members import UserRef

MANAGE_GUILD = 1 << 5
RIFF = "C4/8 D E F G/4 E | D/2 C/2"


@pytest.fixture
async def api():
    async with DiscordDouble() as double:
        yield double


def melody_file(pitches: list[int]) -> bytes:
    track = mido.MidiTrack()
    for p in pitches:
        track.append(mido.Message("note_on", note=p, velocity=90, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=480))
    song = mido.MidiFile(type=0, ticks_per_beat=480)
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def downloads(api: DiscordDouble) -> list[str]:
    return [r.path for r in api.requests if r.path.startswith("/attachments/")]


def field(message: MessageSnapshot, name: str) -> str:
    return next(f["value"] for f in message.embeds[0]["fields"] if f["name"] == name)


async def share(api: DiscordDouble, options: dict, user=None) -> MessageSnapshot:  # type: ignore[no-untyped-def]
    inter = await api.slash("seed share", options, user=user)
    return await inter.wait_original()


# ---------------------------------------------------------------------------------------------
# Sharing


async def test_share_typed_notes_list_and_autocomplete(api, tmp_path, tiny_registry):
    bob = api.add_member(name="bob")
    async with cadenza(api, tmp_path, tiny_registry) as h:
        public = await api.slash("seed share", {"name": "Riff", "notes": RIFF, "public": True})
        shared = await public.wait_original()
        private = await share(api, {"name": "secret", "notes": "E4/2 G"})
        taken = await api.slash("seed share", {"name": "riff", "notes": "C4"}, user=bob)
        refused = await taken.wait_original()
        both = await api.slash("seed share", {"name": "x", "notes": "C4", "clip": 1}, user=bob)
        refused_both = await both.wait_original()
        listed = await (await api.slash("seed list", user=bob)).wait_original()
        mine = await (await api.slash("seed list", {"query": "SEC"})).wait_original()
        suggestions = await (await api.autocomplete("compose", {"motif": "r"},
                                                    focused="motif", user=bob)).wait_response()
        own = await (await api.autocomplete("seed show", {"name": ""},
                                            focused="name")).wait_response()
    assert public.response.type == 4 and not shared.ephemeral  # answered at once, public
    assert shared.embeds[0]["title"] == "🌱 Seed “Riff” shared"
    assert "2 bars · C · 4/4 · 120 bpm · 🌍 public" in shared.embeds[0]["description"]
    assert "`/compose motif:Riff`" in shared.embeds[0]["description"]
    assert private.ephemeral and "🔒 only its owner" in private.embeds[0]["description"]
    assert refused.ephemeral and taken.response.type == 4  # refused before acknowledging
    assert refused.content == "There is already a seed named “Riff” here (by tester): pick " \
                              "another name"
    assert refused_both.content == ("/seed share takes the music from one of clip:, file: or "
                                    "notes: (got clip and notes)")
    assert listed.ephemeral and listed.embeds[0]["description"].startswith("**Riff** by tester")
    assert "secret" not in listed.embeds[0]["description"]  # bob does not see it
    assert mine.embeds[0]["title"] == "Seeds matching “SEC”"
    assert mine.embeds[0]["description"].startswith("**secret** by tester — 1 bar")
    assert [c["value"] for c in suggestions.choices] == ["Riff"]
    assert [c["value"] for c in own.choices] == ["Riff", "secret"]
    assert rows(h.db, "SELECT name, public, guild_id FROM seeds ORDER BY id") == [
        ("Riff", 1, api.guild_id), ("secret", 0, api.guild_id)]
    api.assert_no_errors()


async def test_attachments_good_malformed_and_over_the_cap(api, tmp_path, tiny_registry):
    good = api.attachment(melody_file([64, 62, 60, 62, 64, 64, 64]), "mary.mid")
    junk = api.attachment(b"GIF89a" + bytes(64), "cat.mid")
    huge = api.attachment(b"MThd" + bytes((1 << 20) + 10), "huge.mid")
    async with cadenza(api, tmp_path, tiny_registry) as h:
        taken = await api.slash("seed share", {"name": "mary", "file": good, "public": True})
        shared = await taken.wait_original()
        bad = await api.slash("seed share", {"name": "cat", "file": junk})
        # a private share was acknowledged privately: the refusal replaces the placeholder
        refused = await bad.wait_original(lambda m: m.content.startswith("Cannot"))
        big = await api.slash("seed share", {"name": "huge", "file": huge})
        too_big = await big.wait_original()
    assert shared.embeds[0]["title"] == "🌱 Seed “mary” shared"
    assert "from the file mary.mid" in shared.embeds[0]["description"]
    assert refused.ephemeral and refused.content == (
        "Cannot use cat.mid: not a MIDI file (it looks like a GIF image)")
    assert too_big.ephemeral and big.response.type == 4
    assert too_big.content == ("The file is 1,048,590 bytes; the limit is 1,048,576 bytes (1 MiB) "
                               "for a seed's MIDI file")
    # the over-size file was never downloaded; the other two were, once each
    fetched = downloads(api)
    assert len(fetched) == 2 and not any("huge.mid" in p for p in fetched)
    assert rows(h.db, "SELECT name, source_kind, source_ref FROM seeds") == [
        ("mary", "upload", "mary.mid")]
    assert rows(h.db, "SELECT COUNT(*) FROM lineage") == [(0,)]


# ---------------------------------------------------------------------------------------------
# Show, tree, delete


async def test_show_tree_and_who_may_delete(api, tmp_path, tiny_registry):
    bob = api.add_member(name="bob")
    mod = api.add_member(name="mod", permissions=MANAGE_GUILD)
    async with cadenza(api, tmp_path, tiny_registry) as h:
        await share(api, {"name": "riff", "notes": RIFF, "public": True})
        await share(api, {"name": "hook", "notes": "G4/4 A B C5", "public": True})
        show = await api.slash("seed show", {"name": "RIFF"}, user=bob)
        shown = await show.wait_original(lambda m: bool(m.embeds), timeout=SLOW)
        inter = await api.slash("compose", {"motif": "riff", "bars": 1, "seed": 3}, user=bob)
        clip = await inter.wait_original(is_clip, timeout=SLOW)
        tree = await (await api.slash("seed tree", {"name": "riff"})).wait_original()
        meddle = await (await api.slash("seed delete", {"name": "riff"},
                                        user=bob)).wait_original()
        by_mod = await (await api.slash("seed delete", {"name": "hook"},
                                        user=mod)).wait_original()
        by_owner = await (await api.slash("seed delete", {"name": "riff"})).wait_original()
        again = await (await api.slash("clip", {"clip": 1})).wait_original(is_clip, timeout=SLOW)
    assert shown.filenames == ["cadenza-seed-1.mp3", "cadenza-seed-1.mid", "cadenza-seed-1.png"]
    assert shown.embeds[0]["title"] == "🌱 Seed “riff”" and not shown.ephemeral
    assert shown.embeds[0]["image"]["url"] == shown.attachments[2]["url"]
    assert field(shown, "Notes") == "`C4/8 D4 E4 F4 G4/4 E4 | D4/2 C4`"
    assert field(clip, "Built on") == "↳ continues seed “riff” by tester\nCredits: tester"
    assert field(clip, "Bars") == "3 (2 seed + 1 new)"
    assert clip.custom_ids == clip_buttons(1)
    assert tree.embeds[0]["description"] == (
        "```\n🌱 seed “riff” by tester\n└─ clip #1 (jazz) by bob — continues\n```")
    assert meddle.ephemeral and meddle.content == (
        "Only tester, who shared “riff”, or a member with Manage Server can delete it")
    assert by_mod.content.startswith("Deleted seed “hook” (shared by tester).")
    assert by_owner.content.startswith("Deleted seed “riff”")
    # the clip still credits the deleted seed
    assert field(again, "Built on") == ("↳ continues seed “riff” by tester (deleted)\n"
                                        "Credits: tester")
    assert rows(h.db, "SELECT name, deleted_by FROM seeds ORDER BY id") == [
        ("riff", api.member.id), ("hook", mod.id)]
    api.assert_no_errors()


# ---------------------------------------------------------------------------------------------
# Buttons, blend, restarts


async def test_continue_and_variation_buttons_work_after_a_restart(api, tmp_path, tiny_registry):
    fan = api.add_member(name="fan")
    async with cadenza(api, tmp_path, tiny_registry):
        inter = await api.slash("compose", {"style": "folk", "bars": 1, "seed": 5})
        clip = await inter.wait_original(is_clip, timeout=SLOW)
    assert clip.custom_ids == clip_buttons(1)
    by_id = {c: clip.component(c) for c in ("continue:1:4", "continue:1:8", "vary:1")}
    assert [by_id[c]["label"] for c in by_id] == ["+4 bars", "+8 bars", "Variation"]
    rows_of_buttons = [len(row["components"]) for row in clip.components]
    assert rows_of_buttons == [5, 5]  # stars; reroll, +4, +8, variation, play

    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as again:
        more = await api.click(clip, "continue:1:4", user=fan)
        assert (await more.wait_response()).type == 5
        continued = await more.wait_original(is_clip, timeout=SLOW)
        vary = await api.click(clip, "vary:1", user=fan)
        varied = await vary.wait_original(is_clip, timeout=SLOW)
    assert continued.embeds[0]["title"] == "Clip #2 — folk"
    assert field(continued, "Bars") == "5 (1 seed + 4 new)"
    assert field(continued, "Built on") == "↳ continues clip #1 (folk) by tester\nCredits: tester"
    assert field(varied, "Built on") == "↳ a variation of clip #1 (folk) by tester\nCredits: " \
                                        "tester"
    assert rows(again.db, "SELECT id, user_id, bars FROM clips ORDER BY id") == [
        (1, api.member.id, 1), (2, fan.id, 5), (3, fan.id, 1)]
    assert rows(again.db, "SELECT child_clip_id, parent_clip_id, relation FROM lineage "
                          "ORDER BY id") == [(2, 1, "continues"), (3, 1, "varies")]
    api.assert_no_errors()


async def test_blend_and_seeded_jobs_survive_a_restart(api, tmp_path, tiny_registry):
    alice, bob = api.add_member(name="alice"), api.add_member(name="bob")
    async with cadenza(api, tmp_path, tiny_registry) as h:
        await share(api, {"name": "up", "notes": RIFF, "public": True}, user=alice)
        await share(api, {"name": "down", "notes": "C5/4 B4 A G | F/2 E/2", "public": True},
                    user=bob)
        blend = await api.slash("seed blend", {"a": "up", "b": "down", "bars": 6, "seed": 4},
                                user=bob)
        blended = await blend.wait_original(is_clip, timeout=SLOW)
    assert field(blended, "Model") == "vae"
    assert field(blended, "Built on") == ("↳ blends seed “up” by alice → seed “down” by bob\n"
                                          "Credits: alice, bob")

    # Held at the gate: alice's seeded compose runs, bob's continuation of the blend waits.
    async with cadenza(api, tmp_path, tiny_registry, gated=True, dev_guild=False) as h:
        running = await api.slash("compose", {"motif": "up", "bars": 1, "seed": 9}, user=alice)
        await h.wait_until(lambda: h.composer.entered, "the seeded job to start")
        waiting = await api.click(blended, "continue:1:4", user=bob)
        queued = await waiting.wait_original(lambda m: "Queued" in m.content)
        progress = await running.wait_original(lambda m: "Composing" in m.content)
    assert "continuing seed “up”" in progress.content
    assert "continuing clip #1" in queued.content
    params = [p for (p,) in rows(h.db, "SELECT params_json FROM jobs WHERE status IN "
                                       "('queued', 'running') ORDER BY id")]
    assert '"origin":{"kind":"seed","label":"seed \\u201cup\\u201d","seed_id":1}' in params[0]
    assert '"origin":{"clip_id":1,"kind":"continue","label":"clip #1"}' in params[1]

    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as h2:
        def notices() -> list[MessageSnapshot] | None:
            found = [m for m in api.channel_messages() if "interrupted" in m.content]
            return found if len(found) == 2 else None

        told = {m.content.split(">")[0] + ">": m for m in
                await h2.wait_until(notices, "two restart notices")}
        assert "continuing seed “up”" in told[alice.mention].content
        assert "continuing clip #1" in told[bob.mention].content
        retried = []
        for member in (alice, bob):
            notice = told[member.mention]
            click = await api.click(notice, notice.custom_ids[0], user=member)
            retried.append(await click.wait_original(is_clip, timeout=SLOW))
    assert field(retried[0], "Built on") == "↳ continues seed “up” by alice\nCredits: alice"
    assert field(retried[0], "Bars") == "3 (2 seed + 1 new)"
    assert field(retried[1], "Built on").startswith("↳ continues clip #1 (jazz) by bob\n")
    assert rows(h2.db, "SELECT id, user_id FROM clips ORDER BY id") == [
        (1, bob.id), (2, alice.id), (3, bob.id)]


# ---------------------------------------------------------------------------------------------
# One command layer


@pytest.mark.parametrize(("options", "line"), [
    ({"name": "x", "notes": "C4", "clip": 1}, '/seed share name:x notes:C4 clip:1'),
    ({"name": "<bad>", "notes": "C4"}, '/seed share name:"<bad>" notes:C4'),
    ({"name": "x", "notes": "C4 Q9"}, '/seed share name:x notes:"C4 Q9"'),
    ({"name": "x", "clip": 1, "bars": "4-1"}, "/seed share name:x clip:1 bars:4-1"),
    ({"name": "x", "notes": "C4", "meter": "3/4", "bars": "1-2"},
     "/seed share name:x notes:C4 meter:3/4 bars:1-2"),
])
async def test_discord_and_console_refuse_seed_input_alike(api, tmp_path, tiny_registry,
                                                           options, line):
    async with cadenza(api, tmp_path, tiny_registry) as h:
        inter = await api.slash("seed share", options)
        answer = await inter.wait_original()
        out = io.StringIO()
        await Console(h.app, UserRef(0, "console"), out=out).execute(line)
    console_text = out.getvalue().strip().removeprefix("error: ")
    assert answer.ephemeral
    assert answer.content == console_text[:1].upper() + console_text[1:]
    assert rows(h.db, "SELECT COUNT(*) FROM seeds") == [(0,)]
