"""Training bands for the GAN: real melodies of each style, arranged in that style over their own
chords by ``cadenza.arrange``, as 4/4 band Scores with a phrase budget per style.

What becomes a band:

* stretches of 4/4 and 2/4 pieces (the rags). A 2/4 piece is arranged in 2/4, its own idiom
  (oom-pah in eighths), and the band's bars are then read in pairs: one 4/4 bar holds two 2/4
  bars at the same note values and tempo, which is how the GAN's 4/4 ragtime is played;
* never a held-out piece (``cadenza.models.training.dataset.is_heldout``: the evaluation's
reference); * only bars with a chord sounding throughout (WJD solos mark breaks and pickups ``NC``;
  the arranger needs a chord to comp), in runs of at least one phrase;
* in swing styles the whole band is swung by the arranger, the lead with it (the readers
  straighten the performed WJD solos, ``cadenza.models.training.style_corpus``), so the GAN learns
  each style's feel from its data and ``restyle_band`` swings nothing again.

Per style, pieces are taken in a seeded random order until the style's phrase budget is met,
each giving at most its share of the bars the budget needs (so a style's phrases come from many
pieces, not the first few long solos); styles with fewer bars than the budget cut phrases at a
shorter hop (more overlapping phrases from the few pieces there are), down to one bar.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cadenza.arrange import arrange
from cadenza.models.training.corpus import NO_CHORD, Piece
from cadenza.models.training.dataset import is_heldout
from cadenza.models.training.style_corpus import SOURCES, source_kind
from cadenza.music.score import Meter, Note, Score
from cadenza.music.theory import Chord
from cadenza.styles import STYLES

log = logging.getLogger(__name__)

MUSIC21 = ("music21 corpus (Bach chorales, Essen folk songs, O'Neill's 1850, Ryan's Mammoth, "
           "Aird's Airs, Joplin's Maple Leaf Rag, Berlin's lead sheet: public-domain music, "
           "encoded in the BSD-licensed music21 toolkit)")
MAX_HOP = 4
BARS_PER_COMMON_BAR = {(4, 4): 1, (2, 4): 2}  # source bars in one 4/4 bar


@dataclass
class Bands:
    """4/4 band Scores, the phrase hop chosen per style, and what they came from."""

    scores: list[Score]
    hops: dict[str, int] = field(default_factory=dict)
    pieces: dict[str, int] = field(default_factory=dict)  # per style, pieces used
    bars: dict[str, int] = field(default_factory=dict)  # per style, 4/4 bars arranged
    sources: dict[str, int] = field(default_factory=dict)  # per source kind, pieces used
    skipped: dict[str, int] = field(default_factory=dict)

    def credits(self) -> list[str]:
        """Credit and licence of every source the bands were made from."""
        return [SOURCES.get(k, MUSIC21 if k == "music21" else "users' MIDI folders")
                for k in sorted(self.sources)]


def source_of(piece: Piece) -> str:
    """The piece's source kind: a style-corpus source, 'music21', or 'midi' (a user folder)."""
    kind = source_kind(piece.source)
    if kind:
        return kind
    return "midi" if Path(piece.source.split("#", 1)[0]).is_absolute() else "music21"


def chorded_stretches(piece: Piece, min_bars: int) -> list[tuple[int, int]]:
    """(first bar, bars) of each run of at least ``min_bars`` bars that have a chord sounding
    from start to end (no ``NC``, not before the first chord)."""
    bt = piece.bar_ticks
    end = piece.bars * bt
    chorded = np.zeros(end, dtype=bool)
    marks = sorted(piece.chords)
    for i, (t, name) in enumerate(marks):
        nxt = marks[i + 1][0] if i + 1 < len(marks) else end
        chorded[t:nxt] = name != NO_CHORD
    whole = chorded.reshape(piece.bars, bt).all(axis=1)
    out, run = [], None
    for b, ok in enumerate([*whole, False]):
        if ok and run is None:
            run = b
        elif not ok and run is not None:
            if b - run >= min_bars:
                out.append((run, b - run))
            run = None
    return out


