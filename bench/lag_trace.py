"""Where the bot's event-loop lag comes from: bench/bot_load.py under a 1 ms stack sampler.

Usage: .venv/bin/python bench/lag_trace.py [--interval-ms 1] [bot_load.py's options]

Runs bench/bot_load.py in this process while a thread records every thread's top frames each
``--interval-ms``. For every lag warning the bot logs (cadenza.discord.lag, > 100 ms) it prints
what the loop thread was doing in that window, the sampler's own longest gap (the sampler needs
the GIL too: a long gap means one C call held the GIL, or the process was not scheduled), and
the threads whose stacks did not move across that gap and were not waiting: the suspects. No
suspect and a long gap means the process sat unscheduled (every core busy elsewhere).
"""

from __future__ import annotations

import argparse
import collections
import logging
import runpy
import sys
import threading
import time
from pathlib import Path

BOT_LOAD = Path(__file__).with_name("bot_load.py")
IDLE = ("wait", "select", "sleep", "_worker_thread", "get", "_work")  # parked, not running

Stacks = dict[str, tuple[str, ...]]


class Sampler(threading.Thread):
    """(time, gap since the last sample, every thread's top frames) every ``interval`` s."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="lag-trace-sampler", daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float, Stacks]] = []
        self.stopped = False

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stopped:
            time.sleep(self.interval)
            now = time.perf_counter()
            names = {t.ident: t.name for t in threading.enumerate()}
            stacks: Stacks = {}
            for ident, frame in sys._current_frames().items():
                top: list[str] = []
                while frame is not None and len(top) < 5:
                    code = frame.f_code
                    top.append(f"{Path(code.co_filename).name}:{code.co_name}:{frame.f_lineno}")
                    frame = frame.f_back
                stacks[names.get(ident, str(ident))] = tuple(top)
            self.samples.append((now, now - last, stacks))
            last = now


class Spikes(logging.Handler):
    """The lag monitor's warnings, with when they were logged (the end of the blocked window)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "blocked" in record.getMessage() and record.args:
            self.seen.append((time.perf_counter(), float(record.args[0]) / 1000))  # type: ignore[index]


def report(sampler: Sampler, spikes: Spikes) -> None:
    main = threading.main_thread().name
    for end, lag in spikes.seen:
        inside = [i for i, s in enumerate(sampler.samples) if end - lag - 0.03 <= s[0] <= end]
        if not inside:
            continue
        window = [sampler.samples[i] for i in inside]
        worst = max(inside, key=lambda i: sampler.samples[i][1])
        gap = sampler.samples[worst][1]
        print(f"\nlag {lag * 1000:.0f} ms: {len(window)} samples, sampler's longest gap "
              f"{gap * 1000:.0f} ms")
        loop = collections.Counter(" < ".join(s[2].get(main, ())[:3]) for s in window)
        for where, n in loop.most_common(5):
            print(f"  loop thread {n:4d}x {where}")
        before, after = sampler.samples[max(0, worst - 1)][2], sampler.samples[worst][2]
        suspects = [name for name, top in after.items()
                    if top and before.get(name) == top and name != sampler.name
                    and not any(word in top[0] for word in IDLE)]
        for name in suspects:
            print(f"  did not move across the gap: {name}: {' < '.join(after[name][:4])}")
        if not suspects:
            print("  no thread of ours ran through the gap: the process was not scheduled")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval-ms", type=float, default=1.0)
    args, rest = ap.parse_known_args()
    sampler, spikes = Sampler(args.interval_ms / 1000), Spikes()
    logging.getLogger("cadenza.discord.lag").addHandler(spikes)
    sampler.start()
    sys.argv = [str(BOT_LOAD), *rest]
    try:
        runpy.run_path(str(BOT_LOAD), run_name="__main__")
    finally:
        sampler.stopped = True
        report(sampler, spikes)
        if not spikes.seen:
            print("\nno lag warning (> 100 ms) in this run")


if __name__ == "__main__":
    main()
