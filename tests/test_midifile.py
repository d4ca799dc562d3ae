"""The lenient MIDI reader: repairs, refusals, agreement with mido, and fuzzing (MidiError only)."""

from __future__ import annotations

import io
import random
import tracemalloc
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadenza.music.midi_parse import INTERNAL_ERROR, MidiError, read_midi

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "midi-corpus"
EOT = b"\x00\xff\x2f\x00"


def header(fmt: int = 0, ntracks: int = 1, division: int = 96, length: int = 6) -> bytes:
    return (
        b"MThd"
        + length.to_bytes(4, "big")
        + fmt.to_bytes(2, "big")
        + ntracks.to_bytes(2, "big")
        + division.to_bytes(2, "big")
    )


def mtrk(body: bytes, length: int | None = None) -> bytes:
    return b"MTrk" + (len(body) if length is None else length).to_bytes(4, "big") + body


def smf(*bodies: bytes, fmt: int = 0, division: int = 96) -> bytes:
    return header(fmt, len(bodies), division) + b"".join(mtrk(b) for b in bodies)


def notes_of(mf) -> list[tuple[int, str, int, int, int]]:
    return [
        (e.tick, e.kind, e.channel, e.a, e.b)
        for tr in mf.tracks
        for e in tr
        if e.kind in ("note_on", "note_off")
    ]


# A C-E scale fragment written with running status and note-on velocity 0 as note-off.
RUNNING = b"\x00\x90\x3c\x64" + b"\x60\x3c\x00" + b"\x00\x40\x64" + b"\x60\x40\x00"


def test_running_status_and_velocity_zero_note_off() -> None:
    mf = read_midi(smf(RUNNING + EOT))
    assert notes_of(mf) == [
        (0, "note_on", 0, 60, 100),
        (96, "note_off", 0, 60, 0),
        (96, "note_on", 0, 64, 100),
        (192, "note_off", 0, 64, 0),
    ]
    assert mf.format == 0 and mf.ticks_per_quarter == 96 and not mf.truncated
    assert mf.warnings == () and mf.repairs == ()


def test_running_status_after_sysex_reuses_the_channel_status_not_f0() -> None:
    body = b"\x00\x90\x3c\x64\x60\x3c\x00" + b"\x00\xf0\x03\x7e\x7f\xf7" + b"\x00\x3e\x64"
    mf = read_midi(smf(body + b"\x60\x3e\x00" + EOT))
    assert [e.kind for e in mf.tracks[0]] == [
        "note_on", "note_off", "sysex", "note_on", "note_off", "end_of_track",
    ]
    assert notes_of(mf)[2] == (96, "note_on", 0, 62, 100)


def test_data_byte_without_any_status_resynchronises() -> None:
    # A stray 0x08 at the start of a track: no running status exists yet.
    body = b"\x08" + RUNNING + EOT
    mf = read_midi(smf(body))
    assert len(notes_of(mf)) == 4
    assert any("unreadable" in w for w in mf.warnings)


def test_endless_garbage_without_status_gives_up_on_the_track() -> None:
    # Data bytes only, and no channel status seen yet: nothing to resynchronise on.
    mf = read_midi(smf(b"\x00\xff\x03\x01X" + bytes(range(0x10, 0x7f)) + EOT))
    assert [e.kind for e in mf.tracks[0]] == ["track_name"]
    assert "track 1 is damaged; kept the music before the damage" in mf.warnings


def test_undefined_status_bytes_are_skipped() -> None:
    for status in (0xF4, 0xF5, 0xF9, 0xFD):
        mf = read_midi(smf(b"\x00" + bytes([status]) + RUNNING + EOT))
        assert len(notes_of(mf)) == 4
        assert mf.warnings == (f"skipped an invalid MIDI event (0x{status:02X})",)


