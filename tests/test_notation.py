"""Inline notes syntax: documented examples, pitches and lengths, errors, warnings, round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cadenza.music.notation as notation
from cadenza.music.notation import NotationError, format_notes, parse_notes
from cadenza.music.score import GRID, Meter, Note, Score, Track


def notes(text: str, **kw: object) -> list[tuple[int, int, int]]:
    score = parse_notes(text, **kw)  # type: ignore[arg-type]
    return [(n.start, n.duration, n.pitch) for n in score.tracks[0].notes]


def error(text: str, **kw: object) -> str:
    with pytest.raises(NotationError) as err:
        parse_notes(text, **kw)  # type: ignore[arg-type]
    return str(err.value)


def test_every_documented_example_parses() -> None:
    examples = re.findall(r'notes:"([^"]*)"', notation.__doc__ or "")
    assert len(examples) >= 5
    for text in examples:
        score = parse_notes(f'notes:"{text}"')
        assert score.tracks[0].notes and score.tracks[0].role == "lead"


def test_the_basic_example() -> None:
    warnings: list[str] = []
    score = parse_notes('notes:"C4/8 E4/8 G4/4 | A4/2"', warnings=warnings)
    assert isinstance(score, Score) and score.resolution == GRID and score.bars == 2
    # The short first bar is a pickup into the A on the downbeat of bar 2.
    assert [(n.start, n.duration, n.pitch) for n in score.tracks[0].notes] == [
        (24, 6, 60), (30, 6, 64), (36, 12, 67), (48, 24, 69),
    ]
    assert warnings == ["read bar 1 as a pickup of 2 quarters"]
    assert all(n.velocity == notation.DEFAULT_VELOCITY for n in score.tracks[0].notes)


def test_lengths_dots_triplets_rests_and_the_default_length() -> None:
    assert notes("C4 D E/8 F G/2. A/4.. B/16 C/16t") == [
        (0, 12, 60), (12, 12, 62), (24, 6, 64), (30, 6, 65), (36, 36, 67), (72, 21, 69),
        (93, 3, 71), (96, 2, 72),
    ]
    assert notes("c4/8t d e f/1") == [(0, 4, 60), (4, 4, 62), (8, 4, 64), (12, 48, 65)]
    assert notes("r/8 C4 rest/4 D") == [(6, 6, 60), (24, 12, 62)]  # rests set the length too


def test_octaves_nearest_rule_and_accidentals() -> None:
    assert [p for _, _, p in notes("C E G C B3 C G")] == [60, 64, 67, 72, 59, 60, 55]
    assert [p for _, _, p in notes("A3 C#")] == [57, 61]  # C# is a third above, not a sixth below
    assert [p for _, _, p in notes("F#4 Bb C## Dbb Cb4 B#3")] == [66, 70, 74, 72, 59, 60]
    assert [p for _, _, p in notes("c-1 g9")] == [0, 127]
    assert [p for _, _, p in notes("b")] == [71]  # first note: octave 4


def test_case_commas_unicode_and_prefix_variants() -> None:
    expected = [(0, 6, 61), (6, 6, 63), (12, 12, 65)]
    for text in (
        "C#4/8, D#/8, F/4",
        "c#4/8 d#/8 f/4",
        "notes: 'C♯4/8 E♭/8 F/4'",
        "NOTES=“c#4/8,d#4/8,f4/4”",
        "  c#4/8   d#/8\tf/4  ",
    ):
        assert notes(text) == expected, text


def test_ties_join_notes_across_bar_lines() -> None:
    warnings: list[str] = []
    got = notes("G4/2 C5/2~ | C5/4 D5/4~ D5/8 r/8 E5/4", warnings=warnings)
    assert got == [(0, 24, 67), (24, 36, 72), (60, 18, 74), (84, 12, 76)]
    assert warnings == []
    warnings.clear()
    assert notes("C4/4~ D4 E4~ r F4~", warnings=warnings) == [
        (0, 12, 60), (12, 12, 62), (24, 12, 64), (48, 12, 65),
    ]
    assert warnings == [
        "token 2: a tie joins notes of the same pitch; 'D4' is new",
        "token 4: a tie needs a note of the same pitch after it",
        "the last note has a tie with nothing after it",
    ]


def test_bar_lines_are_checked_loosely() -> None:
    warnings: list[str] = []
    notes("C D E F G A B C5 D5", warnings=warnings)  # no bar lines: nothing to check
    assert warnings == []
    got = notes("C D E F | G A B | C5/1 | D5/4 E5/4", warnings=warnings)
    assert len(got) == 10 and got[-1] == (144, 12, 76)  # as written: no padding
    assert warnings == ["bar 2 adds up to 3 quarters; 4/4 needs 4"]  # the last bar may be short
    warnings.clear()
    notes("C4/8 D E F G A | B C5 D E F G | A B", meter=Meter(6, 8), warnings=warnings)
    assert warnings == []
    notes("C4/2 D/2 | E/2 F/2 G/2", warnings=warnings)
    assert warnings == ["bar 2 adds up to 6 quarters; 4/4 needs 4"]
    warnings.clear()
    notes("| C4 D E | | F G A |", meter=Meter(3, 4), warnings=warnings)  # empty bars are ignored
    assert warnings == []


def test_pickup_and_bars() -> None:
    score = parse_notes("G4/8 G | A/4 G C5 | B4/2", meter=Meter(3, 4))
    assert score.time_signature == (3, 4) and score.bars == 3
    assert [n.start for n in score.tracks[0].notes][:3] == [24, 30, 36]  # pickup on beat 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("C4/8 E4/8 H4/8", "can't read 'H4/8' (token 3): pitch letters are A-G (r for a rest)"),
        ("C4 /8", "can't read '/8' (token 2): a length goes right after its note, like C4/8"),
        ("C4 | 4/8", "can't read '4/8' (token 3): a note starts with a pitch letter A-G"),
        ("C4/7", "can't read 'C4/7' (token 1): the length after / must be 1, 2, 4, 8, 16 or 32"),
        (
            "C4/32",
            "can't read 'C4/32' (token 1): that length is finer than the grid of 12 steps per "
            "quarter note (the shortest are /16, /16t and /32t)",
        ),
        ("E/16.", "can't read 'E/16.' (token 1): that length is finer than the grid of 12 "
                  "steps per quarter note (the shortest are /16, /16t and /32t)"),
        ("C4/4...", "can't read 'C4/4...' (token 1): at most two dots"),
        ("C4/8x", "can't read 'C4/8x' (token 1): write a length like /4, /8. or /8t"),
        ("Cx4", "can't read 'Cx4' (token 1): write notes like C4/8, F#/4. or Bb3/8t, and rests "
                "like r/4"),
        ("C10", "can't read 'C10' (token 1): octaves go from -1 to 9"),
        ("G#9", "can't read 'G#9' (token 1): that pitch is outside the MIDI range (C-1 to G9)"),
        ("Cbb-1", "can't read 'Cbb-1' (token 1): that pitch is outside the MIDI range (C-1 to G9)"),
        ("", 'no notes given; try notes:"C4/8 E4/8 G4/4"'),
        ('notes:""', 'no notes given; try notes:"C4/8 E4/8 G4/4"'),
        ("| |", 'no notes given; try notes:"C4/8 E4/8 G4/4"'),
        ("r/2 r/2", "the motif has only rests; it needs at least one note"),
        ("C4/1 " * 17, "the motif is longer than 16 bars (the limit)"),
        ("Q" * 30, "can't read 'QQQQQQQQQQQQQQQQQQQQQ...' (token 1): pitch letters are A-G (r for "
                   "a rest)"),
        ("C " * 1500, "the notes are 3,000 characters; the limit is 2,000"),
    ],
)
def test_errors_name_the_token(text: str, message: str) -> None:
    assert error(text) == message


def test_error_carries_the_token_index_and_is_a_value_error() -> None:
    with pytest.raises(ValueError) as err:
        parse_notes("C D E H")
    assert isinstance(err.value, NotationError) and err.value.token == 4


def test_limits_and_meters() -> None:
    assert len(notes("C4/1 " * 4, max_bars=4)) == 4
    assert error("C4/1 " * 5, max_bars=4) == "the motif is longer than 4 bars (the limit)"
    assert parse_notes("C D E F G A", meter=Meter(3, 4)).bars == 2
    assert error("C", meter=Meter(5, 6)) == "unsupported meter 5/6"
    assert error("C", meter=Meter(0, 4)) == "unsupported meter 0/4"


# ---------------------------------------------------------------- formatting


def track(*spec: tuple[int, int, int]) -> Track:
    return Track(name="t", notes=tuple(Note(s, d, p) for s, d, p in spec))


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (((0, 6, 60), (6, 6, 64), (12, 12, 67), (24, 24, 69)), "C4/8 E4 G4/4 A4/2"),
        (((12, 12, 62), (36, 48, 64)), "r D4 r E4~ | E4/2."),
        (((0, 4, 67), (4, 4, 67), (8, 4, 67), (12, 36, 72)), "G4/8t G4 G4 C5/2."),
        (((0, 18, 61), (18, 6, 70), (24, 3, 0), (27, 3, 127)), "C#4/4. A#4/8 C-1/16 G9"),
        (((0, 60, 55),), "G3/1~ | G3/4"),
    ],
)
def test_format_literal_examples_and_round_trip(spec: tuple, text: str) -> None:
    written = format_notes(track(*spec))
    assert written == text
    assert notes(written) == list(spec)


def test_format_in_other_meters_and_resolutions() -> None:
    line = track((0, 18, 67), (18, 6, 69), (24, 12, 71), (36, 36, 72))
    assert format_notes(line, meter=Meter(6, 8)) == "G4/4. A4/8 B4/4 | C5/2."
    assert notes(format_notes(line, meter=Meter(6, 8)), meter=Meter(6, 8)) == [
        (n.start, n.duration, n.pitch) for n in line.notes
    ]
    at_480 = Track(name="t", notes=(Note(0, 240, 60), Note(240, 480, 62)))
    assert format_notes(at_480, resolution=480) == "C4/8 D4/4"
    with pytest.raises(NotationError, match="off the grid"):
        format_notes(Track(name="t", notes=(Note(0, 7, 60),)), resolution=480)


def test_format_makes_chords_and_overlaps_monophonic() -> None:
    chordal = track((0, 24, 60), (0, 24, 67), (12, 24, 72))
    assert format_notes(chordal) == "G4 C5/2"


@st.composite
def lines(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], tuple[int, int]]:
    meter = Meter(*draw(st.sampled_from([(4, 4), (3, 4), (6, 8), (2, 2), (5, 8), (7, 4)])))
    pos = 0
    out = []
    for _ in range(draw(st.integers(1, 24))):
        pos += draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4, 6, 12, 18, 30]))
        length = draw(st.integers(1, 60))
        out.append((pos, length, draw(st.integers(0, 127))))
        pos += length
    return out, meter


@given(lines())
@settings(max_examples=200, deadline=None)
def test_round_trip_of_random_monophonic_lines(case: tuple) -> None:
    spec, meter = case
    written = format_notes(track(*spec), meter=meter)
    end = spec[-1][0] + spec[-1][1]
    bars = -(-end // (GRID * 4 * meter[0] // meter[1]))
    warnings: list[str] = []
    got = notes(written, meter=meter, max_bars=bars, warnings=warnings)
    assert got == spec, written
    assert warnings == [], written


# ---------------------------------------------------------------- fuzzing

SYNTAX = st.text(alphabet="abcdefghrCDEGB#b0123456789-/.t~|, \n", max_size=200)
# Mostly well-formed tokens (most random text is refused), so the round trip below is exercised.
TOKEN = st.builds(
    "".join,
    st.tuples(
        st.sampled_from([*"abcdefgABCDEFG", "r", "rest"]), st.sampled_from(["", "#", "b", "##"]),
        st.sampled_from(["", "", "-1", "0", "3", "4", "5", "9"]),
        st.sampled_from(["", "", "/1", "/2", "/4", "/8", "/16", "/32", "/4.", "/8..", "/8t"]),
        st.sampled_from(["", "", "~"]),
    ),
)
TOKENS = st.lists(st.one_of(TOKEN, TOKEN, TOKEN, st.just("|")), min_size=1, max_size=40).map(
    " ".join)


@given(st.one_of(st.text(max_size=300), SYNTAX, TOKENS))
@settings(max_examples=300, deadline=None)
def test_fuzz_only_notation_errors_escape(text: str) -> None:
    try:
        score = parse_notes(text)
    except NotationError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert score.tracks[0].notes and score.bars <= 16
        # whatever parses is written back as the same line (format_notes: the inverse)
        written = format_notes(score.tracks[0])
        assert notes(written) == [(n.start, n.duration, n.pitch) for n in score.tracks[0].notes]
