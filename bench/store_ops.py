"""Latency of the store's operations on a SQLite file and on PostgreSQL (a throwaway local
server started here, as the tests do), one client, then several concurrent votes.

Usage: .venv/bin/python bench/store_ops.py [--ops 200] [--concurrent 16]

Prints median and p95 milliseconds per operation (a vote, storing a clip, reading a clip, the
chart, a job's life: add + start + finish + answer, a lease sweep) for each database, and the
PostgreSQL/SQLite ratio of the medians; then votes per second with ``--concurrent`` voters at
once. PostgreSQL runs with fsync off (a test server): its figures are the round trips and the
SQL, not the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import mido

from cadenza.store import NewClip, Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pg_server import PgServer


def midi() -> bytes:
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=480)])
    file = mido.MidiFile(ticks_per_beat=480)
    file.tracks.append(track)
    buffer = io.BytesIO()
    file.save(file=buffer)
    return buffer.getvalue()


MIDI = midi()


def clip(user: int, guild: int) -> NewClip:
    return NewClip(style="jazz", bars=8, tempo=120.0, key="Dm", meter="4/4", temperature=0.9,
                   seed=user, model="lstm", midi=MIDI, duration_s=16.0, user_id=user,
                   user_name=f"user{user}", guild_id=guild, channel_id=guild + 1,
                   params={"style": "jazz", "bars": 8})


async def timed(n: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    took = []
    for i in range(n):
        start = time.perf_counter()
        await op(i)
        took.append((time.perf_counter() - start) * 1000)
    return took


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def measure(target: Path | str, ops: int, concurrent: int) -> tuple[dict, float]:
    async with await Store.open(target) as store:
        clips = [await store.add_clip(clip(u, 100)) for u in range(1, 51)]
        results: dict[str, list[float]] = {}
        results["vote"] = await timed(ops, lambda i: store.set_rating(
            clips[i % 50], 1000 + i, 1 + i % 5, f"voter{i}"))
        results["add clip"] = await timed(ops, lambda i: store.add_clip(clip(2000 + i, 100)))
        results["get clip"] = await timed(ops, lambda i: store.get_clip(clips[i % 50]))
        results["chart"] = await timed(ops // 4, lambda i: store.top(scope=100))

        async def job_life(i: int) -> None:
            job = await store.add_job(user_id=3000 + i, user_name="j", params={"i": i},
                                      guild_id=100, channel_id=101, owner="bench", lease=30)
            await store.start_job(job)
            await store.finish_job(job, "done", clip_id=clips[i % 50])
            await store.record_answer(job, 1)

        results["job life (4 writes)"] = await timed(ops // 2, job_life)
        results["lease sweep"] = await timed(ops // 4, lambda i: store.interrupt_open_jobs(
            "bench", 30))

        async def voter(v: int) -> None:
            for k in range(ops // concurrent):
                await store.set_rating(clips[k % 50], 5000 + v, 1 + k % 5, f"v{v}")

        start = time.perf_counter()
        await asyncio.gather(*(voter(v) for v in range(concurrent)))
        rate = (ops // concurrent) * concurrent / (time.perf_counter() - start)
    return results, rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--concurrent", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, PgServer() as server:
        sqlite, sqlite_rate = asyncio.run(measure(Path(tmp) / "bench.db", args.ops,
                                                  args.concurrent))
        pg, pg_rate = asyncio.run(measure(server.create_database("bench"), args.ops,
                                          args.concurrent))
    print(f"{'operation':<20} {'SQLite ms':>16} {'PostgreSQL ms':>16} {'PG/SQLite':>10}")
    print(f"{'':<20} {'median   p95':>16} {'median   p95':>16}")
    for name in sqlite:
        a, b = sqlite[name], pg[name]
        ratio = statistics.median(b) / statistics.median(a)
        print(f"{name:<20} {statistics.median(a):7.2f} {pct(a, 0.95):7.2f}  "
              f"{statistics.median(b):7.2f} {pct(b, 0.95):7.2f} {ratio:9.2f}x")
    print(f"votes/s with {args.concurrent} concurrent voters: SQLite {sqlite_rate:.0f}, "
          f"PostgreSQL {pg_rate:.0f}")


if __name__ == "__main__":
    main()