def test_data_bytes_over_127_are_clipped() -> None:
    mf = read_midi(smf(b"\x00\x90\x3c\xc8\x60\x80\xff\x00" + EOT))
    assert notes_of(mf) == [(0, "note_on", 0, 60, 127), (96, "note_off", 0, 127, 0)]
    assert mf.warnings == ("clipped data bytes above 127",)


@pytest.mark.parametrize(
    ("meta", "kept"),
    [
        (b"\xff\x59\x02\x0a\x00", None),  # 10 sharps
        (b"\xff\x59\x02\xfc\xff", None),  # 4 flats, mode 255
        (b"\xff\x59\x01\x02", None),  # too short
        (b"\xff\x59\x02\xfd\x01", (-3, 1)),  # 3 flats minor: valid
    ],
)
def test_key_signatures(meta: bytes, kept: tuple[int, int] | None) -> None:
    mf = read_midi(smf(b"\x00" + meta + RUNNING + EOT))
    keys = [(e.a, e.b) for e in mf.tracks[0] if e.kind == "key_signature"]
    assert len(notes_of(mf)) == 4
    if kept is None:
        assert keys == [] and mf.warnings == ("ignored an invalid key signature",)
    else:
        assert keys == [kept] and mf.warnings == ()


def test_two_byte_time_signature_is_read_from_what_is_there() -> None:
    mf = read_midi(smf(b"\x00\xff\x58\x02\x06\x03" + RUNNING + EOT))
    sigs = [(e.a, e.b) for e in mf.tracks[0] if e.kind == "time_signature"]
    assert sigs == [(6, 8)]
    assert len(notes_of(mf)) == 4


def test_short_meta_length_with_the_missing_bytes_present_is_repaired() -> None:
    # ENTERTN.MID's conductor track: FF 58 02 04 02 18 08 (length says 2, four bytes follow).
    body = b"\x00\xff\x51\x03\x06\xe2\x37" + b"\x00\xff\x58\x02\x04\x02\x18\x08"
    mf = read_midi(smf(body + b"\x81\xe4\x00\xff\x2f\x00"))
    kinds = [(e.tick, e.kind) for e in mf.tracks[0]]
    assert kinds == [(0, "tempo"), (0, "time_signature"), (29184, "end_of_track")]
    assert any("too-short length" in r for r in mf.repairs)


def test_bad_tempo_and_smpte_offset_are_dropped_and_the_music_kept() -> None:
    body = b"\x00\xff\x51\x03\x00\x00\x00" + b"\x00\xff\x54\x05\x60\x00\x00\x7d\x70"
    mf = read_midi(smf(body + RUNNING + EOT))
    assert [e.kind for e in mf.tracks[0]][:2] == ["note_on", "note_off"]
    assert mf.warnings == ("ignored an invalid tempo",)
    assert mf.repairs == ("ignored an invalid SMPTE offset",)


def test_junk_after_end_of_track_and_missing_end_of_track() -> None:
    mf = read_midi(smf(RUNNING + EOT + b"\x00\x90\x3c"))
    assert len(notes_of(mf)) == 4 and mf.warnings == ()
    assert mf.repairs == ("ignored 3 bytes after the end of track 1",)
    mf = read_midi(smf(RUNNING))
    assert len(notes_of(mf)) == 4 and not mf.truncated
    assert mf.repairs == ("track 1 has no End-of-Track",)


def test_track_length_past_the_end_of_the_file_is_truncation() -> None:
    data = header() + mtrk(RUNNING, length=0x7FFFFFFF)
    mf = read_midi(data)
    assert mf.truncated and len(notes_of(mf)) == 4
    cut = read_midi(data[:-2])  # the last note-off loses its bytes
    assert cut.truncated and len(notes_of(cut)) == 3


