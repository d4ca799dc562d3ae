"""Audio post-processing (loudness, peak limiting, silence trim) and MP3 encoding for Discord."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from cadenza.errors import ResourceError, UserError
from cadenza.leftovers import encoding_prefix

log = logging.getLogger(__name__)

DISCORD_MAX_BYTES = 10 * 1024 * 1024
MIB = 1024 * 1024
PEAK_CEILING_DB = -1.0  # leaves room for the inter-sample peaks MP3 decoding adds
# LAME's -q 7 ("fast, ok quality": psychoacoustics for pre-echo and M/S, no FIR filter; the
# setting issue 11 measured), where the ffmpeg pipe before used -q 5. Measured on the same
# rendered band clips (bench/mp3_quality.py, 2026-12-08): a third of the time (66 vs 216 ms for
# 8 bars), the same CBR bitrate in every frame, loudness within 0.10 dB and a waveform SNR
# 0.7-0.9 dB higher than the old pipe's; MP3 encoding is the costliest stage after the render.
LAME_QUALITY = 7
BITRATE_LADDER = (320, 256, 224, 192, 160, 128, 112, 96, 80, 64)  # kbit/s, CBR

_GATE_WINDOW_SECONDS = 0.4  # BS.1770 block length
_ABSOLUTE_GATE_DB = -70.0
_RELATIVE_GATE_DB = -10.0
_LIMITER_BLOCK = 256  # frames per gain step (5.8 ms at 44.1 kHz)
_LIMITER_RELEASE_DB_PER_BLOCK = 0.5  # ~86 dB/s: recovers within a beat without pumping


def _frames(audio: np.ndarray) -> np.ndarray:
    """View as (frames, channels) so mono and stereo share one code path."""
    return audio[:, None] if audio.ndim == 1 else audio


def _frame_peaks(x: np.ndarray) -> np.ndarray:
    """max |sample| per frame; far faster than abs(x).max(axis=1) on a (frames, 2) array."""
    peaks = np.abs(x[:, 0])
    for c in range(1, x.shape[1]):
        np.maximum(peaks, np.abs(x[:, c]), out=peaks)
    return peaks


def loudness_db(audio: np.ndarray, sample_rate: int = 44100) -> float:
    """Gated RMS level in dBFS (a full-scale square wave reads 0 dB, a full-scale sine -3 dB).

    This is BS.1770's gating (400 ms blocks, -70 dB absolute and -10 dB relative gates) without
    its K-weighting filter: the gate keeps silences and fade-outs from dragging the level down,
    while plain RMS keeps this dependency-free and fast. Our clips are full-band GM mixes, where
    K-weighting would move the result by only a dB or two.
    """
    x = _frames(np.asarray(audio, dtype=np.float32))
    if x.size == 0:
        return float("-inf")
    power = np.einsum("ij,ij->i", x, x) / x.shape[1]  # mean square over channels
    win = max(1, int(_GATE_WINDOW_SECONDS * sample_rate))
    n = len(power) // win
    if n:
        blocks = power[: n * win].reshape(n, win).mean(axis=1, dtype=np.float64)
    else:
        blocks = power.mean(keepdims=True, dtype=np.float64)
    blocks = blocks[blocks > 10 ** (_ABSOLUTE_GATE_DB / 10)]
    if blocks.size == 0:
        return float("-inf")
    gate = blocks.mean() * 10 ** (_RELATIVE_GATE_DB / 10)
    kept = blocks[blocks >= gate]
    return float(10 * np.log10(kept.mean()))


def _limit(x: np.ndarray, ceiling: float) -> np.ndarray:
    """Brick-wall peak limiter with a guaranteed ceiling, in place on a (frames, ch) array.

    Gains are computed per block; each block takes the minimum of itself and its neighbours and
    gains are linearly interpolated between block centres. Every interpolated gain at a sample
    is then <= its own block's required gain, so |out| <= ceiling holds exactly (the final clip
    only absorbs float rounding). The release is rate-limited so the gain recovers smoothly.
    """
    if x.size == 0 or max(x.max(), -x.min()) <= ceiling:
        return x
    peaks = _frame_peaks(x)
    b = _LIMITER_BLOCK
    nblocks = -(-len(peaks) // b)
    padded = np.zeros(nblocks * b, dtype=peaks.dtype)
    padded[: len(peaks)] = peaks
    block_peak = padded.reshape(nblocks, b).max(axis=1)
    need = np.minimum(1.0, ceiling / np.maximum(block_peak, 1e-12))
    lo = need.copy()
    lo[1:] = np.minimum(lo[1:], need[:-1])
    lo[:-1] = np.minimum(lo[:-1], need[1:])
    # Rate-limited release: a gain may rise by at most one step per block, never above `lo`,
    # which keeps the guarantee (only ever lowers values).
    step = 10 ** (_LIMITER_RELEASE_DB_PER_BLOCK / 20)
    if lo.min() < 1.0:
        smooth = lo.copy()
        for i in range(1, nblocks):
            cap = smooth[i - 1] * step
            if smooth[i] > cap:
                smooth[i] = cap
        lo = smooth
    centres = np.arange(nblocks) * b + (b - 1) / 2
    gain = np.interp(np.arange(len(peaks)), centres, lo).astype(np.float32)
    x *= gain[:, None]
    np.clip(x, -ceiling, ceiling, out=x)
    return x


def normalize(audio: np.ndarray, target_db: float = -16.0, sample_rate: int = 44100,
              ceiling_db: float = PEAK_CEILING_DB) -> np.ndarray:
    """Scale to ``target_db`` gated RMS (see loudness_db), never exceeding ``ceiling_db`` peak.

    Why gated RMS and not LUFS: see loudness_db. If the gain pushes peaks over the ceiling they
    are limited (see _limit), which lowers the level a little; the gain is then refined by the
    secant method until the level is within 0.05 dB of the target. A target the limiter cannot
    reach (needing more than ~15 dB of peak reduction, e.g. -12 dB for very percussive audio)
    comes out as loud as it allows, still under the ceiling. Returns a new float32 array of
    the input's shape; silence comes back unchanged.
    """
    base = np.array(audio, dtype=np.float32, copy=True)
    x = _frames(base)
    if x.size == 0:
        return base
    if not np.isfinite(x.max() - x.min()):  # NaN/inf propagate; cheaper than isfinite(x).all()
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    level = loudness_db(x, sample_rate)
    if not np.isfinite(level):
        return base
    ceiling = float(10 ** (ceiling_db / 20))

    def attempt(gain_db: float) -> tuple[np.ndarray, float]:
        y = x * np.float32(10 ** (gain_db / 20))
        _limit(y, ceiling)
        return y, loudness_db(y, sample_rate)

    plain = target_db - level
    gain, (y, got) = plain, attempt(plain)
    prev: tuple[float, float] | None = None
    for _ in range(6):
        err = target_db - got
        if abs(err) < 0.05:
            break
        slope = 1.0  # level rises dB for dB until the limiter bites, then less
        if prev is not None and gain != prev[0]:
            slope = min(1.0, max(0.05, (got - prev[1]) / (gain - prev[0])))
        prev = (gain, got)
        gain = min(gain + err / slope, plain + 12.0)
        if gain == prev[0]:
            break
        y, got = attempt(gain)
    return y.reshape(base.shape)


def trim_trailing_silence(audio: np.ndarray, sample_rate: int, threshold_db: float = -60.0,
                          keep_seconds: float = 0.3) -> np.ndarray:
    """Cut the end after the last frame louder than ``threshold_db`` dBFS, plus keep_seconds.

    A clip that never gets that loud keeps just its first keep_seconds (an empty result would
    only move the failure into the encoder).
    """
    x = _frames(np.asarray(audio))
    keep = max(0, round(keep_seconds * sample_rate))
    loud = np.flatnonzero(np.abs(x.ravel()) > 10 ** (threshold_db / 20))
    end = (int(loud[-1]) // x.shape[1] + 1 + keep) if loud.size else keep
    return audio[: min(len(audio), end)]


def _kbps(bitrate: str | int) -> int:
    text = str(bitrate).strip().lower().removesuffix("k")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"bitrate must look like '192k', got {bitrate!r}") from None
    return value // 1000 if value >= 1000 else value


def _mib(n: float) -> str:
    return f"{n / MIB:.3g}"


def _lame():  # type: ignore[no-untyped-def]
    try:
        import lameenc
    except ImportError:
        raise ResourceError("the MP3 encoder is not installed: pip install lameenc "
                            "(scripts/setup.sh does)") from None
    return lameenc


def lame_ready() -> None:
    """Import the encoder now (or raise ResourceError), not when the first clip is encoded."""
    _lame()


def _lame_encode(pcm: bytes, sample_rate: int, channels: int, kbps: int) -> bytes:
    """CBR MP3 frames for interleaved 16-bit PCM: LAME_QUALITY (the ffmpeg pipe before used
    -q 5), joint stereo (LAME's default for two channels, as the pipe had), no resampling."""
    encoder = _lame().Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)  # LAME would resample low bitrates otherwise
    encoder.set_channels(channels)
    encoder.set_quality(LAME_QUALITY)
    return bytes(encoder.encode(pcm)) + bytes(encoder.flush())


