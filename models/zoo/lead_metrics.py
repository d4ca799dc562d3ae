"""Objective metrics of one melodic line over its chords: the lead a melody model writes, or the
line of a real solo or rag, compared lead line against lead line.

A ``Line`` is plain data on the GRID (12 ticks per quarter note, so a quarter-note beat has 12
steps: straight eighths fall on steps 0 and 6 of a beat, triplet-swung ones on 0 and 8, and the
Weimar Jazz Database solos keep their performed swing to that resolution). Its notes are
``(start, duration, pitch)``, one per onset (the top note when several start together), inside
``bars`` bars of ``meter``; its chord timeline holds the chord sounding at tick 0 and every
change after it (``None`` for no chord).

Metrics (NaN when undefined, e.g. no notes; set comparisons drop NaNs):

=====================  ===========================================================================
pitch_class_entropy    Shannon entropy (bits, 0 to log2 12) of the notes' pitch classes, each note
                       counted once (MusPy's definition on notes).
scale_consistency      largest share of the notes inside one major scale (or its relative minor,
                       the same set) over the 12 transpositions (MusPy).
swing_ratio            geometric mean of long/short over the line's eighth-note pairs (below);
                       1.0 straight, 2.0 triplet swing, 3.0 dotted-eighth-sixteenth.
notes_per_bar          onsets per bar.
pitch_range            highest minus lowest pitch, in semitones.
chord_vocabulary       distinct chord symbols (root and quality) of the clip's chord timeline
                       (NaN when it names none).
repetition_rate        ``cadenza.music.form.repetition_rate``: share of the non-empty bars after
                       the first that repeat an earlier bar exactly (same onsets at the same
                       positions and pitches).
=====================  ===========================================================================

**Eighth-note pair** (for the swing ratio): in a simple meter (x/4; beat = 12 steps), three
consecutive onsets ``a < u < c`` such that ``a`` lies within one step of a beat line ``b``
(``|a - b| <= 1``, so a solo's lay-back or anticipation of 1/12 beat still counts), ``c`` within
one step of the next beat line ``b + 12``, and ``u`` on steps 4-9 of the beat (``4 <= u - b <=
9``): the beat holds exactly one off-beat note, an eighth that is at most 1:2 short-long and at
most 3:1 long-short. Its ratio is ``(u - a) / (c - u)``. Compound meters (x/8) have no such pairs
(their eighths divide the beat in three): NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cadenza.models.training.charts import checked_bar_ticks
from cadenza.models.training.corpus import Piece, monophonic
from cadenza.models.zoo.metrics import histogram_entropy, histogram_scale_consistency
from cadenza.music.form import repetition_rate as form_repetition_rate
from cadenza.music.score import GRID, Score, window_changes
from cadenza.music.theory import Chord, Key

Note3 = tuple[int, int, int]  # (start, duration, pitch) in GRID ticks

LEAD_METRICS: tuple[str, ...] = (
    "pitch_class_entropy", "scale_consistency", "swing_ratio", "notes_per_bar", "pitch_range",
    "chord_vocabulary", "repetition_rate",
)
LEAD_LABELS: dict[str, str] = {
    "pitch_class_entropy": "pitch-class entropy (bits)",
    "scale_consistency": "scale consistency",
    "swing_ratio": "swing ratio (long/short eighths)",
    "notes_per_bar": "notes per bar",
    "pitch_range": "pitch range (semitones)",
    "chord_vocabulary": "chord vocabulary (distinct symbols)",
    "repetition_rate": "repetition rate",
}
SWING_SLACK = 1  # steps an eighth pair's outer onsets may sit off the beat lines
SWING_OFFBEAT = (4, 9)  # steps of the beat where the pair's off-beat note may fall


@dataclass(frozen=True)
class Line:
    """One monophonic line on the GRID with its chord timeline (see the module docstring)."""

    notes: tuple[Note3, ...]
    meter: tuple[int, int]
    bars: int
    chords: tuple[tuple[int, Chord | None], ...] = ()
    key: Key | None = None

    @property
    def bar_ticks(self) -> int:
        return checked_bar_ticks(self.meter)

    @property
    def pitches(self) -> np.ndarray:
        return np.array([p for _, _, p in self.notes], dtype=int)

    @property
    def onsets(self) -> np.ndarray:
        return np.array([s for s, _, _ in self.notes], dtype=int)


def make_line(notes: Iterable[Note3], meter: tuple[int, int], bars: int,
              chords: Iterable[tuple[int, Chord | None]] = (), key: Key | None = None) -> Line:
    """A Line from (start, duration, pitch) notes: kept inside the bars, one note per onset (the
    top one, cut where the next begins), chords merged when the same chord repeats."""
    end = bars * checked_bar_ticks(meter)
    spans = [(s, min(s + max(1, d), end), p) for s, d, p in notes if 0 <= s < end]
    mono = tuple((s, e - s, p) for s, e, p in monophonic(spans))
    timeline: list[tuple[int, Chord | None]] = []
    for t, c in sorted(chords, key=lambda x: x[0]):
        if t >= end:
            break
        if timeline and timeline[-1][0] == t:
            timeline[-1] = (t, c)  # two chords at one tick: the later wins
        elif not timeline or timeline[-1][1] != c:
            timeline.append((t, c))
    return Line(mono, tuple(meter), bars, tuple(timeline), key)  # type: ignore[arg-type]


def line_from_score(score: Score, role: str = "lead") -> Line:
    """The ``role`` track of a score (at any resolution) as a Line on the GRID, with the score's
    chords: what a member hears of the lead, after the arranger (register, swing)."""
    res = score.resolution

    def grid(t: int) -> int:
        return (t * GRID + res // 2) // res

    track = score.track(role)
    notes = [(grid(n.start), max(1, grid(n.end) - grid(n.start)), n.pitch)
             for n in (track.notes if track else ())]
    chords = [(grid(ev.start), ev.chord) for ev in score.chords]
    return make_line(notes, tuple(score.time_signature), score.bars, chords,  # type: ignore[arg-type]
                     score.key)


def line_from_piece(piece: Piece, start_bar: int, bars: int) -> Line:
    """Bars ``start_bar`` .. ``start_bar + bars`` of a corpus melody as it is in the data (no
    arrangement), with the chord sounding at the excerpt's start and the changes inside it."""
    bt = piece.bar_ticks
    lo, hi = start_bar * bt, (start_bar + bars) * bt
    notes = [(s - lo, min(d, hi - s), p) for s, d, p in piece.notes if lo <= s < hi]
    chords = window_changes(piece.chord_changes(), lo, hi, None)
    return make_line(notes, piece.meter, bars, chords, piece.key)


