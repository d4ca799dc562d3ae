"""Form: member forms laid over bars, per-bar features, sections found from repetition, and the
repetition rate, on hand-made melodies with known answers."""

from __future__ import annotations

import math

import pytest

from cadenza.music.form import (
    FormError,
    bar_features,
    bar_onsets,
    default_form,
    echo_bars,
    echo_from_repeats,
    form_for,
    infer_sections,
    lay_out,
    parse_form,
    repetition_rate,
    section_letters,
)


def test_parse_form_normalises_and_refuses_what_cannot_be_a_form() -> None:
    assert parse_form(" AABA ") == "aaba"
    for bad, words in (("", "1-8 section letters"), ("aaxa", "1-8 section letters"),
                       ("abcdefgha", "1-8 section letters"), ("baba", "starts with section a"),
                       ("acab", "new sections come in order")):
        with pytest.raises(FormError, match=words):
            parse_form(bad)


def test_lay_out_splits_bars_evenly_or_says_why_not() -> None:
    assert lay_out("aaba", 32) == ((0, 8, "A"), (8, 8, "A"), (16, 8, "B"), (24, 8, "A"))
    assert section_letters(lay_out("aab", 12), 12) == "AAAAAAAABBBB"
    with pytest.raises(FormError, match="divisible by 4"):
        lay_out("aaba", 10)


@pytest.mark.parametrize("style", ["jazz", "blues", "folk", "celtic", "classical", "ragtime"])
def test_every_style_has_a_form_for_every_bar_count(style: str) -> None:
    for bars in range(1, 33):
        sections = form_for(style, bars)
        assert sum(length for _, length, _ in sections) == bars
        assert sections[0][0] == 0


def test_default_forms_follow_the_styles() -> None:
    assert default_form("jazz", 32) == "aaba"
    assert default_form("blues", 12) == "aab"
    assert default_form("blues", 24) == "aabaab"  # a second chorus
    assert default_form("celtic", 32) == "aabb"
    assert default_form("jazz", 7) == "a"
    # where real tunes vary, the draw picks: an 8-bar folk tune is a a' about a third of the time
    assert default_form("folk", 8, 0.1) == "aa" and default_form("folk", 8, 0.9) == "ab"
    draws = [i / 100 for i in range(100)]
    assert sum(default_form("folk", 8, d) == "aa" for d in draws) == 35
    assert {default_form("jazz", 8, d) for d in draws} == {"ab"}


def test_bar_features_mark_letter_position_cadence_and_return() -> None:
    rows = bar_features(lay_out("aaba", 8), 8)
    assert rows[0] == (1, 1, 2, 1)  # A, first bar of 2, 2 left, first time
    assert rows[1] == (1, 2, 1, 1)
    assert rows[2] == (1, 1, 2, 2)  # the second A is a return
    assert rows[4] == (2, 1, 2, 1)  # B
    assert rows[6] == (1, 1, 2, 2)


def test_echo_bars_point_at_the_same_bar_of_the_latest_statement_of_the_letter() -> None:
    assert echo_bars(lay_out("aaba", 8), 8) == [0, 0, 2, 2, 0, 0, 6, 6]  # last A: the first A
    assert echo_bars(lay_out("aabb", 16), 16) == [0] * 4 + [4] * 4 + [0] * 4 + [4] * 4
    assert echo_bars(lay_out("abac", 8), 8) == [0, 0, 0, 0, 4, 4, 0, 0]
    # unequal sections: only the bars the earlier statement has; no section: no echo
    assert echo_bars(((0, 2, "A"), (2, 3, "A")), 6) == [0, 0, 2, 2, 0, 0]
    assert echo_bars((), 3) == [0, 0, 0]


def _bars(*contents: tuple[int, ...]) -> list[frozenset]:
    return [frozenset((i, p) for i, p in enumerate(c)) for c in contents]


