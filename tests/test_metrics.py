"""Music metrics on literal piano rolls with hand-computed values, and Yang-Lerch comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cadenza.models.zoo.metrics import (
    clip_metrics,
    compare,
    compare_feature,
    drum_pattern_rate,
    empty_bar_rate,
    empty_beat_rate,
    gaussian_kde,
    groove_consistency,
    in_scale_rate,
    inter_distances,
    intra_distances,
    kl_divergence,
    onsets,
    overlap_area,
    pitch_class_entropy,
    pitch_class_histogram,
    polyphony,
    polyphony_rate,
    qualified_note_rate,
    scale_consistency,
    tonal_distance,
    used_pitch_classes,
)
from cadenza.music.roll import LOWEST, PITCHES, STEPS

C4 = 60 - LOWEST  # pitch index of middle C


def lane(steps: int, notes: list[tuple[int, int, int]]) -> np.ndarray:
    """A (steps, PITCHES) lane from (start, length, midi pitch) notes."""
    a = np.zeros((steps, PITCHES), dtype=bool)
    for s, n, p in notes:
        a[s:s + n, p - LOWEST] = True
    return a


# C major scale, eighth notes (6 steps) with a one-step gap: 7 notes, 7 pitch classes, one bar+
SCALE = lane(STEPS * 2, [(6 * i, 5, p) for i, p in enumerate((60, 62, 64, 65, 67, 69, 71))])


def test_pitch_class_entropy_and_scale_consistency_of_a_major_scale() -> None:
    assert pitch_class_histogram(SCALE).tolist() == [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]
    assert pitch_class_entropy(SCALE) == pytest.approx(math.log2(7))
    assert scale_consistency(SCALE) == 1.0
    assert in_scale_rate(SCALE, (0, 2, 4, 5, 7, 9, 11)) == 1.0
    # add an F#: 7 of 8 notes fit C major (and G major: 7 of 8 too)
    with_fs = SCALE | lane(STEPS * 2, [(60, 6, 66)])
    assert scale_consistency(with_fs) == pytest.approx(7 / 8)
    # one pitch class repeated in three octaves: entropy 0
    assert pitch_class_entropy(lane(48, [(0, 4, 48), (12, 4, 60), (24, 4, 72)])) == 0.0
    assert math.isnan(pitch_class_entropy(lane(48, [])))


def test_onsets_split_runs_only() -> None:
    on = onsets(lane(12, [(0, 4, 60), (6, 6, 60)]))
    assert np.nonzero(on[:, C4])[0].tolist() == [0, 6]


def test_groove_consistency() -> None:
    beats = lane(STEPS * 2, [(t, 2, 60) for t in (0, 12, 24, 36, 48, 60, 72, 84)])
    assert groove_consistency(beats) == 1.0
    # bar 1 drops two of its four onsets: Hamming distance 2 over 48 steps
    halves = lane(STEPS * 2, [(t, 2, 60) for t in (0, 12, 24, 36, 48, 72)])
    assert groove_consistency(halves) == pytest.approx(1 - 2 / 48)
    assert math.isnan(groove_consistency(lane(STEPS, [(0, 2, 60)])))


def test_empty_beats_and_bars() -> None:
    two_bars = lane(STEPS * 2, [(0, 6, 60), (60, 3, 62)])  # sounds in beat 0 and beat 5
    assert empty_beat_rate(two_bars) == pytest.approx(6 / 8)
    three = lane(STEPS * 3, [(0, 12, 60), (100, 4, 64)])  # bars 0 and 2
    assert empty_bar_rate(three) == pytest.approx(1 / 3)
    assert empty_bar_rate(three.reshape(3, STEPS, PITCHES)) == pytest.approx(1 / 3)


def test_used_pitch_classes_per_bar() -> None:
    roll = np.zeros((3, STEPS, PITCHES), dtype=bool)
    roll[0] = SCALE[:STEPS]  # 7 pitch classes (all seven scale notes fall in bar 0)
    roll[2, :, [60 - LOWEST, 64 - LOWEST, 67 - LOWEST, 72 - LOWEST]] = True  # C E G C: 3 pcs
    assert used_pitch_classes(roll) == pytest.approx(5.0)  # empty bar 1 left out


def test_qualified_notes() -> None:
    roll = lane(48, [(0, 1, 60), (4, 1, 62), (8, 1, 64), (12, 6, 65)])
    assert qualified_note_rate(roll) == pytest.approx(0.25)
    assert qualified_note_rate(roll, min_steps=1) == 1.0


def test_drum_pattern_rate() -> None:
    eighths = lane(STEPS * 2, [(t, 1, 42) for t in range(0, STEPS * 2, 6)])
    assert drum_pattern_rate(eighths) == 1.0
    triplets = lane(STEPS, [(t, 1, 42) for t in (4, 8, 16, 20)])
    assert drum_pattern_rate(triplets) == 0.0
    mixed = lane(STEPS, [(0, 1, 36), (3, 1, 42), (6, 1, 42), (8, 1, 42)])
    assert drum_pattern_rate(mixed) == pytest.approx(0.75)
    assert drum_pattern_rate(mixed, tolerance=0.1) == pytest.approx(3.1 / 4)
    assert math.isnan(drum_pattern_rate(lane(STEPS, [])))


def test_tonal_distance() -> None:
    triad = lane(STEPS, [(0, 48, p) for p in (60, 64, 67)])
    assert tonal_distance(triad, triad) == 0.0
    octave_up = lane(STEPS, [(0, 48, p) for p in (72, 76, 79)])
    assert tonal_distance(triad, octave_up) == pytest.approx(0.0, abs=1e-12)
    # C vs F#: centroids (0, 1, 0, 1, 0, .5) and (0, -1, 0, -1, 0, .5): distance 2*sqrt(2)
    c, fs = lane(STEPS, [(0, 48, 60)]), lane(STEPS, [(0, 48, 66)])
    assert tonal_distance(c, fs) == pytest.approx(2 * math.sqrt(2))
    # bars where one track is silent are skipped
    assert tonal_distance(np.concatenate([c, c]), np.concatenate([fs, lane(STEPS, [])])) == \
        pytest.approx(2 * math.sqrt(2))
    assert math.isnan(tonal_distance(c, lane(STEPS, [])))


def test_polyphony() -> None:
    roll = lane(48, [(0, 12, 60), (0, 12, 64), (0, 12, 67), (24, 12, 72)])
    assert polyphony(roll) == pytest.approx((12 * 3 + 12 * 1) / 24)
    assert polyphony_rate(roll) == pytest.approx(0.5)
    assert polyphony(SCALE) == 1.0 and polyphony_rate(SCALE) == 0.0


def test_clip_metrics_on_a_literal_band() -> None:
    clip = np.zeros((2, 4, STEPS, PITCHES), dtype=bool)
    clip[:, 0] = SCALE.reshape(2, STEPS, PITCHES)  # lead: C major scale in bar 0
    for p in (60, 64, 67):
        clip[:, 1, :, p - LOWEST] = True  # chords: C major held, both bars
    clip[:, 2, :, 36 - LOWEST] = True  # bass: C
    clip[:, 3, ::6, 42 - LOWEST] = True  # drums: eighth-note hats
    m = clip_metrics(clip)
    assert m["scale_consistency"] == 1.0
    assert m["drum_pattern_rate"] == 1.0
    assert m["empty_beat_rate"] == 0.0
    assert m["empty_bars_lead"] == 0.5 and m["empty_bars_drums"] == 0.0
    assert m["upc_chords"] == 3.0 and m["upc_bass"] == 1.0 and m["upc_lead"] == 7.0
    assert m["polyphony_chords"] == 3.0
    assert m["tonal_distance_chords_bass"] > 0 and m["qualified_notes_lead"] == 1.0
    assert set(m) >= {"pitch_class_entropy", "groove_consistency",
                      "tonal_distance_lead_chords", "tonal_distance_lead_bass"}
    with pytest.raises(ValueError, match="bars, 4"):
        clip_metrics(np.zeros((2, 3, STEPS, PITCHES)))


def test_distances() -> None:
    assert sorted(intra_distances([0.0, 1.0, 3.0]).tolist()) == [1.0, 2.0, 3.0]
    assert sorted(inter_distances([0.0, 1.0], [3.0]).tolist()) == [2.0, 3.0]
    vec = intra_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    assert vec.tolist() == [5.0]
    assert len(intra_distances([1.0, math.nan, 2.0])) == 1  # NaN samples are dropped
    undefined = compare_feature("f", [1.0, 2.0], [math.nan, math.nan])  # e.g. no drums at all
    assert math.isnan(undefined.overlap) and math.isnan(undefined.gen_mean)


def test_kde_integrates_to_one() -> None:
    x = np.random.default_rng(0).normal(size=200)
    g = np.linspace(-8, 8, 4001)
    assert np.trapezoid(gaussian_kde(x, g), g) == pytest.approx(1.0, abs=1e-3)


def test_overlap_area_and_kl() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 300)
    assert overlap_area(a, a.copy()) == pytest.approx(1.0, abs=1e-3)
    assert kl_divergence(a, a.copy()) == pytest.approx(0.0, abs=1e-9)
    far = rng.normal(100, 1, 300)
    assert overlap_area(a, far) == pytest.approx(0.0, abs=1e-6)
    assert kl_divergence(a, far) > 10
    half = overlap_area(a, rng.normal(1, 1, 300))  # two unit normals 1 apart overlap ~0.62
    assert 0.5 < half < 0.75
    assert overlap_area([2.0, 2.0, 2.0], [2.0, 2.0]) == pytest.approx(1.0, abs=1e-3)


def test_yang_lerch_compare() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(3, 0.5, 50)
    same = compare_feature("f", real, real.copy())
    assert same.overlap > 0.9 and same.real_mean == pytest.approx(3, abs=0.2)
    apart = compare_feature("f", real, real + 50)
    assert apart.overlap == pytest.approx(0.0, abs=1e-6) and apart.gen_mean > 50
    assert len(apart.intra_real) == 50 * 49 // 2 and len(apart.inter) == 50 * 50
    dicts = [{"a": float(v), "b": 1.0} for v in real]
    res = compare(dicts, {"a": real + 50, "c": real})
    assert set(res) == {"a"} and res["a"].overlap < 0.01
    assert set(res["a"].summary()) == {"real_mean", "real_std", "gen_mean", "gen_std",
                                       "overlap", "kl"}
