"""A lenient Standard MIDI File reader: bytes in, timed events out, MidiError when hopeless.

Members upload files that strict parsers (mido, pretty_midi) reject over one bad meta value, a stray
byte after End-of-Track or a RIFF wrapper. This reader keeps every note it can and says what it
repaired. Contract: :func:`read_midi` raises nothing but :class:`MidiError` (a ``ValueError`` whose
text is a short sentence for the member), and its work and memory are linear in the input size:
length fields are never trusted for allocation, variable-length numbers are capped at 4 bytes and a
damaged stretch of a track is skipped a bounded number of bytes before the track is given up.

Recovery rules (each recorded in ``MidiFile.warnings`` when it may change the music, or in
``MidiFile.repairs`` when it cannot):

* RIFF ``RMID`` wrappers are unwrapped; a few known non-MIDI formats (GIF, PNG, HTML, MP3 ...) are
  named in the refusal. A mangled header id is accepted when a 6-byte header and an ``MTrk``
  chunk follow it.
* Unknown chunk types are skipped (as the SMF spec says); a header track count that disagrees with
  the chunks present is ignored (all ``MTrk`` chunks are read); a header length field that points
  into the first track is taken as 6.
* Bytes after End-of-Track are ignored; a missing End-of-Track ends the track at its chunk end; a
  chunk length that runs past the file marks the file truncated and keeps the events that parsed.
* Running status: 0xF0/0xF7/0xFF never become the running status, and a data byte after a sysex or
  meta event reuses the last *channel* status (what players do, and what the files' authors meant).
* Note-on with velocity 0 is reported as ``note_off``. Data bytes > 127 are clipped to 127.
* Undefined or real-time status bytes (0xF1-0xF6, 0xF8-0xFE) are skipped with their data bytes.
* A data byte where a status byte is required (and no running status exists) makes the reader
  resynchronise one byte further; after ``_MAX_RESYNC`` failures in a row the track is given up.
* A variable-length number longer than 4 bytes (the spec's maximum) is corruption: the track ends.
* Meta events with bad values (a key signature with 10 sharps or mode 255, a tempo of 0, an SMPTE
  offset with 125 frames) are dropped; the music is kept. A fixed-size meta whose length field is
  too short but whose missing bytes still follow (seen in real files) is read at its proper size.
* SMPTE time division: 24, 25, 29.97 (stored as 29) and 30 fps are accepted; anything else is
  refused. Format 3+ and broken headers are refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

log = logging.getLogger(__name__)

# After this many unreadable event starts in a row the rest of a track is treated as garbage:
# real damage (a short meta, a stray byte) resynchronises within a few bytes.
_MAX_RESYNC = 16
_MAX_VLQ_BYTES = 4  # the SMF spec's maximum; a 5th byte means the data is corrupt
_SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 29.97, 30: 30.0}
# Sizes the SMF spec gives to fixed-size meta events (for the short-length repair).
_META_SIZES = {0x00: 2, 0x20: 1, 0x21: 1, 0x51: 3, 0x54: 5, 0x58: 4, 0x59: 2}
# Wire lengths of system common messages that sometimes leak into files (not legal in SMF).
_SYSTEM_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1}
INTERNAL_ERROR = "the MIDI file could not be read (unexpected damage)"

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "a GIF image"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"ID3", "an MP3 audio file"),
    (b"\xff\xfb", "an MP3 audio file"),
    (b"OggS", "an Ogg audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
    (b"MThd", "a MIDI file"),
)


class MidiError(ValueError):
    """A MIDI file that cannot be used; ``str(e)`` is a short sentence meant for the member."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MidiEvent(NamedTuple):
    """One event at an absolute tick of its track.

    ``kind`` is one of: note_on, note_off (a=pitch, b=velocity), poly_aftertouch (a=pitch,
    b=pressure), control (a=controller, b=value), program (a=program), aftertouch (a=pressure),
    pitch_bend (a=0-16383), sysex (data), tempo (a=microseconds per quarter), time_signature (a=
    numerator, b=denominator), key_signature (a=sharps -7..7, b=0 major / 1 minor), track_name and
    text (a=meta type, data), end_of_track, meta (any other meta: a=type, data).
    ``channel`` is 0-15 for channel events and -1 otherwise.
    """

    tick: int
    kind: str
    channel: int = -1
    a: int = 0
    b: int = 0
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class MidiFile:
    """What :func:`read_midi` recovered from a file."""

    format: int
    ticks_per_quarter: int | None  # None when the file counts time in SMPTE frames
    smpte_fps: float | None  # 24, 25, 29.97 or 30 for SMPTE time division
    ticks_per_frame: int | None
    tracks: tuple[tuple[MidiEvent, ...], ...]
    declared_tracks: int
    truncated: bool  # the data ran out before a track's End-of-Track
    warnings: tuple[str, ...]  # recoveries that may have changed the music
    repairs: tuple[str, ...]  # harmless fixes, for logs and source info

    @property
    def ticks_per_second(self) -> float | None:
        """SMPTE files only: ticks are real time."""
        if self.smpte_fps is None or self.ticks_per_frame is None:
            return None
        return self.smpte_fps * self.ticks_per_frame


