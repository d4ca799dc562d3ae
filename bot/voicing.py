"""Chord voicings with smooth voice leading, rootless jazz voicings and bass-note choices."""

from __future__ import annotations

import functools
from itertools import permutations

from cadenza.music.theory import Chord

# rootless (jazz piano) voicings: intervals above the root, 3rd and 7th first
ROOTLESS: dict[str, tuple[int, ...]] = {
    "7": (4, 10, 14, 21), "9": (4, 10, 14, 21), "13": (4, 10, 14, 21), "7#9": (4, 10, 15),
    "maj7": (4, 11, 14, 7), "maj9": (4, 11, 14, 7), "6": (4, 9, 14, 7), "maj": (4, 7, 14),
    "m7": (3, 10, 14, 7), "m9": (3, 10, 14, 7), "m6": (3, 9, 14, 7), "min": (3, 7, 14),
    "m7b5": (3, 10, 6, 0), "dim7": (0, 3, 6, 9), "dim": (0, 3, 6), "aug": (4, 8, 0),
    "sus4": (5, 10, 14, 7),
    "69": (4, 9, 14, 7), "m69": (3, 9, 14, 7), "add9": (4, 7, 14), "m11": (3, 10, 14, 17),
    "mmaj7": (3, 11, 14, 7), "maj7#11": (4, 11, 14, 18), "maj7#5": (4, 11, 8),
    "7b9": (4, 10, 13, 19), "7#11": (4, 10, 14, 18), "9#11": (4, 10, 14, 18),
    "13b9": (4, 10, 13, 21), "13#11": (4, 10, 18, 21), "7#5": (4, 10, 8), "7b5": (4, 10, 6),
    "7#5#9": (4, 10, 15, 20), "7#5b9": (4, 10, 13, 20), "7alt": (4, 10, 15, 20),
    "7sus4": (5, 10, 14, 7), "9sus4": (5, 10, 14, 7), "7b9sus4": (5, 10, 13, 7),
}


def chord_pcs(chord: Chord, n: int, rootless: bool = False) -> list[int]:
    """``n`` pitch classes for a voicing: rootless colour tones, or chord tones with doubling."""
    if rootless:
        ints = list(ROOTLESS.get(chord.quality, chord.intervals))[:n]
    else:
        ints = list(chord.intervals)
        if len(ints) > n:
            # drop the fifth first (least defining), then extensions beyond the seventh
            drop = [i for i in ints if i == 7] + [i for i in ints if i > 11]
            for d in drop:
                if len(ints) > n:
                    ints.remove(d)
            ints = ints[:n]
        base = list(chord.intervals)
        while len(ints) < n:  # double the root, then the other tones
            ints.append(base[(len(ints) - len(base)) % len(base)])
    return [(chord.root + i) % 12 for i in ints]


def close_voicings(pcs: list[int], lo: int, hi: int) -> list[list[int]]:
    """Every close-position stacking of ``pcs`` (each order, each octave) within [lo, hi]."""
    return [list(v) for v in _close_voicings(tuple(pcs), lo, hi)]


@functools.lru_cache(maxsize=4096)  # the arranger asks for the same few chords every bar
def _close_voicings(pcs: tuple[int, ...], lo: int, hi: int) -> tuple[tuple[int, ...], ...]:
    out: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    for order in set(permutations(pcs)):
        for base in range(lo, lo + 12):
            if base % 12 != order[0]:
                continue
            v = [base]
            for pc in order[1:]:
                nxt = v[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                v.append(nxt)
            for shift in (0, 12, 24):
                cand = tuple(p + shift for p in v)
                if cand[-1] <= hi and cand[0] >= lo and cand not in seen:
                    seen.add(cand)
                    out.append(cand)
    return tuple(out)


def lead_voicing(
    chord: Chord, prev: list[int] | None, lo: int, hi: int, n: int = 4, rootless: bool = False
) -> list[int]:
    """The voicing nearest to ``prev`` (least total movement); centred in range at the start."""
    cands = close_voicings(chord_pcs(chord, n, rootless), lo, hi)
    if not cands:
        cands = close_voicings(chord_pcs(chord, max(1, n - 1), rootless), lo, hi + 12)
    if not cands:
        return [lo + (chord.root - lo) % 12]
    if prev:
        def cost(v: list[int]) -> float:
            return sum(abs(a - b) for a, b in zip(sorted(v), sorted(prev), strict=False)) + abs(
                len(v) - len(prev)) * 6

        return min(cands, key=cost)
    centre = (lo + hi) / 2
    return min(cands, key=lambda v: abs(sum(v) / len(v) - centre))


def nearest_pitch(pc: int, target: int, lo: int, hi: int) -> int:
    """The pitch of class ``pc`` closest to ``target`` inside [lo, hi]."""
    cands = [p for p in range(lo, hi + 1) if p % 12 == pc]
    if not cands:
        return lo + (pc - lo) % 12
    return min(cands, key=lambda p: (abs(p - target), p))
