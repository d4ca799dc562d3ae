"""Symbolic music as small validated, immutable containers (notes, tracks, chords, scores).

Time is in integer ticks at ``Score.resolution`` ticks per quarter note. Generated music uses
``GRID`` (12 ticks per quarter: sixteenths and eighth-note triplets both land on it, so swing is
exact). Nothing here touches files or torch; MIDI and token conversion live elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import NamedTuple, TypeVar

from cadenza.music.theory import Chord, Key

GRID = 12  # ticks per quarter note used by tokens and the arranger


class Meter(NamedTuple):
    """A time signature: ``num`` beats of a 1/``den`` note. A tuple, so ``(3, 4)`` compares
    equal; its text is "3/4" (options, stored rows, what members read)."""

    num: int
    den: int

    @classmethod
    def parse(cls, text: str | tuple[int, int]) -> Meter:
        """'6/8' (or a (num, den) pair) -> Meter(6, 8); ValueError for anything else."""
        if isinstance(text, tuple):
            num, den = text
        else:
            parts = str(text).strip().split("/")
            if len(parts) != 2:
                raise ValueError(f"not a meter: {text!r}")
            num, den = (int(x) for x in parts)
        return cls(int(num), int(den))

    def __str__(self) -> str:
        return f"{self.num}/{self.den}"


COMMON_TIME = Meter(4, 4)


C = TypeVar("C")


def window_changes(changes: Iterable[tuple[int, C]], start: int, end: int, none: C
                   ) -> list[tuple[int, C]]:
    """Changes (tick, value) of [start, end) in ticks from ``start``: first the value sounding
    at ``start`` (``none`` before the first change), then the changes inside; for chords as
    Chords (``none`` None) or as names."""
    sounding = none
    inside: list[tuple[int, C]] = []
    for t, c in sorted(changes, key=lambda tc: tc[0]):
        if t <= start:
            sounding = c
        elif t < end:
            inside.append((t - start, c))
    return [(0, sounding), *inside]


def bar_ticks(meter: tuple[int, int], resolution: int = GRID) -> int:
    """The length of one bar of ``meter`` in ticks of ``resolution`` per quarter note: the one
    place the formula is written."""
    num, den = meter  # a Meter, or the plain pair a training chart or a roll carries
    return resolution * 4 * num // den

ROLES = ("lead", "chords", "bass", "drums", "other")


def swing_tick(t: int, res: int) -> int:
    """Map a straight tick (``res`` per quarter) to a swung one: the off-beat eighth moves to
    2/3 of the beat, and a straight sixteenth grid lands on triplets (1/4 -> 1/3 of the beat)."""
    q, r = divmod(t, res)
    half = res // 2
    if r <= half:
        return q * res + r * 2 * res // (3 * half)
    return q * res + 2 * res // 3 + (r - half) * res // (3 * half)


def unswing_tick(t: int, res: int) -> int:
    """Inverse of ``swing_tick``: 2/3 of a beat back to 1/2 (triplets back to sixteenths)."""
    q, r = divmod(t, res)
    two_thirds = 2 * res / 3
    if r <= two_thirds:
        return q * res + round(r * 0.75)
    return q * res + round(res / 2 + (r - two_thirds) * 1.5)


class ScoreError(ValueError):
    """A container was built with out-of-range values."""


@dataclass(frozen=True, slots=True, order=True)
class Note:
    """One note: onset and length in ticks, MIDI pitch and velocity (1-127)."""

    start: int
    duration: int
    pitch: int
    velocity: int = 80

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ScoreError(f"note start must be >= 0, got {self.start}")
        if self.duration <= 0:
            raise ScoreError(f"note duration must be > 0, got {self.duration}")
        if not 0 <= self.pitch <= 127:
            raise ScoreError(f"pitch must be 0-127, got {self.pitch}")
        if not 1 <= self.velocity <= 127:
            raise ScoreError(f"velocity must be 1-127, got {self.velocity}")

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Track:
    """A part of the band: GM program (0-127), drum flag (MIDI channel 10) and sorted notes."""

    name: str
    role: str = "lead"
    program: int = 0
    is_drum: bool = False
    notes: tuple[Note, ...] = ()
    volume: int = 100  # MIDI CC7, lets the arranger balance parts
    pan: int = 64  # MIDI CC10

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ScoreError(f"track role must be one of {ROLES}, got {self.role!r}")
        if not 0 <= self.program <= 127:
            raise ScoreError(f"program must be 0-127, got {self.program}")
        for v, what in ((self.volume, "volume"), (self.pan, "pan")):
            if not 0 <= v <= 127:
                raise ScoreError(f"{what} must be 0-127, got {v}")
        object.__setattr__(self, "notes", tuple(sorted(self.notes)))


@dataclass(frozen=True, slots=True)
class ChordEvent:
    """A chord symbol sounding from ``start`` for ``duration`` ticks."""

    start: int
    duration: int
    chord: Chord

    def __post_init__(self) -> None:
        if self.start < 0 or self.duration <= 0:
            raise ScoreError(f"bad chord span start={self.start} duration={self.duration}")

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Score:
    """A piece: tempo, meter, key, length in bars, tracks and a chord timeline."""

    tracks: tuple[Track, ...] = ()
    chords: tuple[ChordEvent, ...] = ()
    resolution: int = GRID
    tempo: float = 120.0
    time_signature: Meter = COMMON_TIME
    key: Key = field(default_factory=lambda: Key(0))
    bars: int = 0
    style: str | None = None

    def __post_init__(self) -> None:
        if self.resolution <= 0:
            raise ScoreError("resolution must be positive")
        if not 10.0 <= self.tempo <= 400.0:
            raise ScoreError(f"tempo must be 10-400 bpm, got {self.tempo}")
        if type(self.time_signature) is not Meter:  # (4, 4) from a caller
            object.__setattr__(self, "time_signature", Meter.parse(self.time_signature))
        num, den = self.time_signature
        if num < 1 or num > 32 or den not in (1, 2, 4, 8, 16, 32):
            raise ScoreError(f"bad time signature {num}/{den}")
        if self.bars < 0:
            raise ScoreError("bars must be >= 0")
        object.__setattr__(self, "chords", tuple(sorted(self.chords, key=lambda c: c.start)))

    @property
    def bar_ticks(self) -> int:
        """Length of one bar in ticks."""
        return bar_ticks(self.time_signature, self.resolution)

    @property
    def beat_ticks(self) -> int:
        """Length of the counted beat (a dotted quarter in compound meters like 6/8)."""
        num, den = self.time_signature
        if den == 8 and num % 3 == 0 and num > 3:
            return self.resolution * 3 // 2
        return self.resolution * 4 // den

    @property
    def length_ticks(self) -> int:
        """Nominal length: bars * bar length (notes may ring past it)."""
        return self.bars * self.bar_ticks

    @property
    def seconds_per_tick(self) -> float:
        return 60.0 / (self.tempo * self.resolution)

    @property
    def duration_seconds(self) -> float:
        return self.length_ticks * self.seconds_per_tick

    def track(self, role: str) -> Track | None:
        return next((t for t in self.tracks if t.role == role), None)

    def chord_at(self, tick: int) -> Chord | None:
        current = None
        for ev in self.chords:
            if ev.start <= tick:
                current = ev.chord
            else:
                break
        return current

    def with_tracks(self, tracks: tuple[Track, ...]) -> Score:
        return replace(self, tracks=tracks)

    def note_count(self) -> int:
        return sum(len(t.notes) for t in self.tracks)
