"""A clip's MP3 as the PCM a voice connection plays: 48 kHz, 16-bit, stereo, 20 ms frames (no
Discord here; the adapter encodes the frames to Opus).

Decoded in-process: miniaudio's MP3 decoder (gapless: it drops LAME's encoder delay and padding,
so the length matches ffmpeg's) at the file's own rate, then soxr's high-quality resampler to
48 kHz. ``bench/voice_audio.py`` compares this with an ffmpeg pipe (discord.py's
FFmpegPCMAudio): on an idle machine an 18 s clip in 36-38 ms against ffmpeg's 89-98 ms (66 s:
97-101 against 130-148 ms), the same sample count, the two PCMs 77 dB apart (miniaudio's own
linear resampler was only 23 dB from ffmpeg: soxr it is), no ffmpeg process per clip and no
ffmpeg at run time. Opus encoding (discord.py, libopus) costs more than either: 520 ms CPU for
the 18 s clip, spread over its playing time (3 % of a core).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from cadenza.errors import ResourceError

log = logging.getLogger(__name__)

RATE = 48_000  # what Discord's Opus streams carry
CHANNELS = 2
SAMPLE_BYTES = 2  # signed 16-bit
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 960 per channel
FRAME_BYTES = FRAME_SAMPLES * CHANNELS * SAMPLE_BYTES  # 3840


def missing_decoder() -> str | None:
    """The Python package voice playback lacks here (its install name), or None."""
    for module, package in (("miniaudio", "miniaudio"), ("soxr", "soxr")):
        try:
            __import__(module)
        except ImportError:
            return package
    return None


def decode(mp3: Path) -> bytes:
    """The whole MP3 as 48 kHz stereo s16le PCM (blocking: run it off the event loop).

    A file that is missing or is not an MP3 raises ResourceError (its files are ours, so a bad
    one is the server's problem, not the member's)."""
    try:
        import miniaudio
        import numpy as np
        import soxr
    except ImportError as e:
        raise ResourceError(f"voice playback needs the Python package {e.name}") from None
    try:
        decoded = miniaudio.decode_file(str(mp3), output_format=miniaudio.SampleFormat.SIGNED16,
                                        nchannels=CHANNELS)
    except (OSError, miniaudio.DecodeError) as e:
        raise ResourceError(f"cannot decode {mp3.name}: {e}") from None
    samples = np.frombuffer(decoded.samples, dtype=np.int16).reshape(-1, CHANNELS)
    if decoded.sample_rate != RATE and len(samples):
        samples = soxr.resample(samples, decoded.sample_rate, RATE, quality="HQ")
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()


def frame_count(pcm: bytes) -> int:
    """20 ms frames the PCM fills, the last one padded with silence."""
    return math.ceil(len(pcm) / FRAME_BYTES)


def seconds(pcm: bytes) -> float:
    return len(pcm) / (RATE * CHANNELS * SAMPLE_BYTES)
