"""Latency of each compose stage and end to end, in-process after warm-up.

Usage: .venv/bin/python bench/latency.py [--runs 10] [--model lstm] [--style jazz]

Prints median and p95 per stage (generate, arrange, render, encode, pianoroll, store) and end to
end for 8 and 32 bars, plus end-to-end / (render + encode): how much the pipeline costs on top of
the unavoidable audio work. Uses the shipped checkpoint when present, else a tiny random model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from cadenza.app import Cadenza
from cadenza.config import Settings, cpu_count
from cadenza.members import UserRef
from cadenza.models.registry import ModelRegistry
from cadenza.service import ComposeRequest
from cadenza.wiring import open_app, serving_threads

STAGES = ("generate", "arrange", "render", "encode", "pianoroll", "store")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def tiny_registry(tmp: Path) -> ModelRegistry:
    import torch

    from cadenza.models.checkpoint import save_rnn
    from cadenza.models.grammar import feature_sizes
    from cadenza.models.rnn import RNNConfig, SequenceModel
    from cadenza.music.tokens import Vocab

    torch.manual_seed(0)
    v = Vocab()
    path = tmp / "tiny" / "model.pt"
    save_rnn(path, SequenceModel(RNNConfig(len(v), feature_sizes(v))), v, {"name": "tiny"})
    return ModelRegistry({"lstm": path}, threads=serving_threads(1))


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp_name:
        tmp = Path(tmp_name)  # the clips and the database (25 MB a run) go with it
        registry = ModelRegistry.discover(threads=serving_threads(1))
        which = f"shipped checkpoint {args.model!r}"
        if args.model not in registry.names():
            registry = tiny_registry(tmp)
            which = "a random-weight 2x256 LSTM (no shipped checkpoint found)"
        # one request at a time, as cadenza compose runs it (one worker): its render gets
        # every core; wired by the composition root like every entry point
        async with open_app(Settings(db_path=tmp / "bench.db", output_dir=tmp / "out",
                                     workers=1), registry=registry) as app:
            await measure(app, args, which)


async def measure(app: Cadenza, args: argparse.Namespace, which: str) -> None:
    user = UserRef(1, "bench")
    print(f"model: {which}; style {args.style}; {args.runs} runs per size after 2 warm-ups; "
          f"{cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    for bars in (8, 32):
        rows: dict[str, list[float]] = {s: [] for s in (*STAGES, "end_to_end")}
        for i in range(args.runs + 2):
            req = ComposeRequest(style=args.style, bars=bars, tempo=120, seed=1000 + i,
                                 model=args.model)
            t0 = time.perf_counter()
            res = await app.compose(req, user)
            total = time.perf_counter() - t0
            if i < 2:
                continue  # warm-up: model load, the render child's soundfont and imports
            for s in STAGES:
                rows[s].append(res.timings.get(s, 0.0))
            rows["end_to_end"].append(total)
        print(f"\n{bars} bars at 120 bpm ({bars * 2} s of music)")
        print(f"  {'stage':<12}{'median':>10}{'p95':>10}")
        for s, xs in rows.items():
            print(f"  {s:<12}{statistics.median(xs) * 1000:>8.0f}ms{pct(xs, 0.95) * 1000:>8.0f}ms")
        e2e = statistics.median(rows["end_to_end"])
        audio = statistics.median(rows["render"]) + statistics.median(rows["encode"])
        print(f"  end-to-end / (render + encode) = {e2e / audio:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--model", default="lstm")
    ap.add_argument("--style", default="jazz")
    asyncio.run(bench(ap.parse_args()))


if __name__ == "__main__":
    main()