class _Issues:
    """Collects messages once each, with a count, so hostile files cannot flood the list."""

    def __init__(self) -> None:
        self.counts: dict[tuple[bool, str], int] = {}

    def add(self, message: str, *, music: bool = True) -> None:
        key = (music, message)
        self.counts[key] = self.counts.get(key, 0) + 1

    def lines(self, music: bool) -> tuple[str, ...]:
        out = []
        for (is_music, msg), n in self.counts.items():
            if is_music == music:
                out.append(msg if n == 1 else f"{msg} ({n} times)")
        return tuple(out)


def read_midi(data: bytes) -> MidiFile:
    """Parse a Standard MIDI File (or an RMID wrapper around one); see the module docstring."""
    try:
        return _read(bytes(data))
    except MidiError:
        raise
    except Exception:  # a bug here must still give the member a sentence, not a traceback
        log.exception("unexpected failure while reading a MIDI file")
        raise MidiError(INTERNAL_ERROR) from None


def describe_non_midi(data: bytes) -> str:
    """Name what a non-MIDI upload looks like, for the refusal message."""
    head = bytes(data[:64])
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "a WAV audio file"
    if head[4:8] == b"ftyp":
        return "an MP4/M4A file"
    for sig, what in _SIGNATURES:
        if head.startswith(sig):
            return what
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")):
        return "a web page" if b"html" in text else "an XML document"
    if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "text"
    return ""


def _not_midi(data: bytes) -> MidiError:
    what = describe_non_midi(data)
    if what == "a MIDI file":  # only reached when the header itself is unusable
        return MidiError("the MIDI header is damaged")
    suffix = f" (it looks like {what})" if what else ""
    return MidiError(f"not a MIDI file{suffix}")


def _unwrap_riff(data: bytes, issues: _Issues) -> bytes:
    """Return the SMF inside a RIFF RMID file (chunks: 'data' holds the MIDI file)."""
    if data[8:12] != b"RMID":
        raise _not_midi(data)
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"data":
            issues.add("unwrapped a RIFF RMID file", music=False)
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)  # RIFF chunks are padded to even sizes
    raise MidiError("the RMID file holds no MIDI data")


def _find_header(data: bytes, issues: _Issues) -> bytes:
    if not data:
        raise MidiError("the file is empty")
    if data.startswith(b"RIFF"):
        data = _unwrap_riff(data, issues)
    if data.startswith(b"MThd"):
        return data
    if data[4:8] == b"\0\0\0\x06" and data[14:18] == b"MTrk":
        # A mangled header id ("MT0d") on an otherwise well-formed header and first track.
        issues.add(f"the header chunk id was {data[:4]!r}", music=False)
        return b"MThd" + data[4:]
    # Some files carry a MacBinary or other short prefix before the header.
    start = data.find(b"MThd", 0, 1024)
    if start > 0 and not describe_non_midi(data):
        issues.add(f"skipped {start} bytes before the MIDI header", music=False)
        return data[start:]
    raise _not_midi(data)


