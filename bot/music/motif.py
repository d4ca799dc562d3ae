"""Motifs: the music of a seed (a lead line with its chords), from clips, uploads or typed notes.

A ``Motif`` is what the models continue, vary and blend: a monophonic melody on the GRID, its
chord changes, meter, key and tempo. It is plain data with a JSON form for storage.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from cadenza.music.chord_infer import harmonize_melody, harmonize_voices, key_from_pitches
from cadenza.music.midi_import import extract_melody
from cadenza.music.score import GRID, ChordEvent, Meter, Note, Score, Track, bar_ticks
from cadenza.music.theory import Chord, Key
from cadenza.music.tokens import METERS, model_meter, snap_duration, token_pitch

MAX_MOTIF_BARS = 16  # a seed: what members share and the models continue
MAX_LINE_BARS = 32  # any line the models work on (variations re-sample whole clips)
TEMPO_RANGE = (40.0, 240.0)  # the range /compose takes
TEMPO_NOTE = "set the tempo to"  # how the warning about it starts
# The models write melodies around the middle of the keyboard: a motif whose median pitch lies
# outside this range is moved by whole octaves (a seed typed as C0 D0 E0 is still C D E).
MEDIAN_RANGE = (48, 84)


class MotifError(ValueError):
    """A motif that cannot be built (no notes, unsupported meter ...); message fit for a user."""


@dataclass(frozen=True)
class Motif:
    notes: tuple[Note, ...]
    chords: tuple[tuple[int, Chord], ...]  # (tick, chord) changes; extended qualities kept
    meter: Meter
    key: Key
    tempo: float
    bars: int

    def __post_init__(self) -> None:
        if not self.notes:
            raise MotifError("a seed needs at least one note")
        if type(self.meter) is not Meter:  # (4, 4) from a caller
            object.__setattr__(self, "meter", Meter.parse(self.meter))
        if self.meter not in METERS:
            raise MotifError(f"{self.meter} is not supported for seeds "
                             f"(use {', '.join(str(m) for m in METERS)})")
        if not 1 <= self.bars <= MAX_LINE_BARS:
            raise MotifError(f"a motif is 1-{MAX_LINE_BARS} bars long (got {self.bars})")

    @property
    def bar_ticks(self) -> int:
        return bar_ticks(self.meter)

    def transpose(self, semitones: int) -> Motif:
        return Motif(tuple(Note(n.start, n.duration, n.pitch + semitones, n.velocity)
                           for n in self.notes),
                     tuple((t, c.transpose(semitones)) for t, c in self.chords), self.meter,
                     self.key.transpose(semitones), self.tempo, self.bars)

    def playable(self) -> tuple[Motif, int]:
        """The motif moved by whole octaves so its median pitch lies in MEDIAN_RANGE and every
        note in the piano's range (21-108), with the octaves it moved (+ up, - down)."""
        pitches = sorted(n.pitch for n in self.notes)
        median = pitches[len(pitches) // 2]
        octaves = 0
        while median + 12 * octaves < MEDIAN_RANGE[0]:
            octaves += 1
        while median + 12 * octaves > MEDIAN_RANGE[1]:
            octaves -= 1
        notes = tuple(Note(n.start, n.duration, token_pitch(n.pitch + 12 * octaves), n.velocity)
                      for n in self.notes)
        if octaves == 0 and notes == self.notes:
            return self, 0
        return Motif(notes, self.chords, self.meter, self.key, self.tempo, self.bars), octaves

    def repeats_aligned(self) -> Motif:
        """The motif with every bar that plays an earlier bar's notes again (positions, pitches,
        durations, as tokens write them) given that bar's velocities, so tokens write it as
        a repeat (``REP_k``). A rendered clip's velocities are humanised per note: of the 13
        bars a 32-bar folk clip restated, 5 reached the encoder as repeats (13 so; jazz 3 of
        14, 13 so), and a variation re-sampled the others apart instead of repeating its own
        new bar."""
        bar = self.bar_ticks
        by_bar: dict[int, list[Note]] = {}
        for n in self.notes:
            by_bar.setdefault(n.start // bar, []).append(n)
        first: dict[tuple, list[Note]] = {}  # a bar's notes (velocity aside) -> its velocities' bar
        out: list[Note] = []  # bar by bar, each by (start, pitch): sorted as a whole
        changed = False
        for b in sorted(by_bar):
            notes = sorted(by_bar[b], key=lambda n: (n.start, n.pitch))
            # as tokens see the bar (folded pitch, snapped length): the arranger's legato cut
            # of a bar's last note depends on the bar after it
            shape = tuple((n.start - b * bar, token_pitch(n.pitch), snap_duration(n.duration))
                          for n in notes)
            earlier = first.setdefault(shape, notes)
            changed = changed or any(n.velocity != e.velocity
                                     for n, e in zip(notes, earlier, strict=True))
            out += [Note(n.start, n.duration, n.pitch, e.velocity)
                    for n, e in zip(notes, earlier, strict=True)]
        if not changed:
            return self
        return Motif(tuple(out), self.chords, self.meter, self.key, self.tempo, self.bars)

    def to_score(self, style: str | None = None) -> Score:
        """Lead-only Score (for tokens and previews)."""
        end = self.bars * self.bar_ticks
        events = [ChordEvent(t, (self.chords[i + 1][0] if i + 1 < len(self.chords) else end) - t,
                             c) for i, (t, c) in enumerate(self.chords) if t < end]
        return Score(tracks=(Track("Seed", role="lead", notes=self.notes),),
                     chords=tuple(e for e in events if e.duration > 0), tempo=self.tempo,
                     time_signature=self.meter, key=self.key, bars=self.bars, style=style)

    def to_json(self) -> str:
        return json.dumps({
            "notes": [[n.start, n.duration, n.pitch, n.velocity] for n in self.notes],
            "chords": [[t, c.root, c.quality] for t, c in self.chords],
            "meter": list(self.meter), "key": [self.key.tonic, self.key.mode],
            "tempo": self.tempo, "bars": self.bars,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Motif:
        d = json.loads(text)
        return cls(tuple(Note(*n) for n in d["notes"]),
                   tuple((t, Chord(r, q)) for t, r, q in d["chords"]), Meter(*d["meter"]),
                   Key(*d["key"]), float(d["tempo"]), int(d["bars"]))

    @classmethod
    def from_score(cls, score: Score, bar_range: tuple[int, int] | None = None,
                   *, max_bars: int = MAX_MOTIF_BARS,
                   guessed_lead: bool = False) -> tuple[Motif, list[str]]:
        """The lead line (skyline) and chords of a score, optionally bars [first, last]
        (1-based, inclusive); returns the motif and notes on what was trimmed.
        ``guessed_lead``: the score is an import (see ``extract_melody``)."""
        score, warnings = fit_meter(_to_grid(score))
        bar = score.bar_ticks
        total = max(1, score.bars or math.ceil(max((n.end for t in score.tracks
                                                    for n in t.notes), default=1) / bar))
        first, last = (1, total) if bar_range is None else bar_range
        if not 1 <= first <= last:
            raise MotifError(f"bad bar range {first}-{last}: use e.g. 1-4")
        if first > total:
            raise MotifError(f"bar {first} is past the end (the music has {total} bars)")
        last = min(last, total)
        if last - first + 1 > max_bars:
            warnings.append(f"kept bars {first}-{first + max_bars - 1} of {first}-{last} "
                            f"(seeds are at most {max_bars} bars)")
            last = first + max_bars - 1
        lo, hi = (first - 1) * bar, last * bar
        lead = extract_melody(score, lo, hi, guessed_lead=guessed_lead)
        notes = tuple(Note(n.start - lo, min(n.duration, hi - n.start), n.pitch, n.velocity)
                      for n in lead.notes)
        if not notes:
            raise MotifError(f"bars {first}-{last} have no melody notes")
        bars = last - first + 1
        key = score.key
        if score.chords:
            chords = [(max(0, c.start - lo), c.chord) for c in score.chords
                      if c.start < hi and c.end > lo]
        else:
            voices = [(n.start - lo, n.end - lo, n.pitch) for t in score.tracks if not t.is_drum
                      for n in t.notes if lo <= n.start < hi]
            spans = [(n.start, n.end, n.pitch) for n in notes]
            if not score.chords and score.key == Key(0):
                key = key_from_pitches(voices)
            many_voices = len({t.name for t in score.tracks if not t.is_drum}) > 1
            chords = (harmonize_voices(voices, bars * bar, step=min(GRID * 2, bar))
                      if many_voices else harmonize_melody(spans, key, bar, bars))
        merged: list[tuple[int, Chord]] = []
        for t, c in sorted(chords, key=lambda x: x[0]):
            if merged and merged[-1][0] == t:
                merged[-1] = (t, c)
            elif not merged or merged[-1][1] != c:
                merged.append((t, c))
        tempo = min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], score.tempo))
        if tempo != score.tempo:
            edge = "fastest" if tempo < score.tempo else "slowest"
            warnings.append(f"{TEMPO_NOTE} {tempo:g} bpm, the {edge} a seed plays (seeds play "
                            f"at {TEMPO_RANGE[0]:g}-{TEMPO_RANGE[1]:g} bpm)")
        motif, octaves = cls(notes, tuple(merged), score.time_signature, key, tempo,
                             bars).playable()
        if octaves:
            warnings.append(f"moved the melody {'up' if octaves > 0 else 'down'} "
                            f"{abs(octaves)} octave{'s' if abs(octaves) > 1 else ''} into the "
                            "range the models play")
        return motif, warnings


def fit_meter(score: Score) -> tuple[Score, list[str]]:
    """The score in a meter the models know (``cadenza.music.tokens.model_meter``): 2/2 is read as
    4/4, 6/4 as 12/8, two bars of 3/8 as one of 6/8; a warning says so. Ticks are unchanged, so
    this only relabels bars. A meter with no equivalent (5/4, 7/8) is a MotifError."""
    num, den = score.time_signature
    fitted = model_meter(score.time_signature)
    if fitted is None:
        raise MotifError(f"{num}/{den} is not supported for seeds (use "
                         f"{', '.join(f'{n}/{d}' for n, d in METERS)}, or 2/2, 6/4, 3/8)")
    meter, per_bar = fitted
    if meter == (num, den):
        return score, []
    bars = -(-score.bars // per_bar) if score.bars else 0
    what = f"two bars of {num}/{den} as one" if per_bar == 2 else f"{num}/{den}"
    if per_bar > 2:
        what = f"{per_bar} bars of {num}/{den} as one"
    return (replace(score, time_signature=meter, bars=bars),
            [f"read {what} bar of {meter.num}/{meter.den}" if per_bar > 1 else
             f"read {what} as {meter.num}/{meter.den}"])


def _to_grid(score: Score) -> Score:
    """Re-time a score at GRID resolution (uploads and our own clips may be finer)."""
    if score.resolution == GRID:
        return score
    r = score.resolution

    def q(t: int) -> int:
        return round(t * GRID / r)

    tracks = tuple(Track(t.name, t.role, t.program, t.is_drum,
                         tuple(Note(q(n.start), max(1, q(n.end) - q(n.start)), n.pitch,
                                    n.velocity) for n in t.notes), t.volume, t.pan)
                   for t in score.tracks)
    chords = tuple(ChordEvent(q(c.start), max(1, q(c.end) - q(c.start)), c.chord)
                   for c in score.chords)
    return Score(tracks=tracks, chords=chords, resolution=GRID, tempo=score.tempo,
                 time_signature=score.time_signature, key=score.key, bars=score.bars,
                 style=score.style)
