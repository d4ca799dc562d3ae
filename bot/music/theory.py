"""Pitch classes, keys and chord symbols: plain data shared by models, arranger and renderer."""

from __future__ import annotations

import re
from dataclasses import dataclass

PITCH_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Keys whose conventional spelling uses flats (major tonic pcs / minor tonic pcs).
_FLAT_MAJOR = {5, 10, 3, 8, 1, 6}
_FLAT_MINOR = {2, 7, 0, 5, 10, 3}

# Chord qualities: intervals above the root. The first block is what the sequence models
# see (CORE_QUALITIES); the extended ones are colour the arranger voices and are reduced
# to a core quality for tokens.
QUALITY_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    # extended (arranger colour)
    "6": (0, 4, 7, 9),
    "m6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14),
    "m9": (0, 3, 7, 10, 14),
    "13": (0, 4, 7, 10, 14, 21),
    "7#9": (0, 4, 7, 10, 15),
    # the colours real jazz charts use (Jazz Chord Progressions Corpus, Weimar Jazz Database)
    "69": (0, 4, 7, 9, 14),
    "m69": (0, 3, 7, 9, 14),
    "add9": (0, 4, 7, 14),
    "m11": (0, 3, 7, 10, 14, 17),
    "mmaj7": (0, 3, 7, 11),
    "maj7#11": (0, 4, 7, 11, 18),
    "maj7#5": (0, 4, 8, 11),
    "7b9": (0, 4, 7, 10, 13),
    "7#11": (0, 4, 7, 10, 18),
    "9#11": (0, 4, 7, 10, 14, 18),
    "13b9": (0, 4, 7, 10, 13, 21),
    "13#11": (0, 4, 7, 10, 18, 21),
    "7#5": (0, 4, 8, 10),
    "7b5": (0, 4, 6, 10),
    "7#5#9": (0, 4, 8, 10, 15),
    "7#5b9": (0, 4, 8, 10, 13),
    "7alt": (0, 4, 10, 13, 15, 20),
    "7sus4": (0, 5, 7, 10),
    "9sus4": (0, 5, 7, 10, 14),
    "7b9sus4": (0, 5, 7, 10, 13),
}
CORE_QUALITIES: tuple[str, ...] = (
    "maj", "min", "dim", "aug", "sus4", "7", "maj7", "m7", "m7b5", "dim7",
)
# the home (tonic) chord of a minor key: a minor third and a perfect fifth, no dominant pull
MINOR_TONIC_QUALITIES = frozenset({"min", "m7", "m6", "m9", "m69", "m11", "mmaj7"})
# the styles that come home on a dominant seventh, and the ones they do (I7, I9, I13, the
# I7#9 of the blues' blue third): no altered ninth or raised eleventh, which pull on
DOMINANT_HOME_STYLES = frozenset({"blues"})
_HOME_DOMINANTS = frozenset({"7", "9", "13", "7#9"})


def is_dominant_seventh(quality: str) -> bool:
    """A major third under a minor seventh (G7, G9, G13b9, G7alt)."""
    iv = QUALITY_INTERVALS[quality]
    return 4 in iv and 10 in iv


def rests(quality: str, mode: str, style: str | None = None) -> bool:
    """Whether a tonic chord of ``quality`` ends a piece of ``style`` in ``mode`` at rest: in
    minor one of MINOR_TONIC_QUALITIES; in major a major third and a perfect fifth without a
    dominant seventh, which leads on to IV (I, I6, Imaj7, I69, Iadd9), save a blues' (one of
    DOMINANT_HOME_STYLES) plain I7, I9, I13 and I7#9."""
    if mode == "minor":
        return quality in MINOR_TONIC_QUALITIES
    iv = QUALITY_INTERVALS[quality]
    if is_dominant_seventh(quality):
        return style in DOMINANT_HOME_STYLES and quality in _HOME_DOMINANTS
    return 4 in iv and 7 in iv


