"""What one batched sampling step buys, without threads: the ceiling of bench/throughput.py.

Usage: .venv/bin/python bench/sampler_scaling.py [--bars 8] [--style jazz] [--model lstm]

Records the melody requests real composes make (through a batcher stand-in that samples each
alone and keeps its request), then samples B of them together in one ``Sampler`` on this
thread, B = 1, 2, 4, 8, 16 (best of ``--repeats`` rounds): milliseconds per line, the speed-up per
line over B = 1, and the share of the time spent in the model's step (the torch calls; the
rest is the per-row Python: grammar, masks, draws). No composing threads compete for the GIL
here, so ``throughput.py``'s batched/one-at-a-time ratio, which also pays the chord plans and
the arranging of every clip, stays below the speed-up printed for B = 16.
Uses the shipped checkpoint when present, else a random-weight 2x256 LSTM.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# run as a script (python bench/x.py): the repository root holds the bench package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latency import tiny_registry
from cadenza.models.generate import MelodyRequest, generate_tokens, melody_row
from cadenza.models.registry import ModelRegistry
from cadenza.models.sample import Sampler
from cadenza.service import Composer, ComposeRequest


class Recorder(contextlib.AbstractContextManager):
    """The batcher's interface (enter/exit around a compose, ``submit``), sampling each request
    alone and keeping the melody requests for the measurement."""

    def __init__(self) -> None:
        self.melodies: list[MelodyRequest] = []

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, loaded: Any, request: Any, make_row: Any) -> list[int]:
        if isinstance(request, MelodyRequest):
            self.melodies.append(request)
        return generate_tokens(loaded, [request], make_row)[0]


class TimedModel:
    """A model whose stepper's calls are timed (the model's share of a sampling step): what a
    ``Sampler`` asks of its model is ``eval().stepper()``."""

    def __init__(self, model: Any) -> None:
        self.model, self.seconds = model, 0.0

    def eval(self) -> TimedModel:
        self.model.eval()
        return self

    def stepper(self) -> Any:
        inner = self.model.stepper()

        def indexed(*args: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner.indexed(*args)
            finally:
                self.seconds += time.perf_counter() - t

        return replace(inner, indexed=indexed)


def sample(loaded: Any, requests: list[MelodyRequest]) -> tuple[float, float, int]:
    """Seconds to sample ``requests`` together, of them in the model, and the steps taken."""
    timed = TimedModel(loaded.model)
    sampler = Sampler(timed, device=loaded.device)  # type: ignore[arg-type]
    for r in requests:
        sampler.add(melody_row(loaded, r))
    steps, t0 = 0, time.perf_counter()
    while sampler.rows:
        for row in sampler.step():
            if row.error is not None:  # a row that failed would leave early and flatter B
                raise row.error
        steps += 1
    return time.perf_counter() - t0, timed.seconds, steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--style", default="jazz")
    ap.add_argument("--model", default="lstm")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
        bench(args, Path(tmp))


def bench(args: argparse.Namespace, tmp: Path) -> None:
    registry = ModelRegistry.discover(threads=1)
    which = f"shipped checkpoint {args.model!r}"
    if args.model not in registry.names():
        registry, args.model = tiny_registry(tmp), "lstm"
        which = "a random-weight 2x256 LSTM (no shipped checkpoint found)"
    loaded = registry.get(args.model)
    if loaded.kind != "rnn":
        raise SystemExit(f"{args.model} is not a sequence model (lstm, gru, rnn)")
    recorder = Recorder()
    composer = Composer(registry, batcher=recorder)
    for seed in range(16):
        composer.compose(composer.resolve(ComposeRequest(style=args.style, bars=args.bars,
                                                         seed=seed, model=args.model)))
    twins = sum(melody_row(loaded, r).width - 1 for r in recorder.melodies)
    print(f"model: {which} on {loaded.device}, 1 torch thread; {len(recorder.melodies)} "
          f"{args.bars}-bar {args.style} lines ({twins} with a guidance twin), no threads")
    print(f"{'B':>3} {'ms/line':>8} {'per line vs B=1':>16} {'model share':>12} {'steps':>6}")
    sizes = (1, 2, 4, 8, 16)
    # every size once per round, rounds in turn, the fastest round kept: a drift of the
    # machine's speed (20-40 % on a shared host) falls on all sizes alike
    runs: dict[int, list[tuple[float, float, int]]] = {b: [] for b in sizes}
    for _ in range(max(1, args.repeats)):
        for b in sizes:
            runs[b].append(sample(loaded, recorder.melodies[:b]))
    base = None
    for b in sizes:
        total, model, steps = min(runs[b])
        per_line = total / b
        base = base or per_line
        print(f"{b:>3} {per_line * 1000:>8.1f} {base / per_line:>15.2f}x "
              f"{model / total:>11.0%} {steps:>6}")


if __name__ == "__main__":
    main()
