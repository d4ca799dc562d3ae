"""Lead-line metrics on hand-made melodies with known values: swing ratio, repetition rate, chord
vocabulary, scale consistency and the rest; lines from scores and corpus pieces; the lead-only
classifier inputs; the ragtime reference's title table against the real corpus (skipped when
the corpus is absent)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cadenza.arrange import arrange
from cadenza.evaluation.classifier import cross_validate
from cadenza.evaluation.references import NC_SAME_AS_MUTOPIA, nc_title
from cadenza.models.training.corpus import Piece
from cadenza.models.zoo.lead_features import FEATURE_NAMES, lead_vector, rest_share, syncopation
from cadenza.models.zoo.lead_metrics import (
    chord_vocabulary,
    eighth_pairs,
    lead_metrics,
    line_from_piece,
    line_from_score,
    make_line,
    notes_per_bar,
    pitch_class_entropy,
    pitch_range,
    repetition_rate,
    scale_consistency,
    swing_ratio,
)
from cadenza.music.score import Note
from cadenza.music.theory import Chord, Key
from cadenza.styles import STYLES

STYLE_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "style-corpus"
C = [60, 62, 64, 65, 67, 69, 71, 72]


def eighths(offbeat: int, beats: int, pitches: list[int] = C, start: int = 0) -> list:
    """Pairs of eighths from ``start``: on each beat and ``offbeat`` steps after it."""
    return [(start + b * 12 + o, 4, pitches[(2 * b + k) % len(pitches)])
            for b in range(beats) for k, o in enumerate((0, offbeat))]


# ---------------------------------------------------------------- swing ratio


def test_swing_ratio_of_known_lines() -> None:
    swung = make_line(eighths(8, 8), (4, 4), 2)  # triplet swing: 8 steps then 4
    # the last beat's pair has no next onset to end it: seven pairs in eight beats
    assert eighth_pairs(swung) == [(8, 4)] * 7
    assert swing_ratio(swung) == pytest.approx(2.0)
    assert swing_ratio(make_line(eighths(6, 8), (4, 4), 2)) == pytest.approx(1.0)
    assert swing_ratio(make_line(eighths(9, 8), (4, 4), 2)) == pytest.approx(3.0)
    # four pairs at 2:1, then three at 7:5 (the last beat's has no end): the geometric mean
    mixed = make_line([*eighths(8, 4), *eighths(7, 4, start=48)], (4, 4), 2)
    assert eighth_pairs(mixed) == [(8, 4)] * 4 + [(7, 5)] * 3
    assert swing_ratio(mixed) == pytest.approx((2.0 ** 4 * 1.4 ** 3) ** (1 / 7))
    # a soloist's lay-back: every onset one step late still pairs
    late = make_line([(s + 1, d, p) for s, d, p in eighths(8, 8)], (4, 4), 3)
    assert swing_ratio(late) == pytest.approx(2.0)


def test_lines_without_eighth_pairs_have_no_swing_ratio() -> None:
    sixteenths = make_line([(t, 3, 60) for t in range(0, 96, 3)], (4, 4), 2)
    quarters = make_line([(t, 12, 60) for t in range(0, 96, 12)], (4, 4), 2)
    triplets = make_line([(t, 4, 60) for t in range(0, 96, 4)], (4, 4), 2)
    jig = make_line([(t, 6, 60) for t in range(0, 72, 6)], (6, 8), 2)  # compound: no pairs
    for line in (sixteenths, quarters, triplets, jig):
        assert eighth_pairs(line) == [] and math.isnan(swing_ratio(line))
    # a pair needs the next onset on the next beat: an eighth then a rest is no pair
    gaps = make_line([(0, 4, 60), (8, 4, 62), (24, 4, 64), (32, 4, 65)], (4, 4), 1)
    assert eighth_pairs(gaps) == [] and math.isnan(swing_ratio(gaps))


# ---------------------------------------------------------------- the other figures


def test_repetition_rate_of_an_aaba_melody() -> None:
    a = [(0, 12, 60), (12, 12, 64), (24, 12, 67), (36, 12, 64)]
    b = [(0, 24, 65), (24, 24, 69)]
    bars = [a, a, b, a, [], a]  # bar 5 is a rest: not counted
    notes = [(i * 48 + s, d, p) for i, bar in enumerate(bars) for s, d, p in bar]
    line = make_line(notes, (4, 4), 6)
    # non-empty bars after the first: a, b, a, a -> three of four repeat an earlier bar
    assert repetition_rate(line) == pytest.approx(3 / 4)
    moved = [(s + 1, d, p) if s >= 48 * 3 else (s, d, p) for s, d, p in notes]
    # bar 4 is a new bar now, which bar 6 repeats: bars 2 and 6 of four
    assert repetition_rate(make_line(moved, (4, 4), 6)) == pytest.approx(2 / 4)
    assert math.isnan(repetition_rate(make_line(a, (4, 4), 2)))  # one bar with notes


def test_chord_vocabulary_counts_distinct_symbols() -> None:
    ii_v_i = [(0, Chord.parse("Dm7")), (24, Chord.parse("G7")), (48, Chord.parse("Cmaj7")),
              (96, Chord.parse("Dm7")), (120, Chord.parse("G7")), (144, None)]
    line = make_line(eighths(8, 16), (4, 4), 4, ii_v_i)
    assert chord_vocabulary(line) == 3.0  # Dm7 G7 Cmaj7; no-chord is no symbol
    # a dominant and its altered form are two symbols; the same chord again is none
    alt = make_line([], (4, 4), 2, [(0, Chord.parse("G7")), (48, Chord.parse("G7b9")),
                                    (72, Chord.parse("G7b9"))])
    assert chord_vocabulary(alt) == 2.0 and len(alt.chords) == 2  # merged repeat
    assert math.isnan(chord_vocabulary(make_line([], (4, 4), 1)))
    assert math.isnan(chord_vocabulary(make_line([], (4, 4), 1, [(0, None)])))  # no-chord only


def test_scale_consistency_entropy_density_and_range() -> None:
    scale = make_line([(i * 12, 12, p) for i, p in enumerate(C)], (4, 4), 2)
    assert scale_consistency(scale) == 1.0
    assert notes_per_bar(scale) == 4.0 and pitch_range(scale) == 12.0
    # seven pitch classes, C twice: entropy of (2, 1, 1, 1, 1, 1, 1) / 8
    p = np.array([2, 1, 1, 1, 1, 1, 1]) / 8
    assert pitch_class_entropy(scale) == pytest.approx(float(-(p * np.log2(p)).sum()))
    # C major plus one F#: G major holds 8 of 9 notes as well as C major does
    sharp = make_line([*scale.notes, (96, 12, 66)], (4, 4), 3)
    assert scale_consistency(sharp) == pytest.approx(8 / 9)
    chromatic = make_line([(i * 12, 12, 60 + i) for i in range(12)], (4, 4), 3)
    assert pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    assert scale_consistency(chromatic) == pytest.approx(7 / 12)
    empty = make_line([], (4, 4), 2)
    assert all(math.isnan(v) for k, v in lead_metrics(empty).items()
               if k not in ("notes_per_bar", "chord_vocabulary"))
    assert lead_metrics(empty)["notes_per_bar"] == 0.0


def test_syncopation_and_rest_share() -> None:
    # a ragtime cell: sixteenth, eighth tied over the beat, then on-beat notes
    cell = [(0, 3, 72), (3, 12, 76), (15, 12, 79), (30, 6, 72), (36, 6, 74), (42, 6, 76)]
    line = make_line(cell, (4, 4), 1)
    assert syncopation(line) == pytest.approx(2 / 6)  # the notes at 3 and 15 cross a beat
    assert rest_share(line) == pytest.approx(3 / 48)  # ticks 27-30 are silent
    # a note cut by the next onset on the beat line does not sound over it
    assert syncopation(make_line([(6, 12, 60), (12, 12, 62)], (4, 4), 1)) == 0.0
    # off-beat eighths that end before the beat do not syncopate; half the bar is rest
    short = make_line([(6, 6, 60), (18, 6, 62)], (4, 4), 1)
    assert syncopation(short) == 0.0 and rest_share(short) == pytest.approx(1 - 12 / 48)
    assert math.isnan(syncopation(make_line([], (4, 4), 1)))
    assert rest_share(make_line([], (4, 4), 1)) == 1.0


def test_make_line_keeps_the_top_note_of_each_onset_inside_the_bars() -> None:
    line = make_line([(0, 12, 60), (0, 12, 67), (12, 48, 64), (96, 12, 70)], (4, 4), 2)
    assert line.notes == ((0, 12, 67), (12, 48, 64))


# ---------------------------------------------------------------- lines from scores and pieces


def _arranged(style: str) -> object:
    melody = [Note(s, d, p, 90) for s, d, p in eighths(6, 16, [67, 69, 71, 72, 74, 72, 71])]
    return arrange(melody, [(0, Chord.parse("C")), (96, Chord.parse("G7"))], spec=STYLES[style],
                   meter=(4, 4), bars=4, tempo=120.0, key=Key(0), rng=np.random.default_rng(0))


def test_a_generated_lead_is_measured_as_the_member_hears_it() -> None:
    jazz, folk = line_from_score(_arranged("jazz")), line_from_score(_arranged("folk"))
    # the arranger swings jazz eighths 2:1 and leaves folk ones straight
    assert swing_ratio(jazz) == pytest.approx(2.0) and swing_ratio(folk) == pytest.approx(1.0)
    for line in (jazz, folk):
        assert line.meter == (4, 4) and line.bars == 4 and len(line.notes) == 32
        assert chord_vocabulary(line) == 2.0 and pitch_range(line) == 7.0
        assert repetition_rate(line) == 0.0  # each bar starts at a new place in the 7-note cycle


def test_a_piece_excerpt_is_its_own_line_with_the_chord_sounding_at_its_start() -> None:
    notes = tuple((t, 6, 60 + t // 48) for t in range(0, 4 * 48, 24))
    piece = Piece("wjd:X", "jazz", (4, 4), Key(0), 4, notes,
                  ((0, "Cmaj7"), (40, "A7"), (96, "NC"), (120, "Dm7")))
    line = line_from_piece(piece, 1, 2)
    assert line.notes == ((0, 6, 61), (24, 6, 61), (48, 6, 62), (72, 6, 62))
    assert line.chords == ((0, Chord.parse("A7")), (48, None), (72, Chord.parse("Dm7")))
    assert chord_vocabulary(line) == 2.0
    # before the piece's first chord the excerpt opens on no chord
    late = Piece("wjd:Y", "jazz", (4, 4), Key(0), 4, notes, ((96, "Dm7"),))
    assert line_from_piece(late, 1, 2).chords == ((0, None), (48, Chord.parse("Dm7")))
    assert math.isnan(chord_vocabulary(line_from_piece(late, 0, 2)))


# ---------------------------------------------------------------- classifier inputs


def test_lead_vectors_tell_swung_from_straight_lines_apart() -> None:
    rng = np.random.default_rng(0)
    x, y = [], []
    for i in range(40):
        style = ("swung", "straight")[i % 2]
        pitches = list(rng.integers(60, 80, 8))
        line = make_line(eighths(8 if style == "swung" else 6, 16, pitches), (4, 4), 4,
                         key=Key(0))
        v = lead_vector(line)
        assert v.shape == (len(FEATURE_NAMES),)
        x.append(v)
        y.append(style)
    cv = cross_validate(np.array(x), y, seed=0)
    assert cv is not None and cv.accuracy == 1.0


def test_lead_vectors_do_not_read_the_meter() -> None:
    """The same line written in 2/4 and in 4/4 gives the same classifier inputs: the meter is
    the request's, not the model's (a line without repeated bars: the repetition rate is
    measured in bars, the form's unit)."""
    notes = eighths(8, 16, [60, 64, 67, 69, 70, 72, 70, 67, 64])
    two = lead_vector(make_line(notes, (2, 4), 8, key=Key(0)))
    four = lead_vector(make_line(notes, (4, 4), 4, key=Key(0)))
    np.testing.assert_allclose(two, four)


# ---------------------------------------------------------------- the real corpus


MUTOPIA_TO_NC = {  # the MANIFEST's Mutopia Joplin files and the NC edition's name for each
    "EliteSyncopations": "elite", "PineappleRag": "pineapple", "SomethingDoing": "something",
    "WallStreetRag": "wallstreet", "a-breeze-from-alabama": "breeze", "bethena": "bethena",
    "entertainer": "entertainer", "eugenia": "eugenia", "magnetic": "magnetic",
    "maple": "mapleleaf", "original": "original", "peacherine": "peacherine",
    "search": "searchlight", "sugar-cane": "sugarcane", "solace": "solace",
    "sun-flower-slow-drag": "sunflower", "winners": "easywinners",
    "TheStrenuousLife": None,  # not in the NC edition
}


@pytest.mark.skipif(not (STYLE_CORPUS / "MANIFEST.md").is_file(), reason="no style corpus")
def test_the_nc_titles_left_out_are_exactly_the_mutopia_compositions() -> None:
    nc = {nc_title(f"joplin-nc:{f.stem}")
          for f in (STYLE_CORPUS / "ragtime/midi/craigsapp-joplin-NC").glob("*.mid")}
    overlap = {t for t in MUTOPIA_TO_NC.values() if t in nc}
    assert overlap == NC_SAME_AS_MUTOPIA
    for f in (STYLE_CORPUS / "ragtime/midi/mutopia").glob("JoplinS_*.mid"):
        stem = f.stem.removeprefix("JoplinS_").removeprefix("joplin_")
        assert stem in MUTOPIA_TO_NC, f.name  # every public-domain Joplin file is accounted for
    assert len(nc - NC_SAME_AS_MUTOPIA) >= 20  # the evaluation-only rags, waltzes, marches
