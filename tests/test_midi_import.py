"""MIDI upload import: the robustness corpus, limits, pairing, roles, timing, melody, fuzzing."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import pretty_midi
import pytest
from hostile_midi import megabyte_upload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadenza.music.midi_import import MAX_NOTE_BEATS, ImportResult, extract_melody, import_midi
from cadenza.music.midi_parse import INTERNAL_ERROR, MidiError
from cadenza.music.score import GRID, Score, Track

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "midi-corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/midi-corpus is absent")

# Files that must import. notes = note-ons read (MANIFEST's mido/pretty_midi count wherever
# those parsers cope; for files they refuse, the count our reader recovers); kept = notes in the
# imported score, measured with this importer (quantisation merges a few exact duplicates; a
# truncated file keeps only the bars before the damage). Other keys are
# checked when given: meter, key, seconds (first note to last note end, through the tempo map),
# a warning fragment, a repair fragment, and the pitches of the lead when it is short.
IMPORTED: dict[str, dict] = {
    "ns-type0-melody-abc2midi.mid": {
        "notes": 148, "kept": 148, "meter": (3, 4), "key": "G", "seconds": 36.0,
    },
    "ns-type1-band-19trk-with-drums.mid": {
        "notes": 6850, "kept": 6850, "roles": {"drums", "bass", "lead"},
    },
    "pt-type0-piano-performance-trailing-silence.mid": {"notes": 219, "kept": 219, "seconds": 23.2},
    "tj-type1-piano-debussy-733-tempos-overlaps.mid": {
        "notes": 1491, "kept": 1491, "meter": (9, 8), "key": "Db", "warning": "the tempo changes",
    },
    "ns-type1-21-timesig-changes.mid": {
        "notes": 1350, "kept": 1350, "meter": (6, 8), "warning": "the time signature changes",
    },
    # The tempo map lives in track 1: pretty_midi (track 0 only) gets 280 s, mido 595 s.
    "m21-type1-sjis-names-hdr18-actual19-tracks.mid": {
        "notes": 6059, "kept": 6059, "tracks": 19, "seconds": 588.5,
        "repair": "header says 18 tracks",
    },
    "pmidi-mary-noteon-vel0-running-status.mid": {"notes": 34, "kept": 34, "seconds": 18.5},
    "sy-overlap-same-pitch-heavy.midi": {"notes": 764, "kept": 760},
    "nf-type2-9-sequences-synthetic.mid": {"notes": 8, "kept": 8, "format": 2},
    "dwm-type2-3-sequences-sysex.mid": {"notes": 563, "kept": 563, "format": 2},
    "pt-very-short-56-bytes-3-notes.mid": {"notes": 3, "kept": 3, "seconds": 2.0},
    "jz-sysex-scale-tuning.mid": {"notes": 65, "kept": 65},
    "jz-karaoke-kar-lyrics.mid": {"notes": 29, "kept": 29},
    "dwm-smpte-offset-invalid-frames.mid": {
        "notes": 1264, "kept": 1263, "repair": "invalid SMPTE offset",
    },
    # mido reads 121 more notes from the 1024 junk bytes after End-of-Track (hence its 1247 s
    # note and 24-minute length); the real music ends at End-of-Track.
    "dwm-1247s-note-hanging-notes-junk-after-eot.mid": {
        "notes": 6867, "kept": 6852, "warning": "never released",
        "repair": "1024 bytes after the end",
    },
    "jl-5byte-vlq-delta-259-days.mid": {"notes": 1, "kept": 1, "warning": "damaged", "lead": [60]},
    "midly-truncated-64k-pi-damaged.mid": {
        "notes": 8532, "kept": 600, "warning": "the file was truncated; kept the first 1 bar",
    },
    "jz-truncated-missing-last-byte.mid": {
        "notes": 8, "kept": 8, "warning": "the file was truncated; kept the first 2 bars",
        "lead": [60, 62, 64, 65, 67, 69, 71, 72],
    },
    "nf-bad-header-chunk-id.mid": {"notes": 4, "kept": 4, "repair": "header chunk id"},
    "nf-bad-header-length.mid": {"notes": 4, "kept": 4, "repair": "header length field"},
    "nf-bad-track-length.mid": {"notes": 4, "kept": 4, "repair": "runs past the file"},
    "jz-unknown-chunk-type-junk.mid": {
        "notes": 8, "kept": 8, "repair": "unknown 'Junk' chunk",
        "lead": [60, 62, 64, 65, 67, 69, 71, 72],
    },
    "jz-running-status-after-sysex.mid": {
        "notes": 8, "kept": 8, "lead": [60, 62, 64, 65, 67, 69, 71, 72],
    },
    "jz-illegal-status-byte-f4.mid": {
        "notes": 8, "kept": 8, "warning": "0xF4", "lead": [60, 62, 64, 65, 67, 69, 71, 72],
    },
    "dwm-unexpected-running-status-entertainer.mid": {
        "notes": 2607, "kept": 2607, "meter": (4, 4), "repair": "too-short length",
    },
    "dwm-data-byte-over-127-brahms-waltz.mid": {
        "notes": 301, "kept": 301, "meter": (3, 4), "warning": "clipped data bytes",
    },
    "dwm-chunk-length-junk-byte-after-eot.mid": {
        "notes": 714, "kept": 710, "meter": (3, 4), "repair": "1 bytes after the end of track 1",
    },
    "dwm-key-signature-mode-255.mid": {
        "notes": 287, "kept": 287, "key": "C", "warning": "ignored an invalid key signature",
    },
    "dwm-key-signature-10-sharps-orchestral.mid": {
        "notes": 6500, "kept": 6500, "key": "C", "warning": "ignored an invalid key signature",
    },
    "midly-rmid-riff-wrapped.rmi": {"notes": 10423, "kept": 10416, "repair": "RIFF RMID"},
    # Real metres a seed must take (test_upload_meters: judged over the bars a seed keeps, the
    # Bartok is in 3/4; over the whole file 3/8 runs longest).
    "tj-piano-debussy-2-2-meter.mid": {"notes": 710, "kept": 710, "meter": (2, 2), "key": "Bb"},
    "tj-orchestra-bartok-3-4-later-3-8.mid": {
        "notes": 19083, "kept": 12330, "meter": (3, 8), "warning": "the time signature changes",
    },
}

REFUSED: dict[str, str] = {
    "tj-type1-drums-only-beat.mid": "the file has only drums; a seed needs a melody",
    "jz-minimal-26-bytes-zero-notes.mid": "the file has no notes",
    "jz-zero-notes-text-meta-5s.mid": "the file has no notes",
    "midly-sysex-only-empty-track-no-eot.mid": "the file has no notes",
    "nf-smpte-division-16fps-invalid.mid": (
        "the file counts time in SMPTE frames at 16 frames per second, which does not exist "
        "(24, 25, 29.97 or 30)"
    ),
    "nf-bad-header-format-3.mid": "format 3 does not exist (MIDI files are type 0, 1 or 2)",
    "nf-bad-track-chunk-id.mid": (
        "the file has no MIDI tracks (found a 'mTrk' chunk where 'MTrk' was expected)"
    ),
    "jz-empty-file-0-bytes.mid": "the file is empty",
    "dwm-gif-image-with-mid-extension.mid": "not a MIDI file (it looks like a GIF image)",
}


def check_score(result: ImportResult) -> None:
    """Invariants every imported seed must satisfy."""
    score = result.score
    assert isinstance(score, Score) and score.resolution == GRID and score.bars >= 1
    assert [t.role for t in score.tracks].count("lead") == 1
    assert score.tracks[0].role == "lead" and not score.tracks[0].is_drum
    end = score.length_ticks + MAX_NOTE_BEATS * GRID
    for track in score.tracks:
        assert track.notes and track.is_drum == (track.role == "drums")
        last_end: dict[int, int] = {}
        for n in track.notes:  # sorted by start: no two notes of a pitch overlap
            assert n.start >= last_end.get(n.pitch, 0) and n.end <= end
            last_end[n.pitch] = n.end
    assert min(n.start for t in score.tracks for n in t.notes) < score.bar_ticks
    melody = extract_melody(score)
    assert melody.role == "lead" and melody.notes
    assert all(a.end <= b.start for a, b in zip(melody.notes, melody.notes[1:], strict=False))


def test_the_corpus_table_covers_every_file() -> None:
    if not CORPUS.is_dir():
        pytest.skip("shared/midi-corpus is absent")
    files = {p.name for p in CORPUS.iterdir() if p.suffix != ".md"}
    assert files == set(IMPORTED) | set(REFUSED)


@needs_corpus
@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_corpus_file_is_recovered(name: str) -> None:
    want = IMPORTED[name]
    result = import_midi((CORPUS / name).read_bytes())
    check_score(result)
    info = result.source_info
    assert info.notes_in_file == want["notes"]
    assert result.score.note_count() == want["kept"]
    if "meter" in want:
        assert result.score.time_signature == want["meter"]
    if "key" in want:
        assert result.score.key.name == want["key"]
    if "seconds" in want:
        assert info.seconds == pytest.approx(want["seconds"], abs=0.5)
    if "tracks" in want:
        assert info.tracks == want["tracks"]
    if "format" in want:
        assert info.format == want["format"]
    if "roles" in want:
        assert want["roles"] <= {t.role for t in result.score.tracks}
    if "warning" in want:
        assert any(want["warning"] in w for w in result.warnings), result.warnings
    if "repair" in want:
        assert any(want["repair"] in r for r in info.repairs), info.repairs
    if "lead" in want:
        assert [n.pitch for n in extract_melody(result.score).notes] == want["lead"]
    assert info.truncated == ("truncated" in want.get("warning", ""))


@needs_corpus
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_corpus_file_is_refused_with_a_specific_message(name: str) -> None:
    with pytest.raises(MidiError) as err:
        import_midi((CORPUS / name).read_bytes())
    assert str(err.value) == REFUSED[name]


@needs_corpus
@pytest.mark.parametrize(
    "name", ["ns-type0-melody-abc2midi.mid", "pmidi-mary-noteon-vel0-running-status.mid"]
)
def test_onsets_agree_with_pretty_midi(name: str) -> None:
    # Constant-tempo files: our grid onset (plus skipped bars) in seconds = pretty_midi's.
    data = (CORPUS / name).read_bytes()
    score = import_midi(data).score
    theirs = sorted(
        (round(n.start, 3), n.pitch)
        for inst in pretty_midi.PrettyMIDI(io.BytesIO(data)).instruments
        for n in inst.notes
    )
    first = theirs[0][0] - score.tracks[0].notes[0].start * score.seconds_per_tick
    ours = sorted(
        (first + n.start * score.seconds_per_tick, n.pitch) for t in score.tracks for n in t.notes
    )
    assert len(ours) == len(theirs)
    step = score.seconds_per_tick
    for (t1, p1), (t2, p2) in zip(ours, theirs, strict=True):
        assert p1 == p2 and abs(t1 - t2) <= step / 2 + 1e-3


@needs_corpus
def test_type1_drums_and_bass_roles_on_the_band_file() -> None:
    score = import_midi((CORPUS / "ns-type1-band-19trk-with-drums.mid").read_bytes()).score
    drums = [t for t in score.tracks if t.is_drum]
    assert drums and all(t.role == "drums" for t in drums)
    bass = [t for t in score.tracks if t.role == "bass"]
    assert any(32 <= t.program <= 39 for t in bass)
    assert score.tempo == 120.0 and score.time_signature == (4, 4)


# ---------------------------------------------------------------- synthetic files


def midi(*tracks: list[mido.Message | mido.MetaMessage], tpq: int = 96, fmt: int = 1) -> bytes:
    mf = mido.MidiFile(type=fmt, ticks_per_beat=tpq)
    for msgs in tracks:
        mf.tracks.append(mido.MidiTrack(msgs))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def on(pitch: int, time: int = 0, channel: int = 0, velocity: int = 90) -> mido.Message:
    return mido.Message("note_on", note=pitch, velocity=velocity, time=time, channel=channel)


def off(pitch: int, time: int = 0, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=pitch, velocity=0, time=time, channel=channel)


def line(pitches: list[int], step: int = 96, channel: int = 0) -> list[mido.Message]:
    out: list[mido.Message] = []
    for p in pitches:
        out += [on(p, channel=channel), off(p, step, channel=channel)]
    return out


def tempo(bpm: float, time: int = 0) -> mido.MetaMessage:
    return mido.MetaMessage("set_tempo", tempo=round(60e6 / bpm), time=time)


def refusal(data: bytes, **limits: float) -> str:
    with pytest.raises(MidiError) as err:
        import_midi(data, **limits)
    return str(err.value)


def test_limits_give_specific_refusals() -> None:
    data = midi(line([60, 62, 64, 65] * 10))
    big = data + bytes(1_600_000 - len(data))
    assert refusal(big) == "the file is 1.5 MiB; the limit is 1 MiB"
    padded = data + bytes(2048 - len(data))
    assert refusal(padded, max_bytes=1024) == "the file is 2 KiB; the limit is 1 KiB"
    assert refusal(data, max_notes=30) == "the file has 40 notes; the limit is 30"
    assert refusal(data, max_seconds=10) == "the music lasts 20 s; the limit is 10 s"
    fast = midi([tempo(2500), *line([60, 62])])
    assert refusal(fast) == "the tempo reaches 2,500 bpm; the limit is 1,000 bpm"
    # An absurd gap (a 4-byte delta) makes an absurd length, refused before any allocation.
    far = midi([*line([60]), on(62, time=2**27), off(62, 96)])
    with pytest.raises(MidiError, match=r"^the music lasts [\d,]+ days; the limit is 10 min$"):
        import_midi(far)


def test_drums_only_and_empty_are_refused() -> None:
    with pytest.raises(MidiError, match="only drums"):
        import_midi(midi(line([36, 38, 42], channel=9)))
    assert refusal(midi([mido.MetaMessage("text", text="hi", time=500)])) == "the file has no notes"


def test_tempo_from_any_track_is_merged_into_the_map() -> None:
    # Type 1 with the tempo in track 2 (as real files do): 60 bpm makes 8 quarters last 8 s.
    data = midi([mido.MetaMessage("track_name", name="x")], [tempo(60), *line([60] * 8)])
    result = import_midi(data)
    assert result.score.tempo == 60.0
    assert result.source_info.seconds == pytest.approx(8.0)


def test_weighted_tempo_and_tempo_warning() -> None:
    notes = line([60, 62, 64, 65] * 4)  # 16 quarters
    conductor = [tempo(100), tempo(150, time=96 * 12)]  # 12 beats at 100, 4 at 150
    result = import_midi(midi(conductor, notes))
    assert result.score.tempo == 100.0
    assert "the tempo changes between 100 and 150 bpm; used 100 bpm throughout" in result.warnings
    assert result.source_info.seconds == pytest.approx(12 * 0.6 + 4 * 0.4)


def test_quantisation_to_the_grid() -> None:
    # 480 tpq: an onset at 250 ticks (0.52 quarter) lands on grid step 6 (a swung eighth = 8).
    data = midi([on(60), off(60, 250), on(62, 70), off(62, 160)], tpq=480)
    notes = import_midi(data).score.tracks[0].notes
    assert [(n.start, n.duration, n.pitch) for n in notes] == [(0, 6, 60), (8, 4, 62)]


def test_same_pitch_restrike_is_fifo_and_cuts_the_earlier_note() -> None:
    # on A, on A (re-strike), off, off: the first off ends the first note (FIFO), whose sound
    # is cut at the re-strike; the second note keeps the last off.
    data = midi([on(69), on(69, 96), off(69, 96), off(69, 96)])
    notes = import_midi(data).score.tracks[0].notes
    assert [(n.start, n.duration) for n in notes] == [(0, 12), (12, 24)]


def test_hanging_and_very_long_notes_are_closed_and_capped() -> None:
    track = [on(60), on(64, 96), off(64, 96), mido.MetaMessage("end_of_track", time=96 * 40)]
    result = import_midi(midi(track))
    notes = {n.pitch: n for n in result.score.tracks[0].notes}
    assert notes[64].duration == GRID
    assert notes[60].duration == MAX_NOTE_BEATS * GRID  # hung to the track end, then capped
    assert "closed 1 note that was never released" in result.warnings
    assert "shortened 1 note held longer than 16 beats" in result.warnings


def test_zero_length_notes_get_one_grid_step() -> None:
    notes = import_midi(midi([on(60), off(60), on(62, 96), off(62, 2)])).score.tracks[0].notes
    assert [(n.start, n.duration) for n in notes] == [(0, 1), (12, 1)]


def test_roles_lead_bass_chords_and_drums() -> None:
    melody = line([72, 74, 76, 77, 79, 77, 76, 74], step=48, channel=0)
    bass = [mido.Message("program_change", program=33, channel=1)]
    bass += line([36, 43, 36, 43], channel=1)
    chords = []
    for root in (60, 65, 67, 60):
        chords += [on(root, channel=2), on(root + 4, channel=2), on(root + 7, channel=2)]
        chords += [off(root, 96, channel=2), off(root + 4, channel=2), off(root + 7, channel=2)]
    drums = line([36, 42, 38, 42], channel=9)
    score = import_midi(midi(chords, bass, melody, drums)).score
    roles = {t.role: t for t in score.tracks}
    assert set(roles) == {"lead", "bass", "chords", "drums"}
    assert [n.pitch for n in roles["lead"].notes][:3] == [72, 74, 76]
    assert roles["bass"].program == 33 and roles["drums"].is_drum
    assert score.tracks[0] is roles["lead"]


def test_type0_file_is_split_per_channel() -> None:
    track = [on(72, channel=0), on(40, channel=1), off(72, 96, channel=0), off(40, 0, channel=1)]
    score = import_midi(midi(track, fmt=0)).score
    assert sorted(len(t.notes) for t in score.tracks) == [1, 1]


def test_key_meter_and_invalid_key_warning() -> None:
    meta = [
        mido.MetaMessage("time_signature", numerator=6, denominator=8),
        mido.MetaMessage("key_signature", key="Em"),
    ]
    score = import_midi(midi(meta, line([64, 66, 67] * 4, step=48))).score
    assert score.time_signature == (6, 8) and score.key.name == "Em" and score.bars == 2
    raw = bytearray(midi([mido.MetaMessage("key_signature", key="A")], line([60])))
    raw[raw.index(b"\xff\x59\x02") + 3] = 10  # 10 sharps
    result = import_midi(bytes(raw))
    assert "ignored an invalid key signature" in result.warnings
    assert result.score.key.name == "C"


def test_pickup_bar_keeps_the_downbeats() -> None:
    # A 1/4 pickup bar then 3/4: the dominant meter is 3/4 and its first bar line (after the
    # pickup) is a bar line of the seed, so the pickup note sits on beat 3 of bar 1.
    meta = [
        mido.MetaMessage("time_signature", numerator=1, denominator=4),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=96),
    ]
    score = import_midi(midi(meta, line([67, 72, 71, 72, 74, 76, 77]))).score
    assert score.time_signature == (3, 4)
    assert score.tracks[0].notes[0].start == 24 and score.tracks[0].notes[1].start == 36


def test_empty_leading_bars_are_skipped() -> None:
    result = import_midi(midi([on(60, time=96 * 4 * 3), off(60, 96)]))
    assert result.score.tracks[0].notes[0].start == 0
    assert "skipped 3 empty bars at the start" in result.warnings


def test_format2_sequences_play_one_after_another() -> None:
    data = midi(line([60, 62]), line([64, 65]), fmt=2)
    notes = import_midi(data).score
    starts = sorted((n.start, n.pitch) for t in notes.tracks for n in t.notes)
    assert starts == [(0, 60), (12, 62), (24, 64), (36, 65)]


def test_smpte_time_division_is_converted_through_seconds() -> None:
    # 25 fps x 40 ticks = 1000 ticks per second; at the assumed 120 bpm, 1 s = 2 beats.
    body = b"\x00\x90\x3c\x50" + b"\x87\x68\x80\x3c\x00" + b"\x00\x90\x3e\x50"  # 1000 ticks
    body += b"\x83\x74\x80\x3e\x00" + b"\x00\xff\x2f\x00"  # 500 ticks
    division = ((256 - 25) << 8) | 40
    data = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01" + division.to_bytes(2, "big")
    data += b"MTrk" + len(body).to_bytes(4, "big") + body
    result = import_midi(data)
    notes = result.score.tracks[0].notes
    assert [(n.start, n.duration) for n in notes] == [(0, 24), (24, 12)]
    assert result.source_info.smpte_fps == 25.0 and result.source_info.seconds == 1.5


def test_extract_melody_is_a_skyline() -> None:
    from cadenza.music.score import Note

    piano = Track(
        name="piano",
        role="chords",
        notes=(
            Note(0, 24, 72), Note(0, 24, 64), Note(0, 24, 60),  # chord: top note 72
            Note(12, 12, 67),  # inner voice under the held 72: dropped
            Note(24, 12, 74), Note(30, 12, 76),  # overlap: 74 is cut at 30
            Note(36, 12, 50),  # under the sounding 76: dropped
            Note(42, 12, 48),  # after the line's last note ends, a low note is the melody
        ),
    )
    melody = extract_melody(Score(tracks=(piano,)))
    assert [(n.start, n.duration, n.pitch) for n in melody.notes] == [
        (0, 24, 72), (24, 6, 74), (30, 12, 76), (42, 12, 48),
    ]


def test_extract_melody_prefers_the_lead_and_skips_drums() -> None:
    from cadenza.music.score import Note

    lead = Track(name="lead", role="lead", program=73, notes=(Note(0, 12, 60),))
    high = Track(name="pad", role="chords", notes=(Note(0, 48, 90),))
    drums = Track(name="kit", role="drums", is_drum=True, notes=(Note(0, 1, 99),))
    assert extract_melody(Score(tracks=(high, lead, drums))).notes == lead.notes
    assert extract_melody(Score(tracks=(high, lead, drums))).program == 73
    assert [n.pitch for n in extract_melody(Score(tracks=(drums, high))).notes] == [90]


def test_extract_melody_passes_over_a_guessed_lead_that_barely_plays_in_the_window() -> None:
    from cadenza.music.score import Note

    def imported(score: Score, start: int = 0, end: int | None = None) -> list[int]:
        return [n.pitch for n in extract_melody(score, start, end, guessed_lead=True).notes]

    # an orchestral-style file: the "lead" flute plays once, the strings carry the tune
    flute = Track(name="flute", role="lead", program=73, notes=(Note(0, 12, 84),))
    tune = Track(name="strings", role="chords", program=48,
                 notes=tuple(Note(12 * i, 12, 60 + i) for i in range(1, 9)))
    score = Score(tracks=(flute, tune))
    assert imported(score) == [84, *range(61, 69)]
    assert extract_melody(score, guessed_lead=True).program == 48  # the part that plays most
    # a quarter of the skyline's notes is enough to keep the lead (4 of 9 here)
    four = Track(name="flute", role="lead", program=73,
                 notes=tuple(Note(t, 12, p) for t, p in ((0, 84), (24, 86), (48, 88), (72, 89))))
    both = Score(tracks=(four, tune))
    assert imported(both) == [84, 86, 88, 89]
    # windowed: only notes starting in [start, end) count, for the choice and the line
    assert imported(both, 84, 108) == [67, 68]
    # a tiny window: 2 lead notes against a 3-note skyline, so the skyline carries more tune
    assert imported(both, 0, 36) == [84, 61, 86]
    # a lead we wrote ourselves (a clip's) is the melody wherever it plays
    assert extract_melody(score).notes == flute.notes
    assert extract_melody(both, 0, 36).notes == four.notes[:2]


def test_a_full_megabyte_upload_is_read_and_refused_for_its_note_count() -> None:
    # ~1 MiB of running-status notes (175k events), cut at the limit mid-track: the whole
    # upload is read (every note counted), then refused by the note limit.
    data = megabyte_upload()
    assert len(data) == 1 << 20
    assert refusal(data) == "the file has 174,759 notes; the limit is 20,000"


# ---------------------------------------------------------------- fuzzing


def _seeds() -> list[bytes]:
    seeds = [
        midi(line([60, 62, 64]), line([48, 43], channel=1), line([36], channel=9)),
        midi([tempo(90), mido.MetaMessage("key_signature", key="D"), *line([62, 66, 69, 74])]),
    ]
    if CORPUS.is_dir():
        for p in sorted(CORPUS.iterdir()):
            if p.suffix != ".md" and 0 < p.stat().st_size < 20_000:
                seeds.append(p.read_bytes())
    return seeds


SEEDS = _seeds()


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@given(mutants())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_import_only_raises_midi_error(data: bytes) -> None:
    try:
        result = import_midi(data)
    except MidiError as e:
        assert str(e) and str(e) != INTERNAL_ERROR and "\n" not in str(e)
    else:
        check_score(result)
