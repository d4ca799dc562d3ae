"""Inline notes: a short, forgiving text syntax for typing a motif that the model then continues.

Write notes and rests separated by spaces or commas; upper or lower case both work::

    notes:"C4/8 E4/8 G4/4 | A4/2"

``C4/8``
    A note: a pitch letter A-G, optional ``#`` or ``b`` (``F#``, ``Bb``, ``C##``), an optional
    octave (C4 is middle C; -1 to 9) and an optional length ``/N``: 1 whole, 2 half, 4 quarter,
    8 eighth, 16 sixteenth.
``E``
    Without an octave a note is the one nearest the previous note (within a fourth, counting
    letter names: after B3, ``C`` is C4). The first note is in octave 4.
``G``
    Without ``/N`` a note or rest keeps the previous length (a quarter at the start).
``A/4.``
    A dot adds half the value (``/4.`` is a dotted quarter, ``/4..`` double dotted).
``D/8t``
    ``t`` makes a triplet: three ``/8t`` take the time of two ``/8``.
``C/2~ C/8``
    ``~`` ties a note to the next one of the same pitch (also across a bar line).
``r/4``
    A rest (``r`` or ``rest``).
``|``
    A bar line. A bar that does not add up to the meter gives a warning, not an error. A short
    first bar is a pickup: its notes lead into the first full bar.

Examples::

    notes:"C4/8 E G c5/4 | A4/2 r/4 G/4"
    notes:"e5/16 d# e d# e b4 d5 c | a4/8. r/16"
    notes:"g4/8t g g c5/2"
    notes:"d4/4 | g/4. a/8 b/4 g | c5/2~ c5/8 r/8"   (a pickup, then a tie)

Lengths must fit the grid of 12 steps per quarter note: the shortest are ``/16``, ``/16t`` and
``/32t`` (one step; ``/32`` falls between two).
:func:`format_notes` writes a monophonic track back in this syntax (round trip).
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction

from cadenza.music.score import COMMON_TIME, GRID, Meter, Note, Score, Track
from cadenza.music.theory import PITCH_NAMES_SHARP

log = logging.getLogger(__name__)

MAX_CHARS = 2000  # a motif is a few bars; this bounds the parser's work on any input
DEFAULT_VELOCITY = 80
_WHOLE = 4 * GRID
_LETTERS = "cdefgab"
_LETTER_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_LENGTHS = (1, 2, 4, 8, 16, 32)
_DENOM_NAMES = {1: "whole", 2: "half", 4: "quarter", 8: "eighth", 16: "sixteenth", 32: "32nd"}
_NOTE_RE = re.compile(r"([a-g])([#b]*)(-?\d+)?(/.*)?")
_LENGTH_RE = re.compile(r"/(\d+)(\.*)(t?)")
_REST_RE = re.compile(r"(?:rest|r)(/.*)?")
_QUOTES = "\"'`“”‘’"


class NotationError(ValueError):
    """Text that is not a readable motif; ``str(e)`` names the offending token."""

    def __init__(self, message: str, token: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.token = token  # 1-based index of the token, when one is at fault

    def __str__(self) -> str:
        return self.message


def _check_meter(meter: Meter) -> int:
    """Bar length in GRID ticks, or NotationError for a meter the Score cannot hold."""
    num, den = meter
    if not 1 <= num <= 32 or den not in _LENGTHS or (_WHOLE * num) % den:
        raise NotationError(f"unsupported meter {num}/{den}")
    return _WHOLE * num // den


def _tokens(text: str) -> list[str]:
    text = text.strip()
    m = re.match(r"notes?\s*[:=]\s*", text, re.IGNORECASE)
    if m:
        text = text[m.end() :]
    text = text.strip().strip(_QUOTES).replace("♯", "#").replace("♭", "b")
    return [t for t in re.split(r"[\s,]+", text.replace("|", " | ")) if t]


def _length(spec: str | None, current: int, token: str, index: int) -> int:
    """GRID ticks for a '/N[.][t]' suffix; None keeps the current length."""
    if spec is None:
        return current
    m = _LENGTH_RE.fullmatch(spec)
    if not m:
        raise _bad(token, index, "write a length like /4, /8. or /8t")
    n, dots, triplet = int(m.group(1)), len(m.group(2)), bool(m.group(3))
    if n not in _LENGTHS:
        raise _bad(token, index, "the length after / must be 1, 2, 4, 8, 16 or 32")
    if dots > 2:
        raise _bad(token, index, "at most two dots")
    ticks = Fraction(_WHOLE, n) * (2 - Fraction(1, 2**dots))
    if triplet:
        ticks *= Fraction(2, 3)
    if ticks.denominator != 1:
        raise _bad(
            token,
            index,
            "that length is finer than the grid of 12 steps per quarter note "
            "(the shortest are /16, /16t and /32t)",
        )
    return int(ticks)


def parse_notes(
    text: str,
    *,
    meter: Meter = COMMON_TIME,
    max_bars: int = 16,
    warnings: list[str] | None = None,
) -> Score:
    """Read inline notes (see the module docstring) into a Score with one lead Track.

    Raises NotationError naming the offending token. Loose ends (a bar that does not add up, a
    tie that cannot join) are appended to ``warnings`` when a list is given.
    """
    if not isinstance(text, str):
        raise NotationError("the notes must be text")
    if len(text) > MAX_CHARS:
        raise NotationError(f"the notes are {len(text):,} characters; the limit is {MAX_CHARS:,}")
    bar = _check_meter(meter)
    limit = max_bars * bar
    notes: list[list[int]] = []  # [start, duration, pitch]
    pos = 0
    bar_start = 0
    bar_no = 1
    pickup = 0
    length = GRID  # a quarter
    step: int | None = None  # diatonic step (octave * 7 + letter) of the previous note
    tie_from: list[int] | None = None
    rests = 0
    found: list[str] = []

    def warn(message: str) -> None:
        found.append(message)

    tokens = _tokens(text)
    for index, token in enumerate(tokens, 1):
        if token == "|":
            content = pos - bar_start
            if content:
                if bar_no == 1 and content < bar and index < len(tokens):
                    pickup = bar - content  # an anacrusis: shift so it ends at a bar line
                    warn(f"read bar 1 as a pickup of {_units(content, meter)}")
                elif content != bar:
                    warn(f"bar {bar_no} adds up to {_units(content, meter)}; {meter} needs "
                         f"{meter.num}")
                bar_no += 1
                bar_start = pos
            continue
        tied = token.endswith("~")
        body = (token[:-1] if tied else token).lower()
        rest = _REST_RE.fullmatch(body)
        if rest:
            rests += 1
            length = _length(rest.group(1), length, token, index)
            if tie_from is not None:
                warn(f"token {index}: a tie needs a note of the same pitch after it")
                tie_from = None
            pos += length
        else:
            m = _NOTE_RE.fullmatch(body)
            if not m:
                raise _explain(token, index)
            letter, accidentals, octave_text, spec = m.groups()
            length = _length(spec, length, token, index)
            li = _LETTERS.index(letter)
            if octave_text is not None:
                octave = int(octave_text)
                if not -1 <= octave <= 9:
                    raise _bad(token, index, "octaves go from -1 to 9")
                step = octave * 7 + li
            elif step is None:
                step = 4 * 7 + li
            else:
                d = (li - step) % 7
                step += d if d <= 3 else d - 7
            octave = step // 7
            pitch = 12 * (octave + 1) + _LETTER_PC[letter]
            pitch += accidentals.count("#") - accidentals.count("b")
            if not 0 <= pitch <= 127:
                raise _bad(token, index, "that pitch is outside the MIDI range (C-1 to G9)")
            if tie_from is not None and tie_from[2] == pitch and tie_from[0] + tie_from[1] == pos:
                tie_from[1] += length
                note = tie_from
            else:
                if tie_from is not None:
                    warn(f"token {index}: a tie joins notes of the same pitch; '{token}' is new")
                note = [pos, length, pitch]
                notes.append(note)
            tie_from = note if tied else None
            pos += length
        if pos + pickup > limit:
            raise NotationError(f"the motif is longer than {max_bars} bars (the limit)")
    if tie_from is not None:
        warn("the last note has a tie with nothing after it")
    if bar_no > 1 and pos - bar_start > bar:  # only when the writer used bar lines at all
        warn(f"bar {bar_no} adds up to {_units(pos - bar_start, meter)}; "
             f"{meter} needs {meter.num}")
    if not notes:
        if rests:
            raise NotationError("the motif has only rests; it needs at least one note")
        raise NotationError('no notes given; try notes:"C4/8 E4/8 G4/4"')
    if warnings is not None:
        warnings.extend(found)
    track = Track(
        name="motif",
        role="lead",
        program=0,
        notes=tuple(Note(s + pickup, d, p, DEFAULT_VELOCITY) for s, d, p in notes),
    )
    end = pos + pickup
    return Score(
        tracks=(track,), resolution=GRID, time_signature=meter, bars=max(1, -(-end // bar))
    )


def _bad(token: str, index: int, why: str) -> NotationError:
    shown = token if len(token) <= 24 else token[:21] + "..."
    return NotationError(f"can't read '{shown}' (token {index}): {why}", index)


def _explain(token: str, index: int) -> NotationError:
    """The most helpful reason a token is not a note or rest."""
    head = token[0].lower()
    if head.isalpha() and head not in _LETTERS:
        why = "pitch letters are A-G (r for a rest)"
    elif head == "/":
        why = "a length goes right after its note, like C4/8"
    elif not head.isalpha():
        why = "a note starts with a pitch letter A-G"
    else:
        why = "write notes like C4/8, F#/4. or Bb3/8t, and rests like r/4"
    return _bad(token, index, why)


def _units(ticks: int, meter: Meter) -> str:
    value = Fraction(ticks * meter.den, _WHOLE)
    text = f"{float(value):g}" if value.denominator in (1, 2, 4) else f"{float(value):.2f}"
    name = _DENOM_NAMES[meter.den]
    if value != 1:
        name = "halves" if name == "half" else name + "s"
    return f"{text} {name}"


# ---------------------------------------------------------------- writing


def _values() -> list[tuple[int, str]]:
    """Every writable length in GRID ticks with its suffix, straight values before triplets."""
    out = []
    for triplet in (False, True):
        for n in _LENGTHS:
            for dots in range(3):
                ticks = Fraction(_WHOLE, n) * (2 - Fraction(1, 2**dots))
                if triplet:
                    ticks *= Fraction(2, 3)
                if ticks.denominator == 1:
                    out.append((int(ticks), f"/{n}{'.' * dots}{'t' if triplet else ''}"))
    return out


_VALUES = _values()
_STRAIGHT = sorted((v for v in _VALUES if not v[1].endswith("t")), key=lambda v: -v[0])
_ANY = sorted(_VALUES, key=lambda v: -v[0])  # stable: a straight value wins a tie


def _split(ticks: int) -> list[tuple[int, str]]:
    """Lengths that add up to ticks: straight values if they can, else with triplets."""
    for table in (_STRAIGHT, _ANY):
        out = []
        left = ticks
        for value, suffix in table:
            while left >= value:
                out.append((value, suffix))
                left -= value
        if left == 0:
            return out
    raise NotationError(f"a length of {ticks} steps cannot be written")  # unreachable: /32t = 1


def format_notes(track: Track, resolution: int = GRID, meter: Meter = COMMON_TIME) -> str:
    """Write a track's notes in the inline syntax (the inverse of :func:`parse_notes`).

    The line is made monophonic first (the highest note of a chord; a note is cut where the next
    one starts). Times must sit on the grid of 12 steps per quarter. Notes crossing a bar line are
    tied; every note carries its octave, and a length only when it changes.
    """
    bar = _check_meter(meter)
    line: list[tuple[int, int, int]] = []
    for n in sorted(track.notes, key=lambda n: (n.start, -n.pitch)):
        start, end = Fraction(n.start * GRID, resolution), Fraction(n.end * GRID, resolution)
        if start.denominator != 1 or end.denominator != 1:
            raise NotationError(f"the note at tick {n.start} is off the grid")
        if line and line[-1][0] == start:
            continue
        if line and line[-1][1] > start:
            line[-1] = (line[-1][0], int(start), line[-1][2])
        line.append((int(start), int(end), n.pitch))
    segments: list[tuple[int, int, int | None]] = []  # (start, end, pitch or None = rest)
    pos = 0
    for start, end, pitch in line:
        if start > pos:
            segments.append((pos, start, None))
        segments.append((start, end, pitch))
        pos = end
    words: list[str] = []
    current = GRID  # the parser's starting length
    for start, end, pitch in segments:
        name = "r" if pitch is None else f"{PITCH_NAMES_SHARP[pitch % 12]}{pitch // 12 - 1}"
        pieces: list[tuple[int, int, str]] = []  # split at bar lines, then into writable values
        pos = start
        while pos < end:
            stop = min(end, (pos // bar + 1) * bar)
            for value, suffix in _split(stop - pos):
                pieces.append((pos, value, suffix))
                pos += value
        for k, (at, value, suffix) in enumerate(pieces):
            if at and at % bar == 0:
                words.append("|")
            tie = "~" if pitch is not None and k < len(pieces) - 1 else ""
            words.append(f"{name}{'' if value == current else suffix}{tie}")
            current = value
    return " ".join(words)
