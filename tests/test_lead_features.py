"""The lead-only style classifier's inputs on hand-made melodies with known values: tonality
(degrees, chromatic share, blue third, final), intervals and contour, rhythm (inter-onset
classes, articulation, phrases) and n-gram recurrence; the vector's length, names and meter
independence; grouped cross-validation keeps a piece's excerpts in one fold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cadenza.evaluation.classifier import cross_validate
from cadenza.models.zoo.lead_features import (
    FEATURE_NAMES,
    arpeggios,
    articulation,
    beat_phase_shares,
    blue_third,
    chromatic_runs,
    chromatic_share,
    contour,
    degree_shares,
    ends_on_tonic,
    interval_shares,
    ioi_shares,
    ioi_spread,
    lead_features,
    lead_vector,
    phrases_per_4,
    recurrence,
    variety,
)
from cadenza.models.zoo.lead_metrics import make_line
from cadenza.music.theory import Key


def quarters(pitches: list[int], length: int = 12, gap: int = 0) -> list:
    """One note per beat (12 GRID steps), each ``length`` steps long, ``gap`` steps apart."""
    return [(i * (12 + gap), length, p) for i, p in enumerate(pitches)]


C_MAJOR = Key(0)


def line(pitches: list[int], key: Key = C_MAJOR, bars: int = 4, **kw) -> object:
    return make_line(quarters(pitches, **kw), (4, 4), bars, key=key)


# ---------------------------------------------------------------- tonality


def test_degrees_are_relative_to_the_tonic() -> None:
    in_d = line([62, 66, 69, 62], key=Key(2))  # D F# A D in D major: degrees 0, 4, 7, 0
    np.testing.assert_allclose(degree_shares(in_d)[[0, 4, 7]], [0.5, 0.25, 0.25])
    assert degree_shares(in_d).sum() == pytest.approx(1.0)
    assert ends_on_tonic(in_d) == 1.0
    assert ends_on_tonic(line([62, 66, 69], key=Key(2))) == 0.0


def test_chromatic_share_counts_notes_outside_the_key() -> None:
    # C major: C D Eb E F# G -> Eb and F# are outside
    assert chromatic_share(line([60, 62, 63, 64, 66, 67])) == pytest.approx(2 / 6)
    # A minor allows its raised 6th and 7th (F#, G#) but not Bb
    assert chromatic_share(line([69, 71, 72, 66, 68, 70], key=Key(9, "minor"))) == \
        pytest.approx(1 / 6)
    assert math.isnan(chromatic_share(make_line([], (4, 4), 1, key=Key(0))))


def test_blue_third_is_the_smaller_third() -> None:
    # G blues: Bb twice, B once, over 8 notes -> min(2/8, 1/8)
    blues = line([67, 70, 70, 71, 67, 65, 67, 74], key=Key(7))
    assert blue_third(blues) == pytest.approx(1 / 8)
    assert blue_third(line([60, 64, 67, 64])) == 0.0  # only the major third


# ---------------------------------------------------------------- intervals and contour


def test_interval_classes_runs_and_arpeggios() -> None:
    up = line([60, 61, 62, 63, 67, 70, 74])  # +1 +1 +1 +4 +3 +4
    shares = interval_shares(up)
    assert shares[1] == pytest.approx(3 / 6) and shares[3] == pytest.approx(1 / 6)
    assert shares[4] == pytest.approx(2 / 6) and shares.sum() == pytest.approx(1.0)
    # pairs: (1,1) (1,1) (1,4) (4,3) (3,4)
    assert chromatic_runs(up) == pytest.approx(2 / 5)
    assert arpeggios(up) == pytest.approx(2 / 5)
    assert arpeggios(line([60, 64, 60, 64])) == 0.0  # thirds, but turning
    octave = interval_shares(line([60, 72, 84, 60]))  # +12 +12 -24: all "an octave or more"
    assert octave[-1] == pytest.approx(1.0)


def test_contour_of_a_zigzag_and_of_a_scale() -> None:
    up, turns, run = contour(line([60, 62, 64, 65, 67]))
    assert (up, turns, run) == (1.0, 0.0, 4.0)
    # up up down down down up, with a repeated note ignored
    up, turns, run = contour(line([60, 62, 64, 64, 62, 60, 59, 62]))
    assert up == pytest.approx(3 / 6) and turns == pytest.approx(2 / 5) and run == 2.0
    assert all(math.isnan(v) for v in contour(line([60, 60, 60])))


# ---------------------------------------------------------------- rhythm


def test_inter_onset_classes_phases_and_articulation() -> None:
    # swung eighths: onsets 0, 8, 12, 20, ... -> IOIs alternate 8 and 4
    notes = [(b * 12 + o, 3, 60 + k) for b in range(4) for k, o in enumerate((0, 8))]
    swung = make_line(notes, (4, 4), 1, key=Key(0))
    shares = ioi_shares(swung)  # classes: 1-2, 3, 4, 5-7, 8-9, ...
    assert shares[2] == pytest.approx(3 / 7) and shares[4] == pytest.approx(4 / 7)
    phases = beat_phase_shares(swung)
    assert phases[0] == phases[8] == 0.5
    entropy, log_sd = ioi_spread(swung)
    assert entropy == pytest.approx(-(3 / 7 * math.log2(3 / 7) + 4 / 7 * math.log2(4 / 7)))
    assert log_sd == pytest.approx(np.std([3.0, 2.0, 3.0, 2.0, 3.0, 2.0, 3.0]))
    # every note 3 steps long: 3/8 of the long IOIs, 3/4 of the short ones
    assert articulation(swung) == pytest.approx((4 * 3 / 8 + 3 * 3 / 4) / 7)
    assert articulation(line([60, 62, 64])) == 1.0  # legato quarters


def test_phrases_are_split_by_silences_of_a_beat() -> None:
    # two 4-note phrases of quarters with a two-beat rest between, in 3 bars of 4/4 (12 beats)
    notes = quarters([60, 62, 64, 65]) + [(72 + i * 12, 12, p)
                                           for i, p in enumerate([67, 65, 64, 62])]
    two = make_line(notes, (4, 4), 3, key=Key(0))
    assert phrases_per_4(two) == pytest.approx(2 / 12 * 4)
    # detached quarters (6 steps sounding, 6 silent) are one phrase
    assert phrases_per_4(line([60, 62, 64, 65], length=6)) == pytest.approx(1 / 16 * 4)


# ---------------------------------------------------------------- n-grams


def test_recurrence_and_variety_of_a_riff() -> None:
    riff = [3, -3, 2, 3, -3, 2, 5]  # the 3-gram (3,-3,2) twice among 5
    assert recurrence(riff) == pytest.approx(2 / 5)
    assert recurrence([1, 2, 3, 4]) == 0.0
    assert variety([1, 1, 1, 1]) == pytest.approx(1 / 3)
    assert math.isnan(recurrence([1, 2])) and math.isnan(variety([1]))


# ---------------------------------------------------------------- the vector


def test_the_vector_is_named_and_does_not_read_meter_or_register() -> None:
    notes = [(i * 6, 5, p) for i, p in enumerate([60, 64, 67, 69, 70, 72, 70, 67, 64, 62])]
    two = lead_vector(make_line(notes, (2, 4), 8, key=Key(0)))
    four = lead_vector(make_line(notes, (4, 4), 4, key=Key(0)))
    assert two.shape == four.shape == (len(FEATURE_NAMES),)
    np.testing.assert_allclose(two, four)
    octave_up = [(s, d, p + 12) for s, d, p in notes]
    np.testing.assert_allclose(lead_vector(make_line(octave_up, (4, 4), 4, key=Key(0))), four)
    # a transposed line in the transposed key reads the same
    in_d = [(s, d, p + 2) for s, d, p in notes]
    np.testing.assert_allclose(lead_vector(make_line(in_d, (4, 4), 4, key=Key(2))), four)
    assert set(lead_features(make_line(notes, (4, 4), 4, key=Key(0)))) <= set(FEATURE_NAMES)


def test_a_known_swing_ratio_can_be_withheld() -> None:
    notes = [(b * 12 + o, 3, 60 + k) for b in range(8) for k, o in enumerate((0, 8))]
    swung = make_line(notes, (4, 4), 2, key=Key(0))
    got = lead_features(swung)
    assert got["swing_ratio"] == pytest.approx(2.0)
    from cadenza.models.zoo.lead_metrics import lead_metrics

    withheld = {**lead_metrics(swung), "swing_ratio": math.nan}
    assert math.isnan(lead_vector(swung, withheld)[FEATURE_NAMES.index("swing_ratio")])


# ---------------------------------------------------------------- grouped cross-validation


def test_grouped_folds_keep_a_piece_together() -> None:
    """Each piece has a feature of its own and the style none: a piece split over folds gives
    its style away through its other clips, a piece held out whole cannot."""
    rng = np.random.default_rng(0)
    x, y, groups = [], [], []
    for piece in range(12):
        style = "ab"[piece % 2]
        for _ in range(4):
            x.append(np.eye(12)[piece] * 5 + rng.normal(0, 0.1, 12))
            y.append(style)
            groups.append(f"p{piece}")
    x = np.array(x)
    loose = cross_validate(x, y, seed=0)
    held = cross_validate(x, y, seed=0, groups=groups)
    assert loose is not None and held is not None
    assert held.grouped and not loose.grouped and held.folds == 5
    assert loose.accuracy > 0.9  # neighbours from the same piece give the style away
    assert held.accuracy < 0.8
    # one piece of a style: no grouped folds, the clips are folded instead
    single = cross_validate(x[:8], y[:8], seed=0, groups=["a"] * 4 + ["b"] * 4)
    assert single is not None and not single.grouped
