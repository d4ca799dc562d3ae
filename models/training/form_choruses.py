"""Form choruses: jazz and blues solos laid out as the heads of their tunes are, so the
sequence models learn that a returning section restates its first statement in those styles too.

Improvised solos almost never restate a phrase (1.5 % of the jazz solos' bars and 0.5 % of the
blues solos' have an echo, against 15-45 % in folk, celtic and rag tunes), so trained on them
alone the models learned "a returning section comes back" only as a folk habit and wrote jazz
AABA choruses whose last A had nothing of the first. A head does restate: the A of a standard
comes back with a new ending, a blues' second line is its first over the IV chord. A form
chorus is built from one solo's own bars: its first 8 bars as A, A again with the two bars of
a later phrase as a new ending (bars 23-24; a solo shorter than 24 bars keeps its own), its
next 8 bars as B, the first A again (jazz, 32 bars of AABA: the echo of every A is the first,
as at generation, ``cadenza.music.form.echo_bars``); its
first line, that line again over bars 5-8's chords with bar 8's own ending, and bars 9-12
(blues, 12 bars of AAB). Every note and chord is the solo's; only their order is composed.
They join the training side only (never the held-out pieces, never from a held-out piece).
"""

from __future__ import annotations

from dataclasses import replace

from cadenza.models.training.corpus import NO_CHORD, Piece
from cadenza.music.score import window_changes

# (notes from bars [a, b), chords from bars [c, d)) per segment, in order
Segment = tuple[tuple[int, int], tuple[int, int]]


def _layout(style: str, bars: int) -> list[Segment] | None:
    if style == "jazz" and bars >= 16:
        end = (22, 24) if bars >= 24 else (6, 8)  # the second A's new ending
        return [((0, 8), (0, 8)), ((0, 6), (0, 6)), (end, end), ((8, 16), (8, 16)),
                ((0, 8), (0, 8))]
    if style == "blues" and bars >= 12:
        return [((0, 4), (0, 4)), ((0, 3), (4, 7)), ((7, 8), (7, 8)), ((8, 12), (8, 12))]
    return None


def form_chorus(piece: Piece) -> Piece | None:
    """The piece's form chorus (see the module docstring), or None for other styles and
    solos too short for one."""
    layout = _layout(piece.style, piece.bars)
    if layout is None:
        return None
    bt = piece.bar_ticks
    notes: list[tuple[int, int, int]] = []
    out_chords: list[tuple[int, str]] = []
    at = 0  # the segment's first bar in the chorus
    for (a, b), (c, d) in layout:
        lo, hi, shift = a * bt, b * bt, (at - a) * bt
        notes += [(s + shift, min(dur, hi - s), p) for s, dur, p in piece.notes if lo <= s < hi]
        out_chords += [(t + at * bt, name)
                       for t, name in window_changes(piece.chords, c * bt, d * bt, NO_CHORD)]
        at += b - a
    if not notes:  # a solo that starts late: nothing to restate
        return None
    merged: list[tuple[int, str]] = []
    for t, name in out_chords:  # a change to the chord already sounding is none
        if not merged or merged[-1][1] != name:
            merged.append((t, name))
    return replace(piece, bars=at, notes=tuple(sorted(notes)), chords=tuple(merged),
                   sections=())
