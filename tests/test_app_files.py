"""The files behind a clip: a failed render leaves nothing behind, and /clip never serves
another database's files that happen to carry the same clip number."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cadenza.app import Cadenza
from cadenza.clip_child import FAULT_ENV
from cadenza.errors import WriteError
from cadenza.members import UserRef
from cadenza.service import ComposeRequest
from cadenza.store import Store

ALICE = UserRef(1, "alice")


async def test_a_render_that_fails_leaves_no_files_and_no_row(
        app: Cadenza, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the disk fills up while the piano roll is drawn: the MIDI (and the MP3 beside it) were
    # already written under a temporary name
    monkeypatch.setenv(FAULT_ENV, "pianoroll:enospc")
    with pytest.raises(WriteError, match="No space left on device"):
        await app.compose(ComposeRequest(style="folk", bars=1, seed=2), ALICE)
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []
    conn = sqlite3.connect(app.store.path)
    assert conn.execute("SELECT COUNT(*) FROM clips").fetchone() == (0,)
    conn.close()


async def test_clip_re_renders_when_the_files_on_disk_are_another_clips(
        app: Cadenza, composer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # another database wrote its clip #1 into the same output folder
    async with await Store.open(tmp_path / "other.db") as other_store:
        other = Cadenza(composer, other_store, output_dir=tmp_path / "out")
        theirs = await other.compose(ComposeRequest(style="jazz", bars=1, seed=5), ALICE)
        await other.close()
    ours = await app.compose(ComposeRequest(style="folk", bars=1, seed=6), ALICE,
                             stem="elsewhere")
    assert theirs.clip_id == ours.clip_id == 1
    row = await app.store.get_clip(1)
    assert row is not None and (tmp_path / "out" / "clip-1.mid").read_bytes() != row.midi
    shown = await app.library.clip(1)
    assert shown.files.mid.read_bytes() == row.midi
    assert shown.files.mp3.stat().st_size > 0 and shown.files.png.stat().st_size > 0


async def test_a_re_render_that_fails_leaves_no_files_behind(
        app: Cadenza, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = await app.compose(ComposeRequest(style="folk", bars=1, seed=7), ALICE)
    for path in (made.files.mp3, made.files.mid, made.files.png):
        path.unlink()  # /clip must render it again
    monkeypatch.setenv(FAULT_ENV, "pianoroll:enospc")  # the MP3 and MIDI are written first
    with pytest.raises(WriteError, match="No space left on device"):
        await app.library.clip(made.number)
    assert list((tmp_path / "out").iterdir()) == []  # no clip-1.mid or .mp3 half-made
