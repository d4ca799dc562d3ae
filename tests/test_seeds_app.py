"""Seeds through the application (real store, tiny models, real rendering): sharing from notes,
clips and uploads, who may use and delete what, composing, continuing, varying, blending and
rerolling with lineage, and the upload path under fuzzing (stored whole or not at all)."""

from __future__ import annotations

import asyncio
import io
import itertools
import sqlite3
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadenza.app import Cadenza
from cadenza.arrange import unswing
from cadenza.errors import ResourceError, UserError
from cadenza.jobs import Done, job_params, origin_from_params
from cadenza.members import UserRef, Where
from cadenza.models.registry import ModelRegistry
from cadenza.music.midi_io import midi_to_score, score_to_midi
from cadenza.music.motif import Motif
from cadenza.music.notation import parse_notes
from cadenza.music.score import GRID, Meter, Note, Score, Track
from cadenza.origin import Origin
from cadenza.seeds import MAX_UPLOAD_BYTES, Upload, preview_score
from cadenza.service import Composer, ComposeRequest, Resolved
from cadenza.store import Store
from cadenza.store_rows import NewClip
from cadenza.wiring import job_queue

ALICE, BOB, CAROL = UserRef(1, "alice"), UserRef(2, "bob"), UserRef(3, "carol")
HERE = Where(guild_id=10, channel_id=20)
RIFF = "C4/8 D E F G/4 E | D/2 C/2"


def midi_file(pitches: list[int], *, ticks: int = 480, bpm: float = 120) -> bytes:
    """A real type-0 MIDI melody of quarter notes."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=round(60e6 / bpm), time=0)])
    for p in pitches:
        track.append(mido.Message("note_on", note=p, velocity=90, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=ticks))
    song = mido.MidiFile(type=0, ticks_per_beat=ticks)
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def upload(data: bytes, name: str = "tune.mid", *, size: int | None = -1) -> Upload:
    async def read() -> bytes:
        return data

    return Upload(name, len(data) if size == -1 else size, read)


def counts(app: Cadenza) -> dict[str, int]:
    conn = sqlite3.connect(app.store.path)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("users", "clips", "seeds", "lineage", "jobs")}
    finally:
        conn.close()


def same_line(got, expected) -> bool:  # type: ignore[no-untyped-def]
    """The same onsets and intervals: the arrangement may move a line by whole octaves into its
    instrument's range, and swings or trims durations."""
    if [n.start for n in got] != [n.start for n in expected]:
        return False
    shifts = {a.pitch - b.pitch for a, b in zip(got, expected, strict=True)}
    return len(shifts) <= 1 and all(s % 12 == 0 for s in shifts)


async def share_riff(app: Cadenza, name: str = "riff", user: UserRef = ALICE, *,
                     public: bool = True, notes: str = RIFF) -> int:
    return (await app.seeds.share_seed(name, user, HERE, notes=notes, public=public)).seed.id


async def make(app: Cadenza, plan, user: UserRef = BOB):  # type: ignore[no-untyped-def]
    resolved, origin = plan
    return await app.compose(resolved, user, HERE, origin=origin)


# ---------------------------------------------------------------------------------------------
# Sharing


