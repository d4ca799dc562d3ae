"""Form choruses: jazz and blues solos laid out as the heads of their tunes are, so the
sequence models learn that a returning section restates its first statement in those styles too.

Improvised solos almost never restate a phrase (1.5 % of the jazz solos' bars and 0.5 % of the
blues solos' have an echo, against 15-45 % in folk, celtic and rag tunes), so trained on them
alone the models learned "a returning section comes back" only as a folk habit and wrote jazz AABA
choruses whose last A had nothing of the first. A head does restate: the A of a standard comes
back with a new ending, a blues' second line is its first over the IV chord. A form chorus is
built from one solo's own bars: its first 8 bars as A, A again with the two bars of a later phrase
as a new ending (bars 23-24; a solo shorter than 24 bars keeps its own), its next 8 bars as B, the
first A again (jazz, 32 bars of AABA: the echo of every A is the first, as at generation,
``cadenza.music.form.echo_bars``); its first line, that line again over bars 5-8's chords with bar
8's own ending, and bars 9-12 (blues, 12 bars of AAB). Every note and chord is the solo's; only
their order is composed. A solo gives one chorus per chorus it plays (every 32 bars for jazz, 12
for blues, from where its form starts): with the first only, 83 blues choruses did not teach the
lstm that a blues' second line restates (it gave REP_4 in those bars 0.13 with the echo, 0.12
without). They join the training side only (never the held-out pieces, never from a held-out
piece).
"""

from __future__ import annotations

from dataclasses import replace

from cadenza.models.training.corpus import NO_CHORD, Piece
from cadenza.music.score import window_changes

# (notes from bars [a, b), chords from bars [c, d)) per segment, in order
Segment = tuple[tuple[int, int], tuple[int, int]]


# where a solo's choruses start: every 32 bars for jazz (most standards' chorus), every 12 for
# blues; a chorus needs its first 16 (jazz) or 12 (blues) bars inside the solo
CHORUS_STEP = {"jazz": 32, "blues": 12}


def _layout(style: str, bars: int, k: int) -> list[Segment] | None:
    """The segments of the chorus starting at the solo's bar ``k``."""
    if style == "jazz" and bars - k >= 16:
        # the second A's new ending: the chorus's bars 23-24, else its own bars 7-8
        end = (k + 22, k + 24) if bars - k >= 24 else (k + 6, k + 8)
        return [((k, k + 8), (k, k + 8)), ((k, k + 6), (k, k + 6)), (end, end),
                ((k + 8, k + 16), (k + 8, k + 16)), ((k, k + 8), (k, k + 8))]
    if style == "blues" and bars - k >= 12:
        return [((k, k + 4), (k, k + 4)), ((k, k + 3), (k + 4, k + 7)),
                ((k + 7, k + 8), (k + 7, k + 8)), ((k + 8, k + 12), (k + 8, k + 12))]
    return None


def form_choruses(piece: Piece) -> list[Piece]:
    """The piece's form choruses, one per chorus of the solo (see the module docstring); none
    for other styles, solos too short for one, and choruses without a note. Choruses start
    where the source's form does (its first section: a WJD solo's pickup bars come before
    it), else at bar 0."""
    step = CHORUS_STEP.get(piece.style, 0)
    first = min((start for start, length, _ in piece.sections
                 if 0 <= start < piece.bars and length > 0), default=0)
    out: list[Piece] = []
    for k in range(first, piece.bars, step) if step else ():
        layout = _layout(piece.style, piece.bars, k)
        chorus = _chorus(piece, layout) if layout is not None else None
        if chorus is not None:
            out.append(chorus)
    return out


def _chorus(piece: Piece, layout: list[Segment]) -> Piece | None:
    """The piece's notes and chords laid out by ``layout``; None when no note falls in it."""
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
    if not notes:  # a chorus the solo does not play in: nothing to restate
        return None
    merged: list[tuple[int, str]] = []
    for t, name in out_chords:  # a change to the chord already sounding is none
        if not merged or merged[-1][1] != name:
            merged.append((t, name))
    return replace(piece, bars=at, notes=tuple(sorted(notes)), chords=tuple(merged),
                   sections=())
