"""The render pool: clips rendered in child processes (real FluidSynth, LAME, piano roll), each
stage under its deadline. A stuck stage is killed with its child and the next clip renders in a
fresh one; a crash, a full disk and a cancelled request each cost one child at most, never the
pool. Faults are injected in the child itself (``CADENZA_INJECT_FAULT``), whatever encoder it
runs."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from cadenza.clip_child import FAULT_ENV
from cadenza.clip_pool import ClipPool
from cadenza.deadlines import Deadlines, StageTimeout
from cadenza.errors import ResourceError
from cadenza.music.midi_io import score_to_midi
from cadenza.music.score import Note, Score, Track


def tune() -> Score:
    notes = tuple(Note(i * 12, 12, 60 + i % 8, 90) for i in range(8))
    return Score(tracks=(Track("Lead", "lead", 0, False, notes),), tempo=120.0, bars=2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed child of the fork server may linger as a zombie until it is reaped
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def one_child(pool: ClipPool) -> int:
    """Start the pool's child (its soundfont loaded); its pid."""
    await pool.warm_up()
    [pid] = pool.pids
    return pid


@pytest.fixture
async def pool():
    p = ClipPool(size=1, deadlines=Deadlines(render=30, encode=1.5, pianoroll=1.5))
    yield p
    await p.close()


async def test_a_clip_renders_in_a_child_with_its_stages_in_order(pool, tmp_path: Path) -> None:
    stages: list[str] = []
    score = tune()
    files = await pool.make_files(score, score_to_midi(score), tmp_path, "one", title="t",
                              progress=stages.append)
    assert [p.name for p in (files.mp3, files.mid, files.png)] == ["one.mp3", "one.mid", "one.png"]
    assert all(p.stat().st_size > 0 for p in (files.mp3, files.mid, files.png))
    assert stages == ["render", "encode", "pianoroll"]
    [pid] = pool.pids
    assert pid != os.getpid() and alive(pid)
    # the child is kept for the next clip: the soundfont is loaded once
    await pool.make_files(score, score_to_midi(score), tmp_path, "two")
    assert pool.pids == [pid] and pool.started == 1


@pytest.mark.parametrize("stage", ["encode", "pianoroll"])
async def test_a_stuck_stage_is_killed_at_its_deadline_and_the_next_clip_renders(
        pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    score = tune()
    stuck = await one_child(pool)
    monkeypatch.setenv(FAULT_ENV, f"{stage}:hang")
    t0 = time.monotonic()
    with pytest.raises(StageTimeout) as timeout:
        await pool.make_files(score, score_to_midi(score), tmp_path, "stuck")
    took = time.monotonic() - t0
    assert timeout.value.stage == stage and 1.5 <= took < 10
    assert str(timeout.value).endswith("took longer than 1.5 s and was stopped")
    assert await gone(stuck) and pool.killed == 1
    monkeypatch.delenv(FAULT_ENV)
    files = await pool.make_files(score, score_to_midi(score), tmp_path, "next")
    assert files.mp3.stat().st_size > 0 and pool.pids != [stuck]


async def test_a_crashed_child_fails_one_clip_and_is_replaced(
        pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    score = tune()
    monkeypatch.setenv(FAULT_ENV, "render:crash")
    with pytest.raises(ResourceError, match="the render worker stopped unexpectedly"):
        await pool.make_files(score, score_to_midi(score), tmp_path, "crash")
    monkeypatch.delenv(FAULT_ENV)
    assert (await pool.make_files(score, score_to_midi(score), tmp_path, "ok")).png.exists()


async def test_a_full_disk_is_a_clear_error_and_the_child_stays(
        pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    score = tune()
    pid = await one_child(pool)
    monkeypatch.setenv(FAULT_ENV, "pianoroll:enospc")
    with pytest.raises(ResourceError) as error:
        await pool.make_files(score, score_to_midi(score), tmp_path, "full")
    assert str(error.value) == (f"cannot write the clip's files in {tmp_path}: No space left on "
                                "device")
    assert pool.pids == [pid]


async def test_cancelling_a_render_kills_its_child_at_once(
        pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    score = tune()
    pid = await one_child(pool)
    monkeypatch.setenv(FAULT_ENV, "render:hang")
    task = asyncio.create_task(pool.make_files(score, score_to_midi(score), tmp_path, "x"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(pid, within=2.0)


async def test_close_kills_a_stuck_child_without_waiting_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ClipPool(size=1, deadlines=Deadlines(render=600))
    score = tune()
    monkeypatch.setenv(FAULT_ENV, "render:hang")
    task = asyncio.create_task(pool.make_files(score, score_to_midi(score), tmp_path, "x"))
    while not pool.pids:
        await asyncio.sleep(0.05)
    [pid] = pool.pids
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    await pool.close()
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(BaseException):  # noqa: B017 - whatever the child's death raises
        await task
    assert await gone(pid, within=2.0)


async def test_a_missing_soundfont_is_one_clear_error_from_the_child(tmp_path: Path) -> None:
    pool = ClipPool(soundfont=tmp_path / "gone.sf2", size=1)
    score = tune()
    try:
        with pytest.raises(ResourceError, match=r"^soundfont not found: .*gone\.sf2$"):
            await pool.make_files(score, score_to_midi(score), tmp_path, "x")
        assert pool.pids == []  # the child that could not start is gone
    finally:
        await pool.close()
