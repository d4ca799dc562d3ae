"""Turn an uploaded MIDI file into a validated seed Score (GRID ticks), or refuse it in a sentence.

Pipeline: size check -> :func:`cadenza.music.midi_parse.read_midi` (lenient, never trusts the file)
-> note pairing -> limits (notes, tempo, length) -> quantisation -> tracks with guessed roles.

Decisions, so callers know what they get:

* **Timing.** Notes are quantised in *beats* (MIDI ticks / ticks-per-quarter onto GRID=12 per
  quarter), so a rubato tempo map does not push notes off their bars. The tempo map (tempo events
  merged from *all* tracks: the spec puts them in track 0 but real files put them anywhere) gives
  real time: the length limit, ``SourceInfo.seconds`` and the Score's single tempo, which is the
  tempo in effect for most of the music (a tick-weighted median). SMPTE-timed files are converted
  from seconds at 120 bpm.
* **Format 2.** Sequences are played one after another (each starting at 120 bpm unless it sets
  a tempo); sequences without notes take no time.
* **Note pairing** is per (track, channel, pitch), first-in first-out: a note-off ends the oldest
  sounding note of that pitch. A re-strike of a still-sounding pitch then cuts the earlier note at
  the re-strike, so no two notes of one pitch overlap in a track (exact duplicates merge).
* Notes never released end at their track's end; every note is capped at ``MAX_NOTE_BEATS``;
  notes shorter than a grid step are lengthened to one step. Whole empty bars before the first
  note are skipped; silence after the last note is not kept (``bars`` covers the notes).
* **Tracks** are split per (track, channel). Channel 10 is drums. Roles: the lead is the melodic
  part with many notes, the highest average pitch and the least polyphony; bass is programs 32-39
  or a part mostly below C3; other polyphonic parts are 'chords', the rest 'other'.
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from dataclasses import dataclass, field

from cadenza.music.midi_parse import INTERNAL_ERROR, MidiError, MidiEvent, MidiFile, read_midi
from cadenza.music.score import GRID, Note, Score, Track, bar_ticks
from cadenza.music.theory import Key

log = logging.getLogger(__name__)

MAX_NOTE_BEATS = 16  # longer notes (stuck or never released) are cut to 4 bars of 4/4
MAX_TRACKS = 32  # a seed with more parts is almost certainly a broken or hostile file
DRUM_CHANNEL = 9
DEFAULT_USEC = 500_000  # 120 bpm, the SMF default
SMPTE_BPM = 120.0
TEMPO_WARNING = "the tempo "  # how each warning about the tempo used starts (seeds replace them)
_LOW_PITCH = 48  # C3
_GM_FAMILIES = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "effects",
)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Facts about the uploaded file, for logs and the bot's reply."""

    format: int
    tracks: int  # MTrk chunks read
    ticks_per_quarter: int | None
    smpte_fps: float | None
    notes_in_file: int  # note-ons read, before quantisation merged any
    seconds: float  # from the first note to the end of the last, through the tempo map
    truncated: bool
    repairs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The seed, what was repaired on the way (one line each, for the member), file facts."""

    score: Score
    warnings: list[str]
    source_info: SourceInfo


@dataclass(slots=True)
class _RawNote:
    start: int  # source ticks, after the format-2 offset
    end: int
    pitch: int
    velocity: int


@dataclass(slots=True)
class _Group:
    """The notes of one (track, channel)."""

    track: int
    channel: int
    name: str
    notes: list[_RawNote] = field(default_factory=list)


def import_midi(
    data: bytes,
    *,
    max_bytes: int = 1 << 20,
    max_notes: int = 20_000,
    max_seconds: float = 600.0,
    max_tempo_bpm: float = 1000,
    meter_bars: int | None = None,
) -> ImportResult:
    """Read an uploaded MIDI file into a seed Score; raises only MidiError (one-line message).

    ``meter_bars``: judge the meter over the first that many bars from the first note (the
    bars a seed keeps), not the whole file: a piece in 3/4 that turns to 3/8 later is in 3/4.
    """
    too_big = size_refusal(len(data), max_bytes)
    if too_big is not None:
        raise MidiError(too_big)
    mf = read_midi(data)
    try:
        return _import(mf, max_notes, max_seconds, max_tempo_bpm, meter_bars)
    except MidiError:
        raise
    except Exception:  # never show a traceback to a member
        log.exception("unexpected failure while importing a MIDI file")
        raise MidiError(INTERNAL_ERROR) from None


class _Clock:
    """Source ticks -> seconds and -> GRID ticks, through the merged tempo map."""

    def __init__(self, mf: MidiFile, tempos: list[tuple[int, int]]) -> None:
        self.tps = mf.ticks_per_second
        self.tpq = mf.ticks_per_quarter or 1
        self.ticks = [t for t, _ in tempos]
        self.usec = [u for _, u in tempos]
        self.secs = [0.0]
        for i in range(1, len(tempos)):
            span = self.ticks[i] - self.ticks[i - 1]
            self.secs.append(self.secs[-1] + span * self.usec[i - 1] / 1e6 / self.tpq)

    def seconds(self, tick: int) -> float:
        if self.tps:
            return tick / self.tps
        i = bisect.bisect_right(self.ticks, tick) - 1
        return self.secs[i] + (tick - self.ticks[i]) * self.usec[i] / 1e6 / self.tpq

    def grid(self, tick: int) -> int:
        if self.tps:
            return round(tick / self.tps * SMPTE_BPM / 60 * GRID)
        return (tick * GRID * 2 + self.tpq) // (2 * self.tpq)  # exact round-half-up

    def segments(self, start: int, end: int) -> list[tuple[int, float]]:
        """(ticks, bpm) spans of the tempo map that cover [start, end)."""
        if self.tps:
            return [(max(1, end - start), SMPTE_BPM)]
        out = []
        i = max(0, bisect.bisect_right(self.ticks, start) - 1)
        while i < len(self.ticks) and self.ticks[i] < end:
            lo = max(start, self.ticks[i])
            hi = min(end, self.ticks[i + 1]) if i + 1 < len(self.ticks) else end
            out.append((max(0, hi - lo), 60e6 / self.usec[i]))
            i += 1
        if not out:  # start == end at a tempo change
            out.append((0, 60e6 / self.usec[max(0, bisect.bisect_right(self.ticks, start) - 1)]))
        return out


def _import(mf: MidiFile, max_notes: int, max_seconds: float, max_tempo: float,
            meter_bars: int | None = None) -> ImportResult:
    warnings = list(mf.warnings)
    tracks = mf.tracks
    ons = sum(1 for tr in tracks for e in tr if e.kind == "note_on")
    if ons > max_notes:
        raise MidiError(f"the file has {ons:,} notes; the limit is {max_notes:,}")
    if ons == 0:
        if mf.truncated:
            raise MidiError("the file is truncated and no notes could be recovered")
        raise MidiError("the file has no notes")
    if all(e.channel == DRUM_CHANNEL for tr in tracks for e in tr if e.kind == "note_on"):
        raise MidiError("the file has only drums; a seed needs a melody")

    offsets = _sequence_offsets(mf)
    timed = [
        [(e.tick + off, e) for e in tr] if off is not None else []
        for tr, off in zip(tracks, offsets, strict=True)
    ]
    clock = _Clock(mf, _tempo_map(mf, timed, offsets))
    quarter = mf.ticks_per_quarter or round((mf.ticks_per_second or 1) * 60 / SMPTE_BPM)
    groups, hanging, capped = _pair_notes(timed, tracks, MAX_NOTE_BEATS * quarter)
    if hanging:
        verb = "was" if hanging == 1 else "were"
        warnings.append(f"closed {_count(hanging, 'note')} that {verb} never released")
    if capped:
        warnings.append(
            f"shortened {_count(capped, 'note')} held longer than {MAX_NOTE_BEATS} beats"
        )

    all_notes = [n for g in groups for n in g.notes]
    first = min(n.start for n in all_notes)
    last = max(n.end for n in all_notes)
    seconds = clock.seconds(last) - clock.seconds(first)
    if seconds > max_seconds:
        limit = _duration(max_seconds)
        raise MidiError(f"the music lasts {_duration(seconds)}; the limit is {limit}")
    segments = clock.segments(first, last)
    fastest = max(bpm for _, bpm in segments)
    if fastest > max_tempo:
        raise MidiError(f"the tempo reaches {fastest:,.0f} bpm; the limit is {max_tempo:,.0f} bpm")
    tempo = _score_tempo(segments, warnings)

    meter, anchor = _time_signature(timed, first, last, warnings, quarter=quarter,
                                    window_bars=meter_bars)
    key = _key_signature(timed, first)
    bar = bar_ticks(meter)
    beat = GRID * 4 // meter[1]
    # Shift so that the meter's first bar line (rounded to a beat) lands on a bar line of the
    # score, then drop whole empty bars before the first note.
    shift = -(round(clock.grid(anchor) / beat) * beat) % bar
    skip = (clock.grid(first) + shift) // bar
    if skip:
        warnings.append(f"skipped {_count(skip, 'empty bar')} at the start")

    built = _build_tracks(groups, timed, clock, skip * bar - shift, warnings)
    end = max(n.end for t in built for n in t.notes)
    bars = max(1, -(-end // bar))
    if mf.truncated:
        warnings.append(f"the file was truncated; kept the first {_count(bars, 'bar')}")
    score = Score(
        tracks=tuple(built), resolution=GRID, tempo=tempo, time_signature=meter, key=key, bars=bars
    )
    info = SourceInfo(
        format=mf.format,
        tracks=len(tracks),
        ticks_per_quarter=mf.ticks_per_quarter,
        smpte_fps=mf.smpte_fps,
        notes_in_file=ons,
        seconds=round(seconds, 3),
        truncated=mf.truncated,
        repairs=mf.repairs,
    )
    return ImportResult(score=score, warnings=warnings, source_info=info)


def _sequence_offsets(mf: MidiFile) -> list[int | None]:
    """Start tick of each track; format 2 plays sequences in turn (None = no notes, skipped)."""
    if mf.format != 2:
        return [0] * len(mf.tracks)
    out: list[int | None] = []
    t = 0
    for tr in mf.tracks:
        if not any(e.kind == "note_on" for e in tr):
            out.append(None)
            continue
        out.append(t)
        t += tr[-1].tick
    return out


def _tempo_map(
    mf: MidiFile, timed: list[list[tuple[int, MidiEvent]]], offsets: list[int | None]
) -> list[tuple[int, int]]:
    """Merged (tick, usec per quarter) changes, sorted; the last event at a tick wins."""
    events: list[tuple[int, int]] = [(0, DEFAULT_USEC)]
    for tr, off in zip(timed, offsets, strict=True):
        if mf.format == 2 and off is not None:
            events.append((off, DEFAULT_USEC))  # each sequence starts at the default tempo
        events.extend((t, e.a) for t, e in tr if e.kind == "tempo")
    events.sort(key=lambda x: x[0])  # stable: file order decides within one tick
    merged: list[tuple[int, int]] = []
    for t, u in events:
        if merged and merged[-1][0] == t:
            merged[-1] = (t, u)
        elif not merged or merged[-1][1] != u:
            merged.append((t, u))
    return merged


def _pair_notes(
    timed: list[list[tuple[int, MidiEvent]]], tracks: tuple[tuple[MidiEvent, ...], ...], cap: int
) -> tuple[list[_Group], int, int]:
    """Pair note-ons with note-offs (FIFO per track, channel and pitch)."""
    groups: dict[tuple[int, int], _Group] = {}
    hanging = capped = 0
    for ti, tr in enumerate(timed):
        if not tr:
            continue
        name = _track_name(tracks[ti])
        sounding: dict[tuple[int, int], deque[tuple[int, int]]] = {}
        for t, e in tr:
            if e.kind == "note_on":
                sounding.setdefault((e.channel, e.a), deque()).append((t, e.b))
            elif e.kind == "note_off":
                q = sounding.get((e.channel, e.a))
                if q:
                    start, vel = q.popleft()
                    capped += _add(groups, ti, name, e.channel, start, t, e.a, vel, cap)
        track_end = tr[-1][0]
        for (ch, pitch), q in sounding.items():
            for start, vel in q:
                hanging += 1
                capped += _add(groups, ti, name, ch, start, track_end, pitch, vel, cap)
    return list(groups.values()), hanging, capped


def _add(
    groups: dict[tuple[int, int], _Group],
    ti: int,
    name: str,
    ch: int,
    start: int,
    end: int,
    pitch: int,
    vel: int,
    cap: int,
) -> int:
    """Record one note in its (track, channel) group; returns 1 if its length was capped."""
    g = groups.get((ti, ch))
    if g is None:
        g = groups[(ti, ch)] = _Group(ti, ch, name)
    over = end - start > cap
    g.notes.append(_RawNote(start, start + cap if over else end, pitch, vel))
    return int(over)


def _score_tempo(segments: list[tuple[int, float]], warnings: list[str]) -> float:
    """The tempo in effect for most of the music (tick-weighted median), clamped for Score."""
    ordered = sorted(segments, key=lambda s: s[1])
    total = sum(n for n, _ in ordered)
    acc = 0
    bpm = ordered[-1][1]
    for n, b in ordered:
        acc += n
        if acc * 2 >= total:
            bpm = b
            break
    bpm = round(bpm, 2)
    used = [b for n, b in segments if n > 0] or [bpm]
    lo, hi = min(used), max(used)
    clamped = min(400.0, max(10.0, bpm))
    if clamped != bpm:
        warnings.append(f"{TEMPO_WARNING}of {bpm:g} bpm is outside 10-400; used {clamped:g} bpm")
    elif hi > lo * 1.1:
        warnings.append(f"{TEMPO_WARNING}changes between {lo:.0f} and {hi:.0f} bpm; used "
                        f"{clamped:g} bpm throughout")
    return clamped


def _in_effect(events: list[tuple[int, MidiEvent]], tick: int) -> MidiEvent | None:
    """The last event at or before tick, else the first one (files put metas late too)."""
    best = None
    for t, e in events:
        if t <= tick:
            best = e
        else:
            break
    if best is None and events:
        best = events[0][1]
    return best


def _merged(timed: list[list[tuple[int, MidiEvent]]], kind: str) -> list[tuple[int, MidiEvent]]:
    out = [(t, e) for tr in timed for t, e in tr if e.kind == kind]
    out.sort(key=lambda x: x[0])
    return out


def _time_signature(
    timed: list[list[tuple[int, MidiEvent]]], first: int, last: int, warnings: list[str], *,
    quarter: int = 1, window_bars: int | None = None,
) -> tuple[tuple[int, int], int]:
    """The meter covering most of the music, and the source tick where its bars begin.

    Files often open with a short bar (a 1/4 pickup, then 3/4): taking the longest-running meter
    and anchoring its bar lines where it starts keeps the downbeats where the file has them.
    With ``window_bars`` only that many bars (of the meter sounding at the first note) from the
    first note count: the music a seed keeps.
    """
    events = _merged(timed, "time_signature")
    if not events:
        return (4, 4), 0
    if window_bars is not None:
        opening = _in_effect(events, first) or events[0][1]
        bar = quarter * 4 * max(1, opening.a) / max(1, opening.b)
        last = min(last, first + max(1, round(window_bars * bar)))
    weight: dict[tuple[int, int], int] = {}
    anchor: dict[tuple[int, int], int] = {}
    for i, (t, e) in enumerate(events):
        lo = 0 if i == 0 else t  # a meter set after the first note still counts from the start
        hi = events[i + 1][0] if i + 1 < len(events) else last
        meter = (e.a, e.b)
        weight[meter] = weight.get(meter, 0) + max(0, min(hi, last) - max(lo, first))
        if meter not in anchor and hi > first:
            anchor[meter] = lo
    meter = max(weight, key=lambda m: (weight[m], -anchor.get(m, last)))
    num, den = meter
    if num > 32 or den > 32 or (GRID * 4 * num) % den:
        warnings.append(f"the time signature {num}/{den} is not supported; used 4/4")
        return (4, 4), 0
    changes = sum(1 for t, e in events if first < t < last and (e.a, e.b) != meter)
    if changes:
        warnings.append(
            f"the time signature changes {_count(changes, 'time')}; used {num}/{den} throughout"
        )
    return meter, anchor.get(meter, 0)


def _key_signature(timed: list[list[tuple[int, MidiEvent]]], first: int) -> Key:
    ev = _in_effect(_merged(timed, "key_signature"), first)
    if ev is None:
        return Key(0)
    if ev.b == 1:
        return Key((7 * ev.a + 9) % 12, "minor")
    return Key((7 * ev.a) % 12, "major")


def _channel_state(
    timed: list[list[tuple[int, MidiEvent]]], kind: str, controller: int | None = None
) -> dict[int, list[tuple[int, int]]]:
    """Per channel, the sorted (tick, value) changes of a program or a controller."""
    out: dict[int, list[tuple[int, int]]] = {}
    for tr in timed:
        for t, e in tr:
            if e.kind != kind:
                continue
            if controller is None:
                out.setdefault(e.channel, []).append((t, e.a))
            elif e.a == controller:
                out.setdefault(e.channel, []).append((t, e.b))
    for changes in out.values():
        changes.sort(key=lambda x: x[0])
    return out


def _value_at(changes: list[tuple[int, int]] | None, tick: int, default: int) -> int:
    if not changes:
        return default
    i = bisect.bisect_right([t for t, _ in changes], tick) - 1
    return changes[i][1] if i >= 0 else changes[0][1]


def _build_tracks(
    groups: list[_Group],
    timed: list[list[tuple[int, MidiEvent]]],
    clock: _Clock,
    trim: int,
    warnings: list[str],
) -> list[Track]:
    groups = [g for g in groups if g.notes]
    if len(groups) > MAX_TRACKS:  # keep the biggest parts, melodic ones first
        groups.sort(key=lambda g: (g.channel == DRUM_CHANNEL, -len(g.notes)))
        warnings.append(f"dropped {len(groups) - MAX_TRACKS} small parts (a seed keeps 32)")
        groups = sorted(groups[:MAX_TRACKS], key=lambda g: (g.track, g.channel))
    programs = _channel_state(timed, "program")
    volumes = _channel_state(timed, "control", 7)
    pans = _channel_state(timed, "control", 10)
    per_track = {}
    for g in groups:
        per_track[g.track] = per_track.get(g.track, 0) + 1

    parts = []
    for g in groups:
        onset = min(n.start for n in g.notes)
        notes = _quantise(g.notes, clock, trim)
        drum = g.channel == DRUM_CHANNEL
        name = g.name or ("drums" if drum else "")
        if name and per_track[g.track] > 1:
            name = f"{name} (channel {g.channel + 1})"
        parts.append(
            (
                g,
                notes,
                drum,
                _value_at(programs.get(g.channel), onset, 0),
                _value_at(volumes.get(g.channel), onset, 100),
                _value_at(pans.get(g.channel), onset, 64),
                name,
            )
        )
    roles = _guess_roles([(notes, drum, program) for _, notes, drum, program, *_ in parts])
    out = []
    for (_g, notes, drum, program, vol, pan, name), role in zip(parts, roles, strict=True):
        label = name or ("drums" if drum else _GM_FAMILIES[program // 8])
        out.append(
            Track(
                name=label[:40],
                role=role,
                program=program,
                is_drum=drum,
                notes=tuple(notes),
                volume=vol,
                pan=pan,
            )
        )
    out.sort(key=lambda t: t.role != "lead")  # stable: the lead first, then file order
    return out


def _quantise(raw: list[_RawNote], clock: _Clock, trim: int) -> list[Note]:
    """Onto the grid; cut same-pitch overlaps at the re-strike and merge exact duplicates."""
    spans = []
    for n in raw:
        start = clock.grid(n.start) - trim
        end = max(start + 1, clock.grid(n.end) - trim)
        spans.append((n.pitch, start, end, n.velocity))
    spans.sort()
    notes: list[Note] = []
    prev: tuple[int, int, int, int] | None = None
    for span in spans:
        if prev is not None and prev[0] == span[0] and prev[2] > span[1]:
            if prev[1] == span[1]:  # duplicate onset: one note, the longer and louder
                prev = (span[0], span[1], max(prev[2], span[2]), max(prev[3], span[3]))
                continue
            prev = (prev[0], prev[1], span[1], prev[3])  # re-strike cuts the earlier note
        if prev is not None:
            notes.append(Note(prev[1], prev[2] - prev[1], prev[0], prev[3]))
        prev = span
    if prev is not None:
        notes.append(Note(prev[1], prev[2] - prev[1], prev[0], prev[3]))
    return notes


def _stats(notes: list[Note]) -> tuple[float, float, float, int]:
    """Mean pitch, share of notes below C3, share overlapping an earlier note, ticks sounding."""
    ordered = sorted(notes, key=lambda n: (n.start, -n.pitch))
    overlapped = sounding = 0
    reach = -1
    for n in ordered:
        if n.start < reach:
            overlapped += 1
        sounding += max(0, n.end - max(n.start, reach))
        reach = max(reach, n.end)
    count = len(notes)
    mean = sum(n.pitch for n in notes) / count
    low = sum(1 for n in notes if n.pitch < _LOW_PITCH) / count
    return mean, low, overlapped / count, sounding


def _guess_roles(parts: list[tuple[list[Note], bool, int]]) -> list[str]:
    """Roles per part: drums, one lead, bass, then chords (polyphonic) or other."""
    roles = ["drums" if drum else "" for _, drum, _ in parts]
    melodic = [i for i, (_, drum, _) in enumerate(parts) if not drum]
    stats = {i: _stats(parts[i][0]) for i in melodic}
    if not melodic:
        return roles
    bass = {
        i
        for i in melodic
        if 32 <= parts[i][2] <= 39 or (stats[i][1] >= 0.6 and stats[i][0] < _LOW_PITCH + 5)
    }
    pool = [i for i in melodic if i not in bass] or melodic
    most = max(len(parts[i][0]) for i in pool)
    busy = [i for i in pool if len(parts[i][0]) >= max(4, most // 10)] or pool
    span = max(n.end for notes, _, _ in parts for n in notes)

    def leadness(i: int) -> float:
        # Pitch counts, and up to two octaves' worth each for a monophonic line and for a part
        # that plays through the whole piece: a busy accompaniment or a short solo loses.
        mean, _, poly, sounding = stats[i]
        return mean + 24 * (1 - poly) + 24 * sounding / max(1, span)

    lead = max(busy, key=leadness)
    for i in melodic:
        if i == lead:
            roles[i] = "lead"
        elif i in bass:
            roles[i] = "bass"
        else:
            roles[i] = "chords" if stats[i][2] >= 0.3 else "other"
    return roles


def _track_name(track: tuple[MidiEvent, ...]) -> str:
    for e in track:
        if e.kind == "track_name" and e.data:
            return _decode(e.data)
    return ""


def _decode(raw: bytes) -> str:
    """Track names arrive in UTF-8, Shift-JIS or Latin-1; keep printable characters only."""
    for enc in ("utf-8", "cp932", "latin-1"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    return " ".join("".join(c for c in text if c.isprintable()).split())[:40]


def extract_melody(score: Score, start: int = 0, end: int | None = None, *,
                   guessed_lead: bool = False) -> Track:
    """A monophonic lead line over notes starting in [start, end): the skyline of the lead
    track, else of all non-drum tracks.

    At each onset the highest note is taken, unless a higher melody note is still sounding; a
    kept note is cut where the next kept note starts. ``guessed_lead``: the lead role came from
    ``import_midi``'s guess over the whole file, so where that part barely plays (fewer than a
    quarter of the all-track skyline's notes, or fewer than 4 when the skyline has more) the
    skyline is taken instead: an orchestral file whose "lead" flute plays once in the window
    would otherwise give a one-note melody. Our own clips' lead is the melody: trusted.
    """

    def inside(notes: tuple[Note, ...] | list[Note]) -> list[Note]:
        return [n for n in notes if n.start >= start and (end is None or n.start < end)]

    pitched = [t for t in score.tracks if not t.is_drum and t.notes]
    everything = _skyline(inside([n for t in pitched for n in t.notes]))
    lead = score.track("lead")
    if lead is not None and not lead.is_drum:
        line = _skyline(inside(lead.notes))
        thin = guessed_lead and (len(line) * 4 < len(everything)
                                 or (len(line) < 4 and len(everything) > len(line)))
        if line and not thin:
            return Track(name="melody", role="lead", program=lead.program, notes=tuple(line))
    # the sound of the part that plays most in the window
    program = max(pitched, key=lambda t: len(inside(t.notes))).program if pitched else 0
    return Track(name="melody", role="lead", program=program, notes=tuple(everything))


def _skyline(source: list[Note]) -> list[Note]:
    line: list[Note] = []
    for n in sorted(source, key=lambda n: (n.start, -n.pitch)):
        if line:
            top = line[-1]
            if n.start == top.start:
                continue  # a lower note of the same chord
            if n.start < top.end:
                if n.pitch < top.pitch:
                    continue  # an inner voice under a held melody note
                line[-1] = Note(top.start, n.start - top.start, top.pitch, top.velocity)
        line.append(n)
    return line


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB".replace(".0 MiB", " MiB")
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{n} bytes"


def size_refusal(size: int, limit: int) -> str | None:
    """Why a file of ``size`` bytes is refused (None when it fits): rounded sizes, or exact
    ones where rounding would make the two look equal (1 MiB + 1 byte is not "1 MiB")."""
    if size <= limit:
        return None
    shown, cap = _size(size), _size(limit)
    if shown == cap:
        shown, cap = f"{size:,} bytes", f"{limit:,} bytes ({cap})"
    return f"the file is {shown}; the limit is {cap}"


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    minutes, secs = divmod(round(seconds), 60)
    if minutes and secs:
        return f"{minutes} min {secs} s"
    return f"{minutes} min" if minutes else f"{secs} s"