def in_common_time(band: Score) -> Score:
    """A 4/4 or 2/4 band as 4/4: 2/4 bars read in pairs (ticks unchanged)."""
    k = BARS_PER_COMMON_BAR[tuple(band.time_signature)]
    if k == 1:
        return band
    if band.bars % k:
        raise ValueError(f"{band.bars} bars of 2/4 do not pair into 4/4 bars")
    return replace(band, time_signature=Meter(4, 4), bars=band.bars // k)


def arranged_band(piece: Piece, first_bar: int, bars: int, rng: np.random.Generator,
                  tempo: float = 110.0) -> Score:
    """Bars ``first_bar`` .. + ``bars`` of a piece arranged in its style over its chords, in
    4/4 (see the module docstring for 2/4)."""
    bt = piece.bar_ticks
    lo, hi = first_bar * bt, (first_bar + bars) * bt
    melody = [Note(s - lo, min(d, hi - s), p, 88) for s, d, p in piece.notes if lo <= s < hi]
    plan: list[tuple[int, Chord]] = []
    for t, name in piece.chords:  # the chord sounding at the start, then the changes
        if name == NO_CHORD:
            continue
        if t <= lo:
            plan = [(0, Chord.parse(name))]
        elif t < hi:
            plan.append((t - lo, Chord.parse(name)))
    band = arrange(melody, plan, spec=STYLES[piece.style], meter=piece.meter, bars=bars,
                   tempo=tempo, key=piece.key, rng=rng)
    return in_common_time(band)


def _windows(stretches: list[tuple[int, int]], share: int, unit: int, phrase: int,
             rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``share`` source bars from a piece's chorded stretches, in random order: windows
    of whole 4/4 bars (``unit`` source bars each), at least a phrase (``phrase`` source bars)
    long, starting on a phrase boundary of the piece where the stretch allows, else on a 4/4
    bar line."""
    out, left = [], share
    for k in rng.permutation(len(stretches)):
        first, n = stretches[k]
        first, n = -(-first // unit) * unit, n - (-first % unit)
        size = min(n, left) // unit * unit
        if size < phrase:
            continue
        starts = range(first, first + n - size + 1, unit)
        aligned = [b for b in starts if b % phrase == 0]
        out.append((int(rng.choice(aligned or list(starts))), size))
        left -= size
    return sorted(out)


def training_bands(pieces: Sequence[Piece], phrases_per_style: int, *, phrase_bars: int = 4,
                   seed: int = 0) -> Bands:
    """Bands for every style in ``cadenza.styles`` from ``pieces``, about ``phrases_per_style``
    phrases of ``phrase_bars`` 4/4 bars each (see the module docstring)."""
    skipped: Counter[str] = Counter()
    by_style: dict[str, list[tuple[Piece, list[tuple[int, int]]]]] = defaultdict(list)
    for p in pieces:
        if p.style not in STYLES:
            skipped["style not in the band styles"] += 1
            continue
        if is_heldout(p.source):
            skipped["held out for evaluation"] += 1
            continue
        unit = BARS_PER_COMMON_BAR.get(tuple(p.meter))
        if unit is None:
            skipped[f"meter {p.meter[0]}/{p.meter[1]}"] += 1
            continue
        stretches = chorded_stretches(p, phrase_bars * unit)
        if not stretches:
            skipped["no chorded phrase"] += 1
            continue
        by_style[p.style].append((p, stretches))
    rng = np.random.default_rng(seed)
    out = Bands([])
    sources: Counter[str] = Counter()
    for style in sorted(by_style):
        items = by_style[style]

        def common(p: Piece, n: int) -> int:  # source bars -> 4/4 bars
            return n // BARS_PER_COMMON_BAR[tuple(p.meter)]

        total = sum(common(p, n) for p, st in items for _, n in st)
        hop = MAX_HOP
        while hop > 1 and total / hop < phrases_per_style:
            hop -= 1
        out.hops[style] = hop
        need = phrases_per_style * hop  # 4/4 bars
        share = -(-need // len(items))  # per piece, rounded up to whole phrases
        share = max(2 * phrase_bars, -(-share // phrase_bars) * phrase_bars)
        if total < 2 * need:  # little to spare: every piece gives all it has
            share = total
        phrases = bars = used = 0
        for i in rng.permutation(len(items)):
            if phrases >= phrases_per_style:
                break
            piece, stretches = items[i]
            unit = BARS_PER_COMMON_BAR[tuple(piece.meter)]
            took = 0
            for first, n in _windows(stretches, share * unit, unit, phrase_bars * unit, rng):
                arr_rng = np.random.default_rng([seed, int(i), first])
                try:
                    out.scores.append(arranged_band(piece, first, n, arr_rng))
                except ValueError as e:  # a chord name the arranger cannot voice
                    log.debug("skipping %s bars %d+%d: %s", piece.source, first, n, e)
                    skipped["chord the arranger cannot play"] += 1
                    continue
                phrases += (n // unit - phrase_bars) // hop + 1
                took += n // unit
            if took:
                bars += took
                used += 1
                sources[source_of(piece)] += 1
        out.pieces[style], out.bars[style] = used, bars
        log.info("GAN bands %s: %d pieces, %d bars, hop %d, ~%d phrases", style, used, bars,
                 hop, phrases)
    out.sources = dict(sources)
    out.skipped = dict(skipped)
    return out