def test_infer_sections_finds_aaba_from_repeated_phrases() -> None:
    a = [(60, 62, 64), (65, 64, 62), (60, 60, 60), (67, 65, 64)]
    b = [(70, 72, 74), (74, 72, 70), (69, 67, 65), (64, 62, 60)]
    content = _bars(*a, *a, *b, *a)
    assert section_letters(infer_sections(content, sizes=(4,)), 16) == "AAAAAAAABBBBAAAA"
    # a phrase that is 3/4 the same still counts as the same section (variation)
    a2 = [*a[:3], (71, 71, 71)]
    assert section_letters(infer_sections(_bars(*a, *a2), sizes=(4,)), 8) == "AAAAAAAA"


def test_infer_sections_prefers_eight_bar_phrases_when_they_return() -> None:
    a = [(60 + i,) for i in range(8)]
    b = [(80 + i,) for i in range(8)]
    sections = infer_sections(_bars(*a, *a, *b, *a))
    assert [(s, n, x) for s, n, x in sections] == [(0, 8, "A"), (8, 8, "A"), (16, 8, "B"),
                                                   (24, 8, "A")]


def test_echo_from_repeats_points_at_the_phrase_restated_never_at_an_unrelated_one() -> None:
    phrases = [[(40 + 10 * k + i,) for i in range(4)] for k in range(6)]  # six unlike phrases
    content = _bars(*phrases[0], *[b for ph in phrases[1:] for b in ph], *phrases[0])
    # past E every new phrase is E, but E's second "statement" restates nothing
    assert section_letters(infer_sections(content, sizes=(4,)), 28)[16:24] == "EEEEEEEE"
    assert echo_from_repeats(content, sizes=(4,)) == [0] * 24 + [24] * 4
    # the phrase most alike, not the latest of the letter: the last A is A1 again, not A2
    a, a2 = phrases[0], [*phrases[0][:3], (99,)]
    content = _bars(*a, *a2, *phrases[1], *a)
    assert echo_from_repeats(content, sizes=(4,)) == [0] * 4 + [4] * 4 + [0] * 4 + [12] * 4


def test_repetition_rate_counts_bars_equal_to_an_earlier_bar() -> None:
    bar = 48
    riff = [(0, 12, 60), (12, 12, 63), (24, 24, 65)]
    other = [(0, 48, 70)]

    def at(b: int, notes: list) -> list:
        return [(b * bar + s, d, p) for s, d, p in notes]

    notes = at(0, riff) + at(1, riff) + at(2, other) + at(3, riff)
    # bars 1 and 3 repeat bar 0; bar 2 is new: 2 of the 3 bars after the first
    assert repetition_rate(notes, bar, 4) == pytest.approx(2 / 3)
    # empty bars are not counted either way
    assert repetition_rate(at(0, riff) + at(2, riff), bar, 4) == 1.0
    assert math.isnan(repetition_rate(at(0, riff), bar, 4))
    # the same notes a semitone higher are not a repeat
    moved = [(s, d, p + 1) for s, d, p in at(1, riff)]
    assert repetition_rate(at(0, riff) + moved, bar, 2) == 0.0
    assert bar_onsets(at(1, riff), bar, 2)[1] == frozenset({(0, 60), (12, 63), (24, 65)})


def test_melody_form_reads_sections_and_echoes_from_a_lines_own_repeats() -> None:
    from cadenza.music.form import melody_form

    bar = 48
    phrase = [[(0, 12, 60), (12, 12, 64)], [(0, 48, 67)], [(0, 24, 65), (24, 24, 64)],
              [(0, 48, 62)]]
    varied = [*phrase[:3], [(0, 48, 59)]]  # 3 of 4 bars the same: a restatement
    notes = [(b * bar + s, d, p) for b, ns in enumerate([*phrase, *varied]) for s, d, p in ns]
    rows, echo = melody_form(notes, bar, 8)
    assert echo == [0] * 4 + [4] * 4
    assert rows == bar_features(((0, 4, "A"), (4, 4, "A")), 8)
