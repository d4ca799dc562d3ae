"""Jobs belong to the store: a process killed mid-job leaves its jobs leased; once the lease runs
out exactly one other client takes each over (one answer: its clip, or one failure notice), and
never a live process's job. Two processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from cadenza.store import Store, StoreError
from cadenza.store_rows import NewClip

LEASE = 1.5
# A gateway process: records two jobs under its lease, finishes one (its clip stored, the post
# not yet made), starts the other, says so, and waits to be killed.
GATEWAY = """
import asyncio, sys
from cadenza.store import Store
from cadenza.store_rows import NewClip

async def main(target):
    store = await Store.open(target)
    params = {"style": "jazz", "bars": 1, "meter": "4/4", "seed": 3}
    running = await store.add_job(user_id=1, user_name="ann", params=params, channel_id=5,
                                  owner="gateway-a", lease=float(sys.argv[2]))
    done = await store.add_job(user_id=2, user_name="bo", params=params, channel_id=5,
                               owner="gateway-a", lease=float(sys.argv[2]))
    await store.start_job(running)
    await store.start_job(done)
    clip = await store.add_clip(NewClip(style="jazz", bars=1, tempo=120.0, key="C", meter="4/4",
        temperature=1.0, seed=3, model="lstm", midi=b"MThd" + bytes(10), duration_s=2.0,
        user_id=2, user_name="bo"))
    await store.finish_job(done, "done", clip_id=clip)
    print(running, done, clip, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"""


async def start_gateway(target: Path | str) -> tuple[asyncio.subprocess.Process, list[int]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", GATEWAY, str(target), str(LEASE), stdout=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), 60)  # type: ignore[union-attr]
    return proc, [int(x) for x in line.split()]


async def test_a_killed_process_jobs_are_taken_over_once_after_its_lease(
        store_db: Path | str) -> None:
    proc, (running, done, clip) = await start_gateway(store_db)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    killed_at = time.monotonic()
    async with await Store.open(store_db) as b, await Store.open(store_db) as c:
        # Its lease has not run out: a process starting now leaves the jobs alone.
        assert await b.interrupt_open_jobs("gateway-b", LEASE) == []
        assert (await b.get_job(running)).status == "running"  # type: ignore[union-attr]
        await asyncio.sleep(LEASE - (time.monotonic() - killed_at) + 0.2)
        # Two processes sweep at once: each job goes to exactly one of them.
        got_b, got_c = await asyncio.gather(b.interrupt_open_jobs("gateway-b", LEASE),
                                            c.interrupt_open_jobs("gateway-c", LEASE))
        taken = [*got_b, *got_c]
        assert sorted(j.id for j in taken) == [running, done]
        mine = "gateway-b" if got_b else "gateway-c"
        assert {j.owner for j in taken} == {mine}  # one process answers both
        by_id = {j.id: j for j in taken}
        # The running job failed (one notice with Try again); the finished one keeps its clip,
        # which still has to be posted.
        assert (by_id[running].status, by_id[running].interrupted) == ("failed", True)
        assert (by_id[done].status, by_id[done].clip_id, by_id[done].interrupted) == (
            "done", clip, False)
        # The dead process, were it only stalled, cannot overwrite what the taker decided.
        with pytest.raises(StoreError, match=f"another process \\({mine}\\) took it over"):
            await b.finish_job(running, "done", clip_id=clip, owner="gateway-a")
        assert (await b.get_job(running)).status == "failed"  # type: ignore[union-attr]
        # Nobody takes them again while the taker holds them...
        assert await b.interrupt_open_jobs("gateway-b", LEASE) == []
        assert await c.interrupt_open_jobs("gateway-c", LEASE) == []
        # ...and only the taker may post the answer, once claimed.
        other = "gateway-c" if mine == "gateway-b" else "gateway-b"
        assert await b.claim_answer(done, other) is False
        assert await b.claim_answer(done, mine) is True
        await b.record_answer(done, 9001)
        await b.mark_job_notified(running, 9002)
        assert await b.claim_answer(done, mine) is False  # answered: no second post
        row = await c.get_job(done)
        assert row is not None and row.answer_message_id == 9001 and row.answered_at
        # Answered jobs are never taken again, even when every lease has run out.
        await asyncio.sleep(LEASE + 0.2)
        assert await c.interrupt_open_jobs("gateway-c", LEASE) == []


async def test_a_live_process_keeps_its_jobs_by_renewing(store_db: Path | str) -> None:
    async with await Store.open(store_db) as a, await Store.open(store_db) as b:
        job = await a.add_job(user_id=1, user_name="ann", params={"x": 1}, owner="gateway-a",
                              lease=LEASE)
        for _ in range(3):  # longer than one lease, renewed at a third of it
            await asyncio.sleep(LEASE / 3)
            assert await a.renew_leases("gateway-a", LEASE) == 1
            assert await b.interrupt_open_jobs("gateway-b", LEASE) == []
        # A clean shutdown hands them over at once.
        assert await a.release_leases("gateway-a") == 1
        [taken] = await b.interrupt_open_jobs("gateway-b", LEASE)
        assert (taken.id, taken.owner, taken.status) == (job, "gateway-b", "failed")


@pytest.mark.parametrize("store_db", ["sqlite"], indirect=True)
async def test_jobs_of_a_cadenza_before_leases_are_taken_at_once(store_db: Path) -> None:
    """Rows without a lease (a single-process Cadenza, or one from before schema v7) belong
    to nobody: the next start takes the open ones at once, as it always did."""
    async with await Store.open(store_db) as store:
        job = await store.add_job(user_id=1, user_name="ann", params={"x": 1})
        [taken] = await store.interrupt_open_jobs("gateway-b")
        assert taken.id == job and taken.interrupted
        clip = await store.add_clip(NewClip(
            style="jazz", bars=1, tempo=120.0, key="C", meter="4/4", temperature=1.0, seed=3,
            model="lstm", midi=b"MThd" + bytes(10), duration_s=2.0, user_id=1))
        finished = await store.add_job(user_id=1, user_name="ann", params={"x": 1})
        await store.finish_job(finished, "done", clip_id=clip)
        await store.record_answer(finished, None)
        cancelled = await store.add_job(user_id=1, user_name="ann", params={"x": 1})
        await store.finish_job(cancelled, "cancelled")
        # The taken job is gateway-b's now; the finished and the cancelled one were answered.
        assert await store.interrupt_open_jobs("gateway-c", 0.0) == []


@pytest.mark.parametrize("store_db", ["sqlite"], indirect=True)
async def test_a_v6_database_gains_leases_keeping_every_row(store_db: Path) -> None:
    """A file made by the Cadenza before leases (schema v6) upgrades in place: every row stays,
    finished jobs count as answered, an interrupted one still waiting for its notice does not."""
    from test_store import new_clip

    from cadenza.store import load_migrations
    from tests.store_backends import raw

    async with await Store.open(store_db, migrations=load_migrations()[:6]) as old:
        clip = await old.add_clip(new_clip())
        await old.set_rating(clip, 2, 4, "bob")
    # Jobs as the v6 code wrote them: done, interrupted (not yet told), still queued.
    insert = ("INSERT INTO jobs (status, user_id, params_json, clip_id, interrupted, error, "
              "created_at, finished_at) VALUES (?, 1, '{}', ?, ?, ?, ?, ?) RETURNING id")
    then, later = "2024-01-01T00:00:00.000000Z", "2024-01-01T00:01:00.000000Z"
    [(done,)] = raw(store_db, insert, ("done", clip, 0, None, then, later))
    [(lost,)] = raw(store_db, insert, ("failed", None, 1, "interrupted", then, later))
    [(waiting,)] = raw(store_db, insert, ("queued", None, 0, None, then, None))
    tables = ("users", "clips", "ratings", "jobs")
    before = {t: raw(store_db, f"SELECT * FROM {t} ORDER BY 1") for t in tables}
    assert raw(store_db, "PRAGMA user_version") == [(6,)]
    async with await Store.open(store_db) as store:
        assert await store.schema_version() == 7
        rows = {j.id: j for j in [await store.get_job(i) for i in (done, lost, waiting)] if j}
        assert rows[done].answered_at is not None and rows[lost].answered_at is None
        assert rows[waiting].status == "queued" and rows[waiting].owner is None
        # The next start reports the interrupted job and takes the open one, as before.
        taken = await store.interrupt_open_jobs("gateway-b")
        assert sorted(j.id for j in taken) == [lost, waiting]
    for table in tables:
        now = raw(store_db, f"SELECT * FROM {table} ORDER BY 1")
        if table == "jobs":  # the old columns keep their values; new ones were added
            width = len(before["jobs"][0])
            assert [r[:width] for r in now][:1] == before["jobs"][:1]
            assert len(now) == len(before["jobs"])
        else:
            assert now == before[table]


async def test_a_gateway_queue_whose_process_stops_renewing_is_answered_by_another(
        pg_url: str, tmp_path: Path, tiny_registry) -> None:  # type: ignore[no-untyped-def]
    """Two gateways' job queues on one PostgreSQL database: A's job is running when A stops
    renewing (as if killed); B, sweeping, takes it over once, after A's lease, and hands it to
    its on_takeover hook (the Discord client tells the member). B never touches its own job."""
    from test_jobs import GatedComposer, request

    from cadenza.app import Cadenza, UserRef, Where
    from cadenza.wiring import job_queue

    lease = 1.2
    apps, queues = [], []
    for name in ("a", "b"):
        composer = GatedComposer(tiny_registry)
        store = await Store.open(pg_url)
        apps.append(Cadenza(composer, store, output_dir=tmp_path / name, workers=1))
        queues.append(job_queue(apps[-1], lease=lease, owner=f"gateway-{name}"))
    a, b = queues
    taken: list[list[int]] = []

    async def hook(rows: list) -> None:  # type: ignore[type-arg]
        taken.append([r.id for r in rows])

    b.on_takeover = hook
    try:
        assert await a.start() == [] and await b.start() == []
        job = await a.submit(request(apps[0], 5), UserRef(1, "ann"), Where(10, 20))
        mine = await b.submit(request(apps[1], 6), UserRef(2, "bo"), Where(10, 20))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not apps[0].composer.entered and loop.time() < deadline:  # type: ignore[attr-defined]
            await asyncio.sleep(0.02)
        # A dies: its workers and its lease keeper stop, nothing is released.
        dying = [*a._tasks, a._keeper]
        for task in dying:
            task.cancel()  # type: ignore[union-attr]
        await asyncio.gather(*dying, return_exceptions=True)  # type: ignore[arg-type]
        await asyncio.sleep(lease * 0.5)
        assert taken == []  # A's lease has not run out yet
        while not taken and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert taken == [[job.id]]
        row = await apps[1].store.get_job(job.id)  # type: ignore[arg-type]
        assert row is not None and (row.owner, row.status, row.interrupted) == (
            "gateway-b", "failed", True)
        own = await apps[1].store.get_job(mine.id)  # type: ignore[arg-type]
        assert own is not None and own.owner == "gateway-b" and own.status == "running"
        await asyncio.sleep(lease)
        assert taken == [[job.id]]  # once
    finally:
        for app in apps:
            app.composer.gate.set()  # type: ignore[attr-defined]
        await b.close()
        for app in apps:
            await app.close()
            await app.store.close()
