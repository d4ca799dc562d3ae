"""best_chord scores every candidate at once: the same choice as scoring them one by one."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.music.chord_infer import best_chord
from cadenza.music.theory import Chord

QUALITIES = ("maj", "min", "dim", "7", "m7", "maj7", "m7b5", "dim7", "aug", "sus4")
COMPLEXITY = {"maj": 0.0, "min": 0.0, "7": 0.15, "dim": 0.15}


def one_by_one(weights: Sequence[float], bass: int | None) -> Chord | None:
    """The definition, candidate after candidate (simpler chords win ties)."""
    total = sum(weights)
    if total <= 0:
        return None
    best: tuple[float, Chord] | None = None
    for root in range(12):
        for q in QUALITIES:
            chord = Chord(root, q)
            pcs = set(chord.pitch_classes)
            inside = sum(weights[pc] for pc in pcs)
            missing = sum(1 for pc in pcs if weights[pc] <= 0)
            score = (inside - 1.2 * (total - inside)) / total - 0.35 * missing \
                - COMPLEXITY.get(q, 0.3)
            if bass is not None and bass % 12 == root:
                score += 0.12
            if best is None or score > best[0] + 1e-9:
                best = (score, chord)
    return best[1] if best else None


@settings(max_examples=300, deadline=None)
@given(weights=st.lists(st.one_of(st.just(0.0), st.floats(0, 96), st.integers(0, 12)),
                        min_size=12, max_size=12),
       bass=st.one_of(st.none(), st.integers(21, 108)))
def test_best_chord_is_the_one_by_one_choice(weights: list[float], bass: int | None) -> None:
    assert best_chord(weights, bass) == one_by_one(weights, bass)


def test_best_chord_reads_literal_histograms() -> None:
    c_major = [4.0, 0, 0, 0, 3.0, 0, 0, 2.0, 0, 0, 0, 0]
    assert best_chord(c_major) == Chord(0, "maj")
    assert best_chord([*c_major[:10], 2.0, 0]) == Chord(0, "7")  # B-flat: the seventh
    assert best_chord([0.0] * 12) is None
    a_minor_over_c = [3.0, 0, 0, 0, 2.0, 0, 0, 0, 0, 3.0, 0, 0]
    assert best_chord(a_minor_over_c, bass=57) == Chord(9, "min")