def encode_mp3(audio: np.ndarray, sample_rate: int, path: str | Path, bitrate: str = "192k",
               tags: dict[str, str] | None = None, max_bytes: int | None = None) -> Path:
    """Encode float audio (frames, channels) in [-1, 1] to a CBR MP3 at ``path``.

    LAME runs in this process (lameenc releases the GIL while it encodes): an ffmpeg
    subprocess cost 2-5x more for the same frames. ``tags`` (title, artist, album, genre) go
    into an ID3v2.3 tag. With ``max_bytes`` (e.g. DISCORD_MAX_BYTES) a file that is too large
    is re-encoded at the next lower bitrates (skipping ones predicted to be too big) and if
    even 64 kbit/s does not fit, a UserError says by how much. The file is written next to
    ``path`` and moved into place, so a failed encode never leaves a partial file or clobbers
    an existing one.
    """
    path = Path(path)
    x = _frames(np.asarray(audio, dtype=np.float32))
    channels = x.shape[1]
    if channels not in (1, 2):
        raise ValueError(f"expected mono or stereo audio, got {channels} channels")
    pcm = (np.clip(np.nan_to_num(x), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    head = id3_tag(tags or {})
    kbps = _kbps(bitrate)
    ladder = [kbps, *(b for b in BITRATE_LADDER if b < kbps)]
    size = 0
    for i, rate in enumerate(ladder):
        if i and max_bytes is not None and i < len(ladder) - 1:
            predicted = size * rate / ladder[i - 1]
            if predicted > max_bytes:  # CBR size is proportional to the bitrate
                size = int(predicted)
                continue
        data = head + _lame_encode(pcm, sample_rate, channels, rate)
        size = len(data)
        if max_bytes is None or size <= max_bytes:
            if rate != kbps:
                log.info("MP3 re-encoded at %dk to fit %d bytes", rate, max_bytes)
            _write_atomic(path, data)
            return path
    raise UserError(
        f"the MP3 would be {size / MIB:.1f} MiB, over the {_mib(max_bytes or 0)} MiB "
        "limit: ask for fewer bars or a faster tempo"
    )


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=encoding_prefix(), suffix=".mp3", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        tmp.chmod(0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ID3v2.3 text frames for the tags we write (ffmpeg's names for them on the left).
_ID3_FRAMES = {"title": b"TIT2", "artist": b"TPE1", "album": b"TALB", "genre": b"TCON"}


def id3_tag(tags: dict[str, str]) -> bytes:
    """An ID3v2.3 tag with one text frame per tag (Latin-1 when it fits, else UTF-16 with a
    BOM, the two encodings v2.3 has); empty bytes for no tags. Unknown tag names are refused
    rather than dropped."""
    frames = b""
    for name, value in tags.items():
        frame_id = _ID3_FRAMES.get(name)
        if frame_id is None:
            raise ValueError(f"unknown MP3 tag {name!r}: use {', '.join(_ID3_FRAMES)}")
        try:
            body = b"\x00" + value.encode("latin-1")
        except UnicodeEncodeError:
            body = b"\x01" + value.encode("utf-16")  # with its byte-order mark
        frames += frame_id + len(body).to_bytes(4, "big") + b"\x00\x00" + body
    if not frames:
        return b""
    n = len(frames)  # the tag size is "synchsafe": 7 bits per byte
    size = bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))
    return b"ID3\x03\x00\x00" + size + frames
