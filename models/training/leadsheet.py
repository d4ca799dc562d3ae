"""Impro-Visor lead sheets (``.ls``): a transcribed solo and its chord changes on the GRID.

The text is S-expression-like: directives in parentheses, bare tokens between them::

    (title Firm Roots) (meter 4 4) (key -3) (tempo 184.0) ...
    (part (type chords) ...)
    (section (style swing))
    Fm7 | Bb7 | EbM7 | C7b9 |
    Ab9sus | / | / | / |
    (part (type melody) ...)
    r2 bb2 g2 f4+8 d2+8 c+8/3 d+8/3 c+8/3 bb+1+8+32+120+480

Chords: ``|`` ends a bar; the slots of a bar share its beats like a chart's chords
(``cadenza.models.training.charts.split_bar``); ``/`` takes a slot and lets the previous chord ring
on (no new change); ``NC`` is no chord. ``(section ...)``/``(phrase ...)`` may interrupt the bars.

Notes: letter ``a``-``g``; accidentals ``#``/``b``; octave marks ``+``/``-`` until the first
digit (unmarked = the octave from middle C, MIDI 60: ``c`` 60, ``c+`` 72, ``bb-`` 46); then a
duration: ``n`` is 1/n of a whole note (1 2 4 8 16 32, and Impro-Visor's ``120``/``480`` ticks
of its 480-per-whole grid), each ``.`` adds half of the previous value, a tuplet ``/k`` scales
by (k-1)/k exactly as Impro-Visor's own reader (Duration.getDuration) does: ``/3`` a triplet,
``/5`` five in the time of four (the only tuplets in the corpus); after the first duration
``+`` joins another (``r2+8``, ``c#+8`` = c# an octave up for an eighth). ``r`` is a rest.
Time is summed exactly (Fraction) and each onset and offset rounded to GRID ticks at the end.

Every melody part is one or more choruses of the chord part (Impro-Visor's layout; all 187 parts
of the corpus fill whole choruses exactly), so a part that stops short is padded with rest to the
chorus line and the chord chorus repeats under all of them.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from cadenza.models.training.charts import (
    Change,
    ChartError,
    CorpusFileError,
    checked_bar_ticks,
    home_key,
    load_files,
    parse_chord_symbol,
    split_bar,
)
from cadenza.music.score import GRID
from cadenza.music.theory import Chord, Key

log = logging.getLogger(__name__)

Sexp = str | list["Sexp"]

_LETTER_SEMITONES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_NOTE = re.compile(r"([a-g])([#b]*)([+-]*)(\d.*)")
_REST = re.compile(r"r(\d.*)")
_DURATION = re.compile(r"(\d+)(\.*)(?:/(\d+))?")


class LeadSheetError(CorpusFileError):
    """A lead sheet that cannot be read."""


@dataclass(frozen=True, slots=True)
class LeadSheet:
    """A transcribed solo: melody notes (start, duration, MIDI pitch) and chord changes, both in
    absolute GRID ticks; the chords are the chord part's chorus repeated under the whole melody."""

    source: str
    title: str
    meter: tuple[int, int]
    key: Key
    tempo: float
    chords: tuple[Change, ...]
    chorus_bars: int
    melody: tuple[tuple[int, int, int], ...]
    bars: int

    @property
    def bar_ticks(self) -> int:
        return checked_bar_ticks(self.meter)


def _read_sexps(text: str) -> list[Sexp]:
    """Top-level items: an atom (str) or a parenthesised list (nested lists of atoms)."""
    stack: list[list[Sexp]] = [[]]
    for m in re.finditer(r"[()]|[^\s()]+", text):
        tok = m.group()
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise LeadSheetError("unbalanced ')'", "unbalanced parentheses")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise LeadSheetError("unbalanced '('", "unbalanced parentheses")
    return stack[0]


