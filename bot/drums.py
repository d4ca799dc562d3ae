"""Drum parts (MIDI channel 10): one groove per style and meter, phrase fills and an ending hit."""

from __future__ import annotations

import numpy as np

from cadenza.music.score import GRID, Meter, Note, bar_ticks

# General MIDI percussion keys
KICK, KICK2, STICK, SNARE, LO_TOM, HAT, HI_TOM, PEDAL_HAT, OPEN_HAT = 36, 35, 37, 38, 41, 42, 43, \
    44, 46
MID_TOM, CRASH, RIDE, TAMB, SHAKER = 47, 49, 51, 54, 70
# GS/GM2 drum kits (bank 128 presets), present in FluidR3_GM and TimGM6mb
ORCHESTRA_KIT = 48  # GM2/GS drum program whose keys 41-53 are timpani (TIMPANI_KEYS)
KITS = {"jazz": 40, "blues": 32, "folk": 8, "celtic": 8, "classical": ORCHESTRA_KIT, "ragtime": 0}
TIMPANI_LOW = 41  # Orchestra kit: keys 41-53 are timpani tuned F2..F3
TIMPANI_KEYS = range(TIMPANI_LOW, TIMPANI_LOW + 13)

Hit = tuple[float, int, int]  # (position in quarter notes from the bar start, key, velocity)


def _grid(spec: dict[int, str], step: float, vel: dict[str, int]) -> list[Hit]:
    """Hits from strings: one char per ``step`` quarters; 'X' accent, 'x' normal, 'o' ghost."""
    out: list[Hit] = []
    for key, pattern in spec.items():
        for i, ch in enumerate(pattern):
            if ch in vel:
                out.append((i * step, key, vel[ch]))
    return out


V = {"X": 112, "x": 88, "o": 52, "g": 32}

# patterns per style and meter, in sixteenths (4/4, 2/4, 3/4) or eighths (compound meters)
_PATTERNS: dict[str, dict[tuple[int, int], list[Hit]]] = {
    "jazz": {
        (4, 4): _grid({RIDE: "x...X.x.x...X.x.", PEDAL_HAT: "....x.......x...",
                       KICK: "g...g...g...g..."}, 0.25, V),
    },
    "blues": {
        (4, 4): _grid({HAT: "x.x.x.x.x.x.x.x.", SNARE: "....X.......X...",
                       KICK: "X.......x.....o."}, 0.25, V),
    },
    "folk": {
        (4, 4): _grid({KICK: "x.......x.......", TAMB: "o...x...o...x..."}, 0.25, V),
        (3, 4): _grid({KICK: "x...........", TAMB: "....x...x..."}, 0.25, V),
        (2, 4): _grid({KICK: "x.......", TAMB: "....x..."}, 0.25, V),
        (6, 8): _grid({KICK: "x.....", TAMB: "..o.x."}, 0.5, V),
    },
    "celtic": {
        (6, 8): _grid({LO_TOM: "X.....", HI_TOM: ".oo.o."}, 0.5, V)
        + _grid({LO_TOM: "...x.."}, 0.5, V),
        (9, 8): _grid({LO_TOM: "X..x..x..", HI_TOM: ".oo.oo.oo"}, 0.5, V),
        (4, 4): _grid({LO_TOM: "X...x...X...x...", HI_TOM: "..o...o...o...o."}, 0.25, V),
    },
    "classical": {},  # timpani follow the harmony: see _classical
    "ragtime": {
        (2, 4): _grid({KICK: "x.......", SNARE: "....x...", HAT: "..o...o."}, 0.25, V),
        (4, 4): _grid({KICK: "x.......x.......", SNARE: "....x.......x...",
                       HAT: "..o...o...o...o."}, 0.25, V),
    },
}


def _fallback(style: str, meter: Meter) -> list[Hit]:
    pats = _PATTERNS.get(style) or _PATTERNS["folk"]
    if meter in pats:
        return pats[meter]
    beats = meter.num if meter.den == 4 else meter.num // 3
    step = 1.0 if meter.den == 4 else 1.5
    return [(0.0, KICK, 88)] + [(b * step, HAT, 52) for b in range(1, beats)]


def _fill(style: str, bar_q: float) -> list[Hit]:
    """A last-beat fill leading into the next phrase."""
    start = bar_q - 1.0
    if style == "jazz":
        return [(start + 0.0, SNARE, 60), (start + 0.5, SNARE, 80), (start + 0.75, KICK, 70)]
    if style == "celtic":
        return [(start + i / 3, HI_TOM if i % 2 else LO_TOM, 70 + 10 * i) for i in range(3)]
    return [(start + i * 0.25, (SNARE, SNARE, MID_TOM, LO_TOM)[i], 70 + 8 * i) for i in range(4)]


def drum_part(
    style: str,
    meter: Meter,
    bars: int,
    res: int,
    rng: np.random.Generator,
    *,
    roots: list[int] | None = None,
) -> list[Note]:
    """Drum notes for ``bars`` bars at ``res`` ticks per quarter (swing is applied later)."""
    bar_q = bar_ticks(meter) / GRID  # in quarter notes
    if style == "classical":
        return _classical(meter, bars, res, roots or [0] * bars)
    base = _fallback(style, meter)
    notes: list[Note] = []

    def add(q: float, key: int, vel: int, bar: int) -> None:
        v = min(127, max(1, vel + int(rng.integers(-6, 7))))
        notes.append(Note(round((bar * bar_q + q) * res), max(1, res // 4), key, v))

    for bar in range(bars):
        last = bar == bars - 1
        if last and bars > 1:
            add(0.0, CRASH, 100, bar)
            add(0.0, KICK, 100, bar)
            continue
        phrase_end = bar % 4 == 3 and style not in ("classical",)
        hits = list(base)
        if phrase_end:
            hits = [h for h in hits if h[0] < bar_q - 1.0] + _fill(style, bar_q)
        if bar % 4 == 0 and bar > 0 and style in ("blues", "ragtime", "folk", "jazz"):
            hits.append((0.0, CRASH, 84 if style == "jazz" else 96))
        if style == "jazz":
            # comping snare: a couple of random off-beat ghost notes per bar
            for _ in range(int(rng.integers(0, 3))):
                hits.append((float(rng.integers(0, 4)) + 0.5, SNARE, 40))
        for q, key, vel in hits:
            add(q, key, vel, bar)
    return sorted(set(notes))


def _classical(meter: Meter, bars: int, res: int, roots: list[int]) -> list[Note]:
    """Timpani on the chord root at phrase starts and a roll into the final chord."""
    bar_t = bar_ticks(meter, res)
    notes: list[Note] = []
    for bar in range(bars):
        key = TIMPANI_LOW + (roots[bar] - 5) % 12  # Orchestra kit timpani: 41 = F
        if bar == bars - 1:
            roll = [bar * bar_t - res + i * res // 6 for i in range(6)]
            for i, t in enumerate(roll):
                if t >= 0:
                    notes.append(Note(t, res // 8, key, 40 + 6 * i))
            notes.append(Note(bar * bar_t, res, key, 100))
        elif bar % 4 == 0:
            notes.append(Note(bar * bar_t, res, key, 64))
    return sorted(set(notes))
