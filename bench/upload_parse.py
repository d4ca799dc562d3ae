"""Benchmark of reading untrusted input: MIDI uploads (the corpus, a full 1 MiB upload, length
fields claiming 4 GiB) and inline notes at the length limit. Figures, not pass/fail: the tests
check what these inputs produce, this prints how long they take.

Run: .venv/bin/python bench/upload_parse.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' inputs

from hostile_midi import megabyte_upload

from cadenza.music.midi_import import import_midi
from cadenza.music.midi_parse import MidiError, read_midi
from cadenza.music.notation import MAX_CHARS, NotationError, parse_notes

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "midi-corpus"


def huge_lengths() -> bytes:
    """65535 tracks declared; the track and a text event each claim ~4 GiB."""
    head = b"MThd\x00\x00\x00\x06\x00\x01\xff\xff\x00\x60"
    return head + b"MTrk\xff\xff\xff\xff" + b"\x00\xff\x01\xff\xff\xff\x7f" + b"ab"


def quietly(fn: Callable[[object], object], errors: tuple[type[Exception], ...]
            ) -> Callable[[object], None]:
    """``fn`` with the refusals an upload may get (refusing is part of the work measured)."""

    def call(data: object) -> None:
        with contextlib.suppress(errors):
            fn(data)

    return call


def timed(fn: Callable[[object], object], data: object, runs: int) -> list[float]:
    fn(data)  # warm-up
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(data)
        walls.append(time.perf_counter() - t)
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    imp = quietly(import_midi, (MidiError,))
    cases: list[tuple[str, Callable[[object], object], object]] = [
        ("1 MiB upload, import_midi", imp, megabyte_upload()),
        ("4 GiB length fields, read_midi", read_midi, huge_lengths()),
        (f"notes at {MAX_CHARS:,} chars, parse_notes", quietly(parse_notes, (NotationError,)),
         "C4/16 " * (MAX_CHARS // 6)),
    ]
    if CORPUS.is_dir():
        cases += [(f"corpus {p.name}", imp, p.read_bytes())
                  for p in sorted(CORPUS.iterdir()) if p.suffix != ".md"]
    else:
        print(f"(no corpus at {CORPUS}: skipping it)")
    print(f"{'input':<62}{'median':>10}{'max':>10}")
    for name, fn, data in cases:
        walls = timed(fn, data, args.runs)
        print(f"{name:<62}{statistics.median(walls) * 1000:>8.1f}ms{max(walls) * 1000:>8.1f}ms")

if __name__ == "__main__":
    main()
