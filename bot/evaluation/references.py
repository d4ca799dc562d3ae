"""The real reference of each style: which pieces stand for it (held-out ones only, never
training data when avoidable) and how they are cut into bar-aligned excerpts.

Pieces per style:

* folk, celtic, classical: music21's corpus pieces in the fixed hashed 5% held-out split
  (``cadenza.models.training.dataset.is_heldout``), which no melody model trained on;
* jazz, blues: held-out Weimar Jazz Database solos, with their performed timing (the eighths'
  swing as played, on the 1/12-beat grid), and Impro-Visor transcriptions
  (``cadenza.models.training.style_corpus``), lead line against lead line. The transcriptions are
  notated with straight eighths that Impro-Visor plays at the sheet's swing setting, so they have no
  swing ratio of their own (``NOTATED_SWUNG``);
* ragtime: held-out public-domain rags, plus the CC BY-NC-SA Joplin edition's pieces whose
  composition is not also in the public-domain Mutopia set (``NC_SAME_AS_MUTOPIA``). Shipped
  weights never learn from that edition, so its other pieces are unseen rags: evaluation only.

Only pieces in a meter the style composes in (``StyleSpec.meters``) are used: the Joplin waltzes
(3/4) and marches (6/8) are not what ``style:ragtime`` writes. Training pieces are used only when
the held-out ones run out, and the report says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cadenza.arrange import arrange
from cadenza.errors import UserError
from cadenza.evaluation.clips import Clip, clip_from_score, roll_holds
from cadenza.models.training.corpus import Piece
from cadenza.models.training.dataset import is_heldout
from cadenza.models.training.style_corpus import source_kind
from cadenza.models.zoo.lead_metrics import line_from_piece
from cadenza.music.score import Note, Score
from cadenza.music.theory import Chord
from cadenza.styles import STYLE_NAMES, STYLES

log = logging.getLogger(__name__)

# The Joplin edition's files (by name) whose composition the Mutopia set also holds, matched by
# title against the MANIFEST's full Mutopia list (three of those files, magnetic, original and
# sugar-cane, are held back from this copy of the corpus; their titles are left out all the
# same). The MANIFEST counts 13 overlapping titles; matching by hand gives these 14 (Bethena,
# whose Mutopia file is named joplin_bethena, is the likely difference).
NC_SAME_AS_MUTOPIA: frozenset[str] = frozenset({
    "bethena", "breeze", "elite", "entertainer", "eugenia", "magnetic", "mapleleaf", "original",
    "peacherine", "pineapple", "searchlight", "something", "sugarcane", "wallstreet",
})
MIN_EXCERPT_NOTES = 4  # an excerpt with fewer notes is a rest between phrases, not a line
NOTATED_SWUNG = frozenset({"impro-visor"})  # sources written straight and played swung


def nc_title(source: str) -> str:
    """'joplin-nc:Joplin_mapleleaf' -> 'mapleleaf'."""
    return source.split(":", 1)[-1].removeprefix("Joplin_").lower()


def is_reference(piece: Piece) -> bool:
    """Whether a piece may serve as held-out reference: in the hashed held-out split, or one of
    the non-commercial Joplin pieces no shipped model learns from (title not in Mutopia)."""
    if source_kind(piece.source) == "joplin-nc":
        return nc_title(piece.source) not in NC_SAME_AS_MUTOPIA
    return is_heldout(piece.source)


def nc_trained(meta: dict) -> bool:
    """Whether a checkpoint learned from the non-commercial Joplin edition (never the shipped
    ones): its Joplin pieces are then no held-out reference for it."""
    return bool(meta.get("include_nc")) or "--include-nc" in str(meta.get("command", ""))


def is_training(piece: Piece) -> bool:
    """Whether a piece is in some shipped model's training data (never the NC edition)."""
    return source_kind(piece.source) != "joplin-nc" and not is_heldout(piece.source)


@dataclass
class Reference:
    clips: list[Clip] = field(default_factory=list)
    heldout_pieces: int = 0
    training_pieces: int = 0
    heldout_clips: int = 0
    skipped_pieces: int = 0  # a meter the style does not compose in or the roll cannot hold
    short_pieces: int = 0  # no excerpt of the asked length with notes in it
    available_heldout: int = 0
    available_training: int = 0
    per_piece: dict[str, int] = field(default_factory=dict)  # source -> excerpts used
    sources: dict[str, int] = field(default_factory=dict)  # source kind -> held-out pieces used
    example: Score | None = None  # the first clip's arranged score, for the listening page
    reason: str | None = None


def excerpt_starts(piece: Piece, bars: int) -> list[int]:
    """First bars of the piece's ``bars``-bar excerpts: back to back from the first bar of its
    form (after a solo's pickup bars, when the source marks sections; else bar 0), each holding
    at least MIN_EXCERPT_NOTES notes."""
    first = min((s for s, _, _ in piece.sections), default=0) if piece.sections else 0
    bt = piece.bar_ticks
    starts = []
    for b in range(first, piece.bars - bars + 1, bars):
        lo, hi = b * bt, (b + bars) * bt
        if sum(lo <= s < hi for s, _, _ in piece.notes) >= MIN_EXCERPT_NOTES:
            starts.append(b)
    return starts