async def test_share_from_notes_keeps_the_motif_and_passes_warnings_back(app: Cadenza) -> None:
    result = await app.seeds.share_seed("  Blue   Riff ", ALICE, HERE, notes="G4/4 | " + RIFF,
                                  public=True)
    seed = result.seed
    assert (seed.name, seed.user_name, seed.guild_id, seed.public) == ("Blue Riff", "alice", 10,
                                                                      True)
    assert (seed.source_kind, seed.source_ref) == ("notes", "G4/4 | " + RIFF)
    assert any("pickup" in w for w in result.warnings)  # the one-beat first bar
    motif = Motif.from_json(seed.motif_json)
    assert motif == result.motif and motif.meter == (4, 4)
    assert [n.pitch for n in motif.notes] == [67, 60, 62, 64, 65, 67, 64, 62, 60]
    waltz = await app.seeds.share_seed("waltz", ALICE, HERE, notes="C4/4 E G | F/2.",
                                       meter=Meter(3, 4))
    assert waltz.motif.meter == (3, 4) and waltz.motif.bars == 2 and not waltz.warnings


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"notes": "C4/4 H4"}, "cannot read the notes: .*H4"),
    ({"notes": "r/1 | r/1"}, "cannot read the notes: .*note"),
    ({"notes": "C4/4", "meter": (5, 4)}, "cannot read the notes"),
    ({"clip_id": 99}, "no clip #99"),
    ({"upload": upload(b"")}, "cannot use tune.mid: the file is empty"),
    ({"upload": upload(b"GIF89a" + bytes(100), "cat.mid")}, "cannot use cat.mid: not a MIDI file "
                                                             r"\(it looks like a GIF image\)"),
    ({"upload": upload(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0", "bare.mid")},
     "cannot use bare.mid: .*no"),
    ({}, "one of a clip, a file or notes"),
    ({"notes": "C4", "clip_id": 1}, "one of a clip, a file or notes"),
])
async def test_refused_shares_say_why_and_store_nothing(app: Cadenza, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    before = counts(app)
    with pytest.raises(UserError, match=message) as refused:
        await app.seeds.share_seed("tune", CAROL, HERE, **kwargs)
    assert "\n" not in str(refused.value) and "Traceback" not in str(refused.value)
    assert counts(app) == before


async def test_names_are_checked_and_taken_names_refused(app: Cadenza) -> None:
    await share_riff(app)
    with pytest.raises(UserError, match="already a seed named “riff” here \\(by alice\\)"):
        await app.seeds.share_seed("RIFF", BOB, HERE, notes="C4")
    with pytest.raises(UserError, match="seed names use letters"):
        await app.seeds.share_seed("<@123>", BOB, HERE, notes="C4")
    with pytest.raises(UserError, match="at most 32 characters"):
        await app.seeds.share_seed("x" * 33, BOB, HERE, notes="C4")
    # The same name in another server is another seed.
    other = await app.seeds.share_seed("riff", BOB, Where(11, 1), notes="C4")
    assert other.seed.guild_id == 11


async def test_share_a_bar_range_of_a_swung_clip(app: Cadenza) -> None:
    made = await app.compose(ComposeRequest(style="jazz", bars=2, seed=4), BOB, HERE)
    result = await app.seeds.share_seed("lick", ALICE, HERE, clip_id=made.clip_id, bar_range=(2, 2))
    assert result.seed.source_ref == f"clip #{made.clip_id}, bars 2-2"
    clip = await app.store.get_clip(made.clip_id)
    assert clip is not None
    # jazz swings its eighths; the seed is the straight line the arrangement swung
    expected, _ = Motif.from_score(unswing(midi_to_score(clip.midi)), (2, 2))
    assert result.motif == expected
    lineage = (await app.seeds.show_seed("lick", ALICE, HERE)).lineage
    assert lineage.text() == f"cut from clip #{made.clip_id} (jazz) by bob · credits: bob"
    with pytest.raises(UserError, match="bar 3 is past the end"):
        await app.seeds.share_seed("later", ALICE, HERE, clip_id=made.clip_id, bar_range=(3, 4))


async def test_uploads_are_size_checked_before_reading(app: Cadenza) -> None:
    async def must_not_read() -> bytes:
        raise AssertionError("a file over the limit was downloaded")

    big = Upload("huge.mid", MAX_UPLOAD_BYTES + 1, must_not_read)
    # 1 MiB + 1 byte is not "1.0 MiB, up to 1 MiB": near the limit the sizes are exact
    with pytest.raises(UserError, match=r"^the file is 1,048,577 bytes; the limit is 1,048,576 "
                                        r"bytes \(1 MiB\) for a seed's MIDI file$"):
        await app.seeds.share_seed("huge", ALICE, HERE, upload=big)
    # A size the front end did not know is checked once read.
    liar = upload(midi_file([60]) + bytes(MAX_UPLOAD_BYTES), "liar.mid", size=None)
    with pytest.raises(UserError, match=r"\(1 MiB\) for a seed's MIDI file"):
        await app.seeds.share_seed("liar", ALICE, HERE, upload=liar)
    good = await app.seeds.share_seed("mary", ALICE, HERE, upload=upload(
        midi_file([64, 62, 60, 62, 64, 64, 64]), "../../etc/mary\x00.mid"))
    assert good.seed.source_ref == "mary.mid"
    assert [n.pitch for n in good.motif.notes] == [64, 62, 60, 62, 64, 64, 64]
    assert good.motif.bars == 2


# ---------------------------------------------------------------------------------------------
# Who may use and delete a seed


async def test_private_seeds_are_their_owners_only(app: Cadenza) -> None:
    await share_riff(app, "secret", ALICE, public=False)
    await share_riff(app, "open", CAROL, public=True)
    assert await app.seeds.seed_names(BOB, HERE) == ["open"]
    assert await app.seeds.seed_names(ALICE, HERE) == ["open", "secret"]
    for attempt in (app.seeds.plan_compose({"motif": "secret"}, BOB, HERE),
                    app.seeds.show_seed("secret", BOB, HERE),
                    app.seeds.seed_tree("Secret", BOB, HERE),
                    app.seeds.plan_blend("open", "secret", BOB, HERE)):
        with pytest.raises(UserError, match="seed “secret” is private to alice"):
            await attempt
    with pytest.raises(UserError, match="no seed named “nope” here"):
        await app.seeds.plan_compose({"motif": "nope"}, BOB, HERE)
    _, origin = await app.seeds.plan_compose({"motif": "secret", "bars": 1}, ALICE, HERE)
    assert origin.kind == "seed" and origin.label == "seed “secret”"
    with pytest.raises(UserError, match="the vae model continues no seeds: use /seed blend"):
        await app.seeds.plan_compose({"motif": "open", "model": "vae"}, ALICE, HERE)
    with pytest.raises(UserError, match=r"^the gan model continues no seeds: use model lstm$"):
        await app.seeds.plan_compose({"motif": "open", "model": "gan"}, ALICE, HERE)


async def test_only_the_owner_or_a_manager_deletes(app: Cadenza) -> None:
    await share_riff(app, "mine", ALICE)
    await share_riff(app, "theirs", ALICE)
    with pytest.raises(UserError, match="only alice, who shared “mine”, or a member with Manage "
                                        "Server can delete it"):
        await app.seeds.delete_seed("mine", BOB, HERE)
    assert await app.store.find_seed(HERE.guild_id, "mine") is not None
    assert (await app.seeds.delete_seed("MINE", ALICE, HERE)).name == "mine"
    deleted = await app.seeds.delete_seed("theirs", CAROL, HERE, can_manage=True)
    gone = await app.store.get_seed(deleted.id)
    assert gone is not None and gone.deleted_by == CAROL.id
    with pytest.raises(UserError, match="no seed named “mine” here"):
        await app.seeds.delete_seed("mine", ALICE, HERE)


# ---------------------------------------------------------------------------------------------
# Building on seeds and clips


async def test_compose_from_a_seed_keeps_it_verbatim_and_credits_it(app: Cadenza) -> None:
    await share_riff(app)
    made = await make(app, await app.seeds.plan_compose({"motif": "riff", "bars": 1, "seed": 2,
                                                   "style": "folk"}, BOB, HERE))
    r = made.resolved
    assert (r.primer_bars, r.bars, r.total_bars) == (2, 1, 3)
    assert made.built_on == "continues seed “riff” by alice · credits: alice"
    riff = Motif.from_json((await app.store.find_seed(10, "riff")).motif_json)  # type: ignore[union-attr]
    score = midi_to_score(made.files.mid.read_bytes())
    assert same_line([n for n in score.track("lead").notes if n.start < 2 * 48], riff.notes)
    row = await app.store.get_clip(made.clip_id)
    assert row is not None and row.bars == 3 and row.params["origin"] == {
        "kind": "seed", "seed_id": 1, "label": "seed “riff”"}
    # /clip shows the same lineage; a reroll keeps the seed and also credits the clip
    assert (await app.library.clip(made.number, where=HERE)).built_on == made.built_on
    again = await make(app, await app.seeds.plan_reroll(made.number, where=HERE), CAROL)
    assert again.resolved.primer_bars == 2 and again.resolved.seed != r.seed
    assert again.built_on == ("continues seed “riff” by alice · a reroll of clip #1 (folk) by "
                              "bob · credits: alice, bob")


async def test_continue_and_vary_a_clip(app: Cadenza) -> None:
    first = await app.compose(ComposeRequest(style="folk", bars=2, seed=3), ALICE, HERE)
    more = await make(app, await app.seeds.plan_continue(first.number, 1, seed=5, where=HERE))
    assert (more.resolved.primer_bars, more.resolved.total_bars) == (2, 3)
    assert more.built_on == "continues clip #1 (folk) by alice · credits: alice"
    assert not more.remarks
    old = midi_to_score(first.files.mid.read_bytes())
    new = midi_to_score(more.files.mid.read_bytes()).track("lead").notes
    assert more.resolved.meter == first.resolved.meter  # the clip's meter, whatever the style
    assert same_line([n for n in new if n.start < 2 * old.bar_ticks], old.track("lead").notes)
    assert any(n.start >= 2 * old.bar_ticks for n in new)
    planned = await app.seeds.plan_variation(first.number, seed=6, where=HERE)
    varied = await make(app, planned, CAROL)
    assert varied.resolved.bars == 2 and varied.resolved.primer_bars == 0
    assert varied.built_on == "a variation of clip #1 (folk) by alice · credits: alice"
    tree = await app.seeds.share_seed("tail", CAROL, HERE, clip_id=more.clip_id)
    assert tree.seed.source_ref == "clip #2, bars 1-3"


async def test_a_long_clip_varies_whole_and_continues_from_its_last_16_bars(app: Cadenza) -> None:
    # A 17-bar clip stored directly (composing one would take a while); fast tempo keeps the
    # continuation's audio short.
    bar = GRID * 4
    lead = Track("Lead", notes=tuple(Note(b * bar, GRID, 60 + b % 12, 80) for b in range(17)))
    score = Score(tracks=(lead,), tempo=240.0, bars=17, style="folk")
    clip_id = await app.store.add_clip(NewClip(
        style="folk", bars=17, tempo=240.0, key="C", meter="4/4", temperature=1.0, seed=1,
        model="lstm", midi=score_to_midi(score), duration_s=17.0, user_id=ALICE.id,
        user_name=ALICE.name, params={"bars": 17}))
    # a variation re-samples the whole clip: seeds' 16-bar cap does not apply
    varied = await make(app, await app.seeds.plan_variation(clip_id, seed=2))
    assert (varied.resolved.bars, varied.resolved.primer_bars) == (17, 0)
    got = midi_to_score(varied.files.mid.read_bytes()).track("lead").notes
    assert [n.start for n in got] == [n.start for n in lead.notes]
    more = await make(app, await app.seeds.plan_continue(clip_id, 1, seed=1))
    assert more.remarks == ["continued from bars 2-17 of clip #1 (a seed holds at most 16 bars)"]
    assert (more.resolved.primer_bars, more.resolved.total_bars) == (16, 17)
    continued = midi_to_score(more.files.mid.read_bytes()).track("lead").notes
    assert same_line([n for n in continued if n.start < 16 * bar],
                     [Note(n.start - bar, n.duration, n.pitch, 80) for n in lead.notes[1:]])


async def test_blend_is_deterministic_for_a_seed_through_the_app(app: Cadenza) -> None:
    await share_riff(app, "up", ALICE)
    await share_riff(app, "down", BOB, notes="C5/4 B4 A G | F/2 E/2")
    plan = await app.seeds.plan_blend("up", "down", CAROL, HERE, bars=2, style="folk", seed=11)
    one, two = await make(app, plan), await make(app, plan)
    assert one.clip_id != two.clip_id
    assert one.files.mid.read_bytes() == two.files.mid.read_bytes()
    assert one.resolved.model == "vae" and one.resolved.bars == 2
    assert one.built_on == ("blends seed “up” by alice → seed “down” by bob · credits: alice, "
                            "bob")
    other = await make(app, await app.seeds.plan_blend("up", "down", CAROL, HERE, bars=2,
                                                 style="folk", seed=11))
    assert other.files.mid.read_bytes() == one.files.mid.read_bytes()  # planned afresh
    rerolled = await make(app, await app.seeds.plan_reroll(one.number, where=HERE))
    assert rerolled.origin.kind == "blend" and rerolled.resolved.model == "vae"
    with pytest.raises(UserError, match="two different seeds"):
        await app.seeds.plan_blend("up", "UP", CAROL, HERE)


async def test_blends_need_the_vae(tmp_path: Path, tiny_models: Path) -> None:
    registry = ModelRegistry({"lstm": tiny_models / "lstm" / "model.pt"})
    async with await Store.open(tmp_path / "c.db") as store:
        app = Cadenza(Composer(registry), store, output_dir=tmp_path / "out")
        try:
            await share_riff(app, "a")
            await share_riff(app, "b")
            with pytest.raises(ResourceError, match="blends need the vae model, which is not "
                                                    "installed \\(installed: lstm\\)"):
                await app.seeds.plan_blend("a", "b", ALICE, HERE)
        finally:
            await app.close()


async def test_a_deleted_seed_is_credited_but_not_built_on(app: Cadenza) -> None:
    await share_riff(app)
    planned = await app.seeds.plan_compose({"motif": "riff", "bars": 1, "seed": 1}, BOB, HERE)
    made = await make(app, planned)
    await app.seeds.delete_seed("riff", ALICE, HERE)
    assert (await app.library.clip(made.number, where=HERE)).built_on == (
        "continues seed “riff” by alice (deleted) · credits: alice")
    with pytest.raises(UserError, match="seed “riff” was deleted, so nothing new can be built"):
        await app.seeds.plan_reroll(made.number, where=HERE)
    with pytest.raises(UserError, match="no seed named “riff”"):
        await app.seeds.plan_compose({"motif": "riff"}, BOB, HERE)
    # A job admitted before the deletion fails with the same message, storing nothing.
    before = counts(app)
    with pytest.raises(UserError, match="was deleted"):
        await app.compose(made.resolved, BOB, HERE, origin=Origin("seed", seed_id=1))
    assert counts(app) == before


async def test_show_renders_once_and_the_notes_read_back(app: Cadenza) -> None:
    await share_riff(app)
    view = await app.seeds.show_seed("riff", BOB, HERE)
    assert view.files.mp3.read_bytes()[:3] in (b"ID3", b"\xff\xfb")
    assert view.files.png.read_bytes()[:4] == b"\x89PNG" and view.files.mid.name == "seed-1.mid"
    stored = midi_to_score(view.files.mid.read_bytes())
    assert {t.role for t in stored.tracks} == {"lead", "chords"}
    assert parse_notes(view.notes).tracks[0].notes == view.motif.notes
    mtime = view.files.mp3.stat().st_mtime_ns
    again = await app.seeds.show_seed("RIFF", ALICE, HERE)
    assert again.files.mp3.stat().st_mtime_ns == mtime  # kept, not re-rendered
    assert not list(view.files.mp3.parent.glob(".pending-*"))
    assert preview_score(view.motif).bars == view.motif.bars


async def test_seeded_jobs_keep_their_origin_in_the_queue_and_the_store(app: Cadenza) -> None:
    await share_riff(app)
    resolved, origin = await app.seeds.plan_compose({"motif": "riff", "bars": 1, "seed": 4}, BOB,
                                                    HERE)
    params = job_params(resolved, origin)
    assert Resolved.from_params(params) == resolved and origin_from_params(params) == origin
    assert origin_from_params(job_params(resolved, Origin())) == Origin()
    queue = job_queue(app)
    await queue.start()
    try:
        job = await queue.submit(resolved, BOB, HERE, origin)
        events = [event async for event in job.events()]
    finally:
        await queue.close()
    done = events[-1]
    assert isinstance(done, Done) and done.result.built_on.startswith("continues seed “riff”")
    row = await app.store.get_job(job.id)  # type: ignore[arg-type]
    assert row is not None and origin_from_params(row.params) == origin


# ---------------------------------------------------------------------------------------------
# Fuzzing the upload path: every file is stored whole or refused with nothing stored


VALID = midi_file([60, 62, 64, 65, 67, 65, 64, 62])


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        if not data:
            break
    return bytes(data)


def test_fuzzed_uploads_are_stored_whole_or_refused_cleanly(tmp_path: Path,
                                                            composer: Composer) -> None:
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(Store.open(tmp_path / "fuzz.db"))
    app = Cadenza(composer, store, output_dir=tmp_path / "out")
    names = (f"fuzz {n}" for n in itertools.count())
    outcomes = {"stored": 0, "refused": 0}

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(damaged(), st.binary(max_size=200)))
    def check(data: bytes) -> None:
        before = counts(app)
        try:
            result = loop.run_until_complete(
                app.seeds.share_seed(next(names), ALICE, HERE, upload=upload(data)))
        except UserError as e:
            assert "\n" not in str(e) and "error id" not in str(e), str(e)
            assert counts(app) == before
            outcomes["refused"] += 1
        else:
            assert Motif.from_json(result.seed.motif_json) == result.motif
            assert 1 <= result.motif.bars <= 16 and result.motif.notes
            assert counts(app)["seeds"] == before["seeds"] + 1
            outcomes["stored"] += 1

    try:
        check()
    finally:
        loop.run_until_complete(app.close())
        loop.run_until_complete(store.close())
        loop.close()
    assert outcomes["stored"] and outcomes["refused"]  # both paths were exercised


