"""The style-corpus readers on a small fixture built like the real folders (WJD MIDI with chord
markers and form cues, a rag, a chart, a lead sheet), tiny training on it, and the real corpus
when it is beside the checkout."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import pytest

from cadenza.models.training.style_corpus import (
    WJD_BLUES,
    WJD_JAZZ,
    chord_sequences,
    is_style_corpus,
    rag_pieces,
    style_corpus_pieces,
    wjd_pieces,
)
from cadenza.music.theory import Chord, Key

REAL = Path(__file__).resolve().parents[2] / "shared" / "style-corpus"
TPQ = 480
INDEX_HEAD = "file,key,signatures,nc_fraction,rhythmfeel\n"


def wjd_midi(chords: list[tuple[int, str]], cues: list[tuple[int, str]],
             notes: list[tuple[int, int, int]], meters: tuple[tuple[int, int], ...] = ((4, 4),)
             ) -> bytes:
    """A beat-aligned WJD-style file: track 0 metre, key, chord markers (+ text), form cues;
    track 1 the solo. Times in beats."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    events: list[tuple[float, mido.MetaMessage]] = []
    for i, (n, d) in enumerate(meters):
        events.append((i * 8, mido.MetaMessage("time_signature", numerator=n, denominator=d)))
    events.append((0, mido.MetaMessage("key_signature", key="Bb")))
    events += [(b, mido.MetaMessage("marker", text=c)) for b, c in chords]
    events += [(b, mido.MetaMessage("cue_marker", text=c)) for b, c in cues]
    mid.tracks.append(_track(events))
    solo = []
    for start, length, pitch in notes:
        solo.append((start, mido.Message("note_on", note=pitch, velocity=90)))
        solo.append((start + length, mido.Message("note_off", note=pitch, velocity=0)))
    mid.tracks.append(_track(solo))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _track(events: list[tuple[float, object]]) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    for beat, msg in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        tick = round(beat * TPQ)
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def riff(bar: int) -> list[tuple[float, float, int]]:
    """A bar of swung eighths, long-short 2:1 (every bar the same: repeats to learn)."""
    line = [62, 65, 69, 72, 70, 69, 65, 62]
    return [(bar * 4 + i // 2 + (2 / 3 if i % 2 else 0), 2 / 3 if i % 2 == 0 else 1 / 3, p)
            for i, p in enumerate(line)]


def make_fixture(root: Path) -> Path:
    (root / "MANIFEST.md").parent.mkdir(parents=True, exist_ok=True)
    (root / "MANIFEST.md").write_text("fixture\n")
    jazz = root / WJD_JAZZ
    blues = root / WJD_BLUES
    jazz.mkdir(parents=True)
    blues.mkdir(parents=True)
    solo = [n for b in range(8) for n in riff(b)]
    chords = [(0, "Bb6"), (4, "Cm7"), (6, "F7"), (8, "Bb6"), (12, "Cm7"), (14, "F7"),
              (16, "Bb6"), (20, "N.C."), (24, "Bb6")]
    cues = [(0, "A1 chorus 1"), (16, "B1 chorus 1")]
    (jazz / "Tester_Rhythm.mid").write_bytes(wjd_midi(chords, cues, solo))
    blues_solo = [(b * 4 + i, 1, p) for b in range(12) for i, p in enumerate([60, 63, 65, 66])]
    (jazz / "Tester_Blues.mid").write_bytes(wjd_midi([(0, "F7"), (16, "Bb7"), (24, "F7")],
                                                     [(0, "A1 chorus 1")], blues_solo))
    (blues / "Tester_Blues.mid").write_bytes((jazz / "Tester_Blues.mid").read_bytes())
    (jazz / "Tester_Changes.mid").write_bytes(wjd_midi(chords, cues, solo,
                                                       meters=((4, 4), (3, 4))))
    (jazz / "Tester_Free.mid").write_bytes(wjd_midi([(0, "N.C.")], [], solo))
    (jazz / "Tester_Broken.mid").write_bytes(b"MThd garbage")
    (jazz / "index.csv").write_text(
        INDEX_HEAD + "Tester_Rhythm.mid,Bb-maj,4/4,0.0,SWING\n"
        "Tester_Blues.mid,F-maj,4/4,0.0,LATIN\nTester_Changes.mid,Bb-maj,4/4|3/4,0.0,SWING\n"
        "Tester_Free.mid,,4/4,1.0,SWING\n")
    (blues / "index.csv").write_text(INDEX_HEAD + "Tester_Blues.mid,F-maj,4/4,0.0,LATIN\n")
    rags = root / "ragtime" / "midi" / "mutopia"
    nc = root / "ragtime" / "midi" / "craigsapp-joplin-NC"
    rags.mkdir(parents=True)
    nc.mkdir(parents=True)
    rag = [(b * 2 + i * 0.5, 0.5, p) for b in range(8) for i, p in enumerate([72, 76, 79, 76])]
    bass = [(b * 2 + i, 1, p) for b in range(8) for i, p in enumerate([48, 55])]
    for folder, name in ((rags, "Tester_rag.mid"), (nc, "Joplin_test.mid")):
        mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
        mid.tracks.append(_track([(0, mido.MetaMessage("time_signature", numerator=2,
                                                       denominator=4))]))
        for part in (rag, bass):
            mid.tracks.append(_track([e for s, d, p in part for e in (
                (s, mido.Message("note_on", note=p, velocity=80)),
                (s + d, mido.Message("note_off", note=p, velocity=0)))]))
        mid.save(folder / name)
    charts = root / "jazz" / "chords" / "jcpc"
    charts.mkdir(parents=True)
    (charts / "Tester.txt").write_text(
        "Title = Tester\nComposedBy = Nobody\nDBKeySig = F\nTimeSig = 4 4\nBars = 8\n"
        " Gm7 C7 | F6 | Gm7 C7 | F6 |\n Gm7 C7 | F6 | Gm7 C7 | F6 |\n")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return make_fixture(tmp_path / "style-corpus")


def test_wjd_solos_bring_their_chords_form_style_and_reasons_for_skips(corpus: Path) -> None:
    pieces, skipped = wjd_pieces(corpus)
    by_name = {p.source: p for p in pieces}
    assert set(by_name) == {"wjd:Tester_Rhythm", "wjd:Tester_Blues"}
    assert by_name["wjd:Tester_Blues"].style == "blues"  # in the blues subset
    rhythm = by_name["wjd:Tester_Rhythm"]
    assert rhythm.style == "jazz" and rhythm.key == Key(10) and rhythm.meter == (4, 4)
    assert rhythm.chords[:3] == ((0, "A#6"), (48, "Cm7"), (72, "F7"))
    assert (240, "NC") in rhythm.chords  # N.C. ends the chord
    assert rhythm.sections == ((0, 4, "A"), (4, rhythm.bars - 4, "B"))
    # a swing-feel solo is straightened: the 2:1 eighths come back as even ones (the
    # arranger swings them again); the latin blues keeps its straight quarters
    assert rhythm.notes[:3] == ((0, 6, 62), (6, 6, 65), (12, 6, 69))
    blues = by_name["wjd:Tester_Blues"]
    assert [n[0] for n in blues.notes[:3]] == [0, 12, 24]
    assert skipped == {"wjd: no metre or a metre change": 1, "wjd: no chord annotation": 1,
                       "wjd: unreadable MIDI (the file is truncated inside its MIDI header)": 1}
    score = rhythm.to_score()
    assert score.chord_at(48) == Chord(0, "m7")
    assert not any(ev.start <= 250 < ev.end for ev in score.chords)  # the N.C. stretch


def test_performed_wjd_solos_keep_their_swing_for_the_evaluation(corpus: Path) -> None:
    from cadenza.models.zoo.lead_metrics import line_from_piece, swing_ratio

    learned = {p.source: p for p in wjd_pieces(corpus)[0]}
    performed = {p.source: p for p in wjd_pieces(corpus, performed=True)[0]}
    assert set(performed) == set(learned)
    rhythm = performed["wjd:Tester_Rhythm"]
    assert rhythm.notes[:3] == ((0, 8, 62), (8, 4, 65), (12, 8, 69))  # as played, 2:1
    assert swing_ratio(line_from_piece(rhythm, 0, 4)) == pytest.approx(2.0)
    assert swing_ratio(line_from_piece(learned["wjd:Tester_Rhythm"], 0, 4)) == 1.0
    # the chords, form and straight (latin) solos are the same either way
    assert rhythm.chords == learned["wjd:Tester_Rhythm"].chords
    assert rhythm.sections == learned["wjd:Tester_Rhythm"].sections
    assert performed["wjd:Tester_Blues"] == learned["wjd:Tester_Blues"]


def test_the_non_commercial_rags_are_read_only_when_asked(corpus: Path) -> None:
    pd, _ = rag_pieces(corpus)
    assert [p.source for p in pd] == ["mutopia:Tester_rag"]
    assert pd[0].style == "ragtime" and pd[0].meter == (2, 4)
    assert [n[2] for n in pd[0].notes[:4]] == [72, 76, 79, 76]  # the right hand's line
    both, _ = rag_pieces(corpus, include_nc=True)
    assert {p.source for p in both} == {"mutopia:Tester_rag", "joplin-nc:Joplin_test"}
    only, _ = rag_pieces(corpus, nc_only=True)
    assert [p.source for p in only] == ["joplin-nc:Joplin_test"]
    shipped, _ = style_corpus_pieces(corpus)
    assert not any(p.source.startswith("joplin-nc:") for p in shipped)


def test_chord_sequences_come_from_charts_and_rags(corpus: Path) -> None:
    seqs, _ = chord_sequences(corpus)
    chart = next(s for s in seqs if s.source == "jcpc:Tester")
    assert chart.style == "jazz" and chart.key == Key(5) and len(chart.bars) == 8
    assert chart.bars[0] == ((0, Chord(7, "m7")), (24, Chord(0, "7")))
    assert [s.style for s in seqs if s.source.startswith("mutopia:")] == ["ragtime"]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_tiny_models_train_on_the_fixture(corpus: Path, tmp_path: Path, cell: str) -> None:
    from cadenza.models.families import load
    from cadenza.models.training.train import TrainOptions, train
    from cadenza.models.zoo.card import write_card

    assert is_style_corpus(corpus)
    out = tmp_path / "tiny" / "model.pt"
    best = train(TrainOptions(out=out, cell=cell, data_dirs=(corpus,), use_corpus=False,
                              use_style_corpus=False, n_layer=1, n_embd=8, n_hidden=16,
                              batch=4, block=64, steps=4, eval_every=2))
    loaded = load(out)
    # the files that do not parse are counted by reason in the checkpoint and its card
    _, skipped = style_corpus_pieces(corpus)
    assert loaded.meta["skipped"] == dict(sorted(skipped.items())) and skipped
    assert f"Skipped in training: {sum(skipped.values())} source files or pieces (" in \
        write_card(out).read_text()
    # three usable pieces: one is held out (the fixed hashed split), two train
    trained, held = set(loaded.meta["trained_styles"]), set(best["per_style"])
    assert len(trained) == 2 and trained | held == {"jazz", "blues", "ragtime"}
    assert loaded.meta["data"]["ragtime"]["sources"] == ["mutopia"]
    assert all(v["tokens"] > 0 for v in best["per_style"].values())


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/style-corpus is not beside the checkout")
def test_the_real_style_corpus_reads_with_few_skips() -> None:
    pieces, skipped = style_corpus_pieces(REAL)
    styles = {s: sum(p.style == s for p in pieces) for s in ("jazz", "blues", "ragtime")}
    # measured 2026-12: 287 WJD + 59 Impro-Visor jazz, 80 + 10 blues, 17 rags
    assert styles["jazz"] >= 300 and styles["blues"] >= 80 and styles["ragtime"] >= 15
    assert sum(skipped.values()) <= 25
    assert not any(p.source.startswith("joplin-nc:") for p in pieces)
