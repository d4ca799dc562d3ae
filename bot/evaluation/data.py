"""The two clip sets compared: arranged excerpts of real corpus pieces, and generated clips."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.arrange import arrange
from bot.errors import UserError
from bot.evaluation.clips import Clip, clip_from_score, roll_holds
from bot.styles import STYLE_NAMES, STYLES
from models.corpus import Piece
from models.dataset import is_heldout
from models.score import Note, Score
from models.theory import Chord

log = logging.getLogger(__name__)

SEED_STRIDE = 1_000_003  # clip i of a run with seed s uses seed s * SEED_STRIDE + i


# ---------------------------------------------------------------- generated clips


@dataclass
class Generated:
    clips: list[Clip] = field(default_factory=list)
    skipped_seeds: int = 0  # seeds whose drawn meter the roll cannot hold (9/8)
    error: str | None = None


def generate(composer, model: str, style: str, n: int, bars: int, seed: int,  # type: ignore[no-untyped-def]
             ) -> Generated:
    """``n`` scored clips of one model and style from seeds ``seed * SEED_STRIDE + i``, through
    ``Composer.compose`` (what a member would get, arrangement included).

    Seeds whose drawn meter does not fit the roll are skipped for every model alike, so the
    sets stay paired. A model that cannot play the style gives no clips and an error note.
    """
    from bot.service import ComposeRequest

    out = Generated()
    i = 0
    while len(out.clips) < n and i < 4 * n + 8:
        s = seed * SEED_STRIDE + i
        i += 1
        r = composer.resolve(ComposeRequest(style=style, bars=bars, seed=s, model=model))
        if not roll_holds(r.meter):
            out.skipped_seeds += 1
            continue
        try:
            score = composer.compose(r).score
        except UserError as e:
            out.error = str(e)
            break
        clip = clip_from_score(score, style, f"seed {s}")
        if clip is None:
            out.skipped_seeds += 1
            continue
        out.clips.append(clip)
    return out


# ---------------------------------------------------------------- real reference


@dataclass
class Reference:
    clips: list[Clip] = field(default_factory=list)
    heldout_pieces: int = 0
    training_pieces: int = 0
    heldout_clips: int = 0
    skipped_pieces: int = 0  # meter too long for the roll, or shorter than one excerpt
    available_heldout: int = 0
    available_training: int = 0
    reason: str | None = None


def _excerpt(piece: Piece, start_bar: int, bars: int, rng: np.random.Generator,
             tempo: float) -> Score:
    """Bars ``start_bar`` .. + ``bars`` of a corpus melody, arranged as a generated one is."""
    bt = piece.bar_ticks
    lo, hi = start_bar * bt, (start_bar + bars) * bt
    melody = [Note(s - lo, min(d, hi - s), p, 88) for s, d, p in piece.notes if lo <= s < hi]
    plan: list[tuple[int, Chord]] = []
    for t, name in piece.chords:  # the chord sounding at the excerpt's start, then changes
        if t <= lo:
            plan = [(0, Chord.parse(name))]
        elif t < hi:
            plan.append((t - lo, Chord.parse(name)))
    spec = STYLES[piece.style]
    return arrange(melody, plan, spec=spec, meter=piece.meter, bars=bars, tempo=tempo,
                   key=piece.key, rng=rng)


def real_reference(pieces: Sequence[Piece], style: str, n: int, bars: int,
                   seed: int = 0) -> Reference:
    """Up to ``n`` arranged ``bars``-bar excerpts of the style's corpus pieces.

    Held-out pieces come first, round-robin (every piece's first excerpt before any piece's
    second), then training pieces only if the held-out ones run out; the order within each
    group is a seeded shuffle. Tempos are drawn from the style's range, as ``resolve`` does.
    """
    ref = Reference()
    if style not in STYLES:
        raise UserError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
    mine = sorted((p for p in pieces if p.style == style), key=lambda p: p.source)
    if not mine:
        ref.reason = f"the corpus has no {style} pieces"
        return ref
    usable = []
    for p in mine:
        if not roll_holds(p.meter) or p.bars < bars:
            ref.skipped_pieces += 1
            continue
        usable.append(p)
    held = [p for p in usable if is_heldout(p.source)]
    train = [p for p in usable if not is_heldout(p.source)]
    ref.available_heldout, ref.available_training = len(held), len(train)
    rng = np.random.default_rng([seed, STYLE_NAMES.index(style), 1])
    lo, hi = STYLES[style].tempo_range
    used: set[str] = set()
    for group in (held, train):
        order = [group[i] for i in rng.permutation(len(group))]
        for k in range(max((p.bars // bars for p in order), default=0)):
            if len(ref.clips) >= n:
                break
            for p in order:
                if len(ref.clips) >= n:
                    break
                if k >= p.bars // bars:
                    continue
                tempo = float(int(lo + rng.random() * (hi - lo + 1)))
                arr_rng = np.random.default_rng([seed, STYLE_NAMES.index(style), 2,
                                                 len(ref.clips)])
                try:
                    score = _excerpt(p, k * bars, bars, arr_rng, tempo)
                except ValueError as e:  # an unparsable chord name in a user's folder
                    log.debug("skipping %s: %s", p.source, e)
                    continue
                clip = clip_from_score(score, style, f"{p.source} bars {k * bars + 1}-"
                                       f"{(k + 1) * bars}")
                if clip is None:
                    continue
                ref.clips.append(clip)
                used.add(p.source)
                if group is held:
                    ref.heldout_clips += 1
    ref.heldout_pieces = len(used & {p.source for p in held})
    ref.training_pieces = len(used) - ref.heldout_pieces
    if not ref.clips:
        ref.reason = (f"no {style} piece is {bars}+ bars long in a meter the piano roll holds")
    return ref
