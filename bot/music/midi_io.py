"""Deterministic conversion between Score and Standard MIDI File bytes (type 1, 480 PPQ)."""

from __future__ import annotations

import io
import logging
import struct
from collections import defaultdict, deque
from dataclasses import dataclass, field

import mido

from cadenza.errors import UserError
from cadenza.music.score import GRID, ROLES, ChordEvent, Note, Score, ScoreError, Track
from cadenza.music.theory import Chord, Key, TheoryError

log = logging.getLogger(__name__)

PPQ = 480  # divisible by 12, 16, 24 and 32: every grid we generate lands on a whole tick
DRUM_CHANNEL = 9
# Channels 0-8 and 10-15: channel 10 (index 9) is reserved for General MIDI percussion.
MELODIC_CHANNELS = (*range(9), *range(10, 16))
NO_CHORD = "N.C."  # marker that ends a chord when the next one does not start right away

# A little reverb glues the parts together; bass and drums get less so the low end stays dry.
REVERB_SEND = {"lead": 40, "chords": 45, "bass": 15, "drums": 25, "other": 40}

_BARS_PREFIX = "cadenza:bars="
_STYLE_PREFIX = "cadenza:style="
_ROLE_PREFIX = "cadenza:role="


def _meta_text(text: str) -> str:
    # mido writes meta text as latin-1; smuggling UTF-8 bytes through keeps any name lossless
    # while plain ASCII (the usual case) is unchanged for other MIDI software.
    return text.encode("utf-8").decode("latin-1")


