"""In-process LAME gives the MP3 the ffmpeg pipe gave: same bitrate in every frame, the same
loudness (within 0.5 dB) and length, for a real rendered band clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.mp3_quality import decode, ffmpeg_mp3, frame_bitrates, snr_db
from bench.synth import band_score
from cadenza.audio import (
    DISCORD_MAX_BYTES,
    encode_mp3,
    loudness_db,
    normalize,
    trim_trailing_silence,
)
from cadenza.music.midi_io import score_to_midi
from cadenza.synth import get_synth


@pytest.mark.parametrize("bitrate", ["192k", "128k"])
def test_lameenc_matches_the_ffmpeg_encoder_it_replaced(tmp_path: Path, bitrate: str) -> None:
    renderer = get_synth()
    sr = renderer.sample_rate
    audio = trim_trailing_silence(normalize(renderer.synthesize(score_to_midi(band_score(4)))),
                                  sr)
    ours = encode_mp3(audio, sr, tmp_path / "ours.mp3", bitrate=bitrate,
                      max_bytes=DISCORD_MAX_BYTES, tags={"title": "t", "artist": "Cadenza"})
    before = ffmpeg_mp3(audio, sr, tmp_path / "before.mp3", bitrate=bitrate)
    kbps = int(bitrate[:-1])
    assert set(frame_bitrates(ours)) == set(frame_bitrates(before)) == {kbps}
    new, new_rate = decode(ours)
    old, old_rate = decode(before)
    assert new_rate == old_rate == sr and new.shape[1] == old.shape[1] == 2
    assert loudness_db(new, sr) == pytest.approx(loudness_db(old, sr), abs=0.5)
    # ffmpeg's Info frame lets decoders drop LAME's delay and padding; ours has none, so ours
    # decodes at most two MP3 frames (2,304 samples) longer
    assert 0 <= len(new) - len(old) <= 2304
    # the decoded waveform is the music, about as close to it as the old encoder got
    assert snr_db(audio, new) > snr_db(audio, old) - 2.0 > 15.0