def _read(data: bytes) -> MidiFile:
    issues = _Issues()
    data = _find_header(data, issues)
    if len(data) < 14:
        raise MidiError("the file is truncated inside its MIDI header")
    hlen = int.from_bytes(data[4:8], "big")
    if hlen < 6:
        raise MidiError("the MIDI header is damaged (it is too short)")
    fmt = int.from_bytes(data[8:10], "big")
    ntracks = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big")
    body = 8 + hlen
    if hlen != 6 and (data[14:18] == b"MTrk" or body + 8 > len(data)):
        # A wrong header length that would skip into (or past) the first track.
        issues.add(f"the header length field said {hlen}; used 6", music=False)
        body = 14
    if fmt > 2:
        raise MidiError(f"format {fmt} does not exist (MIDI files are type 0, 1 or 2)")

    tpq: int | None = None
    fps: float | None = None
    tpf: int | None = None
    if division & 0x8000:
        rate = 256 - (division >> 8)
        tpf = division & 0xFF
        if rate not in _SMPTE_FPS:
            raise MidiError(
                f"the file counts time in SMPTE frames at {rate} frames per second, "
                "which does not exist (24, 25, 29.97 or 30)"
            )
        if tpf == 0:
            raise MidiError("the file's time base is 0 ticks per SMPTE frame")
        fps = _SMPTE_FPS[rate]
    else:
        if division == 0:
            raise MidiError("the file's time base is 0 ticks per quarter note")
        tpq = division

    tracks, truncated, odd_chunk = _read_chunks(data, body, issues)
    if not tracks:
        if odd_chunk:
            raise MidiError(
                f"the file has no MIDI tracks (found a '{odd_chunk}' chunk where 'MTrk' "
                "was expected)"
            )
        if truncated or len(data) <= body:
            raise MidiError("the file is truncated and no notes could be recovered")
        raise MidiError("the file has no MIDI tracks")
    if len(tracks) != ntracks:
        issues.add(f"the header says {ntracks} tracks but {len(tracks)} were found", music=False)
    if fmt == 0 and len(tracks) > 1:
        issues.add("a type-0 file with several tracks was read as type 1", music=False)
        fmt = 1
    return MidiFile(
        format=fmt,
        ticks_per_quarter=tpq,
        smpte_fps=fps,
        ticks_per_frame=tpf,
        tracks=tuple(tracks),
        declared_tracks=ntracks,
        truncated=truncated,
        warnings=issues.lines(True),
        repairs=issues.lines(False),
    )


def _chunk_at(data: bytes, pos: int) -> bytes | None:
    """The 4-byte chunk id at pos if it looks like one (printable ASCII), else None."""
    cid = data[pos : pos + 4]
    if len(cid) == 4 and all(32 < c < 127 for c in cid):
        return cid
    return None


