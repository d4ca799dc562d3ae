"""The lead-only style classifier's inputs: what a musicologist reads off one melodic line to
name its style, whatever its meter and register.

Every figure reads the line's notes and the key it is in, nothing else: not its chords (the
chord plan's), not its register (the arranger moves every lead into its style's range), not the
bar length (the request draws the meter from the style, the model does not write it; the
repetition rate is the one figure counted in bars, the unit of the form the model writes). So the
same notes written in 2/4 or in 4/4 give the same vector. Figures are NaN when undefined (too few
notes or intervals); the classifier fills them in.

Groups (``FEATURE_NAMES`` names every value, in order):

* **line** — the lead metrics that are the line's own (``cadenza.models.zoo.lead_metrics``):
  pitch-class entropy, scale consistency, swing ratio, pitch range, repetition rate.
* **tonality** — key-relative pitch-class shares (12, tonic = 0); chromatic share (notes outside
  the key's scale, minor keys allowing their raised sixth and seventh); blue-third share (the
  smaller of the minor and major third's shares: a blues line bends between them, a tune in a
  mode keeps one); whether the line ends on the tonic.
* **intervals** — shares of the absolute intervals between consecutive notes in 11 classes
  (unison, 1, 2, ... 7, 8-9, 10-11 semitones, an octave or more); mean absolute interval;
  chromatic-run share (two consecutive semitone steps the same way: bebop's passing tones);
  arpeggio share (two consecutive thirds the same way: a chord spelled out).
* **contour** — share of upward moves among the moving ones; turning points per move; mean run
  of moves the same way.
* **rhythm** — notes per beat; onset shares by step of the beat (12: straight, swung, triplet,
  sixteenths); inter-onset intervals in 10 classes (by their length in 1/12 beats: 1-2, 3, 4, 5-7,
  8-9, 10-13, 14-19, 20-25, 26-37, 38+) with their entropy and the sd of their log; articulation
  (mean duration over inter-onset interval); syncopation (notes starting off the beat that sound
  over the next beat line); rest share; phrases per four beats (silences of a beat or more).
* **n-grams** — the line's own recurrence: share of its interval 3-grams and of its rhythm
  (inter-onset) 3-grams that occur more than once (a riff or motif coming back), and distinct
  interval 2-grams per 2-gram.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from cadenza.models.zoo.lead_metrics import Line, lead_metrics, pitch_class_histogram
from cadenza.music.score import GRID

INTERVAL_CLASSES: tuple[tuple[int, int], ...] = (  # inclusive |semitone| ranges
    (0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 9), (10, 11), (12, 127))
IOI_CLASSES: tuple[tuple[int, int], ...] = (  # inclusive GRID-tick ranges (12 per beat)
    (1, 2), (3, 3), (4, 4), (5, 7), (8, 9), (10, 13), (14, 19), (20, 25), (26, 37), (38, 10**9))
MINOR_EXTRA = (9, 11)  # a minor key's raised sixth and seventh are in its scale too
MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)

LINE_METRICS = ("pitch_class_entropy", "scale_consistency", "swing_ratio", "pitch_range",
                "repetition_rate")
SCALARS = (
    *LINE_METRICS, "chromatic_share", "blue_third", "ends_on_tonic", "mean_interval",
    "chromatic_runs", "arpeggios", "ascending", "turning_points", "mean_run", "notes_per_beat",
    "ioi_entropy", "ioi_log_sd", "articulation", "syncopation", "rest_share", "phrases_per_4",
    "interval_3gram_recurrence", "rhythm_3gram_recurrence", "interval_2gram_variety",
)
FEATURE_NAMES: tuple[str, ...] = (
    *SCALARS,
    *(f"degree_{i}" for i in range(12)),
    *(f"interval_{lo}" if lo == hi else f"interval_{lo}-{hi}" for lo, hi in INTERVAL_CLASSES),
    *(f"phase_{i}" for i in range(GRID)),
    *(f"ioi_{lo}" if lo == hi else f"ioi_{lo}-{hi}" for lo, hi in IOI_CLASSES),
)


def _shares(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, dtype=float)
    return h / h.sum() if h.sum() else h


def _entropy(h: np.ndarray) -> float:
    p = _shares(h)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) if len(p) else math.nan


def _classes(values: np.ndarray, classes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Counts of ``values`` in each inclusive (lo, hi) range."""
    return np.array([np.sum((values >= lo) & (values <= hi)) for lo, hi in classes], float)


