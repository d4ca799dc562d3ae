"""Jazz Chord Progressions Corpus charts: chord symbols and bars read onto the GRID as plain data.

A chart file (``../shared/style-corpus/jazz/chords/jcpc/*.txt``) looks like::

    Title = Djiekuye (There'll Be No Tomorrow
    ComposedBy = Dave Brubeck
    DBKeySig = F
    TimeSig = 4 4
    Bars = 32
     Dm | E7 | A7b9 | Dm |
     ...
     Gm | A7b9 A7 | Dm | Dm Dm Dm A |

Bars are written out in full (repeats already unrolled), each ends with ``|``; the chords of a
bar share its beats (see ``split_bar``); ``NC`` is no chord; a slash bass (``C7/E``) is dropped.
``DBKeySig`` is the key *signature* (a minor tune carries its relative major's), so the mode is
decided from the changes by ``home_key``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cadenza.music.score import GRID, bar_ticks
from cadenza.music.theory import (
    MINOR_TONIC_QUALITIES,
    Chord,
    Key,
    TheoryError,
    parse_pitch_class,
)

log = logging.getLogger(__name__)

Change = tuple[int, Chord | None]  # (tick, chord); None = no chord (NC)
T = TypeVar("T")

# Every suffix the corpus writes (2,243 charts, 114 suffixes, measured) plus the Impro-Visor
# lead sheets' extra spellings, mapped to the nearest quality of QUALITY_INTERVALS. "Nearest"
# = fewest pitch classes added or lost; ties go to the quality that keeps the chord's function
# (third, seventh) over a colour tone. Names Chord.parse knows are accepted as well (fallback).
SUFFIX_QUALITY: dict[str, str] = {
    # triads and their spellings
    "": "maj", "M": "maj", "5": "maj", "m": "min", "mi": "min", "-": "min",
    "o": "dim", "dim": "dim", "mb5": "dim", "+": "aug",
    "m+": "min", "m#5": "min", "mb6": "min",  # Am+ is written for a line (5-#5), not a chord
    "sus4": "sus4", "sus": "sus4", "4": "sus4", "sus24": "sus4",
    "add9": "add9", "2": "add9", "sus2": "add9", "add9no3": "add9",
    "madd9": "min",  # add = no seventh; m9 would put a dorian b7 into a tonic minor
    "addb9": "maj", "Mb5": "maj", "+add9": "aug", "+add#9": "aug",
    # sixths
    "6": "6", "M6": "6", "6#11": "6", "6b5": "6",
    "69": "69", "M69": "69", "M69#11": "69", "69#11": "69",
    "m6": "m6", "-6": "m6", "m69": "m69",
    # major sevenths
    "M7": "maj7", "maj7": "maj7", "M7add13": "maj7",
    "M9": "maj9", "maj9": "maj9", "maj13": "maj9",
    "M7#11": "maj7#11", "M7b5": "maj7#11", "M9#11": "maj7#11", "M13#11": "maj7#11",
    "M7#9#11": "maj7#11",
    "M7#5": "maj7#5", "maj7#5": "maj7#5", "M7+": "maj7#5", "M9#5": "maj7#5",
    # minor sevenths
    "m7": "m7", "-7": "m7", "m7b9": "m7", "m7#5": "m7",
    "m9": "m9", "m13": "m9",
    "m11": "m11", "m7add4": "m11", "m7add11": "m11",
    "mM7": "mmaj7", "mMaj7": "mmaj7", "mM9": "mmaj7", "mM7b6": "mmaj7",
    "m7b5": "m7b5", "h7": "m7b5", "m9b5": "m7b5",
    "o7": "dim7", "dim7": "dim7", "oM7": "dim", "o7M7": "dim7",
    # dominants
    "7": "7",
    "9": "9", "9b13": "9",
    "13": "13", "67": "13", "7add6": "13", "7add13": "13",
    "7b9": "7b9", "7b9#11": "7b9", "7b9b13": "7b9",
    "7#9": "7#9", "13#9": "7#9", "7#9#11": "7#9",
    "7alt": "7alt",
    "7#5": "7#5", "7+": "7#5", "9#5": "7#5", "9+": "7#5", "7b13": "7#5", "7b6": "7#5",
    "9#5#11": "7#5",
    "7b5": "7b5", "9b5": "7b5", "7b5b9": "7b5", "7b9b5": "7b5", "7b5#9": "7b5",
    "7#11": "7#11",
    "9#11": "9#11",
    "13b9": "13b9", "13b9#11": "13b9",
    "13#11": "13#11", "13b5": "13#11",
    "7#5#9": "7#5#9", "7#9b13": "7#5#9",
    "7#5b9": "7#5b9", "7#5b9#11": "7#5b9",
    "7sus4": "7sus4", "7sus": "7sus4",
    "9sus4": "9sus4", "9sus": "9sus4", "11": "9sus4", "13sus4": "9sus4", "13sus": "9sus4",
    "7b9sus4": "7b9sus4", "7sus4b9": "7b9sus4", "7susb9": "7b9sus4", "7sus4b9b13": "7b9sus4",
}

# A home (tonic) chord: minor-family qualities on the relative minor's tonic make a tune minor.
_NOT_MAJOR_TONIC = MINOR_TONIC_QUALITIES | {"dim", "dim7", "m7b5"}

_HEADER = re.compile(r"\s*([A-Za-z]+)\s*=\s*(.*?)\s*")
_SYMBOL = re.compile(r"([A-G][#b]?)(.*)")


class CorpusFileError(ValueError):
    """A style-corpus text file that cannot be read; ``reason`` is a short category to count."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class ChartError(CorpusFileError):
    """A chart or chord symbol that cannot be read."""