# ---------------------------------------------------------------- metrics


def pitch_class_histogram(line: Line) -> np.ndarray:
    """Notes per pitch class (12,), each note once."""
    return np.bincount(line.pitches % 12, minlength=12).astype(float)


def pitch_class_entropy(line: Line) -> float:
    return histogram_entropy(pitch_class_histogram(line))


def scale_consistency(line: Line) -> float:
    return histogram_scale_consistency(pitch_class_histogram(line))


def eighth_pairs(line: Line) -> list[tuple[int, int]]:
    """(long, short) step lengths of the line's eighth-note pairs (module docstring)."""
    if line.meter[1] != 4:
        return []
    t = line.onsets.tolist()
    lo, hi = SWING_OFFBEAT
    out = []
    for a, u, c in zip(t, t[1:], t[2:], strict=False):
        b = (a + GRID // 2) // GRID * GRID  # the beat line nearest the first onset
        if (abs(a - b) <= SWING_SLACK and abs(c - (b + GRID)) <= SWING_SLACK
                and lo <= u - b <= hi):
            out.append((u - a, c - u))
    return out


def swing_ratio(line: Line) -> float:
    """Geometric mean of long/short over the eighth-note pairs; NaN without a pair."""
    pairs = eighth_pairs(line)
    if not pairs:
        return math.nan
    return float(2 ** np.mean([math.log2(a / b) for a, b in pairs]))


def notes_per_bar(line: Line) -> float:
    return len(line.notes) / line.bars if line.bars else math.nan


def pitch_range(line: Line) -> float:
    p = line.pitches
    return float(p.max() - p.min()) if len(p) else math.nan


def chord_vocabulary(line: Line) -> float:
    """Distinct chord symbols (root and quality, no-chord left out) of the chord timeline; NaN
    when it names no chord (no timeline, or no-chord throughout: nothing known of the harmony,
    which a 0 would count as a line over no chords)."""
    chords = {c for _, c in line.chords if c is not None}
    return float(len(chords)) if chords else math.nan


def repetition_rate(line: Line) -> float:
    return form_repetition_rate(line.notes, line.bar_ticks, line.bars)


def lead_metrics(line: Line) -> dict[str, float]:
    """Every LEAD_METRICS figure of one line."""
    return {
        "pitch_class_entropy": pitch_class_entropy(line),
        "scale_consistency": scale_consistency(line),
        "swing_ratio": swing_ratio(line),
        "notes_per_bar": notes_per_bar(line),
        "pitch_range": pitch_range(line),
        "chord_vocabulary": chord_vocabulary(line),
        "repetition_rate": repetition_rate(line),
    }
