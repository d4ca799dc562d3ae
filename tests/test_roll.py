"""Piano-roll layout: encode/decode round trips on literal band scores, meters, helpers."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.music.roll import (
    BASS,
    CHORDS,
    DRUMS,
    LEAD,
    LOWEST,
    NAMES,
    PITCHES,
    PROGRAMS,
    STEPS,
    VELOCITY,
    RollError,
    beat_positions,
    decode,
    drop_short,
    encode,
    onset_counts,
    runs,
    skyline,
    snap_onsets,
    timeline,
    transpose,
)
from cadenza.music.score import Note, Score, Track
from cadenza.music.theory import Key


def band(notes: dict[str, list[tuple[int, int, int]]], bars: int,
         meter: tuple[int, int] = (4, 4), resolution: int = 12) -> Score:
    """A canonical band Score as decode writes it (names, programs, velocities)."""
    tracks = tuple(
        Track(NAMES[role], role=role, program=PROGRAMS[role], is_drum=role == "drums",
              notes=tuple(Note(s, d, p, VELOCITY[role]) for s, d, p in notes.get(role, [])))
        for role in ("lead", "chords", "bass", "drums")
    )
    return Score(tracks=tracks, resolution=resolution, time_signature=meter, bars=bars)


LITERAL = {
    # a tie over the bar line (36..60), re-struck E with a one-step gap, a high and a low note
    "lead": [(0, 11, 72), (12, 11, 72), (24, 12, 74), (36, 24, 76), (60, 6, 107), (66, 6, 24)],
    "chords": [(0, 47, p) for p in (60, 64, 67)] + [(48, 48, p) for p in (60, 65, 69)],
    "bass": [(0, 24, 36), (24, 24, 43), (48, 47, 41)],
    "drums": [(t, 3, 36) for t in range(0, 96, 24)] + [(t, 3, 42) for t in range(0, 96, 6)]
    + [(12, 3, 38), (60, 3, 38)],
}


def test_round_trip_on_a_literal_band() -> None:
    score = band(LITERAL, bars=2)
    rolls = encode(score)
    assert rolls.shape == (2, 4, STEPS, PITCHES) and rolls.dtype == bool
    back = decode(rolls)
    assert back.tracks == score.tracks
    assert back.bars == 2 and back.resolution == 12 and back.time_signature == (4, 4)


def test_layout_cells() -> None:
    rolls = encode(band(LITERAL, bars=2))
    # lead E5 (76) from tick 36 to 60: bar 0 steps 36..47 and bar 1 steps 0..11
    assert rolls[0, LEAD, 36:48, 76 - LOWEST].all() and rolls[1, LEAD, :12, 76 - LOWEST].all()
    assert not rolls[1, LEAD, 12, 76 - LOWEST]
    # the re-struck C5: steps 0..10 and 12..22, step 11 and 23 silent
    assert rolls[0, LEAD, 0:11, 72 - LOWEST].all() and not rolls[0, LEAD, 11, 72 - LOWEST]
    # drum hits are single steps at the onset
    assert rolls[0, DRUMS, 0, 36 - LOWEST] and not rolls[0, DRUMS, 1, 36 - LOWEST]
    assert rolls[:, DRUMS].sum() == 4 + 16 + 2
    assert rolls[0, CHORDS, :47, [60 - LOWEST, 64 - LOWEST, 67 - LOWEST]].all()
    assert not rolls[0, CHORDS, 47, 60 - LOWEST] and rolls[0, CHORDS, 47, 65 - LOWEST] == 0
    assert rolls[1, BASS, :47, 41 - LOWEST].all() and not rolls[1, BASS, 47].any()


def test_other_resolutions_quantise_to_the_grid() -> None:
    at48 = band({r: [(4 * s, 4 * d, p) for s, d, p in v] for r, v in LITERAL.items()},
                bars=2, resolution=48)
    assert np.array_equal(encode(at48), encode(band(LITERAL, bars=2)))
    back = decode(encode(at48), resolution=48)
    assert back.tracks == at48.tracks


def test_adjacent_same_pitch_notes_stay_apart() -> None:
    score = band({"lead": [(0, 12, 60), (12, 12, 60), (24, 12, 60)]}, bars=1)
    notes = decode(encode(score)).track("lead").notes
    assert [(n.start, n.duration) for n in notes] == [(0, 11), (12, 11), (24, 12)]


def test_three_four_pads_the_bar_and_keeps_ties() -> None:
    score = band({"lead": [(0, 12, 60), (24, 24, 62)], "bass": [(0, 72, 36)]}, bars=2,
                 meter=(3, 4))
    rolls = encode(score)
    assert rolls.shape == (2, 4, STEPS, PITCHES)
    assert not rolls[:, :, 36:].any()  # padding after each 36-step bar
    assert rolls[0, LEAD, 24:36, 62 - LOWEST].all() and rolls[1, LEAD, :12, 62 - LOWEST].all()
    back = decode(rolls, meter=(3, 4))
    assert back.tracks == score.tracks and back.time_signature == (3, 4)
    assert timeline(rolls, (3, 4)).shape == (4, 72, PITCHES)


def test_long_meters_do_not_fit() -> None:
    score = band({"lead": [(0, 12, 60)]}, bars=1, meter=(12, 8))
    with pytest.raises(RollError, match="12/8 bar is 72 steps"):
        encode(score)


def test_folding_merging_and_roles() -> None:
    score = Score(tracks=(
        Track("Hi", role="lead", notes=(Note(0, 12, 120),)),  # folds to 108 -> 96
        Track("Lo", role="bass", notes=(Note(0, 12, 10),)),  # folds to 34
        Track("Pad 1", role="chords", notes=(Note(0, 24, 60),)),
        Track("Pad 2", role="chords", notes=(Note(0, 24, 64),)),
        Track("Perc", role="other", is_drum=True, notes=(Note(6, 1, 42),)),
        Track("Strings", role="other", notes=(Note(0, 48, 50),)),
    ), bars=1)
    rolls = encode(score)
    assert rolls[0, LEAD, 0, 96 - LOWEST] and rolls[0, BASS, 0, 34 - LOWEST]
    assert rolls[0, CHORDS, 0].sum() == 2
    assert rolls[0, DRUMS, 6, 42 - LOWEST] and rolls[0, DRUMS].sum() == 1
    assert rolls[0, :, :, 50 - LOWEST].sum() == 0  # the 'other' track is left out


def test_bars_default_from_the_notes_and_empty_scores() -> None:
    score = Score(tracks=(Track("L", notes=(Note(40, 20, 60),)),))
    assert encode(score).shape[0] == 2
    empty = decode(np.zeros((3, 4, STEPS, PITCHES), dtype=bool))
    assert empty.bars == 3 and empty.note_count() == 0


def test_decode_thresholds_probabilities_and_checks_shape() -> None:
    probs = np.zeros((1, 4, STEPS, PITCHES), dtype=np.float32)
    probs[0, LEAD, 0:6, 60 - LOWEST] = 0.9
    probs[0, LEAD, 6:12, 60 - LOWEST] = 0.4
    assert decode(probs).track("lead").notes == (Note(0, 6, 60, VELOCITY["lead"]),)
    assert decode(probs, threshold=0.3).track("lead").notes[0].duration == 12
    with pytest.raises(RollError, match="shape"):
        decode(np.zeros((2, 3, STEPS, PITCHES)))
    hires = decode(probs, resolution=48, key=Key.parse("G"))
    assert hires.track("lead").notes[0].duration == 24 and hires.key == Key(7)


def test_runs_skyline_drop_short_transpose() -> None:
    lane = np.zeros((10, 5), dtype=bool)
    lane[0:3, 1] = lane[5:6, 1] = lane[2:9, 3] = True
    starts, ends, pitches = runs(lane)
    assert sorted(zip(starts, ends, pitches, strict=True)) == [(0, 3, 1), (2, 9, 3), (5, 6, 1)]
    top = skyline(lane)
    assert top[2, 3] and not top[2, 1] and top[0, 1] and top.sum(axis=1).max() == 1
    bottom = skyline(lane, highest=False)
    assert bottom[2, 1] and not bottom[2, 3]
    assert drop_short(lane, 2)[5, 1] == 0 and drop_short(lane, 2)[0:3, 1].all()
    rolls = np.zeros((1, 4, STEPS, PITCHES), dtype=bool)
    rolls[0, LEAD, 0, 10] = rolls[0, DRUMS, 0, 12] = rolls[0, BASS, 0, PITCHES - 1] = True
    up = transpose(rolls, 2)
    assert up[0, LEAD, 0, 12] and up[0, DRUMS, 0, 12] and not up[0, BASS].any()
    assert transpose(up, -2)[0, LEAD, 0, 10]


def _notes(lane: np.ndarray) -> list[tuple[int, int, int]]:
    starts, ends, pitches = runs(lane)
    return sorted(zip(starts.tolist(), ends.tolist(), pitches.tolist(), strict=True))


def _lane(notes: list[tuple[int, int, int]], steps: int = 48) -> np.ndarray:
    lane = np.zeros((steps, 8), dtype=bool)
    for s, e, k in notes:
        lane[s:e, k] = True
    return lane


def test_onset_counts_and_beat_positions() -> None:
    lane = _lane([(0, 2, 1), (3, 5, 1), (12, 20, 2), (27, 30, 1), (37, 40, 4)])
    counts = onset_counts(lane)
    assert counts.tolist() == [2, 1, 0, 2] + [0] * 8  # steps 0, 12 | 37 | 3, 27
    # a strum (voices one step apart) and a block chord are one attack each
    chords = _lane([(0, 9, 1), (1, 9, 3), (2, 9, 5), (6, 9, 2), (6, 9, 4)])
    assert onset_counts(chords).tolist() == [1, 0, 0, 0, 0, 0, 1] + [0] * 5
    assert beat_positions(counts, 0.3) == (0, 3)
    assert beat_positions(counts, 0.0) == tuple(range(12))
    assert beat_positions(np.zeros(12), 0.5) == tuple(range(12))  # no notes: leave them be


def test_snap_onsets_moves_notes_to_the_nearest_grid_step() -> None:
    sixteenths = (0, 3, 6, 9)
    # 1 -> 0, 5 -> 6, 13 -> 12, each keeping its length; a chord's voices move together
    lane = _lane([(1, 5, 3), (5, 8, 4), (13, 20, 2), (13, 20, 6)])
    assert _notes(snap_onsets(lane, sixteenths)) == [(0, 4, 3), (6, 9, 4), (12, 19, 2),
                                                     (12, 19, 6)]
    # halfway between two grid steps: the earlier one
    assert _notes(snap_onsets(_lane([(3, 6, 1)]), (0, 6))) == [(0, 3, 1)]
    # the last note of the lane moves back rather than off its end
    assert _notes(snap_onsets(_lane([(46, 48, 3)]), (0, 6))) == [(42, 44, 3)]
    # no grid, or every step: nothing moves
    assert np.array_equal(snap_onsets(lane, ()), lane)
    assert np.array_equal(snap_onsets(lane, range(12)), lane)


def test_snap_onsets_keeps_one_voice_lanes_monophonic() -> None:
    # 0-4 and 4-8 (moved to 6): a gap opens; 0-5 and 5-9 moved to 3: the first is cut short
    assert _notes(snap_onsets(_lane([(0, 4, 3), (4, 8, 5)]), (0, 6), True)) == [
        (0, 4, 3), (6, 10, 5)]
    cut = snap_onsets(_lane([(0, 5, 3), (5, 9, 5)]), (0, 3), True)
    assert _notes(cut) == [(0, 3, 3), (3, 7, 5)] and cut.sum(axis=1).max() == 1
    # two notes moved onto one step: the top voice keeps a lead, the bottom one a bass
    both = _lane([(1, 5, 3), (5, 8, 6)])
    assert _notes(snap_onsets(both, (0,), True)) == [(0, 3, 6)]
    assert _notes(snap_onsets(both, (0,), False)) == [(0, 4, 3)]
    # a pitch struck again keeps the roll's one-step gap, one voice or many
    again = _lane([(0, 4, 3), (5, 8, 3)])
    assert _notes(snap_onsets(again, (0, 3), True)) == [(0, 2, 3), (3, 6, 3)]
    assert _notes(snap_onsets(again, (0, 3))) == [(0, 2, 3), (3, 6, 3)]