def test_track_length_too_long_and_too_short_between_tracks() -> None:
    second = b"\x00\x91\x30\x50\x60\x30\x00" + EOT
    data = header(1, 2) + mtrk(RUNNING + EOT, length=len(RUNNING) + 40) + mtrk(second)
    mf = read_midi(data)
    assert len(mf.tracks) == 2 and len(notes_of(mf)) == 6
    data = header(1, 2) + mtrk(RUNNING + EOT, length=5) + mtrk(second)
    mf = read_midi(data)
    assert len(mf.tracks) == 2 and len(notes_of(mf)) == 6
    assert any("too short" in r for r in mf.repairs)


def test_header_track_count_is_not_trusted() -> None:
    tracks = mtrk(RUNNING + EOT) * 3
    for declared in (0, 2, 30):
        mf = read_midi(header(1, declared) + tracks)
        assert len(mf.tracks) == 3 and mf.declared_tracks == declared
        assert f"the header says {declared} tracks but 3 were found" in mf.repairs


def test_unknown_chunks_are_skipped_and_riff_rmid_is_unwrapped() -> None:
    plain = smf(RUNNING + EOT)
    junk = plain[:14] + b"Junk" + (5).to_bytes(4, "big") + b"hello" + plain[14:]
    assert len(notes_of(read_midi(junk))) == 4
    riff_body = b"RMID" + b"data" + len(plain).to_bytes(4, "little") + plain
    riff = b"RIFF" + len(riff_body).to_bytes(4, "little") + riff_body
    mf = read_midi(riff)
    assert len(notes_of(mf)) == 4 and "unwrapped a RIFF RMID file" in mf.repairs
    with pytest.raises(MidiError, match="WAV audio"):
        read_midi(b"RIFF\x00\x00\x00\x00WAVEfmt ")


def test_wrong_header_length_pointing_into_the_track_is_taken_as_six() -> None:
    data = header(length=22) + mtrk(RUNNING + EOT)
    assert len(notes_of(read_midi(data))) == 4


def test_smpte_division() -> None:
    division = ((256 - 25) << 8) | 40  # 25 fps, 40 ticks per frame = 1000 ticks per second
    mf = read_midi(smf(RUNNING + EOT, division=division))
    assert mf.ticks_per_quarter is None and mf.ticks_per_second == 1000.0
    division = ((256 - 29) << 8) | 100
    assert read_midi(smf(RUNNING + EOT, division=division)).smpte_fps == 29.97
    with pytest.raises(MidiError, match="16 frames per second, which does not exist"):
        read_midi(smf(RUNNING + EOT, division=((256 - 16) << 8) | 96))


