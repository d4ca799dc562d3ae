"""Form choruses: a solo's own bars laid out as a head's AABA or AAB, chords with their notes."""

from __future__ import annotations

from cadenza.models.training.corpus import Piece
from cadenza.models.training.form_choruses import form_choruses
from cadenza.music.theory import Key

BAR = 48


def solo(style: str, bars: int) -> Piece:
    """One note a bar, pitch 60 + bar; a chord a bar named after its bar."""
    notes = tuple((b * BAR, 12, 60 + b) for b in range(bars))
    chords = tuple((b * BAR, ("C7", "F7", "G7", "Dm7")[b % 4]) for b in range(bars))
    return Piece(f"test/{style}", style, (4, 4), Key(0), bars, notes, chords)


def test_a_jazz_solo_becomes_aaba_with_a_new_ending_for_the_second_a() -> None:
    [c] = form_choruses(solo("jazz", 24))
    assert c.bars == 32 and c.style == "jazz"
    played = [p - 60 for _, _, p in c.notes]  # which solo bar each chorus bar came from
    assert played == [*range(8), *range(6), 22, 23, *range(8, 16), *range(8)]
    assert c.melody_form()[1][8:14] == [8] * 6 and c.melody_form()[1][16:24] == [0] * 8
    # each bar keeps its own chord (bar b of the solo had chord b % 4)
    names = dict(c.chords)
    assert names[8 * BAR] == "C7" and names[14 * BAR] == "G7" and names[15 * BAR] == "Dm7"


def test_a_blues_solo_becomes_aab_its_first_line_again_over_the_iv_bars() -> None:
    [c] = form_choruses(solo("blues", 12))
    assert c.bars == 12
    assert [p - 60 for _, _, p in c.notes] == [0, 1, 2, 3, 0, 1, 2, 7, 8, 9, 10, 11]
    assert dict(c.chords)[4 * BAR] == "C7"  # bar 5's own chord, under the first line's bar 1
    assert c.melody_form()[1][4:8] == [4] * 4


def test_a_long_solo_gives_one_chorus_per_chorus_it_plays() -> None:
    # blues: bars 0-11, 12-23, 24-35 (36-40 are too few for a fourth)
    blues = form_choruses(solo("blues", 41))
    assert [c.notes[0][2] - 60 for c in blues] == [0, 12, 24]
    assert [p - 60 for _, _, p in blues[1].notes] == [12, 13, 14, 15, 12, 13, 14, 19, 20, 21,
                                                     22, 23]
    assert all(c.melody_form()[1][4:8] == [4] * 4 for c in blues)
    # jazz: from bars 0 and 32; the second has 20 bars, so its A keeps its own ending
    jazz = form_choruses(solo("jazz", 52))
    assert len(jazz) == 2 and all(c.bars == 32 for c in jazz)
    assert [p - 60 for _, _, p in jazz[1].notes][:16] == [*range(32, 40), *range(32, 40)]


def test_other_styles_short_solos_and_silent_choruses_have_none() -> None:
    assert form_choruses(solo("jazz", 15)) == []
    assert form_choruses(solo("folk", 32)) == []
    assert form_choruses(Piece("t", "blues", (4, 4), Key(0), 12, (), ())) == []
    # a solo silent in its second chorus gives the first only
    first = solo("blues", 12)
    assert len(form_choruses(Piece("t", "blues", (4, 4), Key(0), 24, first.notes,
                                   first.chords))) == 1


def test_choruses_start_where_the_sources_form_does_after_its_pickup() -> None:
    from dataclasses import replace

    # a blues solo of 2 pickup bars and two 12-bar choruses, its sections marked from bar 2
    solo_with_pickup = replace(solo("blues", 26), sections=((2, 12, "A"), (14, 12, "A")))
    got = form_choruses(solo_with_pickup)
    assert [c.notes[0][2] - 60 for c in got] == [2, 14]
    assert [p - 60 for _, _, p in got[0].notes] == [2, 3, 4, 5, 2, 3, 4, 9, 10, 11, 12, 13]
    # a section marked past the solo's end (a cue after its last bar) moves nothing
    stray = replace(solo("blues", 24), sections=((30, 0, "A"),))
    assert [c.notes[0][2] - 60 for c in form_choruses(stray)] == [0, 12]