def spread(available: int, take: int) -> list[int]:
    """``take`` of ``available`` indices spread evenly (the middle of each equal share), so a
    long solo gives its opening, middle and last choruses rather than only its first ones."""
    return [int((i + 0.5) * available / take) for i in range(take)] if take else []


def _quotas(sizes: Sequence[int], n: int) -> list[int]:
    """Round robin: every piece's first excerpt before any piece's second, until ``n``."""
    quota = [0] * len(sizes)
    left = n
    while left > 0:
        grew = False
        for i, size in enumerate(sizes):
            if left and quota[i] < size:
                quota[i] += 1
                left -= 1
                grew = True
        if not grew:
            break
    return quota


def arrange_excerpt(piece: Piece, start_bar: int, bars: int, rng: np.random.Generator,
                    tempo: float) -> Score:
    """Bars ``start_bar`` .. + ``bars`` of a corpus melody, arranged as a generated one is."""
    bt = piece.bar_ticks
    lo, hi = start_bar * bt, (start_bar + bars) * bt
    melody = [Note(s - lo, min(d, hi - s), p, 88) for s, d, p in piece.notes if lo <= s < hi]
    plan: list[tuple[int, Chord]] = []
    for t, name in piece.chords:  # the chord sounding at the excerpt's start, then changes
        if name == "NC":
            continue
        if t <= lo:
            plan = [(0, Chord.parse(name))]
        elif t < hi:
            plan.append((t - lo, Chord.parse(name)))
    spec = STYLES[piece.style]
    return arrange(melody, plan, spec=spec, meter=piece.meter, bars=bars, tempo=tempo,
                   key=piece.key, rng=rng)


def real_reference(pieces: Sequence[Piece], style: str, n: int, bars: int,
                   seed: int = 0) -> Reference:
    """Up to ``n`` ``bars``-bar excerpts of the style's reference pieces (``is_reference``).

    Pieces take turns (round robin, in a seeded shuffle), and each piece's excerpts are spread
    evenly over it. Training pieces are used only if the reference pieces run out. Each clip
    pairs the arranged excerpt (the band metrics) with the excerpt's own line as the data has
    it (the lead-line metrics). Tempos are drawn from the style's range, as ``resolve`` does.
    """
    ref = Reference()
    if style not in STYLES:
        raise UserError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
    spec = STYLES[style]
    meters = {m for m, _ in spec.meters}
    mine = sorted((p for p in pieces if p.style == style), key=lambda p: p.source)
    if not mine:
        ref.reason = f"the corpus has no {style} pieces"
        return ref
    held: list[tuple[Piece, list[int]]] = []
    train: list[tuple[Piece, list[int]]] = []
    for p in mine:
        if p.meter not in meters or not roll_holds(p.meter):
            ref.skipped_pieces += 1
            continue
        starts = excerpt_starts(p, bars)
        if not starts:
            ref.short_pieces += 1
            continue
        if is_reference(p):
            held.append((p, starts))
        elif is_training(p):
            train.append((p, starts))
    ref.available_heldout, ref.available_training = len(held), len(train)
    rng = np.random.default_rng([seed, STYLE_NAMES.index(style), 1])
    lo, hi = spec.tempo_range
    for group, is_held in ((held, True), (train, False)):
        left = n - len(ref.clips)
        if left <= 0:
            break
        order = [group[i] for i in rng.permutation(len(group))]
        quota = _quotas([len(starts) for _, starts in order], left)
        for (p, starts), take in zip(order, quota, strict=True):
            for i in spread(len(starts), take):
                _add(ref, p, starts[i], bars, rng, seed, float(int(lo + rng.random() *
                                                                   (hi - lo + 1))), is_held)
    if not ref.clips:
        ref.reason = (f"no {style} piece has {bars} bars with notes in a meter the style uses "
                      f"({', '.join(f'{a}/{b}' for a, b in sorted(meters))})")
    return ref


def _add(ref: Reference, p: Piece, start: int, bars: int, rng: np.random.Generator, seed: int,
         tempo: float, held: bool) -> None:
    arr_rng = np.random.default_rng([seed, STYLE_NAMES.index(p.style), 2, len(ref.clips)])
    try:
        score = arrange_excerpt(p, start, bars, arr_rng, tempo)
        line = line_from_piece(p, start, bars)
    except ValueError as e:  # an unparsable chord name in a user's folder
        log.debug("skipping %s: %s", p.source, e)
        return
    clip = clip_from_score(score, p.style, f"{p.source} bars {start + 1}-{start + bars}",
                           line=line, swing_known=source_kind(p.source) not in NOTATED_SWUNG,
                           group=p.source)
    if clip is None:
        return
    if ref.example is None:
        ref.example = score
    ref.clips.append(clip)
    if p.source not in ref.per_piece:
        if held:
            ref.heldout_pieces += 1
            kind = source_kind(p.source) or "music21"
            ref.sources[kind] = ref.sources.get(kind, 0) + 1
        else:
            ref.training_pieces += 1
    ref.per_piece[p.source] = ref.per_piece.get(p.source, 0) + 1
    if held:
        ref.heldout_clips += 1
