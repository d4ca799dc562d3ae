"""Benchmark of the rendering path: synth, normalise+trim, MP3 and piano roll for 4-track scores.

Run: .venv/bin/python bench/synth.py [--soundfont PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cadenza.audio import encode_mp3, normalize, trim_trailing_silence
from cadenza.music.midi_io import score_to_midi
from cadenza.music.score import ChordEvent, Note, Score, Track
from cadenza.music.theory import Chord, Key
from cadenza.pianoroll import draw_pianoroll
from cadenza.synth import find_soundfont, get_synth

log = logging.getLogger(__name__)

_PROGRESSION = (Chord(0, "maj7"), Chord(9, "m7"), Chord(2, "m7"), Chord(7, "7"))


def band_score(bars: int, tempo: float = 112.0) -> Score:
    """A busy but plausible 4-track score: eighth-note lead, comped chords, bass, full kit."""
    bar = 48
    lead, comp, bass, drums, chords = [], [], [], [], []
    scale = (0, 2, 4, 5, 7, 9, 11)
    for b in range(bars):
        chord = _PROGRESSION[b % len(_PROGRESSION)]
        t0 = b * bar
        chords.append(ChordEvent(t0, bar, chord))
        for i in range(8):
            degree = (b * 3 + i * (1 if b % 2 else 2)) % 10
            pitch = 72 + scale[degree % 7] + 12 * (degree // 7) - 12 * (degree >= 9)
            lead.append(Note(t0 + i * 6, 6, pitch, 70 + (i % 4) * 10))
        for beat in (0, 24):
            for iv in chord.intervals:
                comp.append(Note(t0 + beat, 22, 60 + (chord.root + iv) % 12, 64))
        for beat in range(4):
            bass.append(Note(t0 + beat * 12, 11, 36 + chord.root + (7 if beat == 2 else 0), 96))
        for i in range(8):
            drums.append(Note(t0 + i * 6, 3, 42, 60 + 20 * (i % 2 == 0)))
        for beat in (0, 24, 30):
            drums.append(Note(t0 + beat, 3, 36, 110))
        for beat in (12, 36):
            drums.append(Note(t0 + beat, 3, 38, 100))
    tracks = (
        Track("Lead", "lead", 73, False, tuple(lead), 100, 44),
        Track("Keys", "chords", 4, False, tuple(comp), 85, 84),
        Track("Bass", "bass", 33, False, tuple(bass), 105, 64),
        Track("Drums", "drums", 0, True, tuple(drums), 100, 64),
    )
    return Score(tracks=tracks, chords=tuple(chords), tempo=tempo, key=Key(0), bars=bars,
                 style="bench")


def _timed(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per run; CPU (child processes included, should a stage start any)
    is the fairer number on a shared machine, where wall time also counts waiting for a core."""
    walls, cpus = [], []
    for _ in range(runs):
        c0, t = os.times(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
        c1 = os.times()
        cpus.append(sum(c1[:4]) - sum(c0[:4]))  # user, system, children user/system
    return walls, cpus


def _p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soundfont", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()

    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.2f} (wall times inflate when > cores)")
    sf = find_soundfont(args.soundfont)
    t = time.perf_counter()
    renderer = get_synth(sf)
    print(f"soundfont {sf.name}: loaded in {time.perf_counter() - t:.2f} s")
    sr = renderer.sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        for bars in (8, 32):
            score = band_score(bars)
            midi = score_to_midi(score)
            audio = renderer.synthesize(midi)
            ready = trim_trailing_silence(normalize(audio), sr)
            seconds = len(audio) / sr
            runs = args.runs if bars <= 8 else max(3, args.runs // 3)
            stages: dict[str, Callable[[], object]] = {
                "synthesize": lambda m=midi: renderer.synthesize(m),
                "normalize+trim": lambda a=audio: trim_trailing_silence(normalize(a), sr),
                "encode_mp3": lambda r=ready: encode_mp3(r, sr, Path(tmp) / "b.mp3"),
                "pianoroll": lambda s=score: draw_pianoroll(s, Path(tmp) / "b.png", "bench"),
            }
            print(f"\n{bars} bars, 4 tracks, {score.note_count()} notes, "
                  f"{seconds:.1f} s of audio (score {score.duration_seconds:.1f} s + tail), "
                  f"{runs} runs after warm-up")
            print(f"  {'stage':<16}{'median':>10}{'p95':>10}{'cpu':>10}{'x realtime':>12}")
            total = 0.0
            for name, fn in stages.items():
                fn()  # warm-up: font caches, the encoder's tables
                walls, cpus = _timed(fn, runs)
                med = statistics.median(walls)
                total += med
                print(f"  {name:<16}{med * 1000:>8.1f}ms{_p95(walls) * 1000:>8.1f}ms"
                      f"{statistics.median(cpus) * 1000:>8.0f}ms{seconds / med:>11.0f}x")
            print(f"  {'total':<16}{total * 1000:>8.1f}ms{'':>20}{seconds / total:>11.0f}x")

if __name__ == "__main__":
    main()