def parse_chord_symbol(text: str) -> Chord | None:
    """``'Dm7'`` -> Chord(2, 'm7'); ``'C7/E'`` -> Chord(0, '7') (bass dropped); ``'NC'`` -> None."""
    t = text.strip()
    if t == "NC":
        return None
    head, slash, bass = t.partition("/")
    m = _SYMBOL.fullmatch(head)
    if not m:
        raise ChartError(f"not a chord symbol: {text!r}", "bad chord symbol")
    if slash:
        # Impro-Visor also writes polychords (Eb7/B6): the lower part is dropped like a bass
        b = _SYMBOL.fullmatch(bass)
        if not b or b.group(2) not in SUFFIX_QUALITY:
            raise ChartError(f"bad bass in chord symbol {text!r}", "bad chord symbol")
    root, suffix = m.groups()
    quality = SUFFIX_QUALITY.get(suffix)
    if quality is not None:
        return Chord(parse_pitch_class(root), quality)
    try:  # the project's own names (Chord.name) read back
        return Chord.parse(head)
    except TheoryError:
        raise ChartError(f"unknown chord suffix {suffix!r} in {text!r}",
                         "bad chord symbol") from None


def checked_bar_ticks(meter: tuple[int, int]) -> int:
    """GRID ticks in one bar of ``meter``; ChartError for a meter charts cannot hold (a bar
    that is not a whole number of ticks)."""
    num, den = meter
    if not 1 <= num <= 32 or den not in (1, 2, 4, 8, 16, 32) or (GRID * 4 * num) % den:
        raise ChartError(f"unsupported time signature {num}/{den}", "unsupported time signature")
    return bar_ticks((num, den))


