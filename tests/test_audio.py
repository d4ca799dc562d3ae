"""Loudness normalisation, limiting, silence trim and in-process MP3 encoding (decoded back with
ffmpeg, which only the tests need)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydub import AudioSegment
from pydub.utils import mediainfo

from cadenza.audio import (
    DISCORD_MAX_BYTES,
    PEAK_CEILING_DB,
    encode_mp3,
    loudness_db,
    normalize,
    trim_trailing_silence,
)
from cadenza.errors import ResourceError, UserError

SR = 44100
CEILING = 10 ** (PEAK_CEILING_DB / 20)


def tone(seconds: float, db: float = -20.0, freq: float = 440.0) -> np.ndarray:
    """Stereo sine at ``db`` peak, slightly different per side so the channels differ."""
    t = np.arange(int(seconds * SR)) / SR
    amp = 10 ** (db / 20)
    left = amp * np.sin(2 * np.pi * freq * t)
    right = amp * np.sin(2 * np.pi * freq * 1.5 * t)
    return np.stack([left, right], axis=1).astype(np.float32)


def drum_like(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Noise bed with loud decaying hits every half second: a ~29 dB crest factor, far peakier
    than a rendered mix (15-20 dB), so the limiter has to do real work."""
    rng = np.random.default_rng(seed)
    x = 0.05 * rng.standard_normal((int(seconds * SR), 2))
    env = np.exp(-np.arange(2000) / 300.0)
    for start in range(0, len(x) - 2000, SR // 2):
        x[start:start + 2000] += 0.5 * env[:, None] * rng.standard_normal((2000, 2))
    return x.astype(np.float32)


def test_loudness_reference_points() -> None:
    assert loudness_db(tone(2.0, db=0.0)) == pytest.approx(-3.01, abs=0.02)  # full-scale sine
    assert loudness_db(np.zeros((SR, 2), np.float32)) == float("-inf")
    # gating: a second of the same tone plus long silence reads (almost) the same level
    padded = np.concatenate([tone(2.0, db=-12.0), np.zeros((6 * SR, 2), np.float32)])
    assert loudness_db(padded) == pytest.approx(loudness_db(tone(2.0, db=-12.0)), abs=0.1)


@pytest.mark.parametrize("target", [-24.0, -16.0])
def test_normalize_hits_target_without_clipping(target: float) -> None:
    for audio in (tone(2.0, db=-35.0), tone(2.0, db=-3.0), drum_like()):
        out = normalize(audio, target_db=target)
        assert out.shape == audio.shape and out.dtype == np.float32
        assert loudness_db(out) == pytest.approx(target, abs=0.1)
        assert np.abs(out).max() <= CEILING


def test_peaky_audio_is_limited_not_clipped() -> None:
    audio = drum_like()
    plain_gain = 10 ** ((-16.0 - loudness_db(audio)) / 20)
    assert np.abs(audio).max() * plain_gain > 4.0  # a plain gain would clip by 12+ dB
    out = normalize(audio, target_db=-16.0)
    assert loudness_db(out) == pytest.approx(-16.0, abs=0.1)
    assert np.abs(out).max() <= CEILING
    assert np.abs(out).max() > 0.95 * CEILING  # the limiter works at the ceiling, not below
    # beyond what limiting can reach: as loud as it gets, and still no clipping
    for target in (-12.0, 0.0):
        louder = normalize(audio, target_db=target)
        assert np.abs(louder).max() <= CEILING
        assert loudness_db(louder) > -16.0
    assert normalize(tone(1.0, db=-40.0), target_db=-12.0).max() <= CEILING


@settings(max_examples=25, deadline=None)
@given(gain_db=st.floats(-60, 30), spike=st.floats(0, 40), seed=st.integers(0, 2**16))
def test_normalize_never_clips(gain_db: float, spike: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SR // 4, 2)).astype(np.float32) * np.float32(10 ** (gain_db / 20))
    x[rng.integers(0, len(x), 5)] *= np.float32(10 ** (spike / 20))
    out = normalize(x, target_db=-14.0)
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= CEILING


def test_normalize_edge_cases() -> None:
    silence = np.zeros((SR, 2), np.float32)
    assert np.array_equal(normalize(silence), silence)
    assert normalize(np.zeros((0, 2), np.float32)).shape == (0, 2)
    mono = tone(1.0, db=-30.0)[:, 0]
    out = normalize(mono)
    assert out.shape == mono.shape and loudness_db(out) == pytest.approx(-16.0, abs=0.1)
    broken = tone(1.0, db=-30.0)
    broken[100] = np.nan
    broken[200] = np.inf
    fixed = normalize(broken)
    assert np.isfinite(fixed).all() and np.abs(fixed).max() <= CEILING


def test_trim_trailing_silence() -> None:
    audio = np.concatenate([tone(1.0), np.zeros((2 * SR, 2), np.float32)])
    trimmed = trim_trailing_silence(audio, SR)
    assert abs(len(trimmed) - int(1.3 * SR)) <= 2
    assert np.array_equal(trimmed, audio[:len(trimmed)])
    # a -50 dB tail is above the -60 dB threshold and stays
    quiet_tail = np.concatenate([tone(1.0), tone(1.0, db=-50.0), np.zeros((SR, 2), np.float32)])
    assert abs(len(trim_trailing_silence(quiet_tail, SR)) - int(2.3 * SR)) <= 2
    assert len(trim_trailing_silence(np.zeros((3 * SR, 2), np.float32), SR)) == int(0.3 * SR)
    assert len(trim_trailing_silence(tone(0.5), SR)) == int(0.5 * SR)  # nothing to cut


def _bitrate(path: Path) -> int:
    return int(mediainfo(str(path))["bit_rate"])


def test_encode_mp3_decodes_back(tmp_path: Path) -> None:
    audio = normalize(tone(3.0, db=-20.0))
    path = encode_mp3(audio, SR, tmp_path / "clip.mp3",
                      tags={"title": "Sunday chords", "artist": "Cadenza"})
    assert path == tmp_path / "clip.mp3" and path.read_bytes()[:3] == b"ID3"
    decoded = AudioSegment.from_file(path)
    assert decoded.channels == 2 and decoded.frame_rate == SR
    assert len(decoded) / 1000 == pytest.approx(3.0, abs=0.08)  # encoder delay/padding only
    size = path.stat().st_size
    assert 0.9 * 192_000 * 3 / 8 < size < 1.15 * 192_000 * 3 / 8
    assert _bitrate(path) == pytest.approx(192_000, rel=0.02)
    info = mediainfo(str(path))["TAG"]
    assert info["title"] == "Sunday chords" and info["artist"] == "Cadenza"
    # the decoded samples are the tone we encoded (not silence, not noise)
    samples = np.array(decoded.get_array_of_samples(), dtype=np.float32).reshape(-1, 2) / 32768
    assert loudness_db(samples) == pytest.approx(loudness_db(audio), abs=0.5)
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_lower_bitrate_and_mono(tmp_path: Path) -> None:
    audio = tone(2.0)
    small = encode_mp3(audio, SR, tmp_path / "a.mp3", bitrate="128k")
    assert _bitrate(small) == pytest.approx(128_000, rel=0.02)
    mono = encode_mp3(audio[:, 0], SR, tmp_path / "m.mp3")
    assert AudioSegment.from_file(mono).channels == 1


def test_size_limit_steps_down_the_bitrate(tmp_path: Path) -> None:
    audio = tone(4.0)
    full = encode_mp3(audio, SR, tmp_path / "full.mp3").stat().st_size  # ~96 kB at 192k
    limit = int(full * 0.75)  # 160k would be 83%, 128k fits at ~67%
    path = encode_mp3(audio, SR, tmp_path / "fit.mp3", max_bytes=limit)
    assert path.stat().st_size <= limit
    assert _bitrate(path) == pytest.approx(128_000, rel=0.02)
    assert DISCORD_MAX_BYTES == 10 * 1024 * 1024


def test_over_the_limit_is_a_user_error(tmp_path: Path) -> None:
    target = tmp_path / "keep.mp3"
    target.write_bytes(b"an earlier clip")
    with pytest.raises(UserError) as err:
        encode_mp3(tone(4.0), SR, target, max_bytes=10_000)
    message = str(err.value)
    assert re.fullmatch(r"the MP3 would be \d+\.\d MiB, over the [\d.e-]+ MiB limit: "
                        r"ask for fewer bars or a faster tempo", message), message
    # the 64k attempt (~32 kB) is what is reported: 0.0 MiB at this tiny size
    assert "would be 0.0 MiB" in message
    assert target.read_bytes() == b"an earlier clip"  # never clobbered
    assert sorted(os.listdir(tmp_path)) == ["keep.mp3"]  # no temp files left


def test_missing_encoder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lameenc", None)  # importing it now fails
    with pytest.raises(ResourceError) as err:
        encode_mp3(tone(0.5), SR, tmp_path / "x.mp3")
    assert str(err.value) == ("the MP3 encoder is not installed: pip install lameenc "
                              "(scripts/setup.sh does)")
    assert not (tmp_path / "x.mp3").exists()


def test_encoding_needs_no_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LAME runs in-process: no ffmpeg on PATH, no subprocess (ffmpeg only decodes, in tests)."""
    import subprocess

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"encoding started a process: {args}")

    with monkeypatch.context() as patched:
        patched.setenv("PATH", str(tmp_path / "empty-bin"))
        patched.setattr(subprocess, "Popen", no_subprocess)
        path = encode_mp3(normalize(tone(1.0)), SR, tmp_path / "c.mp3", tags={"title": "t"})
    assert len(AudioSegment.from_file(path)) / 1000 == pytest.approx(1.0, abs=0.08)


def test_tags_outside_latin1_survive(tmp_path: Path) -> None:
    title = "Cadenza — jazz, C♯m, 120 bpm"
    path = encode_mp3(tone(1.0), SR, tmp_path / "t.mp3", tags={"title": title, "album": "A"})
    info = mediainfo(str(path))["TAG"]
    assert info["title"] == title and info["album"] == "A"
    with pytest.raises(ValueError, match="unknown MP3 tag 'mood'"):
        encode_mp3(tone(1.0), SR, tmp_path / "u.mp3", tags={"mood": "blue"})


def test_rendered_clip_pipeline(tmp_path: Path) -> None:
    """Synth -> normalise -> trim -> MP3 on a real clip, as the bot does it."""
    from cadenza.music.midi_io import score_to_midi
    from cadenza.music.score import Note, Score, Track
    from cadenza.synth import get_synth

    notes = tuple(Note(i * 6, 6, 60 + (i * 7) % 12, 100) for i in range(16))
    score = Score(tracks=(Track("lead", "lead", 0, False, notes),), bars=2, tempo=120.0)
    renderer = get_synth()
    raw = renderer.synthesize(score_to_midi(score))
    ready = trim_trailing_silence(normalize(raw), renderer.sample_rate)
    assert loudness_db(ready) == pytest.approx(-16.0, abs=0.5)  # trimming barely moves it
    assert np.abs(ready).max() <= CEILING
    assert 4.0 <= len(ready) / SR <= len(raw) / SR
    path = encode_mp3(ready, renderer.sample_rate, tmp_path / "clip.mp3",
                      max_bytes=DISCORD_MAX_BYTES)
    decoded = AudioSegment.from_file(path)
    assert len(decoded) / 1000 == pytest.approx(len(ready) / SR, abs=0.08)
