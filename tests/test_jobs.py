"""The compose queue on its own (no Discord): admission limits, positions, events, cancelling,
failures, fairness between members, and what a shutdown leaves for the next start.

The real application runs underneath (tiny models, FluidSynth, SQLite); ``GatedComposer`` holds
each generation until the test opens its gate, so queue states can be observed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cadenza.app import Cadenza
from cadenza.clip_child import FAULT_ENV
from cadenza.errors import UserError
from cadenza.jobs import (
    Cancelled,
    Done,
    Failed,
    Interrupted,
    Job,
    JobEvent,
    MemberLimit,
    Queued,
    QueueFull,
    Stage,
    Started,
)
from cadenza.members import UserRef, Where
from cadenza.origin import Origin
from cadenza.service import Composer, ComposeRequest, Resolved
from cadenza.store import Store
from cadenza.wiring import job_queue

ALICE, BOB, CAROL = UserRef(1, "alice"), UserRef(2, "bob"), UserRef(3, "carol")
HERE = Where(guild_id=10, channel_id=20)


class GatedComposer(Composer):
    def __init__(self, registry) -> None:  # type: ignore[no-untyped-def]
        super().__init__(registry)
        self.gate = threading.Event()
        self.entered: list[int] = []

    def compose(self, r: Resolved):  # type: ignore[no-untyped-def]
        self.entered.append(r.seed)
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        return super().compose(r)


@pytest.fixture
async def gated(tmp_path: Path, tiny_registry) -> AsyncIterator[Cadenza]:  # type: ignore[no-untyped-def]
    composer = GatedComposer(tiny_registry)
    store = await Store.open(tmp_path / "cadenza.db")
    app = Cadenza(composer, store, output_dir=tmp_path / "out", workers=2)
    yield app
    composer.gate.set()
    await app.close()
    await store.close()


def request(app: Cadenza, seed: int, **options) -> Resolved:  # type: ignore[no-untyped-def]
    return app.composer.resolve_installed(ComposeRequest(bars=1, seed=seed, **options))


async def collect(job: Job) -> list[JobEvent]:
    return [event async for event in job.events()]


async def until(predicate, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.01)


def rows(app: Cadenza, sql: str) -> list[tuple]:
    conn = sqlite3.connect(app.store.path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_a_job_reports_queued_started_every_stage_then_done(app: Cadenza) -> None:
    queue = job_queue(app)
    await queue.start()
    try:
        job = await queue.submit(request(app, 7, style="folk"), ALICE, HERE)
        events = await asyncio.wait_for(collect(job), 60)
    finally:
        await queue.close()
    assert events[:2] == [Queued(1), Started()]
    assert [e.name for e in events[2:-1]] == ["generate", "render", "encode", "pianoroll",
                                              "store"]
    assert [(e.index, e.total) for e in events[2:-1]] == [(i, 5) for i in range(1, 6)]
    assert events[2].label == "writing the melody and arrangement"
    done = events[-1]
    assert isinstance(done, Done) and done.result.clip_id == 1 and job.state == "done"
    assert done.result.files.mp3.read_bytes()[:3] in (b"ID3", b"\xff\xfb")
    assert rows(app, "SELECT id, status, user_id, guild_id, channel_id, clip_id FROM jobs") == [
        (1, "done", 1, 10, 20, 1)]
    assert (queue.completed, queue.failed) == (1, 0)


async def test_limits_positions_and_cancelling(gated: Cadenza) -> None:
    queue = job_queue(gated, capacity=3, per_member=3, workers=1)
    await queue.start()
    try:
        first = await queue.submit(request(gated, 1), ALICE)
        await until(lambda: gated.composer.entered, "the first job to start")
        second = await queue.submit(request(gated, 2), ALICE)
        third = await queue.submit(request(gated, 3), ALICE)
        with pytest.raises(MemberLimit, match=r"^you already have 3 clip\(s\) in the queue"):
            queue.admit(request(gated, 4), ALICE)
        bobs = await queue.submit(request(gated, 5), BOB)
        with pytest.raises(QueueFull, match=r"^the queue is full \(3 clips waiting\)"):
            queue.admit(request(gated, 6), CAROL)
        assert [j.position for j in (first, second, third, bobs)] == [None, 1, 2, 3]
        assert (queue.waiting, queue.running) == (3, 1)

        with pytest.raises(UserError, match="only alice, who asked for this clip, can cancel"):
            await queue.cancel(second.id, BOB)
        with pytest.raises(UserError, match="too late to cancel"):
            await queue.cancel(first.id, ALICE)
        with pytest.raises(UserError, match="no longer waiting"):
            await queue.cancel(999, ALICE)
        await queue.cancel(second.id, ALICE)
        assert [j.position for j in (third, bobs)] == [1, 2]
        # A freed place is usable again at once.
        carols = queue.admit(request(gated, 6), CAROL)
        await queue.enqueue(carols)
        assert carols.position == 3

        gated.composer.gate.set()
        results = await asyncio.wait_for(asyncio.gather(
            collect(first), collect(second), collect(third), collect(bobs), collect(carols)), 90)
    finally:
        await queue.close()
    assert results[1] == [Queued(1), Cancelled(ALICE)]
    for events in results[2:]:
        # Read after the fact, superseded positions are skipped: what is left only moves up,
        # ends at 1, and is followed by the start, the stages and the clip.
        positions = [e.position for e in events if isinstance(e, Queued)]
        assert positions == sorted(positions, reverse=True) and positions[-1] == 1
        assert events[len(positions)] == Started() and isinstance(events[-1], Done)
    assert gated.composer.entered == [1, 3, 5, 6]
    assert rows(gated, "SELECT id, status FROM jobs ORDER BY id") == [
        (1, "done"), (2, "cancelled"), (3, "done"), (4, "done"), (5, "done")]


async def test_one_member_runs_one_job_at_a_time_even_with_free_workers(gated: Cadenza) -> None:
    queue = job_queue(gated, workers=2)
    await queue.start()
    try:
        a1 = await queue.submit(request(gated, 1), ALICE)
        a2 = await queue.submit(request(gated, 2), ALICE)
        b1 = await queue.submit(request(gated, 3), BOB)
        await until(lambda: len(gated.composer.entered) == 2, "two jobs to start")
        await asyncio.sleep(0.1)
        # The second worker skipped alice's second job for bob's.
        assert sorted(gated.composer.entered) == [1, 3] and a2.state == "queued"
        assert a2.position == 1
        gated.composer.gate.set()
        await asyncio.wait_for(asyncio.gather(collect(a1), collect(a2), collect(b1)), 90)
    finally:
        await queue.close()
    assert gated.composer.entered[2] == 2


async def test_failures_are_reported_and_recorded(app: Cadenza, tmp_path: Path, caplog,  # type: ignore[no-untyped-def]
                                                  monkeypatch) -> None:
    caplog.set_level(logging.WARNING)
    queue = job_queue(app)
    await queue.start()
    try:
        # A user error found only once the job runs: the member is told as it is.
        motif = Origin(kind="seed", seed_id=999)
        user_error = await asyncio.wait_for(
            collect(await queue.submit(request(app, 1), ALICE, origin=motif)), 30)
        # A model that disappeared after the request was admitted: the server's problem.
        gone = Resolved("jazz", 1, 120, "C", (4, 4), 1.0, 1, "transformer")
        no_model = await asyncio.wait_for(collect(await queue.submit(gone, ALICE)), 30)
        # The MP3 encoder missing in the render process: the audio cannot be encoded.
        with monkeypatch.context() as patched:
            patched.setenv(FAULT_ENV, "encode:missing")
            no_encoder = await asyncio.wait_for(
                collect(await queue.submit(request(app, 3), CAROL)), 60)
        # An output folder that cannot be created: a bug-like failure with an error id.
        shutil.rmtree(tmp_path / "out", ignore_errors=True)  # made by the jobs above
        (tmp_path / "out").write_text("not a folder")
        broken = await asyncio.wait_for(
            collect(await queue.submit(request(app, 2), BOB)), 60)
    finally:
        await queue.close()
    told = user_error[-1]
    assert isinstance(told, Failed) and told.error_id is None and "999" in told.message
    # Server-side problems: a short apology that says what kind of problem, with an error id;
    # the admin text (paths, what to install) is logged at error level under that id.
    for events, kind, admin_text in (
            (no_model, "could not load the transformer model", "unknown model 'transformer'"),
            (no_encoder, "is missing a part it needs to encode the MP3",
             "the encode stage is missing a part")):
        failed = events[-1]
        assert isinstance(failed, Failed) and failed.error_id is not None
        assert failed.message == (f"the server {kind}; the admins have been told "
                                  f"(error id {failed.error_id})")
        assert admin_text not in failed.message
        [logged] = [r for r in caplog.records if failed.error_id in r.getMessage()]
        assert logged.levelno == logging.ERROR and admin_text in logged.getMessage()
    failed = broken[-1]
    assert isinstance(failed, Failed) and failed.error_id is not None
    assert failed.message == f"something went wrong while composing (error id {failed.error_id})"
    assert failed.error_id in caplog.text and "Traceback" in caplog.text
    assert rows(app, "SELECT status, error FROM jobs ORDER BY id") == [
        ("failed", told.message), ("failed", no_model[-1].message),
        ("failed", no_encoder[-1].message), ("failed", failed.message)]
    assert rows(app, "SELECT COUNT(*) FROM clips") == [(0,)]  # nothing half-made
    assert (queue.completed, queue.failed) == (0, 4)


async def test_shutdown_leaves_open_jobs_for_the_next_start_to_report(gated: Cadenza) -> None:
    queue = job_queue(gated, workers=1)
    assert await queue.start() == []
    running = await queue.submit(request(gated, 1, style="blues"), ALICE, HERE)
    await until(lambda: gated.composer.entered, "the job to start")
    waiting = await queue.submit(request(gated, 2), BOB, HERE)
    await queue.set_message(waiting, 4242)
    followers = [asyncio.create_task(collect(j)) for j in (running, waiting)]
    await asyncio.sleep(0.05)
    await queue.close()
    events = await asyncio.wait_for(asyncio.gather(*followers), 10)
    assert [e[-1] for e in events] == [Interrupted(), Interrupted()]
    with pytest.raises(UserError, match="restarting"):
        queue.admit(request(gated, 3), CAROL)
    assert rows(gated, "SELECT id, status FROM jobs ORDER BY id") == [(1, "running"),
                                                                      (2, "queued")]

    again = job_queue(gated)
    reported = await again.start()
    try:
        assert [(j.id, j.status, j.user_name, j.message_id) for j in reported] == [
            (1, "failed", "alice", None), (2, "failed", "bob", 4242)]
        assert Resolved.from_params(reported[0].params) == running.resolved
        await again.mark_notified(1)
        assert [j.id for j in await gated.store.jobs_to_notify()] == [2]
    finally:
        await again.close()


async def test_close_ends_a_worker_whose_job_lost_the_cancellation(gated: Cadenza) -> None:
    """A job whose code swallows the shutdown's CancelledError (and fails instead) must not
    leave its worker waiting for the next job: close returns."""
    from cadenza.jobs import JobQueue

    entered = asyncio.Event()

    async def swallowing(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("the cancellation was lost here") from None

    queue = JobQueue(gated.store, compose=swallowing, compose_pair=swallowing, workers=1)
    assert await queue.start() == []
    job = await queue.submit(request(gated, 1), ALICE, HERE)
    await asyncio.wait_for(entered.wait(), 20)
    await asyncio.wait_for(queue.close(), 20)
    assert job.finished


async def test_abandoned_admission_frees_its_place(app: Cadenza) -> None:
    queue = job_queue(app, capacity=1)
    job = queue.admit(request(app, 1), ALICE)
    with pytest.raises(QueueFull):
        queue.admit(request(app, 2), BOB)
    queue.abandon(job)  # e.g. the interaction expired before it could be acknowledged
    queue.admit(request(app, 2), BOB)
    with pytest.raises(ValueError, match="was not admitted"):
        await queue.enqueue(job)
    assert rows(app, "SELECT COUNT(*) FROM jobs") == [(0,)]


def test_stage_events_know_their_label() -> None:
    assert Stage("encode", 3, 5).label == "encoding the MP3"
    assert Started() == Started() and Queued(2) != Queued(3)
