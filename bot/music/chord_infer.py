"""Chord inference: from full harmony (template matching per beat) or from a melody (Viterbi).

Most of the offline corpus has no chord symbols, so the training data gets its chords here:
the Bach chorales and piano pieces from all sounding voices, the folk tunes from the melody alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cadenza.music.theory import CORE_QUALITIES, Chord, Key

# (start, end, pitch) in ticks
Span = tuple[int, int, int]

_HARMONY_QUALITIES = ("maj", "min", "dim", "7", "m7", "maj7", "m7b5", "dim7", "aug", "sus4")
# simpler chords win ties; sevenths need their seventh present to beat the triad
_COMPLEXITY = {q: (0.0 if q in ("maj", "min") else 0.15 if q in ("7", "dim") else 0.3)
               for q in CORE_QUALITIES}


def _pc_weights(spans: Sequence[Span], lo: int, hi: int) -> tuple[list[float], int | None]:
    """Duration-weighted pitch-class histogram of [lo, hi) and the lowest pitch sounding at lo."""
    w = [0.0] * 12
    bass: int | None = None
    for s, e, p in spans:
        ov = min(e, hi) - max(s, lo)
        if ov > 0:
            w[p % 12] += ov
            if s <= lo < e or (lo <= s < lo + 1):
                bass = p if bass is None else min(bass, p)
    return w, bass


# best_chord's candidates in the order it tries them, and per candidate its pitch classes in
# the order the set of them iterates (the order the loop this replaced added them in), padded
# with 12, a slot that weighs 0: scoring all 120 at once in numpy adds, multiplies and divides
# the same float64 values in the same order as that loop, so it picks the same chords. It
# built 120 Chords and their pitch classes a call, 0.7 ms: half a GAN clip's time
_CHORDS = tuple(Chord(root, q) for root in range(12) for q in _HARMONY_QUALITIES)
_PCS = tuple(tuple(set(c.pitch_classes)) for c in _CHORDS)
_GATHER = np.array([p + (12,) * (max(map(len, _PCS)) - len(p)) for p in _PCS])
_REAL = _GATHER < 12
_COMPLEXITIES = np.array([_COMPLEXITY[c.quality] for c in _CHORDS])
_ROOTS = np.array([c.root for c in _CHORDS])


def best_chord(weights: Sequence[float], bass: int | None = None) -> Chord | None:
    """Chord whose tones best cover a pitch-class histogram (None when nothing sounds).

    Score: (weight inside - 1.2 x weight outside) / total - 0.35 per chord tone not sounding
    - the quality's complexity, + 0.12 when the bass is the root; the first best wins (a later
    candidate must beat it by more than 1e-9)."""
    total = sum(weights)
    if total <= 0:
        return None
    w = np.zeros(13)
    w[:12] = weights
    tones = w[_GATHER]  # (candidates, tones)
    inside = tones[:, 0]
    for j in range(1, tones.shape[1]):
        inside = inside + tones[:, j]  # one column at a time: the loop's order of additions
    outside = total - inside
    missing = ((tones <= 0) & _REAL).sum(axis=1)
    score = (inside - 1.2 * outside) / total - 0.35 * missing - _COMPLEXITIES
    if bass is not None:
        score[bass % 12 == _ROOTS] += 0.12
    scores = score.tolist()
    best = 0
    for i in range(1, len(scores)):
        if scores[i] > scores[best] + 1e-9:
            best = i
    return _CHORDS[best]


def harmonize_voices(spans: Sequence[Span], end: int, step: int) -> list[tuple[int, Chord]]:
    """Chord changes (tick, chord) from all voices, one decision per ``step`` ticks."""
    changes: list[tuple[int, Chord]] = []
    current: Chord | None = None
    for lo in range(0, end, step):
        w, bass = _pc_weights(spans, lo, lo + step)
        chord = best_chord(w, bass)
        if chord is not None and chord != current:
            changes.append((lo, chord))
            current = chord
    return changes


def _diatonic_candidates(key: Key) -> list[tuple[Chord, float]]:
    """Candidate chords for melody harmonisation with a prior log-weight each."""
    s = key.scale
    if key.mode == "major":
        cands = [
            (Chord(s[0], "maj"), 0.0), (Chord(s[3], "maj"), -0.3), (Chord(s[4], "maj"), -0.2),
            (Chord(s[4], "7"), -0.5), (Chord(s[5], "min"), -0.7), (Chord(s[1], "min"), -0.8),
            (Chord(s[2], "min"), -1.4),
            (Chord((key.tonic + 10) % 12, "maj"), -1.3),  # bVII: mixolydian fiddle tunes
        ]
    else:
        cands = [
            (Chord(s[0], "min"), 0.0), (Chord(s[3], "min"), -0.4),
            (Chord((key.tonic + 7) % 12, "maj"), -0.3), (Chord((key.tonic + 7) % 12, "7"), -0.5),
            (Chord((key.tonic + 7) % 12, "min"), -0.7),
            (Chord(s[2], "maj"), -0.6), (Chord(s[5], "maj"), -0.8), (Chord(s[6], "maj"), -0.7),
        ]
    return cands


def harmonize_melody(
    notes: Sequence[Span],
    key: Key,
    bar_ticks: int,
    bars: int,
    *,
    split: bool = True,
    change_cost: float = 0.35,
) -> list[tuple[int, Chord]]:
    """Chord changes (tick, chord) for a melody by Viterbi over diatonic chords.

    One segment per bar, or two when ``split`` and the bar divides in halves; changing chord
    costs ``change_cost`` so most bars keep one chord, and the last bar leans to the tonic.
    """
    seg = bar_ticks // 2 if split and bar_ticks % 2 == 0 and bar_ticks >= 24 else bar_ticks
    n_seg = max(1, bars * bar_ticks // seg)
    cands = _diatonic_candidates(key)
    beat = 12 if bar_ticks % 12 == 0 else bar_ticks
    emis: list[list[float]] = []
    for k in range(n_seg):
        lo, hi = k * seg, (k + 1) * seg
        row = []
        for chord, prior in cands:
            pcs = set(chord.pitch_classes)
            score = 0.0
            for s, e, p in notes:
                ov = min(e, hi) - max(s, lo)
                if ov <= 0:
                    continue
                metric = 2.0 if s == lo else 1.4 if s % beat == 0 and lo <= s < hi else 1.0
                w = ov / 12.0 * metric
                score += w if p % 12 in pcs else -0.6 * w
            row.append(score + 0.5 * prior)
        emis.append(row)
    # final segment: prefer the tonic chord (cadence)
    emis[-1][0] += 1.0
    n = len(cands)
    best = [emis[0][j] for j in range(n)]
    back: list[list[int]] = []
    for k in range(1, n_seg):
        same_bar_boundary = (k * seg) % bar_ticks != 0
        cost = change_cost * (2.5 if same_bar_boundary else 1.0)
        new, ptr = [], []
        for j in range(n):
            choices = [best[i] - (0.0 if i == j else cost) for i in range(n)]
            i_best = max(range(n), key=lambda i: choices[i])
            new.append(choices[i_best] + emis[k][j])
            ptr.append(i_best)
        best, back = new, [*back, ptr]
    j = max(range(n), key=lambda j: best[j])
    path = [j]
    for ptr in reversed(back):
        j = ptr[j]
        path.append(j)
    path.reverse()
    changes: list[tuple[int, Chord]] = []
    current: Chord | None = None
    for k, j in enumerate(path):
        chord = cands[j][0]
        if chord != current:
            changes.append((k * seg, chord))
            current = chord
    return changes


def key_from_pitches(notes: Sequence[Span], tonic: int | None = None) -> Key:
    """Krumhansl-Schmuckler key estimate from duration-weighted pitch classes.

    With ``tonic`` given (e.g. an ABC ``K:`` field that names only the tonic), only the mode
    is estimated."""
    w = [0.0] * 12
    for s, e, p in notes:
        w[p % 12] += max(1, e - s)
    if sum(w) == 0:
        return Key(0)
    best: tuple[float, Key] | None = None
    for t in range(12) if tonic is None else (tonic,):
        for mode in ("major", "minor"):
            r = _fit(w, Key(t, mode))
            if best is None or r > best[0]:
                best = (r, Key(t, mode))
    assert best is not None
    return best[1]


def key_from_chords(changes: Sequence[tuple[int, Chord | None]], end: int,
                    hint: Key | None = None, margin: float = 0.2) -> Key:
    """The key a chord timeline is in: Krumhansl-Schmuckler over its chord tones weighted by
    duration (roots twice). A written ``hint`` (a chart's key signature) is kept unless another
    key fits clearly better (by ``margin`` in correlation; 0.2 keeps All the Things You Are in
    Ab): chart signatures are often a placeholder C, and Angel Eyes is in D minor whatever its
    header says."""
    spans: list[Span] = []
    marks = sorted(changes, key=lambda c: c[0])
    for i, (tick, chord) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else end
        if chord is None or stop <= tick:
            continue
        spans += [(tick, stop, pc) for pc in (chord.root, *chord.pitch_classes)]
    if not spans:
        return hint or Key(0)
    best = key_from_pitches(spans)
    if hint is None:
        return best
    w = [0.0] * 12
    for a, b, pc in spans:
        w[pc % 12] += b - a
    return best if _fit(w, best) > _fit(w, hint) + margin else hint


def _fit(w: Sequence[float], key: Key) -> float:
    major = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
    minor = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
    prof = major if key.mode == "major" else minor
    return _corr(w, [prof[(i - key.tonic) % 12] for i in range(12)])


def _corr(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    den = math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    return num / den if den else 0.0
