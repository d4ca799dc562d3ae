"""The harmony check of ``cadenza eval``: harmonic roles of literal chords, the profile of a
hand-made progression, and plans measured against held-out pieces with a tiny chord model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cadenza.evaluation.harmony import blues_form, measure_harmony, profile, roles
from cadenza.evaluation.report import _harmony_section
from cadenza.models.training.corpus import Piece
from cadenza.models.training.dataset import is_heldout
from cadenza.music.theory import Chord, Key
from tests.test_chord_model import _tiny_chord_checkpoint

C = Key(0)


@pytest.mark.parametrize(("name", "key", "expected"), [
    ("C", C, {"tonic"}),
    ("Cmaj7", C, {"tonic"}),
    ("C7", C, {"tonic", "secondary dominant"}),  # V of IV
    ("G7", C, {"dominant"}),
    ("G", C, {"dominant"}),
    ("D7", C, {"secondary dominant"}),  # V of V
    ("A", C, {"secondary dominant"}),  # V of ii, as a triad
    ("F", C, set()),  # IV: none of the roles
    ("F7", C, set()),  # a blues' IV7 leads nowhere
    ("Db7", C, set()),  # nor does the tritone substitute
    ("Dm7", C, {"minor"}),
    ("Bm7b5", C, {"diminished"}),
    ("C#dim7", C, {"diminished"}),
    ("Csus4", C, {"tonic", "suspended"}),
    ("G13", C, {"dominant", "extended"}),
    ("E7", Key(9, "minor"), {"dominant"}),  # V in A minor
    ("G7", Key(9, "minor"), {"secondary dominant"}),  # V of III in A minor
    ("Am", Key(9, "minor"), {"tonic", "minor"}),
])
def test_roles_of_literal_chords(name: str, key: Key, expected: set[str]) -> None:
    assert roles(Chord.parse(name), key) == expected


def test_blues_form_counts_choruses_with_four_of_the_five_landmarks() -> None:
    bar, f = 48, Key(5)

    def chorus(*names: str) -> list[tuple[int, Chord]]:
        return [(b * bar, Chord.parse(n)) for b, n in enumerate(names)]

    quick_change = chorus("F7", "Bb7", "F7", "F7", "Bb7", "Bb7", "F7", "D7", "Gm7", "C7",
                          "F7", "C7")
    # IV comes a bar late and V not at all: only bars 1 and 11 land
    drifting = chorus("F7", "F7", "F7", "Bb7", "F7", "F7", "Bb7", "Bb7", "Bb7", "Bb7", "F7",
                      "F7")
    # two choruses and a half: the third is not whole; a bar with no change keeps the last chord
    two = quick_change + [(t + 12 * bar, c) for t, c in quick_change if t != 6 * bar]
    assert blues_form([(two, f, 30, bar)]) == 1.0
    assert blues_form([(quick_change, f, 12, bar), (drifting, f, 12, bar)]) == 0.5
    assert math.isnan(blues_form([(quick_change[:8], f, 8, bar)]))


def test_profile_of_a_hand_made_progression() -> None:
    bar = 48
    turnaround = [(0, Chord.parse("C")), (bar, Chord.parse("A7")), (2 * bar, Chord.parse("Dm7")),
                  (3 * bar, Chord.parse("G7")), (3 * bar + 24, None)]
    eight = [(t + k * 4 * bar, c) for k in (0, 1) for t, c in turnaround]
    p = profile([([*eight, (8 * bar, Chord.parse("F#dim7"))], C, 8, bar)])  # past the end
    assert p["tonic"] == p["secondary dominant"] == p["minor"] == p["dominant"] == 0.25
    assert p["diminished"] == p["suspended"] == p["extended"] == 0.0
    assert p["changes per bar"] == 1.0
    assert p["chords per 8 bars"] == 4.0
    assert p["progressions"] == 1
    # 4 bars: no whole 8 to count distinct chords over
    short = profile([(turnaround, C, 4, bar)])
    assert short["changes per bar"] == 1.0 and math.isnan(short["chords per 8 bars"])
    assert math.isnan(profile([])["tonic"])


def _heldout_sources(n: int) -> list[str]:
    names = (f"wjd:harmony-test-{i}" for i in range(10_000))
    return [s for s in names if is_heldout(s)][:n]


def test_plans_are_measured_against_held_out_pieces(tmp_path: Path) -> None:
    from cadenza.models.families import load

    loaded = load(_tiny_chord_checkpoint(tmp_path / "model.pt"))
    changes = (("Dm7", "G7", "C", "A7") * 2)
    held = [Piece(src, "jazz", (4, 4), C, 8, ((0, 48, 60),),
                  tuple((i * 48, name) for i, name in enumerate(changes)))
            for src in _heldout_sources(2)]
    training = [Piece(s, "jazz", (4, 4), C, 8, ((0, 48, 60),), ((0, "C"),))
                for s in (f"wjd:harmony-train-{i}" for i in range(50)) if not is_heldout(s)]
    sources = _heldout_sources(4)
    folk = [Piece(sources[2], "folk", (4, 4), C, 8, ((0, 48, 60),), ((0, "C"),))]
    waltz = [Piece(sources[3], "jazz", (3, 4), C, 8, ((0, 36, 60),), ((0, "C"),))]
    res = measure_harmony(held + training + folk + waltz, ["jazz", "folk", "ragtime"], loaded,
                          0, bars=8, plans=5)
    # folk: no chord model style; ragtime: no real piece to measure against
    assert list(res) == ["jazz"]
    jazz = res["jazz"]
    assert jazz["real"]["progressions"] == 2  # the held-out pieces in 4/4 only
    assert jazz["real"]["changes per bar"] == 1.0
    assert jazz["real"]["secondary dominant"] == jazz["real"]["tonic"] == 0.25
    assert jazz["real"]["chords per 8 bars"] == 4.0
    assert jazz["chord model"]["progressions"] == jazz["rule-based"]["progressions"] == 5
    assert jazz["chord model"]["changes per bar"] >= 1 / 8  # a plan always has a chord
    assert measure_harmony(held, ["jazz"], None, 0) == {}
    text = "\n".join(_harmony_section({"harmony": res}))
    assert "## Harmony" in text and "| jazz | real (2) |" in text
    assert "| jazz | chord model (5) |" in text and "plans of 8 bars" in text
    assert _harmony_section({}) == []
