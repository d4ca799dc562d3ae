"""Harmony plans and band arrangement: each style's idiom, bars/meter honoured, channel 10."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.arrange import RES, arrange
from cadenza.harmony import plan_chords
from cadenza.music.score import Meter, Note, swing_tick, unswing_tick
from cadenza.music.theory import Chord, Key
from cadenza.styles import STYLES


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_blues_plan_follows_the_twelve_bar_form_and_ends_on_the_tonic() -> None:
    plan = plan_chords("blues", Key.parse("E"), 12, Meter(4, 4), rng(3))
    per_bar = {t // 48: c for t, c in plan}
    roots = []
    current = None
    for b in range(12):
        current = per_bar.get(b, current)
        roots.append((current.root - 4) % 12)
    assert roots[0] == 0 and roots[4] == 5 and roots[6] == 0 and roots[-1] == 0
    assert roots[8] in (7, 2)  # V7, or ii7 in the ii-V variant
    assert all(c.quality in ("7", "9", "13", "m7") for _, c in plan)


def test_jazz_plan_uses_extended_chords_and_a_ii_v_i_cadence() -> None:
    key = Key.parse("F")
    for seed in range(8):
        plan = plan_chords("jazz", key, 8, Meter(4, 4), rng(seed))
        assert any(c.quality in ("maj7", "maj9", "6", "9", "13", "m9") for _, c in plan)
        last_bars = [(t, c) for t, c in plan if t >= 6 * 48]
        # ii (m7/m9) then V (dominant) in bar 7, I in bar 8
        assert last_bars[-1][1].root == key.tonic and last_bars[-1][0] == 7 * 48
        assert [(c.root - key.tonic) % 12 for _, c in last_bars[:2]] == [2, 7]


def test_chorale_plan_is_functional_and_cadences_authentically() -> None:
    key = Key.parse("G")
    plan = plan_chords("classical", key, 8, Meter(4, 4), rng(5))
    assert len(plan) >= 8  # harmonic rhythm of about two chords a bar
    assert plan[-1][1] == Chord(7, "maj") and plan[-1][0] == 7 * 48
    assert plan[-2][1].root == 2 and plan[-2][1].quality == "7"  # V7 -> I


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("bars", [1, 5, 12])
def test_every_style_arranges_four_parts_within_the_bars(style: str, bars: int) -> None:
    spec = STYLES[style]
    meter = spec.default_meter
    key = Key.parse(spec.keys[0])
    plan = plan_chords(style, key, bars, meter, rng(1))
    bar12 = 48 * meter[0] // meter[1]
    melody = [Note(t, 6, 72 + (t // 6) % 5, 88) for t in range(0, bars * bar12, 6)]
    score = arrange(melody, plan, spec=spec, meter=meter, bars=bars, tempo=100, key=key, rng=rng())
    assert [t.role for t in score.tracks] == ["lead", "chords", "bass", "drums"]
    assert score.resolution == RES and score.bars == bars and score.time_signature == meter
    end = score.length_ticks
    for t in score.tracks:
        assert t.notes, f"{style}: empty {t.role}"
        assert all(n.start < end and n.end <= end + RES for n in t.notes), t.role
    drums = score.track("drums")
    assert drums.is_drum and not any(t.is_drum for t in score.tracks if t.role != "drums")
    lo, hi = spec.lead_range
    assert all(lo - 12 <= n.pitch <= hi + 12 for n in score.track("lead").notes)
    assert score.track("lead").program == spec.programs["lead"]


def test_styles_differ_in_instruments_feel_and_tempo() -> None:
    programs = {tuple(s.programs.values()) for s in STYLES.values()}
    assert len(programs) == len(STYLES)
    assert STYLES["jazz"].swing and STYLES["blues"].swing and not STYLES["classical"].swing
    assert STYLES["classical"].tempo_range[1] < STYLES["jazz"].tempo_range[0]


def test_swing_moves_offbeat_eighths_to_two_thirds_of_the_beat() -> None:
    assert swing_tick(0, RES) == 0 and swing_tick(RES, RES) == RES
    assert swing_tick(RES // 2, RES) == 2 * RES // 3
    assert swing_tick(RES + RES // 2, RES) == RES + 2 * RES // 3
    # at the models' grid (12 a beat): straight sixteenths swing onto triplets, and back
    assert [swing_tick(t, 12) for t in (0, 3, 6, 9, 12)] == [0, 4, 8, 10, 12]
    assert [unswing_tick(t, 12) for t in (0, 4, 8, 10, 12)] == [0, 3, 6, 9, 12]
    # the swung parts of a jazz arrangement put their off-beats there
    spec = STYLES["jazz"]
    key = Key.parse("C")
    score = arrange([Note(t, 6, 72, 88) for t in range(0, 96, 6)],
                    plan_chords("jazz", key, 2, Meter(4, 4), rng()), spec=spec, meter=Meter(4, 4),
                    bars=2, tempo=120, key=key, rng=rng())
    offsets = {n.start % RES for n in score.track("lead").notes}
    assert RES // 2 not in offsets and 2 * RES // 3 in offsets


def test_walking_bass_plays_quarter_notes_starting_on_the_root() -> None:
    spec = STYLES["jazz"]
    key = Key.parse("F")
    plan = plan_chords("jazz", key, 4, Meter(4, 4), rng(2))
    score = arrange([], plan, spec=spec, meter=Meter(4, 4), bars=4, tempo=140, key=key, rng=rng())
    bass = score.track("bass").notes
    first_bar = [n for n in bass if n.start < 4 * RES]
    assert [n.start for n in first_bar] == [0, RES, 2 * RES, 3 * RES]
    assert first_bar[0].pitch % 12 == plan[0][1].root


@pytest.mark.parametrize("style", ["jazz", "blues", "ragtime"])
def test_a_turnaround_in_the_last_bar_rings_chord_after_chord_never_together(style: str) -> None:
    """A last bar that turns around (I for half the bar, then V7: a seed's own chords, or a
    clip from before new plans ended at rest) rings each chord to the next."""
    spec, key = STYLES[style], Key.parse("C")
    meter = Meter(2, 4) if style == "ragtime" else Meter(4, 4)
    grid_bar = 12 * meter.num * 4 // meter.den  # the plan is on the GRID, the score at RES
    plan = [(0, Chord(0, "maj7")), (grid_bar, Chord(0, "maj7")),
            (grid_bar + grid_bar // 2, Chord(7, "7"))]
    score = arrange([], plan, spec=spec, meter=meter, bars=2, tempo=100, key=key, rng=rng())
    bar = grid_bar * RES // 12
    for role in ("bass", "chords"):
        last = [n for n in score.track(role).notes if n.start >= bar]
        tonic = [n for n in last if n.start < bar + bar // 2]
        turn = [n for n in last if n.start >= bar + bar // 2]
        assert tonic and turn, role
        assert max(n.end for n in tonic) <= bar + bar // 2, role  # stops where V7 starts
        assert max(n.end for n in turn) == 2 * bar, role  # the last chord rings to the end
