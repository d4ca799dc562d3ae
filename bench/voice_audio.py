"""Voice audio path: a clip's MP3 to 48 kHz stereo PCM in-process (miniaudio + soxr, what
bot/playback.py does) against an ffmpeg pipe (what discord.py's FFmpegPCMAudio runs), and the
Opus encoding discord.py does on top of either. Prints wall and CPU time per clip, the sample
counts, and how close the two PCMs are (SNR of their difference, best lag).

    .venv/bin/python bench/voice_audio.py [clip.mp3 ...]   # default: composes 8 and 32 bars
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import discord.opus
import numpy as np

from cadenza import playback


def ffmpeg_pcm(mp3: Path) -> tuple[bytes, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(mp3), "-f", "s16le", "-ar", "48000",
                          "-ac", "2", "pipe:1"], capture_output=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return pcm, wall, cpu


def snr_db(a: bytes, b: bytes) -> float:
    x = np.frombuffer(a, dtype=np.int16).astype(np.float64)
    y = np.frombuffer(b, dtype=np.int16).astype(np.float64)
    n = min(len(x), len(y))
    best = -np.inf
    for lag in range(-8, 9):
        xs, ys = x[max(0, 2 * lag):n + min(0, 2 * lag)], y[max(0, -2 * lag):n - max(0, 2 * lag)]
        m = min(len(xs), len(ys))
        noise = np.sum((xs[:m] - ys[:m]) ** 2)
        best = max(best, 10 * np.log10(np.sum(ys[:m] ** 2) / max(noise, 1e-9)))
    return float(best)


def opus_cost(pcm: bytes) -> float:
    encoder = discord.opus.Encoder(bitrate=128, signal_type="music")
    t0 = time.process_time()
    for at in range(0, len(pcm) - playback.FRAME_BYTES + 1, playback.FRAME_BYTES):
        encoder.encode(pcm[at:at + playback.FRAME_BYTES], encoder.SAMPLES_PER_FRAME)
    return time.process_time() - t0


def default_clips(folder: Path) -> list[Path]:
    cadenza = Path(sys.executable).with_name("cadenza")
    clips = []
    for bars in (8, 32):
        out = folder / f"clip{bars}.mp3"
        subprocess.run([str(cadenza), "compose", "--style", "jazz", "--bars", str(bars),
                        "--tempo", "120", "--seed", "7", "-o", str(out)], check=True,
                       capture_output=True, env={"CADENZA_DB": str(folder / "db.sqlite"),
                                                 "PATH": "/usr/bin:/bin"})
        clips.append(out)
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clips", nargs="*", type=Path,
                    help="MP3 files (default: composes 8 and 32 bars of jazz)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = args.clips or default_clips(Path(tmp))
        print("clip        seconds  in-process wall/cpu ms  ffmpeg wall/cpu ms  samples equal  "
              "SNR dB  opus cpu ms")
        for mp3 in clips:
            t0, c0 = time.perf_counter(), time.process_time()
            ours = playback.decode(mp3)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            theirs, fwall, fcpu = ffmpeg_pcm(mp3)
            print(f"{mp3.name:<11} {playback.seconds(ours):7.2f}  {wall * 1e3:9.0f} / "
                  f"{cpu * 1e3:4.0f}    {fwall * 1e3:8.0f} / {fcpu * 1e3:4.0f}   "
                  f"{len(ours) == len(theirs)!s:>13}"
                  f"  {snr_db(ours, theirs):6.1f}  {opus_cost(ours) * 1e3:10.0f}")


if __name__ == "__main__":
    main()
