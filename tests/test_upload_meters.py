"""Uploads in the metres real files use: 2/2, 6/4, 3/8, 12/8 and a 3/4 piece that turns to 3/8
later all become seeds (the metre judged over the bars a seed keeps); a metre the models have no
form for (5/4) is refused with the reason."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import pytest

from cadenza.errors import UserError
from cadenza.music.midi_import import import_midi
from cadenza.music.motif import fit_meter
from cadenza.music.score import GRID
from cadenza.music.tokens import METERS, model_meter
from cadenza.seeds import _motif_from_upload

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "midi-corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/midi-corpus is absent")
TPQ = 480


def piece(*sections: tuple[tuple[int, int], int]) -> bytes:
    """A one-track tune: for each (meter, bars) a time signature, then a scale run of quarter
    notes (eighths in /8 metres) filling those bars."""
    track = mido.MidiTrack()
    pending = 0
    pitch = 60
    for (num, den), bars in sections:
        track.append(mido.MetaMessage("time_signature", numerator=num, denominator=den,
                                      time=pending))
        pending = 0
        step = TPQ * 4 // den
        for _ in range(bars * num):
            track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=step))
            pitch = 60 + (pitch - 59) % 12
    mid = mido.MidiFile(ticks_per_beat=TPQ)
    mid.tracks.append(track)
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("meter", "bars", "want", "seed_bars", "note"), [
    ((2, 2), 8, (4, 4), 8, "read 2/2 as 4/4"),
    ((6, 4), 6, (12, 8), 6, "read 6/4 as 12/8"),
    ((3, 8), 12, (6, 8), 6, "read two bars of 3/8 as one bar of 6/8"),
    ((12, 8), 4, (12, 8), 4, None),
    ((6, 8), 8, (6, 8), 8, None),
])
def test_an_upload_in_a_real_metre_becomes_a_seed(meter, bars, want, seed_bars, note) -> None:  # type: ignore[no-untyped-def]
    motif, warnings = _motif_from_upload(piece((meter, bars)), "tune.mid")
    assert motif.meter == want and motif.meter in METERS
    assert motif.bars == seed_bars
    # every note kept, where the file put it (ticks are unchanged: only bars are relabelled)
    assert len(motif.notes) == bars * meter[0]
    step = GRID * 4 // meter[1]
    assert [n.start for n in motif.notes] == [i * step for i in range(bars * meter[0])]
    if note is None:
        assert not any(w.startswith("read ") for w in warnings)
    else:
        assert note in warnings


def test_the_metre_is_judged_over_the_bars_a_seed_keeps() -> None:
    # 40 bars of 3/4, then 120 bars of 3/8: over the whole file 3/8 runs longer (it did get the
    # upload refused); the seed keeps 16 bars of 3/4.
    data = piece(((3, 4), 40), ((3, 8), 120))
    assert import_midi(data).score.time_signature == (3, 8)
    assert import_midi(data, meter_bars=16).score.time_signature == (3, 4)
    motif, warnings = _motif_from_upload(data, "waltz.mid")
    assert motif.meter == (3, 4) and motif.bars == 16
    assert not any("time signature changes" in w for w in warnings)


def test_a_metre_without_a_model_form_is_refused_by_name() -> None:
    with pytest.raises(UserError, match=r"cannot use odd\.mid: 5/4 is not supported for seeds"):
        _motif_from_upload(piece(((5, 4), 4)), "odd.mid")


def test_every_equivalent_is_a_known_metre_of_a_whole_number_of_bars() -> None:
    for meter in [(2, 2), (6, 4), (3, 8), (12, 16), (4, 8), (2, 8), (1, 4), (3, 16), *METERS]:
        fitted = model_meter(meter)
        assert fitted is not None
        target, per_bar = fitted
        assert target in METERS
        assert GRID * 4 * meter[0] * per_bar // meter[1] == GRID * 4 * target[0] // target[1]
    assert model_meter((5, 4)) is None and model_meter((7, 8)) is None


def test_fitting_a_known_metre_changes_nothing() -> None:
    score = import_midi(piece(((3, 4), 4))).score
    assert fit_meter(score) == (score, [])


@needs_corpus
@pytest.mark.parametrize(("name", "meter"), [
    ("tj-piano-debussy-2-2-meter.mid", (4, 4)),
    ("tj-orchestra-bartok-3-4-later-3-8.mid", (3, 4)),
])
def test_the_real_files_in_2_2_and_with_a_later_3_8_become_seeds(name: str, meter) -> None:  # type: ignore[no-untyped-def]
    motif, warnings = _motif_from_upload((CORPUS / name).read_bytes(), name)
    assert motif.meter == meter and motif.bars == 16 and len(motif.notes) >= 16
    assert not any("time signature changes" in w for w in warnings)