def test_five_byte_delta_ends_the_track_but_keeps_what_came_before() -> None:
    body = b"\x00\x90\x3c\x7f\x81\x10\x80\x3c\x00" + b"\x8f\xff\xff\xff\x50\x90\x37\x7f" + EOT
    mf = read_midi(smf(body))
    assert notes_of(mf) == [(0, "note_on", 0, 60, 127), (144, "note_off", 0, 60, 0)]
    assert mf.warnings == ("track 1 is damaged; kept the music before the damage",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"GIF89a\x01\x00", "not a MIDI file (it looks like a GIF image)"),
        (b"<!DOCTYPE html><html>", "not a MIDI file (it looks like a web page)"),
        (b"ID3\x03\x00", "not a MIDI file (it looks like an MP3 audio file)"),
        (b"hello, this is text", "not a MIDI file (it looks like text)"),
        (b"\x00\x01\x02\x03", "not a MIDI file"),
        (b"MThd\x00\x00", "the file is truncated inside its MIDI header"),
        (header(fmt=3) + mtrk(EOT), "format 3 does not exist (MIDI files are type 0, 1 or 2)"),
        (header(fmt=7) + mtrk(EOT), "format 7 does not exist"),
        (header(division=0) + mtrk(EOT), "0 ticks per quarter note"),
        (header(length=2) + mtrk(EOT), "the MIDI header is damaged"),
        (header(), "the file is truncated and no notes could be recovered"),
        (header() + b"mTrk" + b"\x00\x00\x00\x04" + EOT, "found a 'mTrk' chunk"),
    ],
)
def test_refusals_are_specific(data: bytes, message: str) -> None:
    with pytest.raises(MidiError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_midi(data)


def test_huge_length_fields_do_not_allocate() -> None:
    # Every length field claims ~4 GiB (and the header 65535 tracks); the reader must not
    # allocate for what is claimed, only for what is there (a few bytes here).
    data = header(1, 65535) + b"MTrk\xff\xff\xff\xff" + b"\x00\xff\x01\xff\xff\xff\x7f" + b"ab"
    tracemalloc.start()
    try:
        mf = read_midi(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert mf.truncated and mf.tracks == ((),)


def _mido_file(seed: int, tracks: int = 2) -> bytes:
    rng = random.Random(seed)
    mf = mido.MidiFile(type=1, ticks_per_beat=rng.choice([96, 480]))
    for t in range(tracks):
        track = mido.MidiTrack()
        mf.tracks.append(track)
        track.append(mido.MetaMessage("track_name", name=f"t{t}"))
        if t == 0:
            track.append(mido.MetaMessage("set_tempo", tempo=rng.randint(300_000, 900_000)))
            track.append(mido.MetaMessage("key_signature", key=rng.choice(["C", "F#m", "Bb"])))
        for _ in range(rng.randint(1, 60)):
            pitch, ch = rng.randint(20, 100), rng.choice([0, 1, 9])
            track.append(mido.Message("note_on", note=pitch, velocity=rng.randint(1, 127),
                                      channel=ch, time=rng.randint(0, 300)))
            if rng.random() < 0.2:
                track.append(mido.Message("control_change", control=7, value=90, channel=ch))
            track.append(mido.Message("note_on", note=pitch, velocity=0, channel=ch,
                                      time=rng.randint(0, 300)))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


@given(st.integers(0, 10**6))
@settings(max_examples=60, deadline=None)
def test_agrees_with_mido_on_valid_files(seed: int) -> None:
    data = _mido_file(seed)
    theirs = []
    for i, track in enumerate(mido.MidiFile(file=io.BytesIO(data)).tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type in ("note_on", "note_off"):
                off = msg.type == "note_off" or msg.velocity == 0
                kind = "note_off" if off else "note_on"
                theirs.append((i, tick, kind, msg.channel, msg.note, msg.velocity))
    mf = read_midi(data)
    ours = [
        (i, e.tick, e.kind, e.channel, e.a, e.b)
        for i, tr in enumerate(mf.tracks)
        for e in tr
        if e.kind in ("note_on", "note_off")
    ]
    assert ours == theirs
    assert mf.warnings == () and mf.repairs == ()


def _seeds() -> list[bytes]:
    seeds = [_mido_file(1), _mido_file(2, tracks=3)]
    if CORPUS.is_dir():
        files = sorted(p for p in CORPUS.iterdir() if p.suffix != ".md")
        seeds += [p.read_bytes() for p in files if p.stat().st_size < 20_000]
    return [s for s in seeds if s]


SEEDS = _seeds()


def _read_only_midi_errors(data: bytes) -> None:
    try:
        read_midi(data)
    except MidiError as e:
        assert str(e) and str(e) != INTERNAL_ERROR


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_fuzz_random_bytes(data: bytes) -> None:
    _read_only_midi_errors(data)


@given(st.binary(max_size=600))
@settings(max_examples=200, deadline=None)
def test_fuzz_random_bytes_behind_a_valid_header(tail: bytes) -> None:
    _read_only_midi_errors(header(1, 3) + b"MTrk" + len(tail).to_bytes(4, "big") + tail)


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "set"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xF0, 0xF7, 0xFF, 0x2F]))
    return bytes(data)


@given(mutants())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutations_of_valid_and_corpus_files(data: bytes) -> None:
    _read_only_midi_errors(data)
