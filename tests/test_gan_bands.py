"""GAN training bands: real melodies arranged in their own style over their own chords, cut where
the source has no chord, 2/4 read as 4/4, performed swing kept, a phrase budget per style."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.arrange import RES, STRUM_TICKS, STRUMMED, restyle_band, stagger
from cadenza.gan_bands import (
    MUSIC21,
    arranged_band,
    chorded_stretches,
    in_common_time,
    source_of,
    training_bands,
)
from cadenza.models.training.corpus import NO_CHORD, Piece
from cadenza.models.training.gan_data import build_dataset
from cadenza.models.training.style_corpus import SOURCES
from cadenza.music.roll import LEAD
from cadenza.music.score import GRID, Note, Score, Track, swing_tick
from cadenza.music.theory import Key
from cadenza.styles import STYLE_NAMES, STYLES

BAR = 4 * GRID


def piece(source: str, style: str, bars: int, meter: tuple[int, int] = (4, 4),
          chords: tuple[tuple[int, str], ...] | None = None) -> Piece:
    """Eighth notes up and down a C major arpeggio, a C chord per bar unless told."""
    bt = GRID * 4 * meter[0] // meter[1]
    notes = tuple((t, GRID // 2 - 1, 60 + (0, 4, 7, 12)[(t // (GRID // 2)) % 4])
                  for t in range(0, bars * bt, GRID // 2))
    return Piece(source, style, meter, Key(0), bars, notes,
                 chords if chords is not None else tuple((b * bt, "C") for b in range(bars)))


def test_chorded_stretches_leave_out_bars_without_a_chord() -> None:
    # a pickup bar before the first chord, a break marked NC in bar 5 (from its second beat)
    p = piece("wjd:x", "jazz", 12, chords=((BAR, "C7"), (5 * BAR + GRID, NO_CHORD),
                                           (6 * BAR, "F7"), (9 * BAR, "C7")))
    assert chorded_stretches(p, 1) == [(1, 4), (6, 6)]
    assert chorded_stretches(p, 5) == [(6, 6)]
    assert chorded_stretches(piece("x", "folk", 4, chords=()), 1) == []


def test_sources_are_named_for_the_card() -> None:
    assert source_of(piece("wjd:ArtPepper_Stardust", "jazz", 2)) == "wjd"
    assert source_of(piece("mutopia:JoplinS_maple", "ragtime", 2)) == "mutopia"
    assert source_of(piece("essenFolksong/han1.abc#3", "folk", 2)) == "music21"
    assert source_of(piece("/home/me/midi/folk/a.mid", "folk", 2)) == "midi"


def test_two_four_bars_are_read_in_pairs() -> None:
    rag = piece("mutopia:r", "ragtime", 8, meter=(2, 4))
    band = arranged_band(rag, 0, 8, np.random.default_rng(0))
    assert band.time_signature == (4, 4) and band.bars == 4
    # same ticks as the 2/4 arrangement: the bass keeps its 2/4 oom on every quarter (the
    # 4/4 idiom would put it on every half note)
    bass = sorted({n.start for n in band.track("bass").notes})
    assert bass[:4] == [0, RES, 2 * RES, 3 * RES]
    with pytest.raises(ValueError, match="do not pair"):
        in_common_time(arranged_band(rag, 0, 3, np.random.default_rng(0)))


def _offbeats(band, role: str) -> set[int]:  # type: ignore[no-untyped-def]
    return {n.start % RES for n in band.track(role).notes}


def test_swing_styles_are_swung_once_lead_and_band_alike() -> None:
    swung = {0, swing_tick(RES // 2, RES)}
    for source in ("wjd:x", "impro-visor:x.ls"):  # the readers straighten performed solos
        band = arranged_band(piece(source, "jazz", 4), 0, 4, np.random.default_rng(0))
        assert _offbeats(band, "lead") == swung
        assert _offbeats(band, "drums") <= swung
    folk = arranged_band(piece("essen#1", "folk", 4), 0, 4, np.random.default_rng(0))
    assert _offbeats(folk, "lead") == {0, RES // 2}  # styles without swing stay straight


def test_restyle_band_swings_nothing_again() -> None:
    band = arranged_band(piece("impro-visor:x.ls", "jazz", 4), 0, 4, np.random.default_rng(0))
    out = restyle_band(band, STYLES["jazz"], np.random.default_rng(1))
    for role in ("lead", "chords", "bass", "drums"):
        assert [n.start for n in out.track(role).notes] == \
            [n.start for n in band.track(role).notes]


def test_a_strum_takes_the_same_time_for_any_number_of_voices() -> None:
    for n in (2, 3, 4, 5):
        chord = [Note(RES, RES, 60 + 4 * i, 80) for i in range(n)]
        down = stagger(chord)
        assert [m.pitch for m in down] == sorted(m.pitch for m in chord)  # low to high
        assert down[0].start == RES and down[-1].start == RES + STRUM_TICKS
        assert {m.start + m.duration for m in down} == {2 * RES}  # all end together
        assert [m.pitch for m in stagger(chord, up=True)] == sorted(
            (m.pitch for m in chord), reverse=True)
    assert stagger([Note(0, 10, 60, 80)]) == [Note(0, 10, 60, 80)]


def test_restyle_band_strums_the_chords_of_strummed_styles_only() -> None:
    block = [Note(0, GRID, p, 80) for p in (55, 60, 64)] + \
        [Note(2 * GRID, GRID, p, 80) for p in (53, 57, 60, 65)]
    band = Score(tracks=(Track("C", "chords", notes=tuple(block)),), bars=1, style="folk")
    for style in STYLE_NAMES:
        starts = sorted(n.start for n in restyle_band(band, STYLES[style],
                                                      np.random.default_rng(0)).track(
                                                          "chords").notes)
        if style in STRUMMED:
            assert starts == [0, STRUM_TICKS // 2, STRUM_TICKS, 2 * RES, 2 * RES + 2,
                              2 * RES + 4, 2 * RES + STRUM_TICKS]
        else:
            assert starts == [0] * 3 + [2 * RES] * 4


def test_training_bands_meet_each_styles_phrase_budget() -> None:
    pieces = ([piece(f"essen{i}#0", "folk", 16) for i in range(30)]
              + [piece(f"mutopia:r{i}", "ragtime", 16, meter=(2, 4)) for i in range(2)]
              + [piece("wjd:no-chords", "jazz", 8, chords=((0, NO_CHORD),))]
              + [piece("x#1", "folk", 9, meter=(3, 4)), piece("y#1", "polka", 8)])
    bands = training_bands(pieces, 20, seed=3)
    # folk: 480 bars for 20 phrases, so hop 4 and a share of whole phrases from many tunes
    assert bands.hops == {"folk": 4, "ragtime": 1}
    assert bands.pieces["ragtime"] == 2 and bands.bars["ragtime"] == 16
    assert 20 * 4 <= bands.bars["folk"] < 30 * 16 and bands.pieces["folk"] >= 5
    assert bands.skipped == {"no chorded phrase": 1, "meter 3/4": 1,
                             "style not in the band styles": 1,
                             "held out for evaluation": 1}  # essen3#0, by its hash
    assert bands.sources == {"music21": bands.pieces["folk"], "mutopia": 2}
    assert bands.credits() == [MUSIC21, SOURCES["mutopia"]]
    assert all(s.time_signature == (4, 4) for s in bands.scores)
    data = build_dataset(bands.scores, STYLE_NAMES, hop=bands.hops, max_per_style=20)
    counts = dict(zip(*np.unique(data.style_ids, return_counts=True), strict=True))
    # ragtime: 2 rags of 8 4/4 bars at hop 1 give 5 phrases each
    assert counts == {STYLE_NAMES.index("folk"): 20, STYLE_NAMES.index("ragtime"): 10}
    assert data.summary["hop"] == bands.hops
    assert data.rolls[:, :, LEAD].any()
