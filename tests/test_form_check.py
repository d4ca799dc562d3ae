"""The form measure of the evaluation: returning sections against their earlier statement and
against the other sections, on hand-made melodies with known repetition."""

from __future__ import annotations

import math

import pytest

from cadenza.evaluation.form_check import FORM_CLIPS, measure_form, return_similarity
from cadenza.music.form import lay_out

BAR = 48


def _phrase(bar0: int, pitches: list[list[int]]) -> list[tuple[int, int, int]]:
    """Quarter notes: one list of pitches per bar, from bar ``bar0``."""
    return [((bar0 + b) * BAR + 12 * i, 12, p) for b, bar in enumerate(pitches)
            for i, p in enumerate(bar)]


A = [[60, 62, 64, 65], [67, 65, 64, 62]]
B = [[72, 71, 69, 67], [65, 64, 62, 60]]


def test_a_section_brought_back_is_the_same_and_the_others_are_not() -> None:
    notes = _phrase(0, A) + _phrase(2, A) + _phrase(4, B) + _phrase(6, A)
    got = return_similarity(notes, BAR, lay_out("aaba", 8), 8)
    assert got["same"] == 1.0 and got["exact"] == 1.0 and got["same_rhythm"] == 1.0
    assert got["other"] == 0.0  # no (position, pitch) of A's bars is in B's
    assert got["other_rhythm"] == 1.0  # ... though both are four quarter notes
    assert math.isnan(got["varied"])  # every return a copy: none changed to measure


def test_a_varied_return_counts_what_it_kept() -> None:
    varied = [[60, 62, 64, 67], [67, 65, 64, 62]]  # one note of four changed in bar 1
    notes = _phrase(0, A) + _phrase(2, varied) + _phrase(4, B) + _phrase(6, B)
    got = return_similarity(notes, BAR, lay_out("aabb", 8), 8)
    # bar 2: 3 shared of 5 onsets; bar 3 and the second B's bars: equal to their echo
    assert got["same"] == pytest.approx((3 / 5 + 1 + 1 + 1) / 4)
    assert got["exact"] == pytest.approx(3 / 4)
    assert got["varied"] == pytest.approx(3 / 5)  # what the one changed bar kept


def test_only_copies_and_new_bars_leave_nothing_varied() -> None:
    fresh = [[48, 50, 52, 53], [55, 53, 52, 50]]  # the second A: nothing of the first
    notes = _phrase(0, A) + _phrase(2, fresh) + _phrase(4, B) + _phrase(6, B)
    got = return_similarity(notes, BAR, lay_out("aabb", 8), 8)
    assert got["exact"] == pytest.approx(2 / 4) and got["varied"] == 0.0


def test_no_returning_section_gives_no_figure() -> None:
    got = return_similarity(_phrase(0, A + B), BAR, lay_out("ab", 4), 4)
    assert math.isnan(got["same"]) and math.isnan(got["other"])


def test_measure_form_composes_each_style_in_its_long_form(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    from cadenza.service import Composer

    got = measure_form(Composer(tiny_registry), "lstm", "blues", 2, seed=0)
    assert (got["form"], got["bars"], got["clips"]) == ("aab", 12, 2) == (*FORM_CLIPS["blues"], 2)
    assert 0.0 <= got["same"] <= 1.0 and 0.0 <= got["other"] <= 1.0
