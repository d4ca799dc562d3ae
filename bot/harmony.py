"""Chord plans per style: ii-V-I jazz, 12-bar blues, functional chorales, folk, celtic, rag.

A planner returns chord changes as ``(tick, Chord)`` on the GRID (12 ticks per quarter). Chords
keep their extended qualities (9ths, 13ths) for the arranger; the models see them reduced.
All randomness comes from the numpy Generator passed in, so a seed fixes the harmony.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cadenza.music.form import Section
from cadenza.music.score import GRID, Meter, bar_ticks
from cadenza.music.theory import Chord, Key

Plan = list[tuple[int, Chord]]
# a bar of a template: list of (fraction of the bar, semitones above tonic, quality)
BarT = list[tuple[float, int, str]]


def _realise(templates: list[BarT], key: Key, meter: Meter) -> Plan:
    bt = bar_ticks(meter)
    beat = GRID if meter.den == 4 else GRID * 3 // 2
    plan: Plan = []
    for b, bar in enumerate(templates):
        for frac, semis, q in bar:
            # snap the change to a beat so chords land where the comping plays
            tick = round(frac * bt / beat) * beat
            plan.append((b * bt + min(tick, bt - beat), Chord((key.tonic + semis) % 12, q)))
    return _dedupe(plan)


def _dedupe(plan: Plan) -> Plan:
    out: Plan = []
    for tick, chord in sorted(plan, key=lambda p: p[0]):
        if out and out[-1][0] == tick:
            out[-1] = (tick, chord)
        elif not out or out[-1][1] != chord:
            out.append((tick, chord))
    return out


def _choice(rng: np.random.Generator, items: list, weights: list[float] | None = None):  # type: ignore[no-untyped-def]
    p = None if weights is None else np.asarray(weights, dtype=float) / sum(weights)
    return items[int(rng.choice(len(items), p=p))]


# ------------------------------------------------------------------ jazz


def plan_jazz(key: Key, bars: int, meter: Meter, rng: np.random.Generator) -> Plan:
    """Phrases of ii-V-I cells, turnarounds, tritone subs and backdoor moves; ends on I."""
    minor = key.mode == "minor"
    tonic_q = _choice(rng, ["m9", "m6", "m7"]) if minor else _choice(rng, ["maj7", "6", "maj9"])
    ii = (2, "m7b5") if minor else (2, _choice(rng, ["m7", "m9"]))
    v_q = "7#9" if minor else _choice(rng, ["7", "9", "13"])
    dom = lambda: _choice(rng, ["7", "9", "13"])  # noqa: E731 - tiny local helper
    if minor:
        cells: list[tuple[list[BarT], float]] = [
            # iiø | V7#9 | i | i
            ([[(0, *ii)], [(0, 7, v_q)], [(0, 0, tonic_q)], [(0, 0, tonic_q)]], 3.0),
            # i | iv | bVI7 | V7
            ([[(0, 0, tonic_q)], [(0, 5, "m7")], [(0, 8, "7")], [(0, 7, v_q)]], 2.0),
            # i bVI7 | iiø V (two bars, repeated)
            ([[(0, 0, tonic_q), (0.5, 8, "7")], [(0, *ii), (0.5, 7, v_q)]] * 2, 1.5),
            # iv7 | bVII7 | bIIImaj7 | bVImaj7 (relative-major detour)
            ([[(0, 5, "m7")], [(0, 10, "7")], [(0, 3, "maj7")], [(0, 8, "maj7")]], 1.0),
        ]
    else:
        cells = [
            # ii | V | I | I
            ([[(0, *ii)], [(0, 7, v_q)], [(0, 0, tonic_q)], [(0, 0, tonic_q)]], 3.0),
            # I vi | ii V  (two bars, repeated)
            ([[(0, 0, tonic_q), (0.5, 9, dom())], [(0, *ii), (0.5, 7, v_q)]] * 2, 2.0),
            # iii VI | ii V | I | I
            ([[(0, 4, "m7"), (0.5, 9, dom())], [(0, *ii), (0.5, 7, v_q)], [(0, 0, tonic_q)],
              [(0, 0, tonic_q)]], 1.5),
            # ii | bII7 (tritone sub) | I | I
            ([[(0, *ii)], [(0, 1, "7")], [(0, 0, tonic_q)], [(0, 0, tonic_q)]], 1.0),
            # IV | iv7 bVII7 (backdoor) | I | I
            ([[(0, 5, "maj7")], [(0, 5, "m7"), (0.5, 10, "7")], [(0, 0, tonic_q)],
              [(0, 0, tonic_q)]], 1.0),
            # I | ii/IV V/IV | IV | iv
            ([[(0, 0, tonic_q)], [(0, 7, "m7"), (0.5, 0, dom())], [(0, 5, "maj7")],
              [(0, 5, "m6")]], 0.8),
        ]
    items = [c for c, w in cells if w > 0]
    weights = [w for _, w in cells if w > 0]
    bars_t: list[BarT] = []
    while len(bars_t) < bars:
        bars_t += _choice(rng, items, weights)
    bars_t = bars_t[:bars]
    # cadence: the last two bars resolve ii-V -> I (or just I for a 1-bar clip)
    if bars >= 3:
        bars_t[-2] = [(0, *ii), (0.5, 7, v_q)]
    bars_t[-1] = [(0, 0, tonic_q)]
    return _realise(bars_t, key, meter)


# ------------------------------------------------------------------ blues

_TWELVE_BAR = {
    "standard": [0, 0, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7],
    "quick_change": [0, 5, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7],
    "ii_v": [0, 5, 0, 0, 5, 5, 0, 0, 2, 7, 0, 7],
}


def plan_blues(key: Key, bars: int, meter: Meter, rng: np.random.Generator) -> Plan:
    """12-bar form (choruses repeat; shorter clips take the form's start) ending on I."""
    minor = key.mode == "minor"
    form = _TWELVE_BAR[_choice(rng, list(_TWELVE_BAR), [3, 2, 1])]
    if bars == 8:
        form = [0, 5, 0, 0, 7, 5, 0, 7]  # 8-bar blues
    qualities = {0: "m7" if minor else _choice(rng, ["7", "9"]), 5: "m7" if minor else "9",
                 7: "7#9" if minor else _choice(rng, ["7", "9", "13"]), 2: "m7"}
    bars_t: list[BarT] = []
    for b in range(bars):
        semis = form[b % len(form)]
        bars_t.append([(0, semis, qualities[semis])])
    # the form's turnaround (V7 in bar 12) leads into the next chorus; the clip ends on I
    bars_t[-1] = [(0, 0, qualities[0])]
    return _realise(bars_t, key, meter)


# ------------------------------------------------------------------ classical chorale

# functional harmony as a Markov chain over scale degrees (major); quality from the key
_FUNC_NEXT = {
    1: ([4, 2, 6, 5, 3], [3, 2, 2, 3, 0.5]),
    2: ([5, 7], [5, 1]),
    3: ([6, 4], [3, 2]),
    4: ([5, 2, 1, 7], [4, 2, 1.5, 1]),
    5: ([1, 6, 4], [6, 1.5, 0.5]),
    6: ([2, 4, 5], [3, 3, 1]),
    7: ([1], [1]),
}


def _degree_chord(key: Key, degree: int, seventh: bool = False) -> tuple[int, str]:
    semis = (0, 2, 4, 5, 7, 9, 11) if key.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
    s = semis[degree - 1]
    if key.mode == "major":
        q = {1: "maj", 2: "min", 3: "min", 4: "maj", 5: "maj", 6: "min", 7: "dim"}[degree]
    else:
        q = {1: "min", 2: "dim", 3: "maj", 4: "min", 5: "maj", 6: "maj", 7: "dim"}[degree]
        if degree == 7:
            s = 11  # raised leading tone in minor
    if seventh and degree == 5:
        q = "7"
    if seventh and degree == 2:
        q = "m7" if key.mode == "major" else "m7b5"
    return s, q


def plan_classical(key: Key, bars: int, meter: Meter, rng: np.random.Generator) -> Plan:
    """Two chords a bar through T-S-D-T functions; half cadence mid-phrase, V7-I at the end."""
    per_bar = 2 if meter.num % 2 == 0 else 1 if meter == Meter(3, 4) else 2
    slots = (bars - 1) * per_bar + 1  # the final tonic takes the whole last bar
    degrees: list[int] = [1]
    while len(degrees) < slots:
        nxt, w = _FUNC_NEXT[degrees[-1]]
        degrees.append(int(_choice(rng, nxt, w)))
    # cadences: each 4-bar phrase ends on V (half) or I (authentic); the piece ends V7-I
    for end in range(4 * per_bar, slots, 4 * per_bar):
        degrees[end - 1] = 5 if (end // (4 * per_bar)) % 2 else 1
        if degrees[end - 1] == 1:
            degrees[end - 2] = 5
    if slots >= 2:
        degrees[-2] = 5
    degrees[-1] = 1
    bars_t: list[BarT] = [[] for _ in range(bars)]
    for i, d in enumerate(degrees):
        is_final_v = i == len(degrees) - 2 or (i + 1 < len(degrees) and degrees[i + 1] == 1
                                              and d == 5 and rng.random() < 0.5)
        s, q = _degree_chord(key, d, seventh=is_final_v or (d == 2 and rng.random() < 0.3))
        bars_t[i // per_bar].append((i % per_bar / per_bar, s, q))
    return _realise(bars_t, key, meter)


# ------------------------------------------------------------------ folk and celtic


def plan_folk(key: Key, bars: int, meter: Meter, rng: np.random.Generator) -> Plan:
    """I-IV-V song harmony, a chord a bar (two in some 4/4 bars), phrase cadences."""
    if key.mode == "major":
        pool = [(0, "maj"), (5, "maj"), (7, "maj"), (9, "min"), (2, "min"), (7, "7")]
        weights = [4, 3, 3, 1.5, 1, 1.5]
        tonic, dom = (0, "maj"), (7, "7")
    else:
        pool = [(0, "min"), (5, "min"), (7, "maj"), (3, "maj"), (10, "maj"), (8, "maj")]
        weights = [4, 2.5, 3, 1.5, 1.5, 1]
        tonic, dom = (0, "min"), (7, "7")
    bars_t: list[BarT] = []
    prev = tonic
    for b in range(bars):
        if b == 0 or b == bars - 1:
            chord = tonic
        elif b % 4 == 3:
            chord = dom if (b // 4) % 2 == 0 else tonic
        else:
            chord = prev
            while chord == prev:
                chord = _choice(rng, pool, weights)
        bar: BarT = [(0, *chord)]
        if meter == Meter(4, 4) and b not in (0, bars - 1) and rng.random() < 0.25:
            bar.append((0.5, *dom))
        bars_t.append(bar)
        prev = chord
    if bars >= 2:
        bars_t[-2] = [(0, *dom)]
    return _realise(bars_t, key, meter)


def plan_celtic(key: Key, bars: int, meter: Meter, rng: np.random.Generator) -> Plan:
    """Modal two-bar patterns (I-bVII mixolydian, i-bVII dorian) in 8-bar strains."""
    if key.mode == "major":
        patterns = [[(0, "maj"), (10, "maj")], [(0, "maj"), (5, "maj")], [(0, "maj"), (7, "maj")],
                    [(9, "min"), (7, "maj")], [(5, "maj"), (7, "maj")]]
        tonic, dom = (0, "maj"), (7, "maj")
    else:
        patterns = [[(0, "min"), (10, "maj")], [(0, "min"), (3, "maj")], [(0, "min"), (7, "min")],
                    [(10, "maj"), (5, "maj")], [(8, "maj"), (10, "maj")]]
        tonic, dom = (0, "min"), (10, "maj")
    bars_t: list[BarT] = []
    strain = [_choice(rng, patterns) for _ in range(2)]
    while len(bars_t) < bars:
        for pat in (strain[0], strain[1], strain[0]):
            bars_t += [[(0, *c)] for c in pat]
        bars_t += [[(0, *dom)], [(0, *tonic)]]
        strain = [_choice(rng, patterns) for _ in range(2)]
    bars_t = bars_t[:bars]
    bars_t[-1] = [(0, *tonic)]
    return _realise(bars_t, key, meter)


# ------------------------------------------------------------------ ragtime


def plan_ragtime(key: Key, bars: int, meter: Meter, rng: np.random.Generator) -> Plan:
    """Strains of secondary dominants around the circle (VI7-II7-V7-I) and diminished passing."""
    strains: list[list[BarT]] = [
        [[(0, 0, "maj")], [(0, 0, "maj")], [(0, 9, "7")], [(0, 9, "7")],
         [(0, 2, "7")], [(0, 7, "7")], [(0, 0, "maj")], [(0, 7, "7")]],
        [[(0, 0, "maj")], [(0, 1, "dim7")], [(0, 2, "m7")], [(0, 7, "7")],
         [(0, 0, "maj")], [(0, 4, "7")], [(0, 9, "min")], [(0, 2, "7"), (0.5, 7, "7")]],
        [[(0, 5, "maj")], [(0, 6, "dim7")], [(0, 0, "maj")], [(0, 9, "7")],
         [(0, 2, "7")], [(0, 7, "7")], [(0, 0, "maj")], [(0, 0, "maj")]],
    ]
    if key.mode == "minor":
        strains = [[[(0, 0, "min")], [(0, 0, "min")], [(0, 5, "min")], [(0, 7, "7")],
                    [(0, 0, "min")], [(0, 8, "7")], [(0, 2, "m7b5"), (0.5, 7, "7")],
                    [(0, 0, "min")]]]
    bars_t: list[BarT] = []
    while len(bars_t) < bars:
        bars_t += _choice(rng, strains)
    bars_t = bars_t[:bars]
    if bars >= 2:
        bars_t[-2] = [(0, 7, "7")]
    bars_t[-1] = [(0, 0, "min" if key.mode == "minor" else "maj")]
    return _realise(bars_t, key, meter)


PLANNERS: dict[str, Callable[[Key, int, Meter, np.random.Generator], Plan]] = {
    "jazz": plan_jazz,
    "blues": plan_blues,
    "classical": plan_classical,
    "folk": plan_folk,
    "celtic": plan_celtic,
    "ragtime": plan_ragtime,
}


def plan_chords(
    style: str, key: Key, bars: int, meter: Meter, rng: np.random.Generator,
    sections: Sequence[Section] = (),
) -> Plan:
    """The style's rule-based plan. With a form, each new section letter gets a plan of its
    own (ending in its cadence) and a letter that comes back repeats its changes, so the
    melody can bring its phrase back over them; the 12-bar blues is a form of its own."""
    planner = PLANNERS[style]
    if len(sections) <= 1 or style == "blues":
        return planner(key, bars, meter, rng)
    bt = bar_ticks(meter)
    by_letter: dict[str, Plan] = {}
    plan: Plan = []
    for start, length, letter in sections:
        if letter not in by_letter:
            by_letter[letter] = planner(key, length, meter, rng)
        plan += [(start * bt + t, c) for t, c in by_letter[letter]]
    return _dedupe(plan)
