"""Generation threads under deadlines: a job past its deadline is cancelled (the sampler stops at
its next step), a thread that ignores the cancel is abandoned and replaced so the next job runs,
and closing never waits for a stuck thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cadenza.app import Cadenza
from cadenza.batching import MelodyBatcher
from cadenza.config import cpu_count
from cadenza.deadlines import Deadlines, StageTimeout
from cadenza.jobs import Done, Failed
from cadenza.members import UserRef
from cadenza.models.sample import SamplingStopped
from cadenza.service import Composer, ComposeRequest
from cadenza.store import Store
from cadenza.wiring import job_queue
from cadenza.workers import ThreadPool, current_token

ALICE, BOB = UserRef(1, "alice"), UserRef(2, "bob")


async def test_a_cooperative_job_stops_at_its_deadline_on_the_same_thread() -> None:
    pool = ThreadPool(1, "t")
    stopped = threading.Event()

    def polite() -> None:
        token = current_token()
        while not token():
            time.sleep(0.005)
        stopped.set()

    t0 = time.monotonic()
    with pytest.raises(StageTimeout, match=r"writing the melody and arrangement took longer "
                                           r"than 0\.2 s and was stopped"):
        await pool.run(polite, stage="generate", timeout=0.2)
    assert time.monotonic() - t0 < 1.0 and stopped.is_set() and pool.abandoned == 0
    assert await pool.run(lambda: 7, stage="generate", timeout=1) == 7
    pool.close()


async def test_a_thread_that_ignores_the_cancel_is_replaced_and_the_next_job_runs() -> None:
    pool = ThreadPool(1, "t")
    release = threading.Event()
    with pytest.raises(StageTimeout):
        await pool.run(release.wait, 60, stage="generate", timeout=0.2)
    assert pool.abandoned == 1
    # the replacement thread takes the next job at once
    t0 = time.monotonic()
    assert await pool.run(lambda: "next", stage="generate", timeout=5) == "next"
    assert time.monotonic() - t0 < 1.0
    pool.close()  # returns at once, though the abandoned thread still waits
    release.set()


async def test_a_cancel_during_the_grace_after_a_timeout_is_passed_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled (a shutdown) while it waits for a timed-out job to stop, the caller gets the
    CancelledError, not the stage's timeout, and the stuck thread is still replaced."""
    import cadenza.workers

    monkeypatch.setattr(cadenza.workers, "CANCEL_GRACE", 60.0)  # the cancel lands inside it
    pool = ThreadPool(1, "t")
    told, release = threading.Event(), threading.Event()

    def stubborn() -> None:
        token = current_token()
        while not token():
            time.sleep(0.005)
        told.set()  # the timeout fired: the pool now waits for the grace
        release.wait(60)

    task = asyncio.ensure_future(pool.run(stubborn, stage="generate", timeout=0.1))
    while not told.is_set():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.abandoned == 1
    assert await pool.run(lambda: "next", stage="generate", timeout=5) == "next"
    pool.close()
    release.set()


async def test_the_deadline_counts_from_when_the_job_starts_not_while_it_waits() -> None:
    pool = ThreadPool(1, "t")
    first = asyncio.ensure_future(pool.run(time.sleep, 0.4, stage="generate", timeout=1))
    second = await pool.run(time.sleep, 0.4, stage="generate", timeout=0.7)  # waited 0.4 s
    assert second is None and await first is None
    pool.close()


@pytest.mark.parametrize("batched", [False, True])
async def test_a_long_generation_is_stopped_between_sampling_steps(
        tmp_path, tiny_registry, batched: bool) -> None:
    batcher = MelodyBatcher() if batched else None
    store = await Store.open(tmp_path / "c.db")
    app = Cadenza(Composer(tiny_registry, batcher=batcher), store, output_dir=tmp_path / "out",
                  deadlines=Deadlines(generate=0.05))
    try:
        resolved = app.composer.resolve_installed(ComposeRequest(bars=32, seed=1))
        with pytest.raises(StageTimeout) as stopped:
            await app.workers.run_blocking(app.composer.compose, resolved)
        assert stopped.value.stage == "generate"
        # stopped cooperatively (the sampler checks its token each step): no thread abandoned
        assert app.workers.generation.abandoned == 0
    finally:
        await app.close()
        if batcher is not None:
            batcher.close()
        await store.close()


async def test_the_sampler_stops_a_row_whose_stop_says_so(tiny_registry) -> None:
    from cadenza.models.generate import MelodyRequest, generate_tokens
    from cadenza.models.grammar import plan_from_chords
    from cadenza.music.theory import Chord

    loaded = tiny_registry.get("lstm")
    plan = plan_from_chords([(0, Chord(0, "maj"))], 4, 48)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(SamplingStopped):
        generate_tokens(loaded, [MelodyRequest("jazz", (4, 4), plan, 1, stop=stop)])
    assert len(calls) == 4


async def test_a_job_past_its_deadline_fails_with_a_message_and_the_next_job_runs(
        tmp_path, tiny_registry) -> None:
    store = await Store.open(tmp_path / "c.db")
    app = Cadenza(Composer(tiny_registry), store, output_dir=tmp_path / "out",
                  deadlines=Deadlines(generate=0.05))
    queue = job_queue(app, workers=1)
    await queue.start()
    try:
        slow = await queue.submit(
            app.composer.resolve_installed(ComposeRequest(bars=32, seed=2)), ALICE)
        events = [e async for e in slow.events()]
        app.workers.deadlines = Deadlines()  # generous again: the next job completes
        quick = await queue.submit(
            app.composer.resolve_installed(ComposeRequest(bars=1, seed=3)), BOB)
        after = [e async for e in quick.events()]
    finally:
        await queue.close()
        await app.close()
        await store.close()
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.error_id is not None
    assert failed.message == ("writing the melody and arrangement took longer than 0.05 s and "
                              f"was stopped; the admins have been told (error id "
                              f"{failed.error_id})")
    assert isinstance(after[-1], Done)


def test_the_default_worker_count_follows_the_machine() -> None:
    import os

    from cadenza.config import Settings

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count()
    assert cpu_count() == expected
    assert Settings.from_env({}).workers == 2 * expected  # jobs change stage: see default_workers
    assert Settings.from_env({"CADENZA_WORKERS": "3"}).workers == 3


def test_deadlines_come_from_the_environment_and_bad_ones_stop_start_up() -> None:
    from cadenza.errors import UserError

    d = Deadlines.from_env({"CADENZA_DEADLINE_ENCODE": "2.5", "CADENZA_DEADLINE_STORE": "1"})
    assert (d.encode, d.store, d.generate) == (2.5, 1.0, Deadlines().generate)
    for bad in ("0", "-1", "nan", "soon", "1e999"):
        with pytest.raises(UserError, match="CADENZA_DEADLINE_RENDER must be a number of "
                                            "seconds above 0"):
            Deadlines.from_env({"CADENZA_DEADLINE_RENDER": bad})
    with pytest.raises(UserError, match=r"at most 2\.5 s"):
        Deadlines.from_env({"CADENZA_DEADLINE_STORE": "5"})
