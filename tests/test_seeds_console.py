"""The offline console's /seed lines and button equivalents (/continue, /vary, /reroll): the same
command layer as Discord, uploads by file path, real store and rendering."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import mido
import pytest

from cadenza.app import Cadenza
from cadenza.console import Console, parse_line
from cadenza.errors import UserError
from cadenza.members import UserRef
from cadenza.options import parse_options


def write_tune(path: Path) -> Path:
    track = mido.MidiTrack()
    for p in (67, 64, 60, 64, 67, 72):
        track.append(mido.Message("note_on", note=p, velocity=90, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=240))
    song = mido.MidiFile(type=0, ticks_per_beat=480)
    song.tracks.append(track)
    song.save(path)
    return path


@pytest.mark.parametrize(("line", "expected"), [
    ('/seed share name:"Blue Riff" notes:"C4/8 E G" public:yes',
     ("seed share", {"name": "Blue Riff", "notes": "C4/8 E G", "public": True})),
    ("/seed share name:lick clip:3 bars:2-5",
     ("seed share", {"name": "lick", "clip": 3, "bars": (2, 5)})),
    ("/seed share name:w notes:C4 meter:3/4",
     ("seed share", {"name": "w", "notes": "C4", "meter": (3, 4)})),
    ("/seed list query:bob page:2", ("seed list", {"query": "bob", "page": 2})),
    ("/seed blend a:up b:down bars:6 seed:1",
     ("seed blend", {"a": "up", "b": "down", "bars": 6, "seed": 1})),
    ("/continue 12 8", ("continue", {"clip": 12, "bars": 8})),
    ("/vary clip:12", ("vary", {"clip": 12})),
    ("/compose motif:riff bars:4", ("compose", {"motif": "riff", "bars": 4})),
])
def test_seed_lines_parse_into_the_shared_options(line: str, expected: tuple) -> None:
    parsed = parse_line(line)
    assert parsed is not None
    assert (parsed.command, parse_options(parsed.command, parsed.options)) == expected


@pytest.mark.parametrize(("line", "message"), [
    ("/seed share name:x", "takes the music from one of clip:, file: or notes:"),
    ("/seed share name:x notes:C4 public:maybe", "public must be true or false"),
    ("/seed share name:x clip:1 bars:abc", "bars must be a range of bars such as 1-4"),
    ("/seed share name:x clip:1 meter:3/4", "meter: is for notes:"),
    ("/seed share name:x notes:C4 meter:5/4", "unknown meter '5/4'"),
    ("/seed share notes:C4", "/seed share needs name"),
    ("/seed blend a:up b:UP", "a blend needs two different seeds"),
    ("/seed blend a:up b:down bars:4", "bars must be between 6 and 32"),
    ("/continue clip:1 bars:17", "bars must be between 1 and 16"),
    ("/seed dance", "/seed has no subcommand 'dance': use share, list, show, delete, tree, "
                    "blend"),
    ("/seed", "/seed has no subcommand: use share"),
])
def test_bad_seed_lines_are_refused_in_one_line(line: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as refused:
        parsed = parse_line(line)
        assert parsed is not None
        parse_options(parsed.command, parsed.options)
    assert "\n" not in str(refused.value)


async def test_console_session_with_seeds(app: Cadenza, tmp_path: Path) -> None:
    tune = write_tune(tmp_path / "tune.mid")
    huge = tmp_path / "huge.mid"
    with huge.open("wb") as f:
        f.truncate((1 << 20) + 1)
    out = io.StringIO()
    console = Console(app, UserRef(0, "console"), out=out)
    bob = Console(app, UserRef(2, "bob"), out=out)
    lines = [
        '/seed share name:riff notes:"C4/8 D E F G/4 E | D/2 C/2" public:true',
        f"/seed share name:tune file:{tune}",
        f"/seed share name:big file:{huge}",
        f"/seed share name:gone file:{tmp_path / 'missing.mid'}",
        f"/seed share name:dir file:{tmp_path}",
        "/seed list",
        "/compose motif:riff bars:1 seed:3 style:folk",
        "/continue clip:1 bars:1 seed:4",
        "/vary 2 seed:5",
        "/reroll 1",
        "/seed blend a:riff b:tune bars:6 seed:6",
        "/seed tree riff",
        "/seed show tune",
        "/clip 3",
    ]
    for line in lines:
        assert await console.execute(line)
    await bob.execute("/seed show tune")  # private to the console's user
    await bob.execute("/seed delete riff")  # the console's own user may; bob may not
    await console.execute("/seed delete riff")
    await console.execute("/seed list query:RI")
    text = out.getvalue()
    assert ("shared seed “riff” by console — 2 bars, C, 4/4, 120 bpm, public (from notes: C4/8 "
            "D E F G/4 E | D/2 C/2)") in text
    assert "shared seed “tune” by console — 1 bar, C, 4/4, 120 bpm, private (from upload: " \
           "tune.mid)" in text
    assert ("error: the file is 1,048,577 bytes; the limit is 1,048,576 bytes (1 MiB) for a "
            "seed's MIDI file") in text
    assert "error: no file '" in text and "missing.mid'" in text
    assert "is not a file" in text
    assert "seeds 1-2 of 2 (page 1 of 1):" in text
    assert "clip #1: folk, 3 bars (2 from the seed + 1 new)" in text
    assert "  built on: continues seed “riff” by console · credits: console" in text
    assert "  built on: continues clip #1 (folk) by console · credits: console" in text
    assert "  built on: a variation of clip #2 (folk) by console · credits: console" in text
    assert ("  built on: continues seed “riff” by console · a reroll of clip #1 (folk) by "
            "console · credits: console") in text
    assert ("built on: blends seed “riff” by console → seed “tune” by console · credits: "
            "console") in text
    assert "🌱 seed “riff” by console\n├─ clip #1 (folk) by console — continues\n" in text
    assert "  notes: G4/8 E4 C4 E4 G4 C5\n" in text
    assert (tmp_path / "out" / "seed-2.mp3").stat().st_size > 0
    assert "error: seed “tune” is private to console" in text
    assert "error: only console, who shared “riff”, or a member with Manage Server can " \
           "delete it" in text
    assert "deleted seed “riff”; clips built on it keep their credits" in text
    assert text.rstrip().endswith("no seeds match")
    conn = sqlite3.connect(app.store.path)
    try:
        assert conn.execute("SELECT name, deleted_by FROM seeds ORDER BY id").fetchall() == [
            ("riff", 0), ("tune", None)]
    finally:
        conn.close()