def _words(item: Sexp) -> str:
    """A directive's text flattened (``(title Body and Soul)`` -> 'Body and Soul')."""
    if isinstance(item, str):
        return item
    return " ".join(_words(x) for x in item)


def _part_type(part: list[Sexp]) -> str:
    for x in part[1:]:
        if isinstance(x, list) and len(x) >= 2 and x[0] == "type" and isinstance(x[1], str):
            return x[1]
    raise LeadSheetError("a (part ...) without a (type ...)", "malformed")


def parse_duration(text: str) -> Fraction:
    """``'4'`` -> 1 (quarter notes); ``'2+8'`` -> 5/2; ``'8/3'`` -> 1/3; ``'4.'`` -> 3/2."""
    total = Fraction(0)
    for piece in text.split("+"):
        m = _DURATION.fullmatch(piece)
        if not m or int(m.group(1)) == 0:
            raise LeadSheetError(f"bad duration {text!r}", "bad note")
        value = Fraction(4, int(m.group(1)))
        value *= 2 - Fraction(1, 2 ** len(m.group(2)))  # each dot adds half the previous
        if m.group(3):
            k = int(m.group(3))
            if k < 2:
                raise LeadSheetError(f"bad tuplet in {text!r}", "bad note")
            value *= Fraction(k - 1, k)
        total += value
    return total


def parse_note(token: str) -> tuple[int | None, Fraction]:
    """A melody token -> (MIDI pitch or None for a rest, length in quarter notes)."""
    m = _REST.fullmatch(token)
    if m:
        return None, parse_duration(m.group(1))
    m = _NOTE.fullmatch(token)
    if not m:
        raise LeadSheetError(f"not a note: {token!r}", "bad note")
    letter, accidentals, octaves, duration = m.groups()
    pitch = (60 + _LETTER_SEMITONES[letter] + accidentals.count("#") - accidentals.count("b")
             + 12 * (octaves.count("+") - octaves.count("-")))
    if not 0 <= pitch <= 127:
        raise LeadSheetError(f"pitch out of MIDI range: {token!r}", "bad note")
    return pitch, parse_duration(duration)


def _chord_bars(tokens: list[str], meter: tuple[int, int]
                ) -> tuple[list[Change], list[list[Chord | None]]]:
    """The chord part's bars -> (changes in ticks from the chorus start, each bar's sounding
    chords in order for ``home_key``)."""
    cells: list[list[str]] = [[]]
    for tok in tokens:
        if tok == "|":
            cells.append([])
        else:
            cells[-1].append(tok)
    if not cells[-1]:
        cells.pop()  # the usual final "|"
    if not cells:
        raise LeadSheetError("no chord bars", "no chords")
    bt = checked_bar_ticks(meter)
    changes: list[Change] = []
    sounding: list[list[Chord | None]] = []
    current: Chord | None = None
    started = False
    for b, cell in enumerate(cells):
        if not cell:
            raise LeadSheetError(f"chord bar {b + 1} is empty", "bad chords")
        bar: list[Chord | None] = []
        for onset, slot in zip(split_bar(len(cell), meter), cell, strict=True):
            if slot != "/":
                current = parse_chord_symbol(slot)
                started = True
                changes.append((b * bt + onset, current))
            elif not started:
                raise LeadSheetError("'/' before the first chord", "bad chords")
            bar.append(current)
        sounding.append(bar)
    return changes, sounding


def _grid(t: Fraction) -> int:
    """Quarter notes -> nearest GRID tick (halves round up, so a 32nd's 1.5 ticks is stable)."""
    return math.floor(t * GRID + Fraction(1, 2))


def parse_leadsheet(text: str, source: str) -> LeadSheet:
    """Read one ``.ls`` file's text; LeadSheetError (with a countable ``reason``) otherwise."""
    try:
        return _parse(text, source)
    except ChartError as e:  # chord symbols and meters are read by the chart parser
        raise LeadSheetError(str(e), e.reason) from None