def _read_chunks(
    data: bytes, pos: int, issues: _Issues
) -> tuple[list[tuple[MidiEvent, ...]], bool, str]:
    """Walk the chunks after the header. Returns tracks, truncated flag, a mis-cased MTrk id."""
    tracks: list[tuple[MidiEvent, ...]] = []
    truncated = False
    odd = ""
    size = len(data)
    while pos + 8 <= size:
        cid = _chunk_at(data, pos)
        length = int.from_bytes(data[pos + 4 : pos + 8], "big")
        if cid is None:
            nxt = data.find(b"MTrk", pos + 1)
            if nxt < 0:
                issues.add(f"ignored {size - pos} bytes of junk after the last track", music=False)
                return tracks, truncated, odd
            issues.add(f"skipped {nxt - pos} bytes of junk between chunks", music=False)
            pos = nxt
            continue
        start = pos + 8
        declared_end = start + length
        if cid != b"MTrk":
            name = cid.decode("ascii")
            if name.lower() == "mtrk" and not odd:
                odd = name
            issues.add(f"skipped an unknown '{name}' chunk", music=False)
            if declared_end > size:
                nxt = data.find(b"MTrk", start)
                if nxt < 0:
                    return tracks, truncated, odd
                declared_end = nxt
            pos = declared_end
            continue

        index = len(tracks) + 1
        end = min(declared_end, size)
        events, how, stop = _parse_track(data, start, end, issues, index)
        nxt = declared_end
        if how == "eot":
            junk = end - stop
            if declared_end > size and junk == 0:
                issues.add(f"track {index}'s length field runs past the file", music=False)
            elif junk > 0 and data[stop : stop + 4] == b"MTrk":
                issues.add(f"track {index}'s length field was too long", music=False)
                nxt = stop
            elif junk > 0:
                issues.add(f"ignored {junk} bytes after the end of track {index}", music=False)
        elif declared_end < size and _chunk_at(data, declared_end) is None:
            # No End-of-Track inside the declared length and no chunk after it: the length
            # field was too short. Read on to the real End-of-Track if there is one.
            more, how2, stop2 = _parse_track(data, start, size, _Issues(), index)
            if how2 == "eot":
                issues.add(f"track {index}'s length field was too short", music=False)
                events, how, nxt = more, how2, stop2
        if how in ("cut", "end") and declared_end > size:
            truncated = True  # reported by the importer, which knows how much music was kept
        elif how == "end" and events:
            issues.add(f"track {index} has no End-of-Track", music=False)
        elif how == "cut":
            issues.add(f"track {index} ends in the middle of an event")
        elif how == "corrupt":
            issues.add(f"track {index} is damaged; kept the music before the damage")
        tracks.append(tuple(events))
        pos = nxt
    if pos < size:
        issues.add(f"ignored {size - pos} bytes at the end of the file", music=False)
        if not tracks:
            truncated = True
    return tracks, truncated, odd


