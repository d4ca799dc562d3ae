"""Band arrangement: a generated melody and chord plan become lead, comping, bass and drums.

Everything happens at ``RES`` ticks per quarter (finer than the model's GRID so strums can be
spread and swing placed exactly). Each style has its own comping and bass idiom; swing is applied
last, to every part at once, so they all share one feel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import groupby
from operator import attrgetter

import numpy as np

from cadenza.drums import KITS, drum_part
from cadenza.music.score import (
    GRID,
    ChordEvent,
    Meter,
    Note,
    Score,
    Track,
    bar_ticks,
    swing_tick,
    unswing_tick,
)
from cadenza.music.theory import Chord, Key
from cadenza.styles import StyleSpec
from cadenza.voicing import lead_voicing, nearest_pitch

RES = GRID * 4  # 48 ticks per quarter note

# (lo, hi) register per part
COMP_RANGE = {"jazz": (50, 74), "blues": (52, 74), "folk": (52, 71), "celtic": (50, 71),
              "classical": (55, 74), "ragtime": (53, 68)}
BASS_RANGE = (28, 52)
MIX = {  # CC7 volume per role: lead on top, drums under it
    "lead": 110, "chords": 78, "bass": 100, "drums": 84,
}
PAN = {"lead": 60, "chords": 40, "bass": 64, "drums": 72}


class Ctx:
    """What every part builder needs: meter, bar length, chord timeline and the RNG."""

    def __init__(self, spec: StyleSpec, meter: Meter, bars: int,
                 chords: Sequence[ChordEvent], key: Key, rng: np.random.Generator) -> None:
        self.spec, self.meter, self.bars, self.key, self.rng = spec, meter, bars, key, rng
        self.bar = bar_ticks(meter, RES)
        self.compound = meter.den == 8 and meter.num % 3 == 0
        self.beat = RES * 3 // 2 if self.compound else RES * 4 // meter.den
        self.end = bars * self.bar
        self.chords = list(chords)
        self.lead_median: float | None = None

    def chord_at(self, tick: int) -> Chord:
        cur = self.chords[0].chord
        for ev in self.chords:
            if ev.start <= tick:
                cur = ev.chord
            else:
                break
        return cur

    def spans(self) -> list[tuple[int, int, Chord]]:
        """Chord spans split at bar lines: (start, end, chord)."""
        out = []
        for ev in self.chords:
            s = ev.start
            while s < ev.end:
                e = min(ev.end, (s // self.bar + 1) * self.bar)
                out.append((s, e, ev.chord))
                s = e
        return out

    def vel(self, base: int, spread: int = 6) -> int:
        return min(127, max(1, base + int(self.rng.integers(-spread, spread + 1))))


# ------------------------------------------------------------------ lead


def arrange_lead(melody: Sequence[Note], ctx: Ctx, lo: int, hi: int) -> list[Note]:
    """Scale to RES, keep it monophonic and legato, fit the register, shape the dynamics."""
    notes = sorted((Note(n.start * 4, n.duration * 4, n.pitch, n.velocity) for n in melody
                    if n.start * 4 < ctx.end), key=lambda n: (n.start, -n.pitch))
    mono: list[Note] = []
    for n in notes:
        if mono and mono[-1].start == n.start:
            continue  # keep the top note of a chord
        mono.append(n)
    if mono:
        mid = float(np.median([n.pitch for n in mono]))
        shift = 0
        while mid + shift < lo + 5:
            shift += 12
        while mid + shift > hi - 5:
            shift -= 12
        mono = [Note(n.start, n.duration, n.pitch + shift, n.velocity) for n in mono]
    out = []
    for i, n in enumerate(mono):
        nxt = mono[i + 1].start if i + 1 < len(mono) else ctx.end
        dur = min(n.duration, nxt - n.start)
        if i + 1 == len(mono) and n.start >= ctx.end - ctx.bar:
            dur = ctx.end - n.start  # the last note rings to the end
        accent = 10 if n.start % ctx.bar == 0 else 4 if n.start % ctx.beat == 0 else 0
        out.append(Note(n.start, max(1, min(dur, ctx.end - n.start)), n.pitch,
                        ctx.vel(84 + accent)))
    return out


# ------------------------------------------------------------------ comping

# rhythm cells in beats: (offset, length, velocity)
_JAZZ_CELLS = [[(0, 0.7, 70), (1.5, 0.4, 62)], [(0.5, 0.4, 64), (2.5, 0.4, 60)],
               [(0, 1.6, 66)], [(1.5, 0.5, 66), (3.5, 0.4, 58)], [(0, 0.4, 70), (1.0, 0.4, 56)]]


STRUMMED = ("folk", "celtic")  # styles whose chords a guitar strums
# a strum sweeps the strings in 1/8 beat however many of them are fretted, so its onsets
# fall on the same grid steps for two voices as for five (four are 1/24 beat apart)
STRUM_TICKS = RES // 8
_start = attrgetter("start")


def stagger(chord: Sequence[Note], up: bool = False) -> list[Note]:
    """Notes struck together, strummed: voices spread evenly over STRUM_TICKS, a down stroke
    low to high (an up stroke high to low), each still ending where it did."""
    order = sorted(chord, key=lambda n: n.pitch, reverse=up)
    last = max(1, len(order) - 1)
    out = []
    for i, n in enumerate(order):
        d = round(i * STRUM_TICKS / last)
        out.append(Note(n.start + d, max(1, n.duration - d), n.pitch, n.velocity))
    return out


def _strum(ctx: Ctx, voicing: list[int], t: int, dur: int, vel: int, up: bool) -> list[Note]:
    """A guitar strum of ``voicing`` at ``t``."""
    return stagger([Note(t, dur, p, ctx.vel(vel - (6 if up else 0)))
                    for p in sorted(voicing, reverse=up)], up)


def _ring_to(ctx: Ctx, spans: list[tuple[int, int, Chord]], i: int) -> int:
    """Where a chord of the last bar stops ringing: the next chord, or the clip's end for the
    last one (a last bar may change chords: I then I6 in a new plan, a turnaround in a seed's
    or an older clip's)."""
    return spans[i + 1][0] if i + 1 < len(spans) else ctx.end


def comp_part(ctx: Ctx) -> list[Note]:
    style = ctx.spec.name
    lo, hi = COMP_RANGE.get(style, (52, 72))
    if ctx.lead_median is not None:
        # keep the comping under the tune so the melody stays on top
        hi = min(hi, int(ctx.lead_median) - 2)
        lo = min(lo, hi - 14)
    out: list[Note] = []
    prev: list[int] | None = None
    spans = ctx.spans()
    for i, (s, e, chord) in enumerate(spans):
        last_bar = s >= ctx.end - ctx.bar
        v = lead_voicing(chord, prev, lo, hi, n=4 if style != "celtic" else 3,
                         rootless=style == "jazz")
        if style == "celtic":
            v = sorted({*v, nearest_pitch(chord.root, lo + 4, lo, hi)})
        prev = v
        if last_bar:  # the ending rings: the last chord to the end, a turnaround's to its next
            out += [Note(s, _ring_to(ctx, spans, i) - s, p, ctx.vel(70)) for p in v]
            continue
        out += _comp_span(ctx, style, v, s, e)
    return out


def _comp_span(ctx: Ctx, style: str, v: list[int], s: int, e: int) -> list[Note]:
    beat, span = ctx.beat, e - s
    out: list[Note] = []

    def hit(off: float, length: float, vel: int, up: bool = False) -> None:
        t = s + int(off * beat)
        if t < e:
            d = max(1, min(int(length * beat), e - t))
            out.extend(_strum(ctx, v, t, d, vel, up) if style in STRUMMED
                       else [Note(t, d, p, ctx.vel(vel)) for p in v])

    beats = span / beat
    if style == "jazz":
        cell = _JAZZ_CELLS[int(ctx.rng.integers(len(_JAZZ_CELLS)))]
        for off, length, vel in cell:
            if off < beats:
                hit(off, length, vel)
    elif style == "blues":
        hit(0, beats, 58)  # organ pad under the shuffle
        for b in range(1, int(beats), 2):
            hit(b, 0.3, 70)  # stabs on 2 and 4
    elif style == "classical":
        hit(0, beats, 62)
    elif style == "ragtime":
        # "pah": chords on the off-beats between the bass's "oom"s
        step = 0.5 if ctx.meter == Meter(2, 4) else 1.0
        off = step
        while off < beats:
            hit(off, step * 0.8, 64)
            off += 2 * step
    else:  # folk, celtic: strummed guitar
        if ctx.compound:  # per dotted-quarter beat: down, (up)
            for b in range(int(beats)):
                hit(b, 0.66, 74)
                hit(b + 2 / 3, 0.33, 56, up=True)
        elif ctx.meter == Meter(3, 4):
            for b in range(1, int(beats)):
                hit(b, 0.9, 70)  # waltz: bass on 1, chords on 2 and 3
        else:
            for b in range(int(beats)):
                hit(b, 0.5, 74 if b % 2 == 0 else 66)
                if b % 2 == 1:
                    hit(b + 0.5, 0.5, 54, up=True)
    return out


# ------------------------------------------------------------------ bass


def bass_part(ctx: Ctx) -> list[Note]:
    style = ctx.spec.name
    lo, hi = BASS_RANGE
    out: list[Note] = []
    prev = 40
    spans = ctx.spans()
    for i, (s, e, chord) in enumerate(spans):
        nxt_root = spans[i + 1][2].root if i + 1 < len(spans) else ctx.key.tonic
        root = nearest_pitch(chord.root, prev, lo, hi)
        if s >= ctx.end - ctx.bar:  # ending: long roots, the last to the end
            out.append(Note(s, _ring_to(ctx, spans, i) - s, root, ctx.vel(92)))
            prev = root
            continue
        fifth = nearest_pitch((chord.root + 7) % 12, root + 4, lo, hi)
        beats = max(1, (e - s) // ctx.beat)
        if style == "jazz":
            line = _walk(ctx, chord, root, nxt_root, beats, lo, hi)
            out += [Note(s + k * ctx.beat, int(ctx.beat * 0.9), p, ctx.vel(86 if k == 0 else 78))
                    for k, p in enumerate(line)]
        elif style == "blues":
            third = 3 if chord.quality in ("m7", "min", "m9", "m6") else 4
            figure = [0, third, 7, 9, 10, 9, 7, third]  # the boogie: R 3 5 6 b7 6 5 3
            half = RES // 2
            for k in range(int((e - s) // half)):
                p = root + figure[(k + (s % ctx.bar) // half) % len(figure)]
                out.append(Note(s + k * half, int(half * 0.85), p, ctx.vel(88 if k % 2 == 0
                                                                              else 70)))
        elif style == "ragtime":
            step = RES if ctx.meter == Meter(2, 4) else ctx.beat * 2
            k = 0
            while s + k * step < e:
                p = root if k % 2 == 0 else fifth
                p = p - 12 if p - 12 >= lo else p
                t = s + k * step
                out += [Note(t, step // 2, p, ctx.vel(90)), Note(t, step // 2, p + 12,
                                                                 ctx.vel(76))]
                k += 1
        elif style == "classical":
            out.append(Note(s, e - s, root, ctx.vel(74)))
        else:  # folk, celtic: root on the downbeat, fifth on the middle beat
            half = beats // 2 if beats >= 2 and ctx.meter != Meter(3, 4) else beats
            out.append(Note(s, int(half * ctx.beat * 0.95), root, ctx.vel(86)))
            if half < beats:
                out.append(Note(s + half * ctx.beat, int((beats - half) * ctx.beat * 0.95),
                                fifth, ctx.vel(76)))
        prev = root
    return out


def _walk(ctx: Ctx, chord: Chord, root: int, next_root_pc: int, beats: int, lo: int,
          hi: int) -> list[int]:
    """Walking bass: root first, chord tones in between, chromatic approach to the next root."""
    target = nearest_pitch(next_root_pc, root, lo, hi)
    tones = [nearest_pitch((chord.root + i) % 12, root + 5, lo, hi) for i in chord.intervals[1:]]
    line = [root]
    for _ in range(1, beats - 1):
        line.append(int(ctx.rng.choice(tones)))
    if beats >= 2:
        approach = target + (1 if ctx.rng.random() < 0.5 else -1)
        line.append(approach if lo <= approach <= hi else target - 1)
    return line[:beats]


# ------------------------------------------------------------------ swing and assembly


def swing_notes(notes: Sequence[Note]) -> list[Note]:
    out = []
    for n in notes:
        s, e = swing_tick(n.start, RES), swing_tick(n.end, RES)
        out.append(Note(s, max(1, e - s), n.pitch, n.velocity))
    return out


def unswing(score: Score) -> Score:
    """Straighten a swung score (e.g. a jazz clip before it seeds a new piece, which will be
    swung again when arranged)."""
    res = score.resolution

    def fix(n: Note) -> Note:
        s, e = unswing_tick(n.start, res), unswing_tick(n.end, res)
        return Note(s, max(1, e - s), n.pitch, n.velocity)

    return score.with_tracks(tuple(replace(t, notes=tuple(fix(n) for n in t.notes))
                                   for t in score.tracks))


def arrange(
    melody: Sequence[Note],
    plan: Sequence[tuple[int, Chord]],
    *,
    spec: StyleSpec,
    meter: Meter | tuple[int, int],
    bars: int,
    tempo: float,
    key: Key,
    rng: np.random.Generator,
) -> Score:
    """The full band score (resolution RES) for a GRID melody and a GRID chord plan."""
    # Typed once here: offline callers (training pieces' lines, metric lines) hold plain pairs.
    meter = Meter.parse(meter)
    bar = bar_ticks(meter, RES)
    end = bars * bar
    marks = sorted((t * 4, c) for t, c in plan if t * 4 < end)
    if not marks or marks[0][0] != 0:
        marks.insert(0, (0, Chord(key.tonic, "maj" if key.mode == "major" else "min")))
    events = tuple(ChordEvent(t, (marks[i + 1][0] if i + 1 < len(marks) else end) - t, c)
                   for i, (t, c) in enumerate(marks))
    ctx = Ctx(spec, meter, bars, events, key, rng)
    names = spec.instrument_names
    lead = arrange_lead(melody, ctx, *spec.lead_range)
    if lead:
        ctx.lead_median = float(np.median([n.pitch for n in lead]))
    comp = comp_part(ctx)
    bass = bass_part(ctx)
    roots = [ctx.chord_at(b * bar).root for b in range(bars)]
    drums = drum_part(spec.name, meter, bars, RES, rng, roots=roots)
    parts = {"lead": lead, "chords": comp, "bass": bass, "drums": drums}
    if spec.swing:
        parts = {k: swing_notes(v) for k, v in parts.items()}
    tracks = tuple(
        Track(
            names.get(role, role.title()),
            role=role,
            program=KITS.get(spec.name, 0) if role == "drums" else spec.programs[role],
            is_drum=role == "drums",
            notes=tuple(n for n in parts[role] if n.start < end),
            volume=MIX[role],
            pan=PAN[role],
        )
        for role in ("lead", "chords", "bass", "drums")
    )
    return Score(tracks=tracks, chords=events, resolution=RES, tempo=tempo,
                 time_signature=meter, key=key, bars=bars, style=spec.name)


def restyle_band(band: Score, spec: StyleSpec, rng: np.random.Generator) -> Score:
    """A generated band score (the GAN's) through the same instrumentation path: the style's
    programs and drum kit, the mix and velocity shaping, strummed chords. No swing: the GAN
    learned each style's feel from swung training bands (``cadenza.gan_bands``), so its jazz
    is swung already."""
    scale = RES // band.resolution
    end = band.bars * band.bar_ticks * scale
    names = spec.instrument_names
    tracks = []
    for role in ("lead", "chords", "bass", "drums"):
        src = band.track(role)
        notes = [] if src is None else [
            Note(n.start * scale, n.duration * scale, n.pitch, n.velocity) for n in src.notes
            if n.start * scale < end]
        beat = RES * 4 // band.time_signature[1]
        shaped = []
        for n in notes:
            accent = 10 if n.start % (beat * band.time_signature[0]) == 0 else \
                4 if n.start % beat == 0 else 0
            v = int(np.clip(n.velocity - 8 + accent + rng.integers(-6, 7), 1, 127))
            shaped.append(Note(n.start, min(n.duration, end - n.start), n.pitch, v))
        if role == "chords" and spec.name in STRUMMED:
            # the GAN writes block chords on its style's grid; a guitar strums them
            shaped = [m for _, chord in groupby(sorted(shaped, key=_start), key=_start)
                      for m in stagger(list(chord))]
        tracks.append(Track(
            names.get(role, role.title()), role=role,
            program=KITS.get(spec.name, 0) if role == "drums" else spec.programs[role],
            is_drum=role == "drums", notes=tuple(shaped), volume=MIX[role], pan=PAN[role]))
    chords = tuple(ChordEvent(c.start * scale, c.duration * scale, c.chord) for c in band.chords)
    return Score(tracks=tuple(tracks), chords=chords, resolution=RES, tempo=band.tempo,
                 time_signature=band.time_signature, key=band.key, bars=band.bars,
                 style=spec.name)
