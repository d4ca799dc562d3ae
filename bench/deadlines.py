"""What the fault-proof execution model costs and how fast it recovers.

Usage: .venv/bin/python bench/deadlines.py [--runs 9]

Prints: a clip's render/encode/piano roll in a render child vs in this process (median, and the
ratio); how long a render child takes to start (the first one starts the fork server too); how
long after a stuck encode's deadline the next clip is out (kill, new child, render); how soon a
long generation stops once its deadline passes (the sampler checks between steps); what a
killable generation *process* would cost instead (torch import and checkpoint load, resident
memory); and reads vs writes while another process holds the database's write lock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cadenza.app import Cadenza
from cadenza.clip_child import FAULT_ENV
from cadenza.clip_pool import ClipPool
from cadenza.deadlines import Deadlines, StageTimeout
from cadenza.models.registry import ModelRegistry
from cadenza.service import Composer, ComposeRequest
from cadenza.store import Store, StoreBusy

LOCKER = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
          "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); "
          "time.sleep(float(sys.argv[2]))")
GEN_PROCESS = ("import time, resource; t = time.perf_counter(); from "
               "cadenza.models.registry import ModelRegistry; "
               "r = ModelRegistry.discover(threads=1); r.get('lstm'); "
               "print(round(time.perf_counter() - t, 2), "
               "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


async def render_cost(composer: Composer, tmp: Path, runs: int) -> None:
    comp = await asyncio.to_thread(composer.compose,
                                   composer.resolve(ComposeRequest(bars=8, seed=1, tempo=120)))
    composer.make_files(comp.score, comp.midi, tmp, "warm")  # soundfont loaded in this process
    local = []
    for i in range(runs):
        t0 = time.perf_counter()
        composer.make_files(comp.score, comp.midi, tmp, f"local-{i}")
        local.append(time.perf_counter() - t0)
    pool = ClipPool(soundfont=composer.soundfont, size=1)
    t0 = time.perf_counter()
    await pool.warm_up()
    first_start = time.perf_counter() - t0
    child = []
    for i in range(runs):
        t0 = time.perf_counter()
        await pool.make_files(comp.score, comp.midi, tmp, f"child-{i}")
        child.append(time.perf_counter() - t0)
    await pool.close()
    starts = []
    for _ in range(3):
        again = ClipPool(soundfont=composer.soundfont, size=1)
        t0 = time.perf_counter()
        await again.warm_up()
        starts.append(time.perf_counter() - t0)
        await again.close()
    print(f"8-bar clip, render+encode+piano roll: in this process {med(local):.3f} s, in a render "
          f"child {med(child):.3f} s (x{med(child) / med(local):.2f}; median of {runs})")
    print(f"render child start: first {first_start:.2f} s (fork server and soundfont), later "
          f"{med(starts):.2f} s (soundfont)")

    pool = ClipPool(soundfont=composer.soundfont, size=1, deadlines=Deadlines(encode=1.0))
    await pool.warm_up()
    os.environ[FAULT_ENV] = "encode:hang"
    t0 = time.perf_counter()
    with contextlib.suppress(StageTimeout):
        await pool.make_files(comp.score, comp.midi, tmp, "stuck")
    stopped = time.perf_counter() - t0
    del os.environ[FAULT_ENV]
    t1 = time.perf_counter()
    await pool.make_files(comp.score, comp.midi, tmp, "next")
    print(f"stuck encode (deadline 1.0 s): stopped after {stopped:.2f} s, the next clip out "
          f"{time.perf_counter() - t1:.2f} s later (new child included)")
    await pool.close()


async def generation_stop(composer: Composer, tmp: Path) -> None:
    async with await Store.open(tmp / "gen.db") as store:
        app = Cadenza(composer, store, output_dir=tmp, deadlines=Deadlines(generate=0.2))
        resolved = app.composer.resolve_installed(ComposeRequest(bars=32, seed=2))
        t0 = time.perf_counter()
        try:
            await app.workers.run_blocking(app.composer.compose, resolved)
            print("32 bars finished within 0.2 s: no stop to measure")
        except StageTimeout:
            print(f"32-bar generation with a 0.2 s deadline: StageTimeout after "
                  f"{time.perf_counter() - t0:.2f} s, threads abandoned "
                  f"{app.workers.generation.abandoned}"
                  " (0: the sampler stopped itself)")
        await app.close()
    out = subprocess.run([sys.executable, "-c", GEN_PROCESS], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    seconds, rss = out.stdout.split()
    print(f"a generation process instead: {seconds} s to import torch and load the checkpoint, "
          f"{rss} MiB resident, per process and per restart after a kill")


async def locked_store(tmp: Path) -> None:
    db = tmp / "locked.db"
    async with await Store.open(db) as store:
        await store.ensure_user(1, "a")
        locker = await asyncio.create_subprocess_exec(sys.executable, "-c", LOCKER, str(db), "30",
                                                      stdout=asyncio.subprocess.PIPE)
        assert locker.stdout is not None
        await locker.stdout.readline()
        reads = []
        for _ in range(50):
            t0 = time.perf_counter()
            await store.top(limit=10)
            reads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        refused = 0
        for i in range(3):
            try:
                await store.ensure_user(10 + i, "b")
            except StoreBusy:
                refused += 1
        writes = (time.perf_counter() - t0) / 3
        with contextlib.suppress(ProcessLookupError):
            locker.kill()
        await locker.wait()
    print(f"database write-locked by another process: /top reads p50 {med(reads) * 1000:.1f} ms, "
          f"max {max(reads) * 1000:.1f} ms; writes refused {refused}/3 after {writes:.2f} s each "
          f"(CADENZA_DEADLINE_STORE {Deadlines().store:g} s)")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores")
    composer = Composer(ModelRegistry.discover(threads=1))
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
        await render_cost(composer, Path(tmp), args.runs)
        await generation_stop(composer, Path(tmp))
        await locked_store(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
