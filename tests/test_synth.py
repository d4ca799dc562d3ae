"""FluidSynth rendering with the real synth and soundfont: length, stereo, drums, no leaks."""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza.errors import ResourceError, UserError
from cadenza.music.midi_io import score_to_midi
from cadenza.music.score import ChordEvent, Note, Score, Track
from cadenza.music.theory import Chord, Key
from cadenza.synth import (
    ENV_SOUNDFONT,
    MAX_TAIL_SECONDS,
    Synth,
    find_soundfont,
    get_synth,
)

N = Note
SR = 44100

# Two bars at 120 bpm = 4.0 s. Lead left, chords right, bass centre, drums on channel 10.
LEAD = Track("Lead", "lead", 73, False,
             (N(0, 12, 76, 100), N(12, 12, 79, 100), N(24, 24, 81, 110), N(48, 48, 79, 100)),
             pan=16)
CHORDS = Track("Pad", "chords", 48, False,
               tuple(N(s, 48, p, 70) for s, ps in ((0, (60, 64, 67)), (48, (57, 60, 64)))
                     for p in ps), pan=112)
BASS = Track("Bass", "bass", 33, False, (N(0, 24, 36, 100), N(24, 24, 43, 100),
                                          N(48, 24, 33, 100), N(72, 24, 40, 100)))
DRUMS = Track("Drums", "drums", 0, True,
              tuple(N(b * 48 + o, 3, k, 110) for b in range(2)
                    for o, k in ((0, 36), (12, 38), (24, 36), (36, 38))))
SCORE = Score(tracks=(LEAD, CHORDS, BASS, DRUMS),
              chords=(ChordEvent(0, 48, Chord(0)), ChordEvent(48, 48, Chord(9, "min"))),
              tempo=120.0, key=Key(0), bars=2)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def renderer() -> Synth:
    return get_synth()


@pytest.fixture(scope="module")
def band_audio(renderer: Synth) -> np.ndarray:
    return renderer.synthesize(score_to_midi(SCORE))


def test_four_track_render_is_stereo_and_as_long_as_the_score(band_audio: np.ndarray) -> None:
    audio = band_audio
    assert audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[1] == 2
    seconds = len(audio) / SR
    assert SCORE.duration_seconds == 4.0
    assert 4.0 <= seconds <= 4.0 + MAX_TAIL_SECONDS + 0.1
    assert seconds > 4.05  # some release/reverb tail was kept
    assert np.isfinite(audio).all() and np.abs(audio).max() < 1.0
    for start in (0.0, 1.0, 2.0, 3.0):  # sound throughout both bars
        chunk = audio[int(start * SR):int((start + 1) * SR)]
        assert _rms(chunk) > 1e-3
    tail = audio[-int(0.05 * SR):]
    assert np.abs(tail).max() < np.abs(audio).max() * 10 ** (-50 / 20)  # it died away


def test_panned_tracks_give_different_channels(renderer: Synth,
                                               band_audio: np.ndarray) -> None:
    left, right = band_audio[:, 0], band_audio[:, 1]
    assert not np.array_equal(left, right)
    assert _rms(left - right) > 0.1 * _rms(band_audio)
    # Mono-sampled bass: hard left/right pans all of the dry signal (stereo-sampled patches
    # such as the flute keep one sample centred at full pan, as SF2 pan adds to sample pan).
    for pan, loud, soft in ((0, 0, 1), (127, 1, 0)):
        bass = renderer.synthesize(score_to_midi(Score(tracks=(replace(BASS, pan=pan),),
                                                        bars=2)))
        assert _rms(bass[:, loud]) > 5 * _rms(bass[:, soft])


def test_drum_channel_plays_the_kit_not_a_melodic_patch(renderer: Synth) -> None:
    kit = renderer.synthesize(score_to_midi(Score(tracks=(DRUMS,), bars=2)))
    as_piano = Track("x", "other", 0, False, DRUMS.notes)
    piano = renderer.synthesize(score_to_midi(Score(tracks=(as_piano,), bars=2)))
    assert _rms(kit) > 1e-3 and _rms(piano) > 1e-3
    n = min(len(kit), len(piano))
    assert _rms(kit[:n] - piano[:n]) > 0.5 * min(_rms(kit), _rms(piano))