def _parse(text: str, source: str) -> LeadSheet:
    items = _read_sexps(text)
    if not items:
        raise LeadSheetError("empty lead sheet", "empty")
    header: dict[str, str] = {}
    chord_tokens: list[str] = []
    parts: list[list[str]] = []
    seen_chords = False
    mode: str | None = None
    for item in items:
        if isinstance(item, list):
            head = item[0] if item and isinstance(item[0], str) else ""
            if head == "part":
                mode = _part_type(item)
                if mode == "chords":
                    if seen_chords:
                        raise LeadSheetError("two chord parts", "malformed")
                    seen_chords = True
                elif mode == "melody":
                    parts.append([])
            elif head in ("title", "meter", "key", "tempo"):
                header.setdefault(head, _words(item[1:]))
            continue  # (section ...), (phrase ...), (style ...) and the rest: layout only
        if mode == "chords":
            chord_tokens.append(item)
        elif mode == "melody":
            parts[-1].append(item)
        elif mode is None:
            raise LeadSheetError(f"{item!r} before any (part ...)", "malformed")
    for name in ("meter", "key"):
        if name not in header:
            raise LeadSheetError(f"no ({name} ...)", "missing header")
    try:
        num, den = (int(x) for x in header["meter"].split())
        sharps = int(header["key"])
        tempo = float(header.get("tempo", "120"))
    except ValueError:
        raise LeadSheetError("bad (meter ...), (key ...) or (tempo ...)",
                             "missing header") from None
    if not -7 <= sharps <= 7 or not 10.0 <= tempo <= 400.0:
        raise LeadSheetError(f"key {sharps} or tempo {tempo} out of range", "missing header")
    meter = (num, den)
    bt = checked_bar_ticks(meter)
    if not parts:
        raise LeadSheetError("no melody part", "no melody")
    chorus_changes, sounding = _chord_bars(chord_tokens, meter)
    chorus_bars = len(sounding)
    chorus = Fraction(chorus_bars * bt, GRID)  # quarter notes

    events: list[tuple[Fraction, Fraction, int]] = []
    t = Fraction(0)
    for part in parts:
        start = t
        for token in part:
            pitch, length = parse_note(token)
            if pitch is not None:
                events.append((t, t + length, pitch))
            t += length
        # a part fills whole choruses; one that stops short rests until the chorus line
        t = start + max(1, math.ceil((t - start) / chorus)) * chorus
    if not events:
        raise LeadSheetError("the melody has no notes", "no melody")

    melody: list[tuple[int, int, int]] = []
    dropped = 0
    for i, (on, off, pitch) in enumerate(events):
        start, end = _grid(on), max(_grid(off), _grid(on) + 1)  # too short to see: one tick
        if i + 1 < len(events):
            end = min(end, _grid(events[i + 1][0]))  # strictly monophonic
        if end <= start:
            dropped += 1  # two onsets rounded into one tick: the later note wins
            continue
        melody.append((start, end - start, pitch))
    if dropped:
        log.debug("%s: %d notes shared a tick with the next and were dropped", source, dropped)

    choruses = math.ceil(t / chorus)
    chorus_ticks = chorus_bars * bt
    chords = tuple((c * chorus_ticks + tick, chord) for c in range(choruses)
                   for tick, chord in chorus_changes)
    key = home_key(sharps * 7 % 12, sounding)
    title = header.get("title", "").strip() or Path(source).stem
    return LeadSheet(source, title, meter, key, tempo, chords, chorus_bars, tuple(melody),
                     choruses * chorus_bars)


def load_leadsheets(folder: Path) -> tuple[list[LeadSheet], Counter[str]]:
    """Every ``*.ls`` under ``folder`` (recursively; named ``Performer/file.ls``) and the skipped
    files counted by reason."""
    return load_files(folder, "*.ls", parse_leadsheet, recursive=True)