_REDUCE = {
    "6": "maj", "m6": "min", "9": "7", "maj9": "maj7", "m9": "m7", "13": "7", "7#9": "7",
    "69": "maj", "m69": "min", "add9": "maj", "m11": "m7", "mmaj7": "min", "maj7#11": "maj7",
    "maj7#5": "aug", "7b9": "7", "7#11": "7", "9#11": "7", "13b9": "7", "13#11": "7", "7#5": "7",
    "7b5": "7", "7#5#9": "7", "7#5b9": "7", "7alt": "7", "7sus4": "sus4", "9sus4": "sus4",
    "7b9sus4": "sus4",
}
_SUFFIX = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus4": "sus4", "7": "7",
    "maj7": "maj7", "m7": "m7", "m7b5": "m7b5", "dim7": "dim7", "6": "6", "m6": "m6",
    "9": "9", "maj9": "maj9", "m9": "m9", "13": "13", "7#9": "7#9",
    **{q: q for q in ("69", "m69", "add9", "m11", "maj7#11", "maj7#5", "7b9", "7#11", "9#11",
                      "13b9", "13#11", "7#5", "7b5", "7#5#9", "7#5b9", "7alt", "7sus4", "9sus4",
                      "7b9sus4")},
    "mmaj7": "m(maj7)",
}
_SUFFIX_ALIASES = {
    "": "maj", "M": "maj", "maj": "maj", "m": "min", "min": "min", "-": "min",
    "dim": "dim", "o": "dim", "aug": "aug", "+": "aug", "sus4": "sus4", "sus": "sus4",
    "7": "7", "dom7": "7", "maj7": "maj7", "M7": "maj7", "m7": "m7", "min7": "m7", "-7": "m7",
    "m7b5": "m7b5", "ø": "m7b5", "ø7": "m7b5", "dim7": "dim7", "o7": "dim7", "6": "6",
    "m6": "m6", "9": "9", "maj9": "maj9", "m9": "m9", "13": "13", "7#9": "7#9",
    "m(maj7)": "mmaj7", "mmaj7": "mmaj7", "7+": "7#5", "aug7": "7#5",
}
_SUFFIX_ALIASES.update({suffix: q for q, suffix in _SUFFIX.items()})  # every name round-trips


class TheoryError(ValueError):
    """A pitch, key or chord spelling that cannot be understood."""


def parse_pitch_class(text: str) -> int:
    """'C' -> 0, 'F#' -> 6, 'Bb' -> 10 (case-insensitive letter, '#'/'b' accidentals)."""
    m = re.fullmatch(r"([A-Ga-g])([#b]*)", text.strip())
    if not m:
        raise TheoryError(f"not a pitch name: {text!r}")
    pc = _LETTER_PC[m.group(1).upper()]
    pc += m.group(2).count("#") - m.group(2).count("b")
    return pc % 12


def pitch_name(midi: int) -> str:
    """MIDI number to scientific pitch name (60 -> 'C4')."""
    return f"{PITCH_NAMES_SHARP[midi % 12]}{midi // 12 - 1}"