def _tonic(line: Line) -> int:
    return line.key.tonic if line.key else 0


# ---------------------------------------------------------------- tonality


def degree_shares(line: Line) -> np.ndarray:
    """Pitch-class shares rotated so the key's tonic is 0 (12,); zeros without notes."""
    return _shares(np.roll(pitch_class_histogram(line), -_tonic(line)))


def chromatic_share(line: Line) -> float:
    """Share of notes outside the key's scale (a minor key's raised 6th and 7th count as in)."""
    if not line.notes:
        return math.nan
    minor = line.key is not None and line.key.mode == "minor"
    scale = set(MINOR_STEPS + MINOR_EXTRA) if minor else set(MAJOR_STEPS)
    degrees = (line.pitches - _tonic(line)) % 12
    return float(np.mean([d not in scale for d in degrees]))


def blue_third(line: Line) -> float:
    """The smaller share of the minor (3) and the major third (4) above the tonic."""
    d = degree_shares(line)
    return float(min(d[3], d[4])) if line.notes else math.nan


def ends_on_tonic(line: Line) -> float:
    """1 when the line's last note is the tonic, else 0 (a cadence at the phrase's end)."""
    return float((line.notes[-1][2] - _tonic(line)) % 12 == 0) if line.notes else math.nan


# ---------------------------------------------------------------- intervals and contour


def intervals(line: Line) -> np.ndarray:
    """Signed semitones between consecutive notes."""
    return np.diff(line.pitches)


def interval_shares(line: Line) -> np.ndarray:
    """Shares of |interval| in INTERVAL_CLASSES (11,); zeros below two notes."""
    return _shares(_classes(np.abs(intervals(line)), INTERVAL_CLASSES))


