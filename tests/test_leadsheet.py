"""Impro-Visor lead sheets: note tokens, chord bars, choruses, rounding and skipped files."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from cadenza.models.training.leadsheet import (
    LeadSheetError,
    load_leadsheets,
    parse_duration,
    parse_leadsheet,
    parse_note,
)
from cadenza.music.theory import Chord, Key

STYLE_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "style-corpus"

SHEET = """\
(title Test Blues)
(composer Nobody)
(meter 4 4)
(key -1)
(tempo 160.0)
(style swing
    (swing 0.67)
)
(part
    (type chords)
    (title )
    (key -1)
)

(section (style swing))

F7 | Bb7 / F7 / |
(phrase (style))
C7 Dm7 G7 | NC |

(part
    (type melody)
    (title Soloist)
    (key -1)
)
 r4 c8/3 d8/3 e8/3 f4+8 a8
 c+2 bb4. a8
 g4 r4 e32 f32 g8+32

(part
    (type melody)
)
 c-2+480 r2
"""


def sheet(chords: str, melody: str, *, head: str = "(meter 4 4) (key 0)") -> str:
    return f"{head}\n(part (type chords))\n{chords}\n(part (type melody))\n{melody}\n"


@pytest.mark.parametrize(("text", "quarters"), [
    ("4", Fraction(1)),
    ("1", Fraction(4)),
    ("32", Fraction(1, 8)),
    ("2+8", Fraction(5, 2)),
    ("8/3", Fraction(1, 3)),
    ("4/3+16/3", Fraction(2, 3) + Fraction(1, 6)),
    ("4.", Fraction(3, 2)),
    ("4..", Fraction(7, 4)),
    ("16/5", Fraction(1, 5)),  # five in the time of four sixteenths
    ("1+8+32+120+480", 4 + Fraction(1, 2) + Fraction(1, 8) + Fraction(1, 30) + Fraction(1, 120)),
])
def test_durations(text: str, quarters: Fraction) -> None:
    assert parse_duration(text) == quarters


@pytest.mark.parametrize(("token", "pitch", "quarters"), [
    ("c4", 60, Fraction(1)),
    ("c#+8", 73, Fraction(1, 2)),  # '+' before the digit is an octave mark
    ("f4+8", 65, Fraction(3, 2)),  # '+' after it joins durations
    ("c+2+4", 72, Fraction(3)),
    ("bb-4", 58, Fraction(1)),
    ("b8", 71, Fraction(1, 2)),  # the letter b, not a flat
    ("cb8", 59, Fraction(1, 2)),
    ("c++4/3", 84, Fraction(2, 3)),
    ("a8/3", 69, Fraction(1, 3)),
    ("g#--8", 44, Fraction(1, 2)),
    ("d#+++8", 99, Fraction(1, 2)),
    ("r2+8", None, Fraction(5, 2)),
    ("r8/3", None, Fraction(1, 3)),
])
def test_note_tokens(token: str, pitch: int | None, quarters: Fraction) -> None:
    assert parse_note(token) == (pitch, quarters)


@pytest.mark.parametrize("token", ["h4", "c", "c+", "c4/1", "c0", "c4+", "c+++++++4", "|", "x"])
def test_bad_note_tokens(token: str) -> None:
    with pytest.raises(LeadSheetError) as e:
        parse_note(token)
    assert e.value.reason == "bad note"


def test_literal_sheet() -> None:
    s = parse_leadsheet(SHEET, "Test/blues.ls")
    assert (s.source, s.title, s.meter, s.tempo) == ("Test/blues.ls", "Test Blues", (4, 4), 160.0)
    assert s.key == Key(5)  # one flat; F7 is the last home chord on a downbeat
    assert s.chorus_bars == 4 and s.bars == 8  # part 1 padded to its chorus, part 2 likewise
    assert s.melody == (
        (12, 4, 60), (16, 4, 62), (20, 4, 64),  # eighth-note triplet after a quarter rest
        (24, 18, 65), (42, 6, 69),  # f4+8 joined
        (48, 24, 72), (72, 18, 70), (90, 6, 69),  # c+ octave mark; dotted quarter
        (96, 12, 67),
        (120, 2, 64), (122, 1, 65), (123, 8, 67),  # 32nds are 1.5 ticks: 120-121.5-123-130.5
        (192, 24, 48),  # second part starts on the second chorus; 2+480 rounds to 24 ticks
    )
    f7, bb7, c7, dm7, g7 = (Chord(5, "7"), Chord(10, "7"), Chord(0, "7"), Chord(2, "m7"),
                            Chord(7, "7"))
    chorus = [(0, f7), (48, bb7), (72, f7), (96, c7), (120, dm7), (132, g7), (144, None)]
    assert s.chords == tuple(chorus + [(t + 192, c) for t, c in chorus])


def test_minor_key_and_ii_v() -> None:
    s = parse_leadsheet(sheet("Cm | Dm7b5 G7 |", "c1 b-1", head="(meter 4 4) (key -3)"), "m.ls")
    assert s.key == Key(0, "minor")
    assert s.melody == ((0, 48, 60), (48, 48, 59))
    assert s.chords == ((0, Chord(0, "min")), (48, Chord(2, "m7b5")), (72, Chord(7, "7")))


def test_slash_repeats_take_slots_without_new_changes_in_three_four() -> None:
    s = parse_leadsheet(sheet("G / D7 | / | Em |", "g2. r2. r2.", head="(meter 3 4) (key 1)"),
                        "w.ls")
    assert s.chords == ((0, Chord(7)), (24, Chord(2, "7")), (72, Chord(4, "min")))
    assert s.melody == ((0, 36, 67),)
    assert (s.bars, s.chorus_bars, s.key) == (3, 3, Key(4, "minor"))


def test_a_part_longer_than_a_chorus_fills_whole_choruses() -> None:
    text = sheet("C7 |", "c1 d2") + "(part (type melody))\ne1\n"
    s = parse_leadsheet(text, "p.ls")
    assert s.melody == ((0, 48, 60), (48, 24, 62), (96, 48, 64))
    assert s.bars == 3
    assert s.chords == ((0, Chord(0, "7")), (48, Chord(0, "7")), (96, Chord(0, "7")))


def test_notes_too_short_for_the_grid() -> None:
    alone = parse_leadsheet(sheet("C |", "c480 r4 e2"), "z.ls")
    assert alone.melody == ((0, 1, 60), (12, 24, 64))  # 0.1 tick -> one tick
    clash = parse_leadsheet(sheet("C |", "c480 d4"), "z.ls")
    assert clash.melody == ((0, 12, 62),)  # both onsets round to tick 0: the later note wins


@pytest.mark.parametrize(("text", "reason"), [
    (sheet("/ C |", "c1"), "bad chords"),
    (sheet("C | Hm7 |", "c1"), "bad chord symbol"),
    (sheet("C |", "c1 q4"), "bad note"),
    (sheet("C |", "r1 r2"), "no melody"),
    ("(meter 4 4) (key 0) (part (type chords)) C |", "no melody"),
    ("(meter 4 4) (key 0) (part (type melody)) c4", "no chords"),
    (sheet("C |", "c1", head="(meter 4 4 (key 0)"), "unbalanced parentheses"),
    (sheet("C |", "c1", head="(meter 4 4)) (key 0)"), "unbalanced parentheses"),
    (sheet("C |", "c1", head="(key 0)"), "missing header"),
    (sheet("C |", "c1", head="(meter 4 3) (key 0)"), "unsupported time signature"),
    ("(meter 4 4) (key 0) C | (part (type melody)) c4", "malformed"),
    ("", "empty"),
])
def test_bad_sheets_raise_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(LeadSheetError) as e:
        parse_leadsheet(text, "bad.ls")
    assert e.value.reason == reason


def test_load_leadsheets_recurses_skips_and_counts(tmp_path: Path) -> None:
    (tmp_path / "Parker").mkdir()
    (tmp_path / "Parker" / "good.ls").write_text(SHEET)
    (tmp_path / "Junk").mkdir()
    (tmp_path / "Junk" / "garbage.ls").write_bytes(b"\x00\xff\xfe PK\x03\x04 binary junk\n")
    (tmp_path / "open.ls").write_text("(title Never closed\n(meter 4 4)")
    (tmp_path / "notes.txt").write_text(SHEET)  # not a .ls
    sheets, skipped = load_leadsheets(tmp_path)
    assert [s.source for s in sheets] == ["Parker/good.ls"]
    assert skipped == Counter({"malformed": 1, "unbalanced parentheses": 1})


@pytest.mark.skipif(
    not (STYLE_CORPUS / "jazz" / "leadsheets" / "impro-visor-transcriptions").is_dir(),
    reason="style corpus absent")
def test_real_jazz_leadsheets_parse() -> None:
    folder = STYLE_CORPUS / "jazz" / "leadsheets" / "impro-visor-transcriptions"
    files = len(list(folder.rglob("*.ls")))
    sheets, skipped = load_leadsheets(folder)
    # measured on this copy: all 69 files parse: 30,048 notes over 5,153 bars (187 melody
    # parts, each exactly a whole number of choruses), 5,753 chord changes; 67 in 4/4, one 3/4
    # and one 5/4; pitches 44-106.
    assert skipped == Counter()
    assert len(sheets) == files
    assert sum(len(s.melody) for s in sheets) > 25_000
    for s in sheets:
        assert s.melody and s.chords and s.bars % s.chorus_bars == 0
        for (a, da, _), (b, _, _) in zip(s.melody, s.melody[1:], strict=False):
            assert a + da <= b  # monophonic, in order
        last = s.melody[-1]
        assert last[0] + last[1] <= s.bars * s.bar_ticks
    firm = next(s for s in sheets if s.source == "RoyHargrove/FirmRootsSoloRoyHargrove.ls")
    assert (firm.title, firm.tempo, firm.key, firm.chorus_bars, firm.bars) == (
        "Firm Roots", 184.0, Key(3), 88, 88)
    # r2 bb2 | g2 f4+8 d2+8 ...
    assert firm.melody[:4] == ((24, 24, 70), (48, 24, 67), (72, 18, 65), (90, 30, 62))
    assert firm.chords[:4] == ((0, Chord(5, "m7")), (48, Chord(10, "7")), (96, Chord(3, "maj7")),
                               (144, Chord(0, "7b9")))
    assert len(firm.melody) == 461


@pytest.mark.skipif(
    not (STYLE_CORPUS / "blues" / "leadsheets" / "impro-visor-transcriptions").is_dir(),
    reason="style corpus absent")
def test_real_blues_leadsheets_parse() -> None:
    folder = STYLE_CORPUS / "blues" / "leadsheets" / "impro-visor-transcriptions"
    sheets, skipped = load_leadsheets(folder)
    # measured: all 10 parse, 3,820 notes over 641 bars
    assert skipped == Counter()
    assert len(sheets) == len(list(folder.rglob("*.ls")))
    assert sum(len(s.melody) for s in sheets) > 3_000
