"""Generated clips: what each model composes per style, from seeds paired across models
(the real clips they are compared with come from ``cadenza.evaluation.references``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cadenza.errors import UserError
from cadenza.evaluation.clips import Clip, clip_from_score, roll_holds
from cadenza.music.score import Score
from cadenza.service import ComposeRequest, Resolved

log = logging.getLogger(__name__)

SEED_STRIDE = 1_000_003  # clip i of a run with seed s uses seed s * SEED_STRIDE + i


# ---------------------------------------------------------------- generated clips


@dataclass
class Generated:
    clips: list[Clip] = field(default_factory=list)
    skipped_seeds: int = 0  # seeds whose drawn meter the roll cannot hold (9/8)
    error: str | None = None
    example: Score | None = None  # the first clip's score, for the listening page
    example_request: Resolved | None = None  # ... and what reproduces it


def generate(composer, model: str, style: str, n: int, bars: int, seed: int,  # type: ignore[no-untyped-def]
             ) -> Generated:
    """``n`` scored clips of one model and style from seeds ``seed * SEED_STRIDE + i``, through
    ``Composer.compose`` (what a member would get, arrangement included).

    Seeds whose drawn meter does not fit the roll are skipped for every model alike, so the
    sets stay paired. A model that cannot play the style gives no clips and an error note.
    """
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
        if out.example is None:
            out.example, out.example_request = score, r
        out.clips.append(clip)
    return out
