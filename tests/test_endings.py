"""Clips end at home: the sampler's ending bias brings a line's last bar onto its chord's tones
(the chord plans' last bar on the tonic is tested with the chord model)."""

from __future__ import annotations

from cadenza.models.generate import Idiom, MelodyRequest, generate_tokens
from cadenza.models.grammar import plan_from_chords
from cadenza.music.theory import Chord
from cadenza.music.tokens import BAR, decode

BARS = 4
# C, F, G7, then the last bar on C6, which the sequence models read as C (``Chord.reduced``):
# the bias favours C E G
CHANGES = [(0, Chord(0, "maj")), (48, Chord(5, "maj")), (96, Chord(7, "7")), (144, Chord(0, "6"))]


def _last_bar_pitch_classes(tiny_registry, ending_bias: float) -> list[set[int]]:  # type: ignore[no-untyped-def]
    loaded = tiny_registry.get("lstm")
    plan = plan_from_chords(CHANGES, BARS, 48)
    reqs = [MelodyRequest(style="jazz", meter=(4, 4), plan=plan, seed=seed,
                          idiom=Idiom(ending_bias=ending_bias)) for seed in range(12)]
    out = []
    for toks in generate_tokens(loaded, reqs):
        notes = decode(toks, loaded.vocab).tracks[0].notes
        out.append({n.pitch % 12 for n in notes if n.start >= (BARS - 1) * 48})
    return out


def test_a_strong_ending_bias_keeps_the_last_bar_on_its_chord(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    tones = set(Chord(0, "6").reduced().pitch_classes)
    ended = _last_bar_pitch_classes(tiny_registry, ending_bias=30.0)
    assert any(ended)  # the random-weight model does play in its last bar
    assert all(pcs <= tones for pcs in ended)
    # without it the same seeds wander off the chord: the bias, not luck, kept them on it
    plain = _last_bar_pitch_classes(tiny_registry, ending_bias=0.0)
    assert any(pcs - tones for pcs in plain)


def test_the_ending_bias_leaves_the_bars_before_the_last_alone(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    """Up to the last bar a biased line is the unbiased one, token for token."""
    loaded = tiny_registry.get("lstm")
    plan = plan_from_chords(CHANGES, BARS, 48)

    def line(b: float) -> list[int]:
        req = MelodyRequest(style="jazz", meter=(4, 4), plan=plan, seed=7,
                            idiom=Idiom(ending_bias=b))
        return generate_tokens(loaded, [req])[0]

    biased, plain = line(5.0), line(0.0)
    assert biased != plain
    cut = [i for i, t in enumerate(plain) if t == BAR][BARS - 1]  # the last bar's BAR
    assert biased[:cut + 2] == plain[:cut + 2]  # ... and its downbeat chord
