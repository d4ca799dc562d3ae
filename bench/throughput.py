"""Generation throughput with and without dynamic batching, for 1, 4 and 16 concurrent requests.

Usage: .venv/bin/python bench/throughput.py [--bars 8] [--rounds 2] [--pairs 3] [--model lstm]
       [--style jazz]

Each round submits N concurrent 8-bar compose requests of one style (plan + sample + arrange
+ MIDI, no audio) from N threads; "batched" shares sampling steps through MelodyBatcher
(continuous batching: a request joins the running batch at the next step and leaves it when its
melody ends), "one at a time" samples each request alone. Jazz in 8 bars has no guidance twin;
folk, celtic and classical requests have one (two rows of the model's batch each). Prints
clips/minute for both, their ratio (measured in the same process), the mean rows of the model's
batch per step (requests and their twins) and the cores the process kept busy in each pass (its
CPU time over the wall time: with one batcher thread and the composing threads' Python under
one GIL, about one core here, however many the machine has; printed one at a time / batched).
Each setting runs ``--pairs`` times, one at a time and batched in turn (ABBA order, so a drift of
the machine's speed falls on both alike); the figures are the medians, the ratio the median of
the pairs' ratios with their range: on a shared host one pass swings 20-40 %. The rows 1, 4
and 16 wait for a whole round before the next; "16 held" keeps 16 requests in flight.
Uses the shipped checkpoint when present, else a random-weight 2x256 LSTM.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# run as a script (python bench/x.py): the repository root holds the bench package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latency import tiny_registry
from cadenza.batching import MelodyBatcher
from cadenza.models.registry import ModelRegistry
from cadenza.service import Composer, ComposeRequest, Resolved
from cadenza.wiring import serving_threads


def measured(one_pass: Callable[[], float]) -> tuple[float, float]:
    """A pass's clips/minute and the cores this process kept busy meanwhile (CPU / wall time)."""
    wall, cpu = time.perf_counter(), time.process_time()
    rate = one_pass()
    return rate, (time.process_time() - cpu) / (time.perf_counter() - wall)


def _requests(composer: Composer, n: int, bars: int, model: str, style: str) -> list[Resolved]:
    return [composer.resolve(ComposeRequest(style=style, bars=bars, tempo=120, seed=s,
                                            model=model)) for s in range(n)]


def run(composer: Composer, n: int, bars: int, rounds: int, model: str, style: str) -> float:
    """Clips per minute for ``rounds`` rounds of ``n`` concurrent requests."""
    reqs = _requests(composer, n * rounds, bars, model, style)
    with ThreadPoolExecutor(max_workers=n) as pool:
        t0 = time.perf_counter()
        for r in range(rounds):
            list(pool.map(composer.compose, reqs[r * n:(r + 1) * n]))
        dt = time.perf_counter() - t0
    return n * rounds / dt * 60


def sustained(composer: Composer, n: int, bars: int, clips: int, model: str, style: str
              ) -> float:
    """Clips per minute for ``clips`` requests with ``n`` always in flight: each of the ``n``
    threads asks for its next clip as soon as its last one is done (no barrier between
    rounds, so a batch never idles down to its longest melody)."""
    reqs = _requests(composer, clips, bars, model, style)
    with ThreadPoolExecutor(max_workers=n) as pool:
        t0 = time.perf_counter()
        list(pool.map(composer.compose, reqs))
        dt = time.perf_counter() - t0
    return clips / dt * 60


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=3,
                    help="one-at-a-time/batched pairs per setting (medians reported)")
    ap.add_argument("--model", default="lstm")
    ap.add_argument("--style", default="jazz")
    args = ap.parse_args()
    registry = ModelRegistry.discover(threads=serving_threads(16))
    which = f"shipped checkpoint {args.model!r}"
    if args.model not in registry.names():
        registry = tiny_registry(Path(tempfile.mkdtemp()))
        which = "a random-weight 2x256 LSTM (no shipped checkpoint found)"
    loaded = registry.get(args.model)
    print(f"model: {which} on {loaded.device}; {args.bars} bars of {args.style} per clip, "
          f"{args.rounds} rounds per pass, {args.pairs} pairs of passes per setting, "
          f"generation only (no audio)")
    plain = Composer(registry)
    batcher = MelodyBatcher(window_s=0.02)  # the default batch, as the bot has it
    batched = Composer(registry, batcher=batcher)
    run(plain, 1, args.bars, 1, args.model, args.style)  # warm-up
    print(f"{'concurrent':>10} {'one at a time':>15} {'batched':>10} {'ratio':>7} "
          f"{'(range)':>13} {'rows/step':>10} {'cores 1 / b':>13}")

    Pass = tuple[float, float]  # clips/minute, cores busy

    def pair(i: int, plain_pass: Callable[[], float],
             batched_pass: Callable[[], float]) -> tuple[Pass, Pass]:
        if i % 2:  # ABBA: the batched pass first every other pair
            b = measured(batched_pass)
            return measured(plain_pass), b
        return measured(plain_pass), measured(batched_pass)

    def row(label: str, plain_pass: Callable[[], float], batched_pass: Callable[[], float],
            tail: str = "") -> None:
        batcher.batches.clear()
        runs = [pair(i, plain_pass, batched_pass) for i in range(max(1, args.pairs))]
        mean = sum(batcher.batches) / max(1, len(batcher.batches))
        a = statistics.median(p[0] for p, _ in runs)
        b = statistics.median(q[0] for _, q in runs)
        ratios = [q[0] / p[0] for p, q in runs]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        cores = (f"{statistics.median(p[1] for p, _ in runs):.2f} / "
                 f"{statistics.median(q[1] for _, q in runs):.2f}")
        print(f"{label:>10} {a:>12.1f}/min {b:>7.1f}/min {statistics.median(ratios):>6.2f}x "
              f"{spread:>13} {mean:>10.1f} {cores:>13}{tail}")

    for n in (1, 4, 16):
        row(str(n), lambda n=n: run(plain, n, args.bars, args.rounds, args.model, args.style),
            lambda n=n: run(batched, n, args.bars, args.rounds, args.model, args.style))
    clips = 16 * args.rounds * 2
    row("16 held", lambda: sustained(plain, 16, args.bars, clips, args.model, args.style),
        lambda: sustained(batched, 16, args.bars, clips, args.model, args.style),
        f"   ({clips} clips, 16 always in flight)")
    batcher.close()


if __name__ == "__main__":
    main()
