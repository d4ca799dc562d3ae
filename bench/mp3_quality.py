"""MP3 quality and cost: in-process LAME (today's encoder) against the ffmpeg pipe it replaced.

Usage: .venv/bin/python bench/mp3_quality.py [--runs 3]

Renders four band clips (two scores, 8 and 32 bars) with FluidSynth, normalises them as the
bot does, then encodes each with ``cadenza.audio.encode_mp3`` and with ``ffmpeg_mp3`` below, the
code path the bot used until in-process encoding (pydub -> ffmpeg's libmp3lame, same bitrate,
at the LAME -q 5 it used then; today's encoder runs -q 7, the setting issue 11 measured). Both
files are decoded with ffmpeg and compared: the bitrate in every frame header, gated loudness
(the bar: within 0.5 dB), and the waveform error against the unencoded audio (SNR after
aligning away the encoder delay; not a perceptual measure, LAME's faster -q settings even score
higher, but it shows the decoded audio is the music and how close the two encoders are).
Prints wall seconds per encode too. Needs ffmpeg (installed by ``./test.sh``; Cadenza itself
no longer uses it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# run as a script (python bench/x.py): the repository root holds the bench package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synth import band_score
from cadenza.audio import LAME_QUALITY, encode_mp3, loudness_db, normalize, trim_trailing_silence
from cadenza.music.midi_io import score_to_midi
from cadenza.synth import get_synth

MAX_DELAY = 4096  # frames searched for the encoder/decoder delay
FFMPEG_QUALITY = 5  # the -compression_level the ffmpeg pipe used before encoding moved in-process


def ffmpeg_mp3(audio: np.ndarray, sample_rate: int, path: Path, bitrate: str = "192k") -> Path:
    """The encoder the bot used before lameenc: 16-bit PCM through pydub to ffmpeg's
    libmp3lame, CBR, ``-compression_level`` = FFMPEG_QUALITY as it had, ID3v2.3 tags."""
    from pydub import AudioSegment

    x = audio[:, None] if audio.ndim == 1 else audio
    pcm = (np.clip(np.nan_to_num(x), -1.0, 1.0) * 32767.0).astype("<i2")
    segment = AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=sample_rate,
                           channels=x.shape[1])
    segment.export(path, format="mp3", bitrate=bitrate, tags={"title": "t", "artist": "Cadenza"},
                   id3v2_version="3", parameters=["-compression_level", str(FFMPEG_QUALITY)])
    return path


def decode(path: Path) -> tuple[np.ndarray, int]:
    """(float32 frames x channels, sample rate) with ffmpeg."""
    from pydub import AudioSegment

    seg = AudioSegment.from_file(path)
    x = np.array(seg.get_array_of_samples(), dtype=np.float32).reshape(-1, seg.channels) / 32768
    return x, seg.frame_rate


_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # MPEG-1 Layer III
_RATES = (44100, 48000, 32000)


def frame_bitrates(path: Path) -> dict[int, int]:
    """kbit/s -> number of MPEG-1 Layer III frames at that rate, walking every frame header
    after the ID3v2 tag (a CBR file has one key). The container's "bit_rate" that ffprobe
    reports also counts the tags, so it is not the encoder's setting."""
    data = path.read_bytes()
    pos = 0
    if data[:3] == b"ID3":
        size = data[6:10]
        pos = 10 + (size[0] << 21 | size[1] << 14 | size[2] << 7 | size[3])
    counts: dict[int, int] = {}
    while pos + 4 <= len(data):
        h = int.from_bytes(data[pos:pos + 4], "big")
        if h >> 21 != 0x7FF or (h >> 17) & 0xF != 0b1101:  # sync, MPEG-1, Layer III
            raise ValueError(f"{path.name}: no MP3 frame at byte {pos}")
        kbps, rate = _KBPS[(h >> 12) & 0xF], _RATES[(h >> 10) & 0x3]
        counts[kbps] = counts.get(kbps, 0) + 1
        pos += 144_000 * kbps // rate + ((h >> 9) & 1)
    return counts


def snr_db(source: np.ndarray, decoded: np.ndarray) -> float:
    """Signal-to-noise of ``decoded`` against ``source`` after removing the delay (the lag with
    the best correlation over the first seconds) and the length difference."""
    n = min(len(source), 5 * 44100)
    probe = source[:n, 0]
    best = max(range(MAX_DELAY), key=lambda d: float(np.dot(probe[: n - MAX_DELAY],
                                                            decoded[d: d + n - MAX_DELAY, 0])))
    m = min(len(source), len(decoded) - best)
    err = decoded[best: best + m] - source[:m]
    return float(10 * np.log10(np.sum(source[:m] ** 2) / max(np.sum(err ** 2), 1e-20)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed encodes per clip and encoder")
    args = ap.parse_args()
    renderer = get_synth()
    sr = renderer.sample_rate
    print(f"lameenc -q {LAME_QUALITY} vs the ffmpeg pipe at -q {FFMPEG_QUALITY}, 192 kbit/s CBR; "
          f"{args.runs} timed encodes each")
    print(f"{'clip':<22}{'encoder':<9}{'kbit/s':>8}{'loudness':>10}{'diff':>7}{'SNR':>8}"
          f"{'seconds':>9}")
    diffs = []
    with tempfile.TemporaryDirectory() as tmp:
        for bars, tempo in ((8, 120.0), (8, 92.0), (32, 120.0), (32, 150.0)):
            raw = renderer.synthesize(score_to_midi(band_score(bars, tempo)))
            audio = trim_trailing_silence(normalize(raw), sr)
            name = f"{bars} bars at {tempo:g} bpm"
            rows = {}
            for label, encode in (("ffmpeg", ffmpeg_mp3), ("lameenc", encode_mp3)):
                path = Path(tmp) / f"{label}.mp3"
                walls = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    encode(audio, sr, path)
                    walls.append(time.perf_counter() - t0)
                decoded, rate = decode(path)
                assert rate == sr
                [bit_rate] = frame_bitrates(path)  # one rate in every frame: CBR
                rows[label] = (bit_rate, loudness_db(decoded, sr), snr_db(audio, decoded),
                               statistics.median(walls))
            ref = rows["ffmpeg"][1]
            for label, (bit_rate, level, snr, wall) in rows.items():
                diff = level - ref
                print(f"{name:<22}{label:<9}{bit_rate:>8d}{level:>9.2f}dB{diff:>+7.2f}"
                      f"{snr:>6.1f}dB{wall:>8.3f}s")
            diffs.append(abs(rows["lameenc"][1] - ref))
            if rows["lameenc"][0] != rows["ffmpeg"][0]:
                print("  bitrates differ")
    print(f"largest loudness difference lameenc vs ffmpeg: {max(diffs):.3f} dB (bar: 0.5 dB)")


if __name__ == "__main__":
    main()
