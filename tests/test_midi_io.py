"""Score <-> MIDI: byte-identical output, file layout, exact round trips, overlaps, bad input."""

from __future__ import annotations

import io

import mido
import pytest

from cadenza.errors import UserError
from cadenza.music.midi_io import PPQ, midi_to_score, score_to_midi
from cadenza.music.score import ChordEvent, Note, Score, ScoreError, Track
from cadenza.music.theory import Chord, Key

N = Note

LEAD = Track("Flute", "lead", 73, False,
             (N(0, 6, 74, 90), N(6, 6, 76, 70), N(12, 12, 77, 100), N(24, 3, 81, 64),
              N(27, 9, 79, 80), N(48, 48, 74, 110)), volume=110, pan=40)
KEYS = Track("Rhodes", "chords", 4, False,
             (N(0, 24, 62, 60), N(0, 24, 65, 60), N(0, 24, 69, 60), N(24, 24, 60, 58),
              N(24, 24, 64, 58), N(24, 24, 67, 58), N(48, 48, 62, 62)), volume=85, pan=88)
BASS = Track("Finger bass", "bass", 33, False,
             (N(0, 11, 38, 100), N(12, 11, 45, 96), N(24, 23, 36, 100), N(48, 11, 38, 100)),
             volume=105, pan=64)
DRUMS = Track("Kit", "drums", 0, True,
              (N(0, 3, 36, 110), N(12, 3, 38, 100), N(0, 3, 42, 70), N(6, 3, 42, 50),
               N(30, 3, 36, 100), N(36, 3, 38, 100), N(48, 3, 49, 120)))
SCORE = Score(
    tracks=(LEAD, KEYS, BASS, DRUMS),
    chords=(ChordEvent(0, 24, Chord(2, "min")), ChordEvent(24, 24, Chord(0, "maj")),
            ChordEvent(48, 48, Chord(10, "maj7"))),
    tempo=97.0, time_signature=(4, 4), key=Key.parse("Dm"), bars=2, style="lo-fi ☕",
)
# 6/8, a gap between chords, a last chord that stops before the end, no style.
WALTZ = Score(
    tracks=(Track("Oboe", "lead", 68, False, (N(0, 18, 69), N(18, 18, 71), N(54, 12, 73))),
            Track("Toms", "drums", 25, True, (N(0, 6, 45), N(36, 6, 47)), volume=90, pan=30)),
    chords=(ChordEvent(0, 18, Chord(9, "min")), ChordEvent(36, 24, Chord(4, "7"))),
    tempo=133.33, time_signature=(6, 8), key=Key.parse("Am"), bars=2, style=None,
)


def _tracks(data: bytes) -> list[mido.MidiTrack]:
    return mido.MidiFile(file=io.BytesIO(data)).tracks


def _abs(track: mido.MidiTrack) -> list[tuple[int, mido.Message]]:
    now, out = 0, []
    for msg in track:
        now += msg.time
        out.append((now, msg))
    return out


def test_same_score_gives_identical_bytes() -> None:
    shuffled = Score(
        tracks=tuple(Track(t.name, t.role, t.program, t.is_drum, tuple(reversed(t.notes)),
                           t.volume, t.pan) for t in SCORE.tracks),
        chords=tuple(reversed(SCORE.chords)), tempo=SCORE.tempo, key=SCORE.key, bars=2,
        style=SCORE.style,
    )
    first = score_to_midi(SCORE)
    assert first == score_to_midi(SCORE) == score_to_midi(shuffled)
    assert first != score_to_midi(WALTZ)


