"""Every file of the shared MIDI robustness corpus through the upload path of ``/seed share``: each
is stored with sensible content or refused with a clear reason, and a refusal stores nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from test_midi_import import IMPORTED
from test_midi_import import REFUSED as IMPORT_REFUSED

from cadenza.app import Cadenza
from cadenza.errors import UserError
from cadenza.members import UserRef, Where
from cadenza.music.motif import Motif
from cadenza.music.tokens import METERS
from cadenza.seeds import Upload

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "midi-corpus"
FILES = sorted(p.name for p in CORPUS.iterdir() if p.name != "MANIFEST.md") \
    if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not FILES, reason="shared/midi-corpus is absent")

# Every corpus file has one expected outcome, the importer's (test_midi_import measures what it
# recovers from each): a file it imports is taken as a seed, a file it refuses is refused with the
# importer's reason.
REFUSED: dict[str, str] = dict(IMPORT_REFUSED)
TAKEN: set[str] = set(IMPORTED)
USER = UserRef(5, "uploader")
HERE = Where(guild_id=1, channel_id=2)


def counts(app: Cadenza) -> tuple[int, ...]:
    conn = sqlite3.connect(app.store.path)
    try:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("users", "seeds", "lineage", "clips"))
    finally:
        conn.close()


@needs_corpus
def test_every_file_has_exactly_one_expected_outcome() -> None:
    assert set(REFUSED) | TAKEN == set(FILES) and not set(REFUSED) & TAKEN
    assert len(FILES) >= 39


@needs_corpus
@pytest.mark.parametrize("name", FILES)
async def test_corpus_file_is_taken_sensibly_or_refused_cleanly(app: Cadenza, name: str) -> None:
    data = (CORPUS / name).read_bytes()
    read_count = 0

    async def read() -> bytes:
        nonlocal read_count
        read_count += 1
        return data

    before = counts(app)
    try:
        result = await app.seeds.share_seed("corpus tune", USER, HERE,
                                      upload=Upload(name, len(data), read))
    except UserError as e:
        assert name in REFUSED, f"{name} should be taken but was refused: {e}"
        assert str(e) == f"cannot use {name}: {REFUSED[name]}"
        assert counts(app) == before  # nothing half-made: no seed, no link, no user
        return
    assert name in TAKEN, f"{name} should be refused ({REFUSED[name]}) but was taken"
    assert read_count == 1
    seed, motif = result.seed, result.motif
    assert (seed.source_kind, seed.source_ref, seed.user_name) == ("upload", name, "uploader")
    assert Motif.from_json(seed.motif_json) == motif
    assert motif.notes and 1 <= motif.bars <= 16 and motif.meter in METERS
    assert 40 <= motif.tempo <= 240
    end = motif.bars * motif.bar_ticks
    assert all(0 <= n.start < end and n.end <= end and 0 <= n.pitch <= 127 for n in motif.notes)
    # sensible content: a tune, not the one note a barely-playing "lead" part holds
    assert len(motif.notes) >= min(8, IMPORTED[name]["kept"] // 2)
    starts = [n.start for n in motif.notes]
    assert starts == sorted(set(starts))  # one line: monophonic, in order
    assert all(isinstance(w, str) and w and "\n" not in w for w in result.warnings)
    assert counts(app)[1] == before[1] + 1
    # and the models can build on it (an all-high or all-low seed once made the grammar dead-end)
    resolved, _ = await app.seeds.plan_compose({"motif": "corpus tune", "bars": 1, "seed": 1}, USER,
                                         HERE)
    comp = await asyncio.to_thread(app.composer.compose, resolved, motif)
    assert comp.score.bars == motif.bars + 1 and comp.score.track("lead").notes


@needs_corpus
async def test_known_tunes_come_out_as_their_melodies(app: Cadenza) -> None:
    async def share(name: str, seed_name: str) -> Motif:
        data = (CORPUS / name).read_bytes()

        async def read() -> bytes:
            return data

        return (await app.seeds.share_seed(seed_name, USER, HERE,
                                     upload=Upload(name, len(data), read))).motif

    mary = await share("pmidi-mary-noteon-vel0-running-status.mid", "mary")
    assert [n.pitch for n in mary.notes][:7] == [64, 62, 60, 62, 64, 64, 64]
    assert (mary.bars, mary.key.name, mary.meter) == (10, "G", (4, 4))
    waltz = await share("dwm-data-byte-over-127-brahms-waltz.mid", "waltz")
    assert waltz.meter == (3, 4) and waltz.bars == 16
    # a band whose lead enters late: the seed starts where the melody does
    band = await share("ns-type1-band-19trk-with-drums.mid", "band")
    assert band.notes[0].start < band.bar_ticks
