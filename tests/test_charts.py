"""Chord charts (Jazz Chord Progressions Corpus): symbols, beat sharing, keys, skipped files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cadenza.models.training.charts import (
    SUFFIX_QUALITY,
    ChartError,
    home_key,
    load_charts,
    load_files,
    parse_chart,
    parse_chord_symbol,
    split_bar,
)
from cadenza.music.theory import QUALITY_INTERVALS, Chord, Key

STYLE_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "style-corpus"

TUNE = """\
Title = Test Tune
ComposedBy = Nobody
DBKeySig = F
TimeSig = 4 4
Bars = 4
 Dm7 | G7 C7/E NC | Dm Dm A7 Dm | Gm7 C7 |
"""


def chart(body: str, *, key: str = "C", meter: str = "4 4", bars: int | None = None) -> str:
    n = body.count("|") if bars is None else bars
    return f"Title = T\nComposedBy = X\nDBKeySig = {key}\nTimeSig = {meter}\nBars = {n}\n{body}\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("NC", None),
    ("F", Chord(5, "maj")),
    ("BbM7", Chord(10, "maj7")),
    ("Em7", Chord(4, "m7")),
    ("F#m7b5", Chord(6, "m7b5")),
    ("Dh7", Chord(2, "m7b5")),
    ("Abo7", Chord(8, "dim7")),
    ("C#o", Chord(1, "dim")),
    ("A7+", Chord(9, "7#5")),
    ("G9+", Chord(7, "7#5")),
    ("Eb11", Chord(3, "9sus4")),
    ("B7sus", Chord(11, "7sus4")),
    ("Am+", Chord(9, "min")),
    ("C2", Chord(0, "add9")),
    ("D7b9#11", Chord(2, "7b9")),
    ("FM6", Chord(5, "6")),
    ("EmMaj7", Chord(4, "mmaj7")),
    ("Bb7sus4b9", Chord(10, "7b9sus4")),
    ("Cbm7", Chord(11, "m7")),
    ("C7/E", Chord(0, "7")),  # slash bass dropped
    ("FM7#5/Bb", Chord(5, "maj7#5")),
    ("Bb-6/F", Chord(10, "m6")),  # Impro-Visor's minor dash
    ("Cm(maj7)", Chord(0, "mmaj7")),  # the project's own name reads back
])
def test_chord_symbols_map_to_the_nearest_quality(text: str, expected: Chord | None) -> None:
    assert parse_chord_symbol(text) == expected


@pytest.mark.parametrize("text", ["H7", "Cxyz", "C7/", "C7/Q", "", "c7", "N.C."])
def test_unreadable_symbols_raise_chart_error(text: str) -> None:
    with pytest.raises(ChartError) as e:
        parse_chord_symbol(text)
    assert e.value.reason == "bad chord symbol"


def test_every_mapped_quality_exists() -> None:
    assert set(SUFFIX_QUALITY.values()) <= set(QUALITY_INTERVALS)


@pytest.mark.parametrize(("n", "meter", "onsets"), [
    (1, (4, 4), [0]),
    (2, (4, 4), [0, 24]),
    (3, (4, 4), [0, 24, 36]),  # 2+1+1 beats
    (4, (4, 4), [0, 12, 24, 36]),
    (2, (3, 4), [0, 24]),  # 2+1
    (2, (6, 8), [0, 18]),  # 3+3 eighths
    (2, (2, 2), [0, 24]),
    (8, (4, 4), [0, 6, 12, 18, 24, 30, 36, 42]),  # more chords than beats: the ticks are shared
    (5, (4, 4), [0, 10, 20, 30, 39]),  # 10+10+10+9+9 ticks
    (3, (5, 4), [0, 24, 48]),  # 2+2+1
])
def test_chords_share_the_beats_first_ones_longer(n: int, meter: tuple[int, int],
                                                  onsets: list[int]) -> None:
    assert split_bar(n, meter) == onsets


def test_literal_chart_bars_changes_and_minor_key() -> None:
    c = parse_chart(TUNE, "test.txt")
    assert (c.source, c.title, c.composer, c.meter) == ("test.txt", "Test Tune", "Nobody", (4, 4))
    dm7, g7, c7, dm, a7, gm7 = (Chord(2, "m7"), Chord(7, "7"), Chord(0, "7"), Chord(2, "min"),
                                Chord(9, "7"), Chord(7, "m7"))
    assert c.bars == (
        ((0, dm7),),
        ((0, g7), (24, c7), (36, None)),  # 3 chords in 4/4: 2+1+1; C7/E keeps C7; NC is None
        ((0, dm), (12, dm), (24, a7), (36, dm)),  # equal neighbours kept as written
        ((0, gm7), (24, c7)),
    )
    assert c.changes() == [(0, dm7), (48, g7), (72, c7), (84, None), (96, dm), (108, dm),
                           (120, a7), (132, dm), (144, gm7), (168, c7)]
    # F signature; from the end: Gm7 is no home chord, Dm on bar 3's downbeat is vi -> D minor
    assert c.key == Key(2, "minor")
    assert c.length_ticks == 192


@pytest.mark.parametrize(("key", "body", "expected"), [
    ("C", " C6 | Am7 D7 | Dm7 G7 |", Key(0)),  # Am7 D7 is the ii-V of G, not A minor
    ("Eb", " Cm | Fm7 | Dm7b5 G7 | Cm | Dm7b5 G7 |", Key(0, "minor")),
    ("F", " F7 | Bb7 | F7 | C7 |", Key(5)),  # blues: I7 is home
    ("Bb", " Cm7 | F7 | Cm7 | F7 |", Key(10)),  # no home chord: the signature's major
    ("U", " Cm7b9 | Dm7b9 | F9sus4 |", Key(5)),  # unknown: the last chord
    ("U", " Dm7 | G7 | Cm |", Key(0, "minor")),
])
def test_mode_rule(key: str, body: str, expected: Key) -> None:
    assert parse_chart(chart(body, key=key), "t.txt").key == expected


def test_home_key_looks_at_downbeats_only() -> None:
    am, g7, c = Chord(9, "min"), Chord(7, "7"), Chord(0, "maj")
    assert home_key(0, [[c], [g7, am]]) == Key(0)  # Am on beat 3 is a passing chord
    assert home_key(0, [[c], [am, g7]]) == Key(9, "minor")


def test_other_meters_bar_lengths() -> None:
    waltz = parse_chart(chart(" C G7 | C |", meter="3 4"), "w.txt")
    assert waltz.bars == (((0, Chord(0)), (24, Chord(7, "7"))), ((0, Chord(0)),))
    assert waltz.changes()[-1] == (36, Chord(0))
    six = parse_chart(chart(" Cm7 F7 | Cm7 |", meter="6 8"), "s.txt")
    assert six.changes() == [(0, Chord(0, "m7")), (18, Chord(5, "7")), (36, Chord(0, "m7"))]


@pytest.mark.parametrize(("text", "reason"), [
    (chart(" C | F | G7 |", bars=4), "bar count mismatch"),
    (chart(" C | F |", meter="4 3"), "unsupported time signature"),
    (chart(" C | F |", meter="four"), "unsupported time signature"),
    (chart(" C | F |", meter="4 \u00b2"), "unsupported time signature"),  # a digit int() refuses
    (chart(" C | F |").replace("Bars = 2", "Bars = \u00b2"), "bar count mismatch"),
    (chart(" C | Fxyz |"), "bad chord symbol"),
    (chart(" C | F | G7"), "malformed"),  # chords after the last bar line
    (chart(" C | | G7 |"), "empty bar"),
    ("", "empty"),
    ("Title = T\nTimeSig = 4 4\nBars = 1\n C |\n", "missing header"),
    ("just some words\n", "malformed"),
])
def test_bad_charts_raise_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ChartError) as e:
        parse_chart(text, "bad.txt")
    assert e.value.reason == reason


def test_load_charts_skips_and_counts(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(TUNE)
    (tmp_path / "mismatch.txt").write_text(chart(" C | F |", bars=3))
    (tmp_path / "garbage.txt").write_bytes(b"\x00\xff\xfe PK\x03\x04 binary junk\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "notes.md").write_text("ignored: not a .txt")
    charts, skipped = load_charts(tmp_path)
    assert [c.source for c in charts] == ["good.txt"]
    assert skipped == Counter({"bar count mismatch": 1, "malformed": 1, "empty": 1})


def test_a_parser_failure_it_did_not_foresee_skips_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("fine")
    (tmp_path / "b.txt").write_text("boom")

    def parse(text: str, source: str) -> str:
        if text == "boom":
            raise ValueError("an unforeseen case")
        return source

    found, skipped = load_files(tmp_path, "*.txt", parse)
    assert found == ["a.txt"]
    assert skipped == Counter({"parser error": 1})


def test_load_charts_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_charts(tmp_path / "absent")


@pytest.mark.skipif(not (STYLE_CORPUS / "jazz" / "chords" / "jcpc").is_dir(),
                    reason="style corpus absent")
def test_real_jazz_charts_parse() -> None:
    folder = STYLE_CORPUS / "jazz" / "chords" / "jcpc"
    files = len(list(folder.glob("*.txt")))
    charts, skipped = load_charts(folder)
    # measured on this copy: 2,243 files, 2,240 parse (113,854 changes, 74,847 bars); the 3
    # skipped say Bars = N but write another count (HeyThere, StraightLife-ArtPepper,
    # YouOughtaBeInPictures); 1,924 read as major, 316 as minor.
    assert skipped == Counter({"bar count mismatch": 3})
    assert len(charts) == files - 3 and len(charts) >= 0.99 * files
    by_name = {c.source: c for c in charts}
    blues = by_name["12-barBlues.txt"]
    assert blues.key == Key(5) and len(blues.bars) == 12
    assert blues.bars[1] == ((0, Chord(10, "13")), (24, Chord(11, "dim7")))  # Bb13 Bo7
    assert by_name["AutumnLeaves.txt"].key == Key(7, "minor")  # Bb signature, ends on Gm
    assert by_name["BlueBossa.txt"].key == Key(0, "minor")
    assert by_name["AllTheThingsYouAre.txt"].key == Key(8)
    assert by_name["IvoryForest.txt"].key == Key(5)  # DBKeySig = U, ends on F9sus4
    modes = Counter(c.key.mode for c in charts)
    assert modes["minor"] > 0.1 * len(charts) and modes["major"] > 0.7 * len(charts)


@pytest.mark.skipif(not (STYLE_CORPUS / "blues" / "chords" / "jcpc-blues").is_dir(),
                    reason="style corpus absent")
def test_real_blues_charts_parse() -> None:
    folder = STYLE_CORPUS / "blues" / "chords" / "jcpc-blues"
    charts, skipped = load_charts(folder)
    # measured: all 166 files parse; 153 are in 4/4
    assert skipped == Counter()
    assert len(charts) == len(list(folder.glob("*.txt")))
    assert sum(c.meter == (4, 4) for c in charts) > 0.9 * len(charts)
