"""Harmony check: the chord plans Cadenza writes against the changes of held-out real pieces.

Per style, the share of chord changes in each harmonic role (relative to the piece's key), the
changes per bar and the distinct chords per 8 bars, for the real references (held-out solos'
annotated changes; for ragtime the chords read from both hands of the evaluation-only Joplin
rags), the chord model's plans and the rule-based plans, over the same keys.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cadenza.evaluation.references import is_reference, nc_trained
from cadenza.harmony import plan_chords
from cadenza.models.training.style_corpus import source_kind
from cadenza.music.form import BLUES_CHORUS, form_for
from cadenza.music.score import Meter
from cadenza.music.score import bar_ticks as bar_ticks_of
from cadenza.music.theory import Chord, Key, is_dominant_seventh

log = logging.getLogger(__name__)

# the roles, in the report's order; a change may have several (I7 is "tonic" and "secondary
# dominant", G13 in C "dominant" and "extended")
ROLES = ("tonic", "dominant", "secondary dominant", "minor", "diminished", "suspended",
         "extended")
# the meter each style's plans are measured in (its most common one)
PLAN_METERS: dict[str, tuple[int, int]] = {"ragtime": (2, 4)}
# and the plans' length where it is not the measurement's: a blues is 12-bar choruses
PLAN_BARS: dict[str, int] = {"blues": 24}
# dominant sevenths that lead to a chord of the key other than I (V of IV, II, V, VI, III in
# major; of iv, V, VI, III in minor), and the major triads that do so as triads (a major II, III,
# VI or VII is no chord of the major key). A blues' IV7 and a tritone substitute are neither
_SECONDARY_SEVENTHS = {"major": frozenset({0, 2, 4, 9, 11}), "minor": frozenset({0, 2, 3, 10})}
_SECONDARY_TRIADS = {"major": frozenset({2, 4, 9, 11}), "minor": frozenset({0, 2})}
# a 12-bar blues chorus's landmarks: (bar from the chorus start, degrees of the chord on its
# downbeat): I in bar 1, IV in 5, I in 7, V (or the ii before it) in 9, I in 11
BLUES_LANDMARKS = ((0, frozenset({0})), (4, frozenset({5})), (6, frozenset({0})),
                   (8, frozenset({7, 2})), (10, frozenset({0})))


def _degree(chord: Chord, key: Key) -> int:
    """Semitones from the key's tonic up to the chord's root."""
    return (chord.root - key.tonic) % 12


def roles(chord: Chord, key: Key) -> set[str]:
    """The harmonic roles of ``chord`` in ``key`` (see ROLES)."""
    iv = set(chord.intervals)
    degree = _degree(chord, key)
    dominant_seventh = is_dominant_seventh(chord.quality)
    out: set[str] = set()
    if degree == 0:
        out.add("tonic")
    if degree == 7 and 4 in iv:
        out.add("dominant")
    if (dominant_seventh and degree in _SECONDARY_SEVENTHS[key.mode]) or (
            chord.quality == "maj" and degree in _SECONDARY_TRIADS[key.mode]):
        out.add("secondary dominant")
    if 3 in iv and 6 not in iv:
        out.add("minor")
    if 3 in iv and 6 in iv:
        out.add("diminished")
    if "sus" in chord.quality:
        out.add("suspended")
    if any(i > 11 for i in iv):
        out.add("extended")
    return out


def profile(progressions: Sequence[tuple[Sequence[tuple[int, Chord | None]], Key, int, int]]
            ) -> dict[str, float]:
    """Role shares over every change of ``progressions`` ((changes, key, bars, bar ticks)),
    changes per bar and distinct chords (relative to the key) per whole 8 bars; NaN when
    there is nothing to count."""
    counts = dict.fromkeys(ROLES, 0)
    changes = bars = 0
    distinct: list[float] = []
    for plan, key, n_bars, bar_ticks in progressions:
        named = [(t, c) for t, c in plan if c is not None and t < n_bars * bar_ticks]
        changes += len(named)
        bars += n_bars
        for _, c in named:
            for r in roles(c, key):
                counts[r] += 1
        for start in range(0, n_bars - 7, 8):
            window = {(_degree(c, key), c.quality) for t, c in named
                      if start * bar_ticks <= t < (start + 8) * bar_ticks}
            distinct.append(len(window))
    out = {r: counts[r] / changes if changes else math.nan for r in ROLES}
    out["changes per bar"] = changes / bars if bars else math.nan
    out["chords per 8 bars"] = float(np.mean(distinct)) if distinct else math.nan
    out["progressions"] = len(progressions)
    return out


def blues_form(progressions: Sequence[tuple[Sequence[tuple[int, Chord | None]], Key, int, int]]
               ) -> float:
    """The share of whole 12-bar choruses (BLUES_CHORUS, from bar 1 on) whose downbeats have
    at least 4 of the 5 BLUES_LANDMARKS; NaN when no progression holds 12 bars. Of the 161
    blues charts (the chord model trains on 154 of them), 122 (0.76)."""
    hits = choruses = 0
    for plan, key, n_bars, bar_ticks in progressions:
        named = sorted(((t, c) for t, c in plan if c is not None), key=lambda tc: tc[0])
        for start in range(0, n_bars - BLUES_CHORUS + 1, BLUES_CHORUS):
            landmarks = 0
            for bar, degrees in BLUES_LANDMARKS:
                tick = (start + bar) * bar_ticks
                sounding = [c for t, c in named if t <= tick]
                landmarks += bool(sounding) and _degree(sounding[-1], key) in degrees
            hits += landmarks >= 4
            choruses += 1
    return hits / choruses if choruses else math.nan


def measure_harmony(pieces: Sequence[Any], styles: Sequence[str], chord_model: Any,
                    seed: int, *, bars: int = 32, plans: int = 64,
                    note: Callable[[str], None] = log.info) -> dict[str, dict]:
    """Per style the chord model learned (of ``styles``): the profiles of the real references
    (``pieces``: the held-out ones in the plans' meter), of the model's plans and of the
    rule-based plans, ``plans`` of each, ``bars`` bars (PLAN_BARS where a style has its own:
    a blues 24, two 12-bar choruses) in the style's usual form, in the references' keys in
    turn. A chord model that learned from the Joplin edition
    (``--include-nc``) is measured against none of its pieces."""
    from cadenza.models.chord_model import PlanRequest, sample_plans

    out: dict[str, dict] = {}
    if chord_model is None:
        return out
    learned_nc = nc_trained(chord_model.meta)
    for style in (s for s in styles if s in chord_model.styles):
        meter = Meter(*PLAN_METERS.get(style, (4, 4)))
        refs = [p for p in pieces if p.style == style and is_reference(p)
                and p.meter == meter
                and not (learned_nc and source_kind(p.source) == "joplin-nc")]
        if not refs:
            continue
        ticks = bar_ticks_of(meter)
        n_bars = PLAN_BARS.get(style, bars)
        sections = form_for(style, n_bars)
        reqs = [PlanRequest(style, refs[i % len(refs)].key, meter, n_bars, seed * 1000 + i,
                            sections) for i in range(plans)]
        note(f"harmony: {style}, {len(reqs)} chord plans against {len(refs)} real pieces")
        learned = sample_plans(chord_model, reqs)
        rng = np.random.default_rng(seed)
        rules = [plan_chords(style, r.key, n_bars, meter, rng, sections) for r in reqs]
        sources = {
            "real": [(p.chord_changes(), p.key, p.bars, p.bar_ticks) for p in refs],
            "chord model": [(pl, r.key, n_bars, ticks)
                            for pl, r in zip(learned, reqs, strict=True)],
            "rule-based": [(pl, r.key, n_bars, ticks) for pl, r in zip(rules, reqs, strict=True)],
        }
        out[style] = {source: profile(progs) for source, progs in sources.items()}
        if style == "blues":
            for source, progs in sources.items():
                out[style][source]["12-bar blues"] = blues_form(progs)
        out[style].update({"meter": str(meter), "bars": n_bars})
    return out