def _leaky_midi() -> bytes:
    """A clip that bends, mutes, changes programs and never releases its notes."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track += [mido.Message("program_change", channel=0, program=19),
              mido.Message("control_change", channel=0, control=7, value=20),
              mido.Message("control_change", channel=0, control=10, value=0),
              mido.Message("control_change", channel=0, control=64, value=127),
              mido.Message("pitchwheel", channel=0, pitch=4000),
              mido.Message("program_change", channel=9, program=40),
              mido.Message("note_on", channel=0, note=48, velocity=127),
              mido.Message("note_on", channel=1, note=55, velocity=127),
              mido.Message("note_on", channel=9, note=49, velocity=127, time=480)]
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def test_no_state_leaks_between_renders(renderer: Synth, band_audio: np.ndarray) -> None:
    leaky = renderer.synthesize(_leaky_midi())
    # held notes are released at the end; the tail stops at the cap at the latest
    assert len(leaky) <= int((0.5 + MAX_TAIL_SECONDS) * SR) + 64
    again = renderer.synthesize(score_to_midi(SCORE))
    assert np.array_equal(again, band_audio)  # bit-identical: nothing carried over


def test_rendering_on_several_threads_gives_the_same_samples(renderer: Synth,
                                                             band_audio: np.ndarray) -> None:
    """synth.cpu-cores only changes how fast: a 32-bar band and the test band, to the bit."""
    from bench.synth import band_score

    threaded = Synth(renderer.soundfont, cores=2)
    try:
        assert np.array_equal(threaded.synthesize(score_to_midi(SCORE)), band_audio)
        long = score_to_midi(band_score(32))
        assert np.array_equal(threaded.synthesize(long), renderer.synthesize(long))
    finally:
        threaded.close()


def test_concurrent_renders_are_serialised_and_identical(
        renderer: Synth, band_audio: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each render opens its own synth and closes it at the end: count the synths open at once.
    real_open, real_close = Synth._open, Synth._close
    guard = threading.Lock()
    open_now, most_open = [0], [0]

    def counted_open(self: Synth):  # type: ignore[no-untyped-def]
        with guard:
            open_now[0] += 1
            most_open[0] = max(most_open[0], open_now[0])
        return real_open(self)

    def counted_close(self: Synth, synth) -> None:  # type: ignore[no-untyped-def]
        try:
            real_close(self, synth)
        finally:
            with guard:
                open_now[0] -= 1

    monkeypatch.setattr(Synth, "_open", counted_open)
    monkeypatch.setattr(Synth, "_close", counted_close)
    data = score_to_midi(SCORE)
    results: list[np.ndarray] = []
    start = threading.Barrier(3)

    def work() -> None:
        start.wait()  # all three ask at once
        results.append(renderer.synthesize(data))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(np.array_equal(r, band_audio) for r in results)
    assert most_open == [1] and open_now == [0]  # one synth at a time, each closed


def test_tempo_changes_follow_the_tempo_map(renderer: Synth) -> None:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track += [mido.MetaMessage("set_tempo", tempo=500_000),  # 120 bpm: 4 beats = 2 s
              mido.Message("note_on", channel=0, note=60, velocity=100),
              mido.MetaMessage("set_tempo", tempo=1_000_000, time=480 * 4),  # 60 bpm
              mido.Message("note_off", channel=0, note=60, time=480 * 4)]  # + 4 s
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    audio = renderer.synthesize(buf.getvalue())
    assert 6.0 <= len(audio) / SR <= 6.0 + MAX_TAIL_SECONDS + 0.1
    assert _rms(audio[int(5.5 * SR):int(5.9 * SR)]) > 1e-4  # still sounding near 6 s


def test_bad_midi_is_a_user_error(renderer: Synth) -> None:
    with pytest.raises(UserError, match="not a valid MIDI file"):
        renderer.synthesize(b"RIFF1234WAVEfmt ")


def test_renderer_is_cached_per_soundfont(renderer: Synth) -> None:
    assert get_synth() is renderer
    assert get_synth(renderer.soundfont) is renderer


def test_explicit_missing_soundfont_message(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sf2"
    with pytest.raises(ResourceError) as err:
        find_soundfont(missing)
    assert str(err.value) == f"soundfont not found: {missing}"


def test_invalid_soundfont_file_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.sf2"
    bogus.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(64))
    with pytest.raises(ResourceError, match=r"not a SoundFont \(\.sf2/\.sf3\) file: .*bogus"):
        find_soundfont(bogus)
    with pytest.raises(ResourceError, match="not a SoundFont"):
        get_synth(bogus)


def test_search_order_env_then_system(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pretty_midi

    bundled = Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")
    monkeypatch.setenv(ENV_SOUNDFONT, str(bundled))
    assert find_soundfont() == bundled
    assert find_soundfont(bundled) == bundled
    monkeypatch.setenv(ENV_SOUNDFONT, str(tmp_path / "gone.sf2"))
    with pytest.raises(ResourceError, match=f"soundfont not found: .*gone.sf2 .*{ENV_SOUNDFONT}"):
        find_soundfont()
    monkeypatch.delenv(ENV_SOUNDFONT)
    system = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    assert find_soundfont() == (system if system.is_file() else bundled)


def test_second_soundfont_renders_too() -> None:
    """The GPL TimGM6mb fallback (inside pretty_midi) is a working GM font with drums."""
    import pretty_midi

    small = get_synth(Path(pretty_midi.__file__).with_name("TimGM6mb.sf2"))
    audio = small.synthesize(score_to_midi(SCORE))
    assert 4.0 <= len(audio) / SR <= 4.0 + MAX_TAIL_SECONDS + 0.1
    assert _rms(audio) > 1e-3