async def test_a_seed_typed_at_the_edge_of_the_keyboard_is_moved_into_range(app: Cadenza) -> None:
    low = await app.seeds.share_seed("deep", ALICE, HERE, notes="C0/4 D0 E0 F0")
    assert low.warnings == ["moved the melody up 3 octaves into the range the models play"]
    assert [n.pitch for n in low.motif.notes] == [48, 50, 52, 53]
    high = await app.seeds.share_seed("shrill", ALICE, HERE, notes="G9/4 G9 G9 G9")
    assert [n.pitch for n in high.motif.notes] == [79] * 4 and "down 4 octaves" in \
        high.warnings[0]
    made = await make(app, await app.seeds.plan_compose({"motif": "deep", "bars": 1, "seed": 3},
                                                  ALICE, HERE))
    assert made.resolved.primer_bars == 1


async def test_a_gan_clip_continues_and_varies_with_the_sequence_model(app: Cadenza) -> None:
    # stored directly: a tiny random GAN plays silence, the shipped one plays music
    bar = GRID * 4
    lead = Track("Lead", role="lead", notes=tuple(Note(i * GRID, GRID, 60 + i % 5, 80)
                                                  for i in range(8)))
    score = Score(tracks=(lead,), tempo=200.0, bars=2, style="folk")
    clip_id = await app.store.add_clip(NewClip(
        style="folk", bars=2, tempo=200.0, key="C", meter="4/4", temperature=1.0, seed=1,
        model="gan", midi=score_to_midi(score), duration_s=2.4, user_id=ALICE.id,
        user_name=ALICE.name, params={"bars": 2}))
    more, _ = await app.seeds.plan_continue(clip_id, 1, seed=2)
    varied, _ = await app.seeds.plan_variation(clip_id, seed=3)
    assert (more.model, varied.model) == ("lstm", "lstm")
    made = await make(app, await app.seeds.plan_variation(clip_id, seed=3))
    assert made.resolved.model == "lstm" and made.resolved.bars == 2
    got = midi_to_score(made.files.mid.read_bytes()).track("lead").notes
    assert [n.start for n in got] == [n.start for n in lead.notes]  # a variation: same rhythm
    assert all(n.start < 2 * bar for n in got)