def _vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a variable-length number. Returns (value, new pos); pos -1 = ran out, -2 = corrupt."""
    value = 0
    for _ in range(_MAX_VLQ_BYTES):
        if pos >= end:
            return 0, -1
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos
    return 0, -2


def _looks_like_event(data: bytes, pos: int, end: int) -> bool:
    """Does a delta time followed by a status byte start at pos (or does the track end there)?"""
    if pos == end:
        return True
    _, p = _vlq(data, pos, end)
    return p >= 0 and p < end and data[p] >= 0x80


def _parse_track(
    data: bytes, start: int, end: int, issues: _Issues, index: int
) -> tuple[list[MidiEvent], str, int]:
    """Parse one track's events in data[start:end].

    Returns the events, how the track ended ('eot'; 'end' = ran out between events; 'cut' = ran
    out inside an event; 'corrupt' = unreadable data) and the position after the last event read.
    """
    events: list[MidiEvent] = []
    append = events.append
    pos = start
    tick = 0
    running = 0  # last channel status byte; 0 = none
    failures = 0  # unreadable event starts in a row
    clipped = False  # reported once per track
    while pos < end:
        ev_start = pos
        delta = data[pos]
        if delta < 0x80:  # fast path: most deltas fit one byte
            pos += 1
        else:
            delta, pos = _vlq(data, pos, end)
            if pos == -1:
                return events, "cut", ev_start
            if pos == -2:
                return events, "corrupt", ev_start
        if pos >= end:
            return events, "cut", ev_start
        status = data[pos]
        if status < 0x80:
            if not running:
                failures += 1
                if failures > _MAX_RESYNC:
                    return events, "corrupt", ev_start
                if failures == 1:
                    issues.add(f"skipped unreadable bytes in track {index}")
                pos = ev_start + 1
                continue
            status = running
        else:
            pos += 1
        failures = 0
        tick += delta

        if status < 0xF0:
            hi = status & 0xF0
            nbytes = 1 if hi in (0xC0, 0xD0) else 2
            if pos + nbytes > end:
                return events, "cut", ev_start
            a = data[pos]
            b = data[pos + 1] if nbytes == 2 else 0
            pos += nbytes
            if a > 127 or b > 127:
                if not clipped:
                    issues.add("clipped data bytes above 127")
                clipped = True
                a, b = min(a, 127), min(b, 127)
            running = status
            ch = status & 0x0F
            if hi == 0x90:
                append(MidiEvent(tick, "note_on" if b else "note_off", ch, a, b))
            elif hi == 0x80:
                append(MidiEvent(tick, "note_off", ch, a, b))
            elif hi == 0xB0:
                append(MidiEvent(tick, "control", ch, a, b))
            elif hi == 0xC0:
                append(MidiEvent(tick, "program", ch, a, 0))
            elif hi == 0xE0:
                append(MidiEvent(tick, "pitch_bend", ch, a | (b << 7)))
            elif hi == 0xA0:
                append(MidiEvent(tick, "poly_aftertouch", ch, a, b))
            else:
                append(MidiEvent(tick, "aftertouch", ch, a, 0))
        elif status == 0xFF:
            if pos >= end:
                return events, "cut", ev_start
            mtype = data[pos]
            length, pos = _vlq(data, pos + 1, end)
            if pos == -2:
                return events, "corrupt", ev_start
            if pos == -1 or pos + length > end:
                return events, "cut", ev_start
            expected = _META_SIZES.get(mtype, 0)
            if (
                length < expected
                and pos + expected <= end
                and not running
                and not _looks_like_event(data, pos + length, end)
                and _looks_like_event(data, pos + expected, end)
            ):
                # The length byte is wrong but the missing parameters follow (seen in the wild).
                issues.add(f"a meta event in track {index} had a too-short length", music=False)
                length = expected
            body = data[pos : pos + length]
            pos += length
            if mtype == 0x2F:
                append(MidiEvent(tick, "end_of_track"))
                return events, "eot", pos
            ev = _meta_event(tick, mtype, body, issues)
            if ev is not None:
                append(ev)
        elif status in (0xF0, 0xF7):
            length, pos = _vlq(data, pos, end)
            if pos == -2:
                return events, "corrupt", ev_start
            if pos == -1 or pos + length > end:
                return events, "cut", ev_start
            append(MidiEvent(tick, "sysex", -1, status, 0, data[pos : pos + length]))
            pos += length
        else:
            # System common / real-time / undefined bytes have no place in a file; skip them
            # with whatever data bytes their wire format carries.
            issues.add(f"skipped an invalid MIDI event (0x{status:02X})")
            n = _SYSTEM_DATA_BYTES.get(status, 0)
            while n and pos < end and data[pos] < 0x80:
                pos += 1
                n -= 1
    return events, "end", pos


def _meta_event(tick: int, mtype: int, body: bytes, issues: _Issues) -> MidiEvent | None:
    """Decode a meta event; drop (with a note) the ones whose values are impossible."""
    n = len(body)
    if mtype == 0x51:
        usec = int.from_bytes(body[:3], "big") if n >= 3 else 0
        if usec == 0:
            issues.add("ignored an invalid tempo")
            return None
        return MidiEvent(tick, "tempo", -1, usec)
    if mtype == 0x58:
        if n < 2 or body[0] == 0 or body[1] > 6:
            issues.add("ignored an invalid time signature")
            return None
        if n < 4:
            issues.add("read a time signature that was too short", music=False)
        return MidiEvent(tick, "time_signature", -1, body[0], 1 << body[1])
    if mtype == 0x59:
        if n < 2:
            issues.add("ignored an invalid key signature")
            return None
        sf = body[0] - 256 if body[0] > 127 else body[0]
        if not -7 <= sf <= 7 or body[1] > 1:
            issues.add("ignored an invalid key signature")
            return None
        return MidiEvent(tick, "key_signature", -1, sf, body[1])
    if mtype == 0x54:
        ok = n >= 5 and (body[0] & 0x1F) < 24 and body[1] < 60 and body[2] < 60
        if not (ok and body[3] < 30 and body[4] < 100):
            issues.add("ignored an invalid SMPTE offset", music=False)
            return None
        return MidiEvent(tick, "meta", -1, mtype, 0, body)
    if mtype == 0x03:
        return MidiEvent(tick, "track_name", -1, mtype, 0, body)
    if 0x01 <= mtype <= 0x0F:
        return MidiEvent(tick, "text", -1, mtype, 0, body)
    return MidiEvent(tick, "meta", -1, mtype, 0, body)