def split_bar(n: int, meter: tuple[int, int]) -> list[int]:
    """Onset ticks of ``n`` chords sharing a bar. Whole beats when there are at most as many
    chords as beats, the first chords taking the spare beats (3 in 4/4: 2+1+1 beats); with more
    chords than beats (eighth-note changes) the bar's ticks are shared the same way."""
    num, _ = meter
    total = checked_bar_ticks(meter)
    if not 1 <= n <= total:
        raise ChartError(f"{n} chords do not fit a {meter[0]}/{meter[1]} bar", "too many chords")
    units, unit = (num, total // num) if n <= num else (total, 1)
    onsets, at = [], 0
    for i in range(n):
        onsets.append(at * unit)
        at += units // n + (1 if i < units % n else 0)
    return onsets


def is_dominant(chord: Chord) -> bool:
    """A dominant-function chord: minor seventh over a major third or a sus fourth (G7, G13b9,
    G7alt, G7sus4), not a minor seventh chord."""
    return 10 in chord.intervals and 3 not in chord.intervals


def home_key(signature: int | None, bars: Sequence[Sequence[Chord | None]]) -> Key:
    """Key of a tune from its key signature (the major tonic's pitch class; None = unknown) and
    its chords bar by bar (each bar's chords in order, the downbeat's first).

    Charts end on a turnaround back to the top (ii-V, I-vi-ii-V), so the last chord is seldom
    the tonic. Rule: scan the bars' downbeat chords from the end; the first home chord decides:
    a chord on the signature's tonic that is not minor or diminished (I, I6, Imaj7, and I7 for
    the blues) means major; a minor-family chord on the relative minor's tonic (vi) means that
    minor key, unless it is the ii of a ii-V (the next different chord is a dominant a fourth
    above it: Am7 D7 heads for G, not for A minor). No home chord: major from the signature.
    Unknown signature: the last chord's root, minor when that chord is minor-family.
    """
    flat = [(i == 0, c) for bar in bars for i, c in enumerate(bar) if c is not None]
    if signature is None:
        if not flat:
            return Key(0)
        last = flat[-1][1]
        return Key(last.root, "minor" if last.quality in MINOR_TONIC_QUALITIES else "major")
    relative_minor = (signature + 9) % 12
    for j in range(len(flat) - 1, -1, -1):
        downbeat, chord = flat[j]
        if not downbeat:
            continue
        if chord.root == signature and chord.quality not in _NOT_MAJOR_TONIC:
            return Key(signature)
        if chord.root == relative_minor and chord.quality in MINOR_TONIC_QUALITIES:
            nxt = next((c for _, c in flat[j + 1:] if c != chord), None)
            if nxt is not None and is_dominant(nxt) and (nxt.root - chord.root) % 12 == 5:
                continue
            return Key(relative_minor, "minor")
    return Key(signature)


@dataclass(frozen=True, slots=True)
class Chart:
    """One tune's changes: per bar, the (tick in bar, chord) changes on the GRID."""

    source: str
    title: str
    key: Key
    meter: tuple[int, int]
    bars: tuple[tuple[Change, ...], ...]
    composer: str = ""

    @property
    def bar_ticks(self) -> int:
        return checked_bar_ticks(self.meter)

    @property
    def length_ticks(self) -> int:
        return len(self.bars) * self.bar_ticks

    def changes(self) -> list[Change]:
        """Every change with its absolute tick (repeated chords kept as written)."""
        bt = self.bar_ticks
        return [(i * bt + tick, chord) for i, bar in enumerate(self.bars) for tick, chord in bar]


def _parse_meter(text: str) -> tuple[int, int]:
    parts = text.split()
    # isdecimal, not isdigit: "²" is a digit that int() refuses
    if len(parts) != 2 or not all(p.isdecimal() for p in parts):
        raise ChartError(f"unsupported time signature {text!r}", "unsupported time signature")
    meter = (int(parts[0]), int(parts[1]))
    checked_bar_ticks(meter)  # validates
    return meter


def parse_chart(text: str, source: str) -> Chart:
    """Read one chart file's text; ChartError (with a countable ``reason``) if it is not one."""
    header: dict[str, str] = {}
    cells: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _HEADER.fullmatch(line)
        if m:  # before the bar test: a title may hold a "|"
            header.setdefault(m.group(1), m.group(2))
        elif "|" in line:
            cells.append(line)
        else:
            raise ChartError(f"stray line {line.strip()[:40]!r}", "malformed")
    if not header and not cells:
        raise ChartError("empty chart", "empty")
    for name in ("DBKeySig", "TimeSig", "Bars"):
        if name not in header:
            raise ChartError(f"no {name} line", "missing header")
    meter = _parse_meter(header["TimeSig"])
    body = " ".join(cells)
    *written, tail = body.split("|")
    if tail.strip():
        raise ChartError(f"chords after the last bar line: {tail.strip()[:40]!r}", "malformed")
    if not written:
        raise ChartError("no bars", "empty")
    if not header["Bars"].isdecimal() or int(header["Bars"]) != len(written):
        raise ChartError(f"Bars = {header['Bars']} but {len(written)} bars are written",
                         "bar count mismatch")
    bars: list[tuple[Change, ...]] = []
    for i, cell in enumerate(written):
        symbols = cell.split()
        if not symbols:
            raise ChartError(f"bar {i + 1} is empty", "empty bar")
        chords = [parse_chord_symbol(s) for s in symbols]
        bars.append(tuple(zip(split_bar(len(chords), meter), chords, strict=True)))
    sig = header["DBKeySig"]
    try:
        signature = None if sig == "U" else parse_pitch_class(sig)
    except TheoryError:
        raise ChartError(f"bad DBKeySig {sig!r}", "missing header") from None
    # the missing-Title file of the corpus spells it "mpTitle"; fall back to the file's name
    title = header.get("Title") or Path(source).stem
    return Chart(source, title, home_key(signature, [[c for _, c in bar] for bar in bars]), meter,
                 tuple(bars), header.get("ComposedBy", ""))


def read_text(path: Path) -> str:
    """A corpus text file: UTF-8, or Latin-1 for the odd older file (never fails to decode)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def load_files(folder: Path, pattern: str, parse: Callable[[str, str], T], *,
               recursive: bool = False) -> tuple[list[T], Counter[str]]:
    """Parse every file matching ``pattern`` in ``folder`` (sorted; each named by its path
    relative to the folder) and count the skipped ones by reason: a file that does not parse is
    skipped, never fatal."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder at {folder}")
    found: list[T] = []
    skipped: Counter[str] = Counter()
    for path in sorted(folder.rglob(pattern) if recursive else folder.glob(pattern)):
        name = path.relative_to(folder).as_posix()
        try:
            found.append(parse(read_text(path), name))
        except CorpusFileError as e:
            skipped[e.reason] += 1
            log.debug("skipped %s: %s", name, e)
        except OSError as e:
            skipped["unreadable"] += 1
            log.debug("skipped %s: %s", name, e)
        except (ValueError, IndexError, KeyError) as e:
            # a case the parser did not foresee: still one skipped file, not a failed training
            # run over thousands; said at warning level so the parser gets fixed
            skipped["parser error"] += 1
            log.warning("skipped %s: the parser failed on it: %r", name, e)
    log.info("read %d of %d %s files in %s; skipped %s", len(found),
             len(found) + sum(skipped.values()), pattern, folder, dict(skipped))
    return found, skipped


def load_charts(folder: Path) -> tuple[list[Chart], Counter[str]]:
    """Every ``*.txt`` chart in ``folder`` and the skipped files counted by reason."""
    return load_files(folder, "*.txt", parse_chart)
