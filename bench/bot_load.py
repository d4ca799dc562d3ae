"""Load benchmark of the Discord bot: N members compose and vote at once through the Discord double.

Usage: .venv/bin/python bench/bot_load.py [--members 8] [--clips 2] [--bars 2] [--workers N]

Every member issues /compose (one request in flight each, ``--clips`` in turn) while every member
also clicks rating buttons on every clip that appears (some votes are changed afterwards). The
bot is the real CadenzaBot (discord.py over loopback HTTP + websocket), with a real SQLite file,
FluidSynth and LAME. Prints completed jobs per minute, p50/p95 latency from the interaction to
the posted clip, the bot's maximum event-loop lag, votes stored vs sent, where the CPU went
(the process's threads by name and the render processes, from /proc) and the garbage collector's
full collections, whose pauses stall the event loop as long as they last.

Uses the shipped checkpoint models/checkpoints/lstm/model.pt when present, else a tiny
random-weight LSTM (generation is then cheaper than with a trained model; rendering the same).
The double and the simulated members run in a process of their own (Discord's servers and its
users are not inside the bot's process), so the lag figure and the garbage collections are the
bot's own; they still share the machine's CPUs with the bot. (Until 2026-12-07 they ran on a
thread of the bot's process, sharing its GIL and heap.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the Discord double lives with the tests

from discord_double import point_discord_at  # noqa: E402
from load_members import MemberSide  # noqa: E402

from cadenza.config import Settings, default_workers  # noqa: E402
from cadenza.discord.client import CadenzaBot  # noqa: E402
from cadenza.discord.runner import settle_heap  # noqa: E402
from cadenza.models.registry import SHIPPED_DIR, ModelRegistry  # noqa: E402
from cadenza.wiring import job_queue, open_app, serving_threads  # noqa: E402

log = logging.getLogger("bench.bot_load")


class CpuSplit:
    """CPU seconds over a window: this process's threads by name (numbers dropped, so the
    generation threads add up) and its child processes (the render pool) together, but for the
    children named in ``apart``, read from /proc (Linux; empty elsewhere); and the garbage
    collector's pauses meanwhile, which hold the GIL and so stall the event loop."""

    def __init__(self, apart: dict[int, str] | None = None) -> None:
        self.apart = apart or {}  # child pid -> the name its CPU is reported under
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._start: dict[str, float] = {}
        self._gc_began = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._gc_began))

    @staticmethod
    def _fields(path: str) -> list[str]:
        """A /proc stat line's fields after the command name (which may hold spaces):
        [0] state, [1] parent pid, [11] user and [12] system CPU in clock ticks."""
        return Path(path).read_text().rsplit(")", 1)[1].split()

    @staticmethod
    def _seconds(fields: list[str]) -> float:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        names = {t.native_id: t.name for t in threading.enumerate()}
        with contextlib.suppress(OSError):
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    name = re.sub(r"[-_]?\d+", "", names.get(int(tid), "other"))
                    cpu = self._seconds(self._fields(f"/proc/self/task/{tid}/stat"))
                    out[name] = out.get(name, 0.0) + cpu
            procs: dict[int, list[str]] = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    with contextlib.suppress(OSError, IndexError):
                        procs[int(entry)] = self._fields(f"/proc/{entry}/stat")
            ours, grew = {os.getpid()}, True
            while grew:
                more = {pid for pid, f in procs.items() if int(f[1]) in ours} - ours
                ours |= more
                grew = bool(more)
            pool = ours - {os.getpid()} - set(self.apart)
            out["child processes (render pool)"] = sum(self._seconds(procs[pid]) for pid in pool)
            for pid, name in self.apart.items():
                if pid in procs:
                    out[name] = self._seconds(procs[pid])
        return out

    def start(self) -> None:
        self.pauses.clear()
        gc.callbacks.append(self._on_gc)
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        gc.callbacks.remove(self._on_gc)
        end = self._read()
        return {k: v - self._start.get(k, 0.0) for k, v in end.items()}