def _pairs(iv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return iv[:-1], iv[1:]


def chromatic_runs(line: Line) -> float:
    """Share of consecutive interval pairs that are two semitone steps the same way."""
    iv = intervals(line)
    if len(iv) < 2:
        return math.nan
    a, b = _pairs(iv)
    return float(np.mean((np.abs(a) == 1) & (a == b)))


def arpeggios(line: Line) -> float:
    """Share of consecutive interval pairs that are two thirds (3 or 4 semitones) the same way."""
    iv = intervals(line)
    if len(iv) < 2:
        return math.nan
    a, b = _pairs(iv)
    thirds = np.isin(np.abs(a), (3, 4)) & np.isin(np.abs(b), (3, 4))
    return float(np.mean(thirds & (np.sign(a) == np.sign(b))))


def contour(line: Line) -> tuple[float, float, float]:
    """(share of upward moves, turning points per move, mean run of moves the same way) over the
    moves that change pitch; NaN without a move (turning points and runs: below two)."""
    moves = np.sign(intervals(line))
    moves = moves[moves != 0]
    if len(moves) == 0:
        return math.nan, math.nan, math.nan
    up = float(np.mean(moves > 0))
    if len(moves) < 2:
        return up, math.nan, math.nan
    turns = int(np.sum(moves[1:] != moves[:-1]))
    return up, turns / (len(moves) - 1), len(moves) / (turns + 1)


# ---------------------------------------------------------------- rhythm


def iois(line: Line) -> np.ndarray:
    """Inter-onset intervals in GRID ticks."""
    return np.diff(line.onsets)


def ioi_shares(line: Line) -> np.ndarray:
    """Shares of the inter-onset intervals in IOI_CLASSES (10,); zeros below two notes."""
    return _shares(_classes(iois(line), IOI_CLASSES))


def beat_phase_shares(line: Line) -> np.ndarray:
    """Onset shares by step of the quarter-note beat (12,); zeros without notes."""
    return _shares(np.bincount(line.onsets % GRID, minlength=GRID))


def notes_per_beat(line: Line) -> float:
    """Onsets per quarter note: the line's density whatever the bar length."""
    beats = line.bars * line.bar_ticks / GRID
    return len(line.notes) / beats if beats else math.nan


def ioi_spread(line: Line) -> tuple[float, float]:
    """(entropy in bits of the IOI classes, sd of log2 IOI); NaN below two notes."""
    d = iois(line)
    if len(d) == 0:
        return math.nan, math.nan
    return _entropy(_classes(d, IOI_CLASSES)), float(np.std(np.log2(d)))


def articulation(line: Line) -> float:
    """Mean of duration / inter-onset interval over the notes that have a next one (1 legato,
    0.5 half detached, below for rests between notes)."""
    d = iois(line)
    if len(d) == 0:
        return math.nan
    durations = np.array([n[1] for n in line.notes[:-1]], dtype=float)
    return float(np.mean(np.minimum(durations, d) / d))


def syncopation(line: Line) -> float:
    """Share of notes that start off the quarter-note beat and still sound at the next beat
    line (ragtime's tied syncopations, a soloist's anticipations); NaN without notes."""
    if not line.notes:
        return math.nan
    on = line.onsets
    ends = on + np.array([d for _, d, _ in line.notes])
    return float(np.mean((on % GRID != 0) & (ends > (on // GRID + 1) * GRID)))


def rest_share(line: Line) -> float:
    """Share of the line's time in which no note sounds (a solo breathes between phrases, a
    chorale tune hardly ever stops)."""
    total = line.bars * line.bar_ticks
    return 1.0 - min(1.0, sum(d for _, d, _ in line.notes) / total) if total else math.nan


def phrases_per_4(line: Line) -> float:
    """Phrases per four beats: runs of notes split by silences of a beat or more (the line's
    start and end count as such silences only when they are one)."""
    total = line.bars * line.bar_ticks
    if not line.notes or not total:
        return math.nan
    phrases = 1
    for (s, d, _), (t, _, _) in zip(line.notes, line.notes[1:], strict=False):
        phrases += t - (s + d) >= GRID
    return phrases / (total / GRID) * 4


# ---------------------------------------------------------------- n-grams


def recurrence(seq: Sequence[object], n: int = 3) -> float:
    """Share of the sequence's n-grams that occur more than once in it; NaN without one."""
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    if not grams:
        return math.nan
    counts = Counter(grams)
    return sum(c for c in counts.values() if c > 1) / len(grams)


def variety(seq: Sequence[object], n: int = 2) -> float:
    """Distinct n-grams per n-gram (1: nothing comes back); NaN without one."""
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


# ---------------------------------------------------------------- the vector


def lead_features(line: Line, metrics: Mapping[str, float] | None = None) -> dict[str, float]:
    """The scalar figures (SCALARS) of one line; ``metrics`` its lead metrics when known (a
    real excerpt notated straight and played swung passes its swing ratio as NaN)."""
    m = lead_metrics(line) if metrics is None else metrics
    iv = intervals(line).tolist()
    up, turns, run = contour(line)
    ioi_h, ioi_sd = ioi_spread(line)
    return {
        **{k: float(m[k]) for k in LINE_METRICS},
        "chromatic_share": chromatic_share(line),
        "blue_third": blue_third(line),
        "ends_on_tonic": ends_on_tonic(line),
        "mean_interval": float(np.mean(np.abs(iv))) if iv else math.nan,
        "chromatic_runs": chromatic_runs(line),
        "arpeggios": arpeggios(line),
        "ascending": up,
        "turning_points": turns,
        "mean_run": run,
        "notes_per_beat": notes_per_beat(line),
        "ioi_entropy": ioi_h,
        "ioi_log_sd": ioi_sd,
        "articulation": articulation(line),
        "syncopation": syncopation(line),
        "rest_share": rest_share(line),
        "phrases_per_4": phrases_per_4(line),
        "interval_3gram_recurrence": recurrence(iv),
        "rhythm_3gram_recurrence": recurrence(iois(line).tolist()),
        "interval_2gram_variety": variety(iv),
    }


def lead_vector(line: Line, metrics: Mapping[str, float] | None = None) -> np.ndarray:
    """Every FEATURE_NAMES value of one line, in order (the module docstring)."""
    scalars = lead_features(line, metrics)
    return np.concatenate([
        [scalars[k] for k in SCALARS], degree_shares(line), interval_shares(line),
        beat_phase_shares(line), ioi_shares(line),
    ]).astype(float)
