"""The composing pipeline end to end with a tiny random model: determinism, real MP3s, styles."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pydub import AudioSegment

from cadenza.errors import ResourceError, UserError
from cadenza.service import Composer, ComposeRequest
from cadenza.styles import STYLES


def test_same_parameters_seed_and_checkpoint_give_byte_identical_midi(composer: Composer) -> None:
    r = composer.resolve(ComposeRequest(style="jazz", bars=4, seed=7))
    a, b = composer.compose(r), composer.compose(r)
    assert a.midi == b.midi and a.midi[:4] == b"MThd"
    again = composer.resolve(ComposeRequest(style="jazz", bars=4, seed=7))
    assert again == r and composer.compose(again).midi == a.midi


def test_different_seeds_give_different_music(composer: Composer) -> None:
    midis = {composer.compose(composer.resolve(ComposeRequest(style="folk", bars=4, seed=s))).midi
             for s in range(4)}
    assert len(midis) == 4


def test_unset_options_are_drawn_from_the_seed_within_the_style(composer: Composer) -> None:
    for seed in range(10):
        r = composer.resolve(ComposeRequest(style="classical", seed=seed))
        lo, hi = STYLES["classical"].tempo_range
        assert lo <= r.tempo <= hi and r.meter in dict(STYLES["classical"].meters)
    r = composer.resolve(ComposeRequest(style="blues", tempo=100, key="Bb", seed=1))
    assert (r.tempo, r.key, r.tempo_given, r.key_given) == (100, "Bb", True, True)
    assert r.with_seed(2).tempo == 100 and r.with_seed(2).seed == 2


def test_an_unset_temperature_is_the_styles_and_a_given_one_wins(composer: Composer) -> None:
    """Jazz and ragtime sample at 1 (their lines need the tail), the others at 0.7."""
    temps = {s: composer.resolve(ComposeRequest(style=s, seed=1)).temperature for s in STYLES}
    assert temps == {"jazz": 1.0, "blues": 0.7, "folk": 0.7, "celtic": 0.7, "classical": 0.7,
                     "ragtime": 1.0}
    given = composer.resolve(ComposeRequest(style="jazz", seed=1, temperature=0.4))
    assert given.temperature == 0.4 and given.with_seed(5).temperature == 0.4


def _expected_seconds(composer: Composer, r) -> float:  # type: ignore[no-untyped-def]
    beats = r.bars * 4 * r.meter[0] / r.meter[1]
    return beats * 60.0 / r.tempo


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_renders_a_non_silent_stereo_mp3_of_the_right_length(
    composer: Composer, tmp_path: Path, style: str
) -> None:
    r = composer.resolve(ComposeRequest(style=style, bars=4, seed=11))
    comp = composer.compose(r)
    files = composer.make_files(comp.score, comp.midi, tmp_path, style)
    assert files.mp3.read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    audio = AudioSegment.from_file(files.mp3)
    expected = _expected_seconds(composer, r)
    # the score's length plus FluidSynth's release tail (trimmed to at most ~2.5 s)
    assert expected - 0.05 <= audio.duration_seconds <= expected + 3.0, (audio.duration_seconds,
                                                                        expected)
    assert audio.channels == 2
    samples = np.array(audio.get_array_of_samples(), dtype=np.float64)
    assert np.sqrt(np.mean(samples**2)) > 300  # clearly audible, not silence
    assert files.mid.read_bytes() == comp.midi
    assert files.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_model_and_corrupt_checkpoint_give_specific_messages(
    tiny_registry, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    from cadenza.models.registry import ModelRegistry

    composer = Composer(tiny_registry)
    with pytest.raises(ResourceError,
                       match=r"unknown model 'nope' \(available: gan, gru, lstm, rnn, vae\)"):
        composer.compose(composer.resolve(ComposeRequest(model="nope", seed=1)))
    bad = tmp_path / "broken" / "model.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"\x80\x04 not a checkpoint")
    broken = Composer(ModelRegistry({"broken": bad}))
    with pytest.raises(ResourceError, match=r"model checkpoint .* is corrupt") as e:
        broken.compose(broken.resolve(ComposeRequest(model="broken", seed=1)))
    assert str(bad) in str(e.value)  # every checkpoint is a model.pt: the path says which
    missing = Composer(ModelRegistry({"gone": tmp_path / "gone" / "model.pt"}))
    with pytest.raises(ResourceError, match="model checkpoint not found"):
        missing.compose(missing.resolve(ComposeRequest(model="gone", seed=1)))


def test_mismatched_checkpoint_names_its_path_in_one_line(tmp_path: Path,
                                                           tiny_models: Path) -> None:
    import torch

    from cadenza.models.checkpoint import read_payload, save_payload
    from cadenza.models.errors import ModelError
    from cadenza.models.families import load

    good = read_payload(tiny_models / "lstm" / "model.pt")
    state = dict(good["state_dict"])
    state.pop(next(iter(state)))
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "mine" / "model.pt"
    save_payload(bad, {**good, "state_dict": state})
    with pytest.raises(ModelError, match=re.escape(f"model checkpoint {bad} does not match")) as e:
        load(bad, torch.device("cpu"))
    assert "\n" not in str(e.value)


def test_unknown_style_is_a_user_error(composer: Composer) -> None:
    with pytest.raises(UserError, match="unknown style 'polka'"):
        composer.resolve(ComposeRequest(style="polka"))


def test_dynamic_batching_gives_the_same_music_as_one_at_a_time(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    from cadenza.batching import MelodyBatcher

    plain = Composer(tiny_registry)
    batcher = MelodyBatcher(window_s=0.2, max_batch=8)
    batched = Composer(tiny_registry, batcher=batcher)
    reqs = [plain.resolve(ComposeRequest(style=s, bars=2, seed=i))
            for i, s in enumerate(["jazz", "folk", "blues", "classical", "celtic", "ragtime"])]
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            together = list(pool.map(batched.compose, reqs))
    finally:
        batcher.close()
    assert [c.midi for c in together] == [plain.compose(r).midi for r in reqs]
    assert max(batcher.batches) > 1  # requests really were sampled together


def test_a_lone_request_does_not_wait_for_the_batching_window(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    import time

    from cadenza.batching import MelodyBatcher

    batcher = MelodyBatcher(window_s=30.0)  # waiting would be unmistakable
    composer = Composer(tiny_registry, batcher=batcher)
    try:
        t0 = time.monotonic()
        composer.compose(composer.resolve(ComposeRequest(bars=1, seed=1)))
        assert time.monotonic() - t0 < 15
    finally:
        batcher.close()
    assert set(batcher.batches) == {1}  # every step sampled the lone request alone


@pytest.mark.parametrize("style", ["jazz", "classical"])
def test_gan_band_goes_through_the_instrumentation_path(composer: Composer, style: str) -> None:
    r = composer.resolve(ComposeRequest(style=style, bars=3, seed=4, model="gan"))
    comp = composer.compose(r)
    assert comp.model_style == "gan" and comp.resolved.meter == (4, 4)
    score = comp.score
    assert [t.role for t in score.tracks] == ["lead", "chords", "bass", "drums"]
    assert score.bars == 3 and score.track("drums").is_drum
    assert score.track("lead").program == STYLES[style].programs["lead"]
    assert all(n.start < score.length_ticks for t in score.tracks for n in t.notes)
    assert composer.compose(r).midi == comp.midi


def test_the_vae_writes_its_line_over_the_clips_chord_plan(composer: Composer,
                                                           tmp_path: Path) -> None:
    from conftest import make_tiny_vae

    from cadenza.models.registry import ModelRegistry

    for style in ("jazz", "blues", "folk"):
        def clip(model: str, c: Composer = composer, style: str = style):  # type: ignore[no-untyped-def]
            return c.compose(c.resolve(ComposeRequest(style=style, bars=8, seed=3,
                                                      model=model))).score

        vae, lstm = clip("vae"), clip("lstm")
        # the plan the lstm plays over (the chord model's, for jazz and blues) is the vae's
        assert vae.chords == lstm.chords and len(vae.chords) >= 4
    # a vae from before chord conditioning gets chords inferred from its melody instead
    old = make_tiny_vae(tmp_path / "old" / "model.pt", chord_dim=0)
    both = Composer(ModelRegistry({"vae": old, "lstm": tmp_path / "none.pt"}))
    r = both.resolve(ComposeRequest(style="jazz", bars=8, seed=3, model="vae"))
    assert both.compose(r).score.chords != clip("lstm", style="jazz").chords


def test_a_form_asked_for_shapes_the_clip_and_survives_a_reroll(composer: Composer) -> None:
    r = composer.resolve(ComposeRequest(style="folk", bars=16, seed=4, form="AABA"))
    assert (r.form, r.form_given) == ("aaba", True)
    assert [(s, n, letter) for s, n, letter in r.sections] == [
        (0, 4, "A"), (4, 4, "A"), (8, 4, "B"), (12, 4, "A")]
    score = composer.compose(r).score
    bar = score.bar_ticks

    def changes(first_bar: int) -> list[str]:
        """The chord sounding on each beat of the 4-bar section starting at ``first_bar``."""
        beats = [first_bar * bar + i * score.beat_ticks for i in range(4 * bar //
                                                                      score.beat_ticks)]
        return [next(c.chord.name() for c in reversed(score.chords) if c.start <= t)
                for t in beats]

    # the A sections come back over the same changes: the form is heard in the harmony too
    assert changes(0) == changes(4) == changes(12) != changes(8)
    again = r.with_seed(5)
    assert (again.form, again.form_given) == ("aaba", True)
    left = composer.resolve(ComposeRequest(style="folk", bars=16, seed=4))
    assert not left.form_given and left.form  # the style's usual form
    with pytest.raises(UserError, match="form aaba needs a number of bars divisible by 4"):
        composer.resolve(ComposeRequest(style="folk", bars=10, form="aaba"))
    with pytest.raises(UserError, match="form"):
        composer.resolve(ComposeRequest(style="folk", bars=8, form="a-b"))
