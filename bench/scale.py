"""Scale-out figures from one run on one local Ray cluster: 8-bar jobs/minute through Ray Serve
with 1 and then 2 render replicas, and batched generation throughput through Serve against
in-process batching.

Usage: .venv/bin/python bench/scale.py [--jobs 8] [--gens 16] [--cpus 2] [--model lstm]

Jobs: ``--jobs`` concurrent 8-bar composes (generate, render, encode, piano roll, store) through
``Cadenza.compose`` with the Serve workers, first on one render replica, then on two (the same
app updated in place); jobs/minute for each and their ratio. Generation: ``--gens`` concurrent
8-bar generations (plan, sample, arrange, MIDI) through the Serve generator deployment
(``@serve.batch``, one replica) and through this process's threads sharing one MelodyBatcher, as
``cadenza run`` does; clips/minute for each and their ratio, with the batch sizes Serve formed.
Uses the shipped checkpoint. The machine is shared: run it while it is otherwise idle.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# run as a script (python bench/x.py): the repository root on the path, like the other benches
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only

from cadenza.app import Cadenza
from cadenza.backends import ThreadGenerator
from cadenza.batching import MelodyBatcher
from cadenza.deadlines import Deadlines
from cadenza.members import UserRef
from cadenza.models.registry import ModelRegistry
from cadenza.origin import PLAIN
from cadenza.seeds import Sources, generate_music
from cadenza.serve_app import Placement, WorkerConfig, deploy
from cadenza.serve_workers import ServeWorkers, connect_cluster, disconnect
from cadenza.service import Composer, ComposeRequest
from cadenza.store import Store
from cadenza.synth import find_soundfont
from cadenza.wiring import serving_threads
from cadenza.workers import ThreadPool

BARS = 8
DEPLOY_DEADLINE = 300.0  # seconds for every replica of a deployment to be ready


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


async def jobs_per_minute(app: Cadenza, n: int, first_seed: int) -> float:
    reqs = [app.composer.resolve_installed(ComposeRequest(style="jazz", bars=BARS, tempo=120,
                                                          seed=first_seed + s))
            for s in range(n)]
    t0 = time.perf_counter()
    await asyncio.gather(*(app.compose(r, UserRef(s, f"m{s}")) for s, r in enumerate(reqs)))
    return n / (time.perf_counter() - t0) * 60


async def generations_per_minute(generator, composer: Composer, n: int,  # type: ignore[no-untyped-def]
                                 first_seed: int) -> float:
    reqs = [composer.resolve_installed(ComposeRequest(style="jazz", bars=BARS, tempo=120,
                                                      seed=first_seed + s)) for s in range(n)]
    t0 = time.perf_counter()
    await asyncio.gather(*(generator.generate(r, PLAIN, Sources()) for r in reqs))
    return n / (time.perf_counter() - t0) * 60


async def bench(args: argparse.Namespace) -> None:
    soundfont = find_soundfont(None)
    registry = ModelRegistry.discover(threads=serving_threads(16))
    composer = Composer(registry, soundfont=soundfont)
    config = WorkerConfig(soundfont=str(soundfont), deadlines=Deadlines())
    # generator + up to two render replicas on --cpus, rounded down: 3 x 0.667 > 2 CPUs, and
    # Serve would wait for ever for a replica that does not fit
    share = math.floor(args.cpus / 3 * 1000) / 1000
    print(f"machine: {os.cpu_count()} CPUs; load average (1/5/15 min) at start "
          f"{_load()}", flush=True)
    cluster = connect_cluster("local", cpus=args.cpus)
    tmp_dir = tempfile.TemporaryDirectory(prefix="cadenza-bench-scale-")
    tmp = Path(tmp_dir.name)
    store = await Store.open(tmp / "bench.db")
    try:
        figures: dict[str, float] = {}
        for replicas in (1, 2):
            t0 = time.perf_counter()
            placement = Placement(models=(args.model,), render_replicas=replicas,
                                  replica_cpus=share)
            deploying = asyncio.ensure_future(asyncio.to_thread(deploy, config, placement))
            done, _ = await asyncio.wait({deploying}, timeout=DEPLOY_DEADLINE)
            if not done:
                # the thread cannot be stopped: end the process (its cluster goes with it)
                print(f"{replicas} render replica(s) not ready after {DEPLOY_DEADLINE:g} s "
                      "(not enough CPUs on the cluster?)", file=sys.stderr, flush=True)
                disconnect(cluster)
                tmp_dir.cleanup()
                os._exit(1)
            deploying.result()
            print(f"deployed {replicas} render replica(s) in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)
            workers = ServeWorkers(cluster, Deadlines())
            app = Cadenza(composer, store, output_dir=tmp / f"out{replicas}",
                          clip_pool=workers, generator=workers)
            await jobs_per_minute(app, 2, 10_000 + replicas * 100)  # warm both replicas
            rates = [await jobs_per_minute(app, args.jobs, 1000 * replicas + 50 * k)
                     for k in range(args.rounds)]
            figures[f"jobs{replicas}"] = statistics.median(rates)
            used = len(set(workers.render_pids))
            rounds = ", ".join(f"{r:.1f}" for r in rates)
            print(f"8-bar jobs/min, {replicas} render replica(s): "
                  f"{figures[f'jobs{replicas}']:.1f} (rounds {rounds}; {used} replica(s) "
                  "rendered)")
            await app.close()

        # generation only: Serve's batched generator vs this process's batched threads
        serve_gen = ServeWorkers(cluster, Deadlines())
        await generations_per_minute(serve_gen, composer, 2, 90_000)  # warm
        stats_before = await serve_gen.generators[args.model].stats.remote()
        served = [await generations_per_minute(serve_gen, composer, args.gens, 20_000 + 100 * k)
                  for k in range(args.rounds)]
        stats = await serve_gen.generators[args.model].stats.remote()
        batches = stats["batches"][len(stats_before["batches"]):]
        steps = stats["steps"][len(stats_before["steps"]):]

        local_composer = Composer(registry, soundfont=soundfont, batcher=MelodyBatcher())
        pool = ThreadPool(args.gens, "bench-gen")

        async def run(fn, *a, stage: str):  # type: ignore[no-untyped-def]
            return await pool.run(fn, *a, stage=stage, timeout=None)

        local = ThreadGenerator(run, lambda r, o, s: generate_music(local_composer, r, o, s))
        await generations_per_minute(local, local_composer, 2, 90_000)  # warm
        in_process = [await generations_per_minute(local, local_composer, args.gens,
                                                   20_000 + 100 * k)
                      for k in range(args.rounds)]
        pool.close()
        local_composer.batcher.close()
        s, p = statistics.median(served), statistics.median(in_process)
        print(f"8-bar generations/min, {args.gens} concurrent: Serve {s:.1f} "
              f"(@serve.batch sizes {batches}, mean rows per step "
              f"{statistics.mean(steps) if steps else 0:.1f}), in-process {p:.1f}")
        print(f"ratios from this run: jobs/min 2 vs 1 render replicas "
              f"{figures['jobs2'] / figures['jobs1']:.2f}x; generation Serve vs in-process "
              f"{s / p:.2f}x")
        print(f"load average at the end {_load()} (other processes share these CPUs)")
    finally:
        await store.close()
        disconnect(cluster)
        tmp_dir.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=8, help="concurrent 8-bar jobs per round")
    ap.add_argument("--gens", type=int, default=16, help="concurrent generations per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--model", default="lstm")
    asyncio.run(bench(ap.parse_args()))


if __name__ == "__main__":
    main()