def test_file_layout_conductor_and_parts() -> None:
    mid = mido.MidiFile(file=io.BytesIO(score_to_midi(SCORE)))
    assert mid.type == 1 and mid.ticks_per_beat == PPQ == 480
    assert len(mid.tracks) == 1 + len(SCORE.tracks)

    conductor = _abs(mid.tracks[0])
    assert not any(m.type in ("note_on", "note_off") for _, m in conductor)
    tempo = next(m for _, m in conductor if m.type == "set_tempo")
    assert tempo.tempo == mido.bpm2tempo(97.0)
    sig = next(m for _, m in conductor if m.type == "time_signature")
    assert (sig.numerator, sig.denominator) == (4, 4)
    assert next(m for _, m in conductor if m.type == "key_signature").key == "Dm"
    texts = [m.text for _, m in conductor if m.type == "text"]
    assert "cadenza:bars=2" in texts
    markers = [(t, m.text) for t, m in conductor if m.type == "marker"]
    # chord names spelled in the key (Bb, not A#), at 12 -> 480 ticks per quarter
    assert markers == [(0, "Dm"), (960, "C"), (1920, "Bbmaj7")]

    for mtrack, track, channel in zip(mid.tracks[1:], SCORE.tracks, (0, 1, 2, 9), strict=True):
        events = _abs(mtrack)
        assert events[0][1].type == "track_name" and events[0][1].name == track.name
        assert f"cadenza:role={track.role}" in [m.text for _, m in events if m.type == "text"]
        setup = {(m.type, getattr(m, "control", None)): m for t, m in events
                 if t == 0 and m.type in ("program_change", "control_change")}
        assert setup[("program_change", None)].program == track.program
        assert setup[("control_change", 7)].value == track.volume
        assert setup[("control_change", 10)].value == track.pan
        assert 0 < setup[("control_change", 91)].value <= 64  # a modest reverb send
        channels = {m.channel for _, m in events if not m.is_meta}
        assert channels == {channel}
        ons = [(t, m.note, m.velocity) for t, m in events if m.type == "note_on"]
        assert sorted(ons) == sorted((n.start * 40, n.pitch, n.velocity) for n in track.notes)


def test_melodic_channels_skip_the_drum_channel() -> None:
    many = tuple(Track(f"t{i}", "other", i, False, (N(0, 12, 60 + i),)) for i in range(11))
    drums = Track("kit", "drums", 0, True, (N(0, 3, 36),))
    data = score_to_midi(Score(tracks=(*many[:5], drums, *many[5:]), bars=1))
    channels = [next(m.channel for m in t if m.type == "note_on") for t in _tracks(data)[1:]]
    assert channels == [0, 1, 2, 3, 4, 9, 5, 6, 7, 8, 10, 11]

    too_many = tuple(Track(f"t{i}", "other", 0, False, (N(0, 12, 60),)) for i in range(16))
    with pytest.raises(ScoreError, match="at most 15 melodic tracks"):
        score_to_midi(Score(tracks=too_many, bars=1))


def test_same_tick_note_off_sorts_before_note_on() -> None:
    repeated = Track("rep", "lead", 0, False, (N(0, 12, 60), N(12, 12, 60), N(24, 12, 62)))
    events = _abs(_tracks(score_to_midi(Score(tracks=(repeated,), bars=1)))[1])
    at_480 = [(m.type, m.note) for t, m in events if t == 480 and not m.is_meta]
    assert at_480 == [("note_off", 60), ("note_on", 60)]


@pytest.mark.parametrize("score", [SCORE, WALTZ], ids=["4-4-with-style", "6-8-gaps"])
def test_round_trip_is_exact(score: Score) -> None:
    back = midi_to_score(score_to_midi(score))
    assert back == score
    assert back.style == score.style and back.chords == score.chords


def test_round_trip_of_empty_and_unbarred_scores() -> None:
    empty = Score(bars=4, tempo=60.0, key=Key.parse("Eb"), time_signature=(3, 4))
    assert midi_to_score(score_to_midi(empty)) == empty
    no_bars = Score(tracks=(LEAD,), chords=(ChordEvent(12, 24, Chord(7, "7")),), bars=0)
    assert midi_to_score(score_to_midi(no_bars)) == no_bars