@dataclass(frozen=True, slots=True)
class Key:
    """A tonal centre: tonic pitch class and mode ('major' or 'minor')."""

    tonic: int
    mode: str = "major"

    def __post_init__(self) -> None:
        if not 0 <= self.tonic < 12:
            raise TheoryError(f"tonic must be a pitch class 0-11, got {self.tonic}")
        if self.mode not in ("major", "minor"):
            raise TheoryError(f"mode must be major or minor, got {self.mode!r}")

    @property
    def name(self) -> str:
        flats = _FLAT_MINOR if self.mode == "minor" else _FLAT_MAJOR
        names = PITCH_NAMES_FLAT if self.tonic in flats else PITCH_NAMES_SHARP
        return names[self.tonic] + ("m" if self.mode == "minor" else "")

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the scale (natural minor for minor keys)."""
        steps = (0, 2, 4, 5, 7, 9, 11) if self.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
        return tuple((self.tonic + s) % 12 for s in steps)

    def spell(self, pc: int) -> str:
        flats = _FLAT_MINOR if self.mode == "minor" else _FLAT_MAJOR
        return (PITCH_NAMES_FLAT if self.tonic in flats else PITCH_NAMES_SHARP)[pc % 12]

    def transpose(self, semitones: int) -> Key:
        return Key((self.tonic + semitones) % 12, self.mode)

    @classmethod
    def parse(cls, text: str) -> Key:
        """'C', 'Am', 'F#m', 'Bb', 'Eb minor', 'c# min' -> Key."""
        t = text.strip()
        m = re.fullmatch(r"([A-Ga-g][#b]?)\s*(m|min|minor|maj|major|M)?", t)
        if not m:
            raise TheoryError(f"not a key: {text!r} (try C, Am, F#m, Bb)")
        mode = "minor" if m.group(2) in ("m", "min", "minor") else "major"
        return cls(parse_pitch_class(m.group(1)), mode)


ALL_KEYS: tuple[Key, ...] = tuple(
    Key(pc, mode) for mode in ("major", "minor") for pc in range(12)
)


@dataclass(frozen=True, slots=True)
class Chord:
    """A chord symbol: root pitch class and a quality from QUALITY_INTERVALS."""

    root: int
    quality: str = "maj"

    def __post_init__(self) -> None:
        if not 0 <= self.root < 12:
            raise TheoryError(f"chord root must be 0-11, got {self.root}")
        if self.quality not in QUALITY_INTERVALS:
            raise TheoryError(f"unknown chord quality {self.quality!r}")

    @property
    def intervals(self) -> tuple[int, ...]:
        return QUALITY_INTERVALS[self.quality]

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in self.intervals)

    def reduced(self) -> Chord:
        """The core-quality chord the sequence models see."""
        return Chord(self.root, _REDUCE.get(self.quality, self.quality))

    def transpose(self, semitones: int) -> Chord:
        return Chord((self.root + semitones) % 12, self.quality)

    def name(self, key: Key | None = None) -> str:
        root = spell_root(self.root, key) if key else PITCH_NAMES_SHARP[self.root]
        return root + _SUFFIX[self.quality]

    def __str__(self) -> str:
        return self.name()

    @classmethod
    def parse(cls, text: str) -> Chord:
        """'Dm7' -> Chord(2, 'm7'); 'Bb7', 'F#m7b5', 'Cmaj7', 'G' ..."""
        m = re.fullmatch(r"([A-G][#b]?)(.*)", text.strip())
        if not m or m.group(2) not in _SUFFIX_ALIASES:
            raise TheoryError(f"not a chord symbol: {text!r}")
        return cls(parse_pitch_class(m.group(1)), _SUFFIX_ALIASES[m.group(2)])


def spell_root(pc: int, key: Key) -> str:
    """A chord root's name in a key: diatonic roots as the key spells them; borrowed roots the
    way lead sheets write them (bII, bIII, bVI, bVII with flats; #IV with a sharp)."""
    if pc in key.scale:
        return key.spell(pc)
    interval = (pc - key.tonic) % 12
    return (PITCH_NAMES_SHARP if interval == 6 else PITCH_NAMES_FLAT)[pc]


def roman(key: Key, degree: int, quality: str) -> Chord:
    """Chord on a scale degree (1-7) of key, e.g. roman(C, 5, '7') -> G7."""
    return Chord(key.scale[(degree - 1) % 7], quality)


def fold_pitch(pitch: int, lowest: int, highest: int) -> int:
    """``pitch`` moved by whole octaves into ``lowest`` .. ``highest`` (inclusive; the range
    spans at least an octave): tokens, piano rolls and VAE steps each fold into their own."""
    while pitch < lowest:
        pitch += 12
    while pitch > highest:
        pitch -= 12
    return pitch