@pytest.mark.parametrize(("bpm", "said"), [
    (900, "set the tempo to 240 bpm, the fastest a seed plays (seeds play at 40-240 bpm)"),
    (20, "set the tempo to 40 bpm, the slowest a seed plays (seeds play at 40-240 bpm)"),
    (5, "set the tempo to 40 bpm, the slowest a seed plays (seeds play at 40-240 bpm)"),
])
async def test_an_uploads_tempo_outside_the_seed_range_is_set_and_said_once(
        app: Cadenza, bpm: float, said: str) -> None:
    shared = await app.seeds.share_seed(f"t{bpm}", ALICE, HERE,
                                  upload=upload(midi_file([60, 62, 64, 65], bpm=bpm)))
    assert shared.motif.tempo == (240 if bpm > 240 else 40)
    assert [w for w in shared.warnings if "tempo" in w] == [said]


async def test_a_seed_tree_hides_the_names_of_other_members_private_seeds(app: Cadenza) -> None:
    await app.seeds.share_seed("riff", ALICE, HERE, notes=RIFF, public=True)
    clip = await make(app, await app.seeds.plan_compose({"motif": "riff", "bars": 1, "seed": 1,
                                                   "style": "folk"}, BOB,
                                                  HERE), BOB)
    await app.seeds.share_seed("bobs secret hook", BOB, HERE, clip_id=clip.clip_id)
    seen_by_carol = (await app.seeds.seed_tree("riff", CAROL, HERE)).lines()
    seen_by_bob = (await app.seeds.seed_tree("riff", BOB, HERE)).lines()
    assert seen_by_carol == [
        "🌱 seed “riff” by alice",
        f"└─ clip #{clip.clip_id} (folk) by bob — continues",
        "   └─ a private seed by bob — cut from it",
    ]
    assert seen_by_bob[2] == "   └─ seed “bobs secret hook” by bob — cut from it"
    assert "secret" not in "\n".join(seen_by_carol)


async def test_a_long_upload_gives_its_opening_and_an_absurd_one_is_refused(app: Cadenza) -> None:
    # 25 minutes of quarter notes at 120 bpm: the seed is the opening 16 bars
    long_tune = midi_file([60 + i % 12 for i in range(3000)])
    shared = await app.seeds.share_seed("epic", ALICE, HERE, upload=upload(long_tune, "epic.mid"))
    assert shared.motif.bars == 16 and len(shared.motif.notes) == 64
    assert any(w.startswith("kept bars 1-16 of 1-750") for w in shared.warnings)
    endless = midi_file([60 + i % 12 for i in range(3000)], bpm=40)  # 75 minutes
    with pytest.raises(UserError, match=r"^cannot use long\.mid: the music lasts 1\.2 hours; "
                                        r"the limit is 1\.0 hours$"):
        await app.seeds.share_seed("endless", ALICE, HERE, upload=upload(endless, "long.mid"))
