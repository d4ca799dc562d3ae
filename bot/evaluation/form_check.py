"""Form in the melody: whether the bars of a section that comes back resemble its earlier
statement more than they resemble the bars of the other sections, measured on long clips in
each style's long form (the report's 8-bar clips are too short to hold one: jazz is AB there)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from cadenza.errors import UserError
from cadenza.evaluation.data import SEED_STRIDE
from cadenza.models.zoo.lead_metrics import line_from_score
from cadenza.music.form import Section, bar_onsets, echo_bars
from cadenza.service import ComposeRequest

log = logging.getLogger(__name__)

# per style: the form asked for and the bars it spans (sections of the style's usual length)
FORM_CLIPS: dict[str, tuple[str, int]] = {
    "jazz": ("aaba", 32), "blues": ("aab", 12), "folk": ("aabb", 32), "celtic": ("aabb", 32),
    "classical": ("abac", 16), "ragtime": ("aabb", 32),
}
FIGURES = ("same", "other", "same_rhythm", "other_rhythm", "exact", "varied")


def _jaccard(a: frozenset, b: frozenset) -> float | None:
    """Shared share of two bars' onset sets; None when both are empty (nothing to compare)."""
    if not a and not b:
        return None
    return len(a & b) / len(a | b)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def return_similarity(notes: Sequence[tuple[int, int, int]], bar_ticks: int,
                      sections: Sequence[Section], bars: int) -> dict[str, float]:
    """Per clip, over the bars of returning sections: mean Jaccard similarity of their
    (position, pitch) onsets with their echo (the same bar of the letter's first statement,
    ``cadenza.music.form.echo_bars``) as ``same``, and with the bars at the same place in
    every section of another letter as ``other``; the ``_rhythm`` pair compares onset
    positions only; ``exact`` is the share of those bars (with notes) equal to their echo, and
    ``varied`` the mean ``same`` of the others (a return that changes its first statement: near
    1, a note or two changed; 0, nothing of it left; NaN when every return is a copy)."""
    onsets = bar_onsets(notes, bar_ticks, bars)
    rhythm = [frozenset(pos for pos, _ in bar) for bar in onsets]
    echo = echo_bars(sections, bars)
    where: dict[int, tuple[int, str]] = {}  # bar -> (offset in its section, letter)
    for start, length, letter in sections:
        for k in range(length):
            where[start + k] = (k, letter)
    got: dict[str, list[float]] = {f: [] for f in FIGURES}
    for b in range(bars):
        if not echo[b] or b not in where:
            continue
        k, letter = where[b]
        others = [s + k for s, length, lt in sections if lt != letter and k < length]
        for content, tag in ((onsets, ""), (rhythm, "_rhythm")):
            same = _jaccard(content[b], content[b - echo[b]])
            if same is not None:
                got["same" + tag].append(same)
            other = [j for o in others if (j := _jaccard(content[b], content[o])) is not None]
            if other:
                got["other" + tag].append(_mean(other))
        if onsets[b]:
            exact = onsets[b] == onsets[b - echo[b]]
            got["exact"].append(float(exact))
            if not exact:
                got["varied"].append(_jaccard(onsets[b], onsets[b - echo[b]]) or 0.0)
    return {f: _mean(v) for f, v in got.items()}


def measure_form(composer, model: str, style: str, n: int, seed: int,  # type: ignore[no-untyped-def]
                 ) -> dict[str, float | int | str]:
    """``n`` clips of ``model`` in ``style``'s long form (FORM_CLIPS), through
    ``Composer.compose``; the figures of ``return_similarity`` averaged over the clips, with
    the form, the bars and the clip count. A model that cannot play the style gives an error."""
    form, bars = FORM_CLIPS[style]
    per_clip: list[dict[str, float]] = []
    for i in range(n):
        r = composer.resolve(ComposeRequest(style=style, bars=bars, seed=seed * SEED_STRIDE + i,
                                            model=model, form=form))
        try:
            score = composer.compose(r).score
        except UserError as e:
            return {"form": form, "bars": bars, "clips": 0, "error": str(e)}
        line = line_from_score(score)
        per_clip.append(return_similarity(line.notes, line.bar_ticks, r.sections, bars))
    out: dict[str, float | int | str] = {"form": form, "bars": bars, "clips": len(per_clip)}
    for f in FIGURES:
        vals = [c[f] for c in per_clip if math.isfinite(c[f])]
        out[f] = _mean(vals)
    return out


def real_form(pieces: Sequence, style: str, limit: int = 60) -> dict[str, float | int]:
    """``return_similarity`` over real pieces of ``style`` whose source marks their sections
    (the WJD solos' choruses, ...): sections inferred from the melody's own repeats would find
    the returns they were inferred from. The pieces' count is 0 when no source marks any."""
    marked = [p for p in pieces if p.style == style and p.sections][:limit]
    per_piece = [return_similarity(p.notes, p.bar_ticks, p.sections, p.bars) for p in marked]
    out: dict[str, float | int] = {"pieces": len(per_piece)}
    for f in FIGURES:
        out[f] = _mean([c[f] for c in per_piece if math.isfinite(c[f])])
    return out