def test_finer_resolution_is_quantised_to_grid_12() -> None:
    fine = Score(
        tracks=(Track("lead", "lead", 0, False, (N(0, 12, 60), N(12, 6, 62), N(24, 24, 64))),),
        chords=(ChordEvent(0, 96, Chord(0, "maj")),), resolution=24, bars=1,
    )
    back = midi_to_score(score_to_midi(fine))
    assert back.resolution == 12
    assert back.tracks[0].notes == (N(0, 6, 60), N(6, 3, 62), N(12, 12, 64))
    assert back.chords == (ChordEvent(0, 48, Chord(0, "maj")),)


def test_overlapping_same_pitch_notes_neither_stick_nor_cut_short() -> None:
    # B restarts A's pitch while A still sounds; C is nested inside A; D doubles B's onset.
    track = Track("x", "lead", 0, False,
                  (N(0, 24, 60, 80), N(12, 6, 60, 90), N(12, 3, 60, 100), N(48, 6, 62)))
    events = _abs(_tracks(score_to_midi(Score(tracks=(track,), bars=2)))[1])
    c4 = [(t, m.type) for t, m in events if m.type in ("note_on", "note_off") and m.note == 60]
    # one MIDI note per distinct onset; the re-strike cuts the first at its own onset and
    # rings until the end of the longer note (tick 24 -> 960)
    assert c4 == [(0, "note_on"), (480, "note_off"), (480, "note_on"), (960, "note_off")]
    vel = [m.velocity for t, m in events if m.type == "note_on" and m.note == 60]
    assert vel == [80, 100]
    back = midi_to_score(score_to_midi(Score(tracks=(track,), bars=2)))
    assert [(n.start, n.end, n.pitch) for n in back.tracks[0].notes] == [
        (0, 12, 60), (12, 24, 60), (48, 54, 62)]


def test_foreign_midi_loads_with_defaults() -> None:
    mid = mido.MidiFile(ticks_per_beat=96)
    drums, piano = mido.MidiTrack(), mido.MidiTrack()
    drums += [mido.Message("note_on", channel=9, note=36, velocity=100),
              mido.Message("note_on", channel=9, note=36, velocity=0, time=24)]
    piano += [mido.Message("program_change", channel=0, program=5),
              mido.Message("note_on", channel=0, note=60, velocity=90, time=96),
              mido.Message("note_off", channel=0, note=60, time=96 * 4)]  # ends in bar 2
    mid.tracks += [drums, piano]
    buf = io.BytesIO()
    mid.save(file=buf)
    score = midi_to_score(buf.getvalue())
    assert score.tempo == 120.0 and score.time_signature == (4, 4) and score.bars == 2
    kit, keys = score.tracks
    assert (kit.role, kit.is_drum, kit.notes) == ("drums", True, (N(0, 3, 36, 100),))
    assert (keys.role, keys.program, keys.notes) == ("other", 5, (N(12, 48, 60, 90),))


@pytest.mark.parametrize("data", [b"", b"not a midi file", b"MThd\x00\x00\x00\x06\x00"])
def test_bad_bytes_give_a_user_error(data: bytes) -> None:
    with pytest.raises(UserError, match="not a valid MIDI file"):
        midi_to_score(data)


def test_out_of_range_foreign_file_is_a_user_error() -> None:
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    track += [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(600)),
              mido.Message("note_on", note=60, velocity=90),
              mido.Message("note_off", note=60, time=480)]
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    with pytest.raises(UserError, match="unsupported MIDI file: tempo must be 10-400 bpm"):
        midi_to_score(buf.getvalue())


def test_every_key_and_chord_spelling_round_trips() -> None:
    from cadenza.music.theory import ALL_KEYS, QUALITY_INTERVALS

    qualities = list(QUALITY_INTERVALS)
    for i, key in enumerate(ALL_KEYS):
        chords = tuple(ChordEvent(j * 12, 12, Chord((key.tonic + j * 5) % 12,
                                                    qualities[(i + j) % len(qualities)]))
                       for j in range(4))
        score = Score(chords=chords, key=key, bars=1)
        assert midi_to_score(score_to_midi(score)) == score, key.name