def _unmeta_text(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text  # a foreign file written in real latin-1


def _scale(tick: int, src: int, dst: int) -> int:
    """Rescale a tick count between resolutions, rounding half up with integers only."""
    return (tick * dst * 2 + src) // (src * 2)


def _channels(score: Score) -> list[int]:
    melodic = iter(MELODIC_CHANNELS)
    out = []
    for track in score.tracks:
        if track.is_drum:
            out.append(DRUM_CHANNEL)
            continue
        ch = next(melodic, None)
        if ch is None:
            raise ScoreError(f"at most {len(MELODIC_CHANNELS)} melodic tracks fit in one MIDI file")
        out.append(ch)
    return out


def _note_spans(notes: tuple[Note, ...], res: int) -> list[tuple[int, int, int, int]]:
    """(start, end, pitch, velocity) in PPQ ticks with same-pitch overlaps resolved.

    A MIDI channel cannot sound one key twice: a synth re-triggers on the second note-on and the
    first note-off would then silence the *second* note early. So a note that restarts a still
    sounding pitch cuts the earlier one at its own onset and rings until the later of the two
    ends; notes starting on the same tick merge (loudest velocity wins).
    """
    by_pitch: dict[int, list[list[int]]] = defaultdict(list)
    for n in notes:  # Track keeps notes sorted by (start, duration, pitch, velocity)
        start, end = _scale(n.start, res, PPQ), _scale(n.end, res, PPQ)
        end = max(end, start + 1)
        spans = by_pitch[n.pitch]
        if spans and start < spans[-1][1]:
            prev = spans[-1]
            if start == prev[0]:
                prev[1] = max(prev[1], end)
                prev[3] = max(prev[3], n.velocity)
                continue
            end = max(end, prev[1])
            prev[1] = start
        spans.append([start, end, n.pitch, n.velocity])
    return [(s, e, p, v) for spans in by_pitch.values() for s, e, p, v in spans]


# A channel event is its status byte and data bytes; meta events stay mido MetaMessages, whose
# encoding (the key-signature table, text as latin-1) is mido's to know.
Event = tuple[int, int, int, int, "bytes | mido.MetaMessage"]


_SHORT = [bytes((v,)) for v in range(0x80)]


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (7 bits per byte, high bit on all but the last)."""
    if value < 0x80:
        return _SHORT[value]
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track_chunk(events: list[Event], end_tick: int) -> bytes:
    """Sort absolute-time events by a total order and write them as an MTrk chunk with delta
    times and running status, ending the track at ``end_tick``: the bytes mido's writer gives
    for the same messages, without building a Message object per note."""
    events.sort(key=lambda e: e[:4])
    data = bytearray()
    now = 0
    running = None
    for tick, *_, msg in events:
        data += _vlq(tick - now)
        now = tick
        if isinstance(msg, bytes):
            data += msg[1:] if msg[0] == running else msg
            running = msg[0]
        else:
            data += bytes(msg.bytes())
            running = None
    data += _vlq(max(0, end_tick - now)) + b"\xff\x2f\x00"  # end of track
    return b"MTrk" + len(data).to_bytes(4, "big") + data


def score_to_midi(score: Score) -> bytes:
    """Encode a Score as type-1 MIDI: a conductor track, then one track per part.

    The same Score always gives byte-identical output: every event has a sort key
    (tick, kind, pitch, sequence) where note-offs sort before note-ons on the same tick.
    """
    res = score.resolution
    length = _scale(score.length_ticks, res, PPQ)
    chunks = []

    num, den = score.time_signature
    conductor: list[Event] = [
        (0, 0, 0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(score.tempo))),
        (0, 0, 0, 1, mido.MetaMessage("time_signature", numerator=num, denominator=den)),
        (0, 0, 0, 2, mido.MetaMessage("key_signature", key=score.key.name)),
        (0, 0, 0, 3, mido.MetaMessage("text", text=f"{_BARS_PREFIX}{score.bars}")),
    ]
    if score.style:
        conductor.append(
            (0, 0, 0, 4, mido.MetaMessage("text", text=_meta_text(_STYLE_PREFIX + score.style)))
        )
    chords = score.chords
    for i, ev in enumerate(chords):
        start, end = _scale(ev.start, res, PPQ), _scale(ev.end, res, PPQ)
        marker = mido.MetaMessage("marker", text=ev.chord.name(score.key))
        conductor.append((start, 2, 0, i, marker))
        next_start = _scale(chords[i + 1].start, res, PPQ) if i + 1 < len(chords) else length
        if end != next_start or length == 0:
            # Gaps (or a last chord ending before the final bar) would otherwise be read back
            # as the chord ringing on; "N.C." is the lead-sheet spelling of "no chord".
            conductor.append((end, 1, 0, i, mido.MetaMessage("marker", text=NO_CHORD)))
    last = max((t for t, *_ in conductor), default=0)
    chunks.append(_track_chunk(conductor, max(length, last)))

    for track, ch in zip(score.tracks, _channels(score), strict=True):
        setup: list[bytes | mido.MetaMessage] = [
            mido.MetaMessage("track_name", name=_meta_text(track.name)),
            mido.MetaMessage("text", text=_ROLE_PREFIX + track.role),
            bytes((0xC0 | ch, track.program)),  # program change
            bytes((0xB0 | ch, 7, track.volume)),  # control changes: volume, pan, reverb send
            bytes((0xB0 | ch, 10, track.pan)),
            bytes((0xB0 | ch, 91, REVERB_SEND[track.role])),
        ]
        events: list[Event] = [(0, 0, 0, i, msg) for i, msg in enumerate(setup)]
        on, off = 0x90 | ch, 0x80 | ch
        for start, end, pitch, vel in _note_spans(track.notes, res):
            events.append((start, 2, pitch, vel, bytes((on, pitch, vel))))
            # note_off sorts before note_on (kind 1 < 2) so a repeated pitch re-strikes cleanly
            events.append((end, 1, pitch, 0, bytes((off, pitch, 0))))
        last = max((t for t, *_ in events), default=0)
        chunks.append(_track_chunk(events, last))

    header = b"MThd" + (6).to_bytes(4, "big") + struct.pack(">hhh", 1, len(chunks), PPQ)
    return header + b"".join(chunks)


def open_own_midi(data: bytes) -> mido.MidiFile:
    """Parse MIDI bytes, turning the many ways a bad file can fail into one UserError."""
    try:
        return mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as e:
        raise UserError(f"not a valid MIDI file: {e}") from None


def midi_to_score(data: bytes) -> Score:
    """Decode MIDI written by ``score_to_midi`` back into a Score at resolution GRID.

    Other MIDI files load too (channel 10 = drums, roles default to 'other'), but only our own
    metadata restores roles, bars, style and chord spans exactly.
    """
    mid = open_own_midi(data)
    info = _FileInfo()
    tracks = []
    for mtrack in mid.tracks:
        track = _read_track(mtrack, mid.ticks_per_beat, info)
        if track is not None:
            tracks.append(track)

    try:
        time_signature = info.meter or (4, 4)
        bar_ticks = Score(resolution=GRID, time_signature=time_signature).bar_ticks
        bars = info.bars
        if bars is None:
            last = max((n.end for t in tracks for n in t.notes), default=0)
            bars = -(-last // bar_ticks)
        return Score(tracks=tuple(tracks), chords=_chord_events(info.markers, bars * bar_ticks),
                     resolution=GRID, tempo=info.tempo or 120.0, time_signature=time_signature,
                     key=info.key or Key(0), bars=bars, style=info.style)
    except ScoreError as e:  # e.g. a foreign file at 500 bpm or in 7/64
        raise UserError(f"unsupported MIDI file: {e}") from None


@dataclass
class _FileInfo:
    """Conductor-level facts collected while reading the tracks (first occurrence wins)."""

    tempo: float | None = None
    meter: tuple[int, int] | None = None
    key: Key | None = None
    bars: int | None = None
    style: str | None = None
    markers: list[tuple[int, str]] = field(default_factory=list)


def _read_track(mtrack: mido.MidiTrack, tpb: int, info: _FileInfo) -> Track | None:
    """One MIDI track to a Track (None for a conductor track); file-level metas go to info."""
    name, role = "", None
    program, volume, pan = 0, 100, 64
    channel: int | None = None
    open_notes: dict[tuple[int, int], deque[tuple[int, int]]] = defaultdict(deque)
    notes: list[Note] = []
    now = 0

    def close(ch: int, pitch: int, tick: int) -> None:
        stack = open_notes.get((ch, pitch))
        if stack:  # first on, first off: matches how a synth pairs repeated keys
            start, vel = stack.popleft()
            s, e = _scale(start, tpb, GRID), _scale(tick, tpb, GRID)
            notes.append(Note(s, max(1, e - s), pitch, vel))

    for msg in mtrack:
        now += msg.time
        kind = msg.type
        if kind == "set_tempo" and info.tempo is None:
            # two decimals undo the microsecond rounding of bpm2tempo for any 10-400 bpm
            info.tempo = round(mido.tempo2bpm(msg.tempo), 2)
        elif kind == "time_signature" and info.meter is None:
            info.meter = (msg.numerator, msg.denominator)
        elif kind == "key_signature" and info.key is None:
            try:
                info.key = Key.parse(msg.key)
            except TheoryError:
                log.debug("ignoring key signature %r", msg.key)
        elif kind == "track_name":
            name = _unmeta_text(msg.name)
        elif kind == "text":
            text = _unmeta_text(msg.text)
            if text.startswith(_BARS_PREFIX) and text[len(_BARS_PREFIX):].isdigit():
                info.bars = int(text[len(_BARS_PREFIX):])
            elif text.startswith(_STYLE_PREFIX):
                info.style = text[len(_STYLE_PREFIX):] or None
            elif text.startswith(_ROLE_PREFIX) and text[len(_ROLE_PREFIX):] in ROLES:
                role = text[len(_ROLE_PREFIX):]
        elif kind == "marker":
            info.markers.append((_scale(now, tpb, GRID), msg.text.strip()))
        elif kind == "program_change":
            program = msg.program
            if channel is None:
                channel = msg.channel
        elif kind == "control_change" and msg.control == 7:
            volume = msg.value
        elif kind == "control_change" and msg.control == 10:
            pan = msg.value
        elif kind == "note_on" and msg.velocity > 0:
            if channel is None:
                channel = msg.channel
            open_notes[(msg.channel, msg.note)].append((now, msg.velocity))
        elif kind == "note_off" or (kind == "note_on" and msg.velocity == 0):
            close(msg.channel, msg.note, now)
    for (ch, pitch), stack in list(open_notes.items()):
        while stack:  # a note never released ends with its track
            close(ch, pitch, now)

    if not notes and role is None and channel is None:
        return None
    is_drum = channel == DRUM_CHANNEL
    if role is None:
        role = "drums" if is_drum else "other"
    return Track(name=name or role, role=role, program=program, is_drum=is_drum,
                 notes=tuple(notes), volume=volume, pan=pan)


def _chord_events(markers: list[tuple[int, str]], length: int) -> tuple[ChordEvent, ...]:
    """Chord spans from markers: each chord lasts until the next marker (or the score's end)."""
    out: list[ChordEvent] = []
    markers = sorted(markers, key=lambda m: m[0])  # stable: N.C. then chord on a shared tick
    for i, (tick, text) in enumerate(markers):
        if text == NO_CHORD:
            continue
        try:
            chord = Chord.parse(text)
        except TheoryError:
            log.debug("ignoring marker %r", text)
            continue
        end = next((t for t, _ in markers[i + 1:] if t > tick), length)
        if end > tick:
            out.append(ChordEvent(tick, end - tick, chord))
    return tuple(out)
