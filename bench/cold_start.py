"""Cold start: ``cadenza compose --bars 8`` as a whole process, from exec to exit.

Usage: .venv/bin/python bench/cold_start.py [--runs 5] [--bars 8]

Runs the installed ``cadenza`` launcher (``.venv/bin/cadenza``) ``--runs`` times, each a new
process writing into a fresh temporary folder and database (so every run also creates and
migrates the SQLite file, as a first run does), and prints each run's wall and CPU seconds
(user + system, its threads and any children included) and the median. Wall time on a
shared machine includes waiting for a core: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(cadenza: Path, bars: int, seed: int) -> tuple[float, float]:
    """(wall, cpu) seconds of one ``cadenza compose`` process."""
    with tempfile.TemporaryDirectory(prefix="cadenza-cold-") as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run([str(cadenza), "compose", "--bars", str(bars), "--seed", str(seed),
                              "--db", f"{tmp}/c.db", "-o", f"{tmp}/clip.mp3"],
                             capture_output=True, text=True, cwd=tmp, timeout=300)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0 or not Path(tmp, "clip.mp3").is_file():
            raise SystemExit(f"cadenza compose failed ({res.returncode}): {res.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bars", type=int, default=8)
    args = ap.parse_args()
    cadenza = Path(sys.executable).with_name("cadenza")
    if not cadenza.exists():
        raise SystemExit(f"no launcher at {cadenza}: run scripts/setup.sh")
    run_once(cadenza, args.bars, 0)  # warm-up: the page cache (torch, the soundfont)
    print(f"cadenza compose --bars {args.bars}, {args.runs} runs after a warm-up; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    walls, cpus = [], []
    for i in range(args.runs):
        wall, cpu = run_once(cadenza, args.bars, i + 1)
        walls.append(wall)
        cpus.append(cpu)
        print(f"  run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"median {statistics.median(walls):.2f} s wall (min {min(walls):.2f}, "
          f"max {max(walls):.2f}), {statistics.median(cpus):.2f} s CPU; "
          f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