def registry(tmp: Path, workers: int) -> tuple[ModelRegistry, str]:
    shipped = SHIPPED_DIR / "lstm" / "model.pt"
    if shipped.exists():
        return (ModelRegistry({"lstm": shipped}, threads=serving_threads(workers)),
                f"shipped checkpoint {shipped}")
    import torch

    from cadenza.models.checkpoint import save_rnn
    from cadenza.models.grammar import feature_sizes
    from cadenza.models.rnn import RNNConfig, SequenceModel
    from cadenza.music.tokens import Vocab

    torch.manual_seed(0)
    vocab = Vocab()
    path = tmp / "lstm" / "model.pt"
    config = RNNConfig(len(vocab), feature_sizes(vocab), cell="lstm", n_layer=1, n_embd=16,
                       n_hidden=32, dropout=0.0)
    save_rnn(path, SequenceModel(config), vocab, {"name": "lstm", "family": "lstm",
                                                  "styles": list(vocab.styles)})
    return (ModelRegistry({"lstm": path}, threads=serving_threads(workers)),
            "tiny random-weight LSTM (no shipped checkpoint)")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp_name:
        tmp = Path(tmp_name)
        models, which = registry(tmp, args.workers)
        # wired by the composition root, as `cadenza run` wires the bot
        opened = open_app(Settings(db_path=tmp / "bench.db", output_dir=tmp / "out",
                                   workers=args.workers), registry=models)
        async with opened as app:
            warm = await app.warm_up()
            settle_heap()  # as the runner does after warming up
            side = MemberSide(args)
            try:
                address = await side.receive("address")
                undo_pointing = point_discord_at(address["api_url"], address["gateway_url"])
                try:
                    settings = Settings(token=address["token"], db_path=app.store.path,
                                        dev_guild=address["guild_id"])
                    jobs = job_queue(app, capacity=max(16, args.members * 3),
                                     workers=args.workers)
                    bot = CadenzaBot(app=app, jobs=jobs, settings=settings)
                    cpu = CpuSplit(apart={side.process.pid or 0: "discord-double process"})
                    started_bot = asyncio.create_task(bot.start(address["token"]),
                                                      name="bench-bot")
                    try:
                        await side.receive("identified", started_bot)
                        bot.lag.reset()
                        cpu.start()
                        started = time.perf_counter()
                        side.send("go")
                        results = await side.receive("results", started_bot)
                        wall = time.perf_counter() - started
                        split = cpu.stop()
                        lag = bot.lag
                    finally:
                        await bot.close()
                        # discord.py leaves its "wait for more GUILD_CREATEs" task after close
                        ready = getattr(bot._connection, "_ready_task", None)
                        if ready is not None and not ready.done():
                            ready.cancel()
                        await asyncio.wait_for(started_bot, 30)
                finally:
                    undo_pointing()
            finally:
                side.stop()
            conn = sqlite3.connect(app.store.path)
            stored = {(c, u): s for c, u, s in conn.execute(
                "SELECT clip_id, user_id, stars FROM ratings")}
            statuses = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"))
            conn.close()

    latencies: list[float] = results["latencies"]
    sent: dict[tuple[int, int], int] = results["sent"]
    refusals: dict[str, int] = results["refusals"]
    clicks: int = results["clicks"]
    refused: list[str] = results["refused"]
    done = statuses.get("done", 0)
    print(f"model: {which}; warm-up {warm:.1f} s")
    print(f"members {args.members}, clips each {args.clips}, bars {args.bars}, "
          f"workers {args.workers}")
    print(f"completed jobs: {done} in {wall:.1f} s = {done / wall * 60:.1f} jobs/minute "
          f"(job states: {statuses})")
    print(f"interaction -> posted clip: p50 {statistics.median(latencies):.2f} s, "
          f"p95 {pct(latencies, 0.95):.2f} s, max {max(latencies):.2f} s")
    print(f"event-loop lag: max {lag.max_lag * 1000:.1f} ms, mean {lag.mean_lag * 1000:.2f} ms "
          f"over {lag.samples} samples; most CPU used on the loop in one "
          f"{lag.interval * 1000:.0f} ms window: {lag.max_busy * 1000:.1f} ms")
    if split:
        parts = ", ".join(f"{name} {sec:.2f}" for name, sec in
                          sorted(split.items(), key=lambda kv: -kv[1]) if sec >= 0.05)
        total = sum(split.values())
        print(f"CPU seconds over the run: {parts}; in all {total:.1f} s, "
              f"{total / max(1, done):.2f} s a job (MainThread is the bot's event loop, "
              "the discord-double process the simulated Discord and members)")
    full = [sec for gen, sec in cpu.pauses if gen == 2]
    print(f"garbage collections: {len(cpu.pauses)}, of which full (generation 2) {len(full)}"
          + (f", the longest {max(full) * 1000:.0f} ms" if full else ""))
    print(f"machine load average while running: {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    print(f"votes: {clicks} clicks, {len(sent)} distinct (clip, member) votes confirmed, "
          f"{len(stored)} stored; final stars equal: {stored == sent}; "
          f"refused and said so: {sum(refusals.values())}")
    for text, n in refusals.items():
        print(f"  {n} x {text!r}")
    print(f"requests refused by the double: {len(refused)}")
    if stored != sent or done != args.members * args.clips or refused:
        raise SystemExit("FAILED: votes lost, jobs missing or requests refused")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--clips", type=int, default=2, help="compositions per member")
    ap.add_argument("--bars", type=int, default=2)
    ap.add_argument("--workers", type=int, default=default_workers(),
                    help="concurrent jobs (default: the bot's, two per CPU this process may use)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for a clip")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
