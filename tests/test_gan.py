"""The multi-track GAN with tiny random weights: shapes, gradients, WGAN-GP, sampling, checkpoints,
training smoke run, and the phrase data it trains on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from cadenza.models.errors import ModelError
from cadenza.models.families import load
from cadenza.models.gan import (
    GANConfig,
    GANRequest,
    MuseGAN,
    _plan,
    binarize,
    critic_loss,
    generator_loss,
    gradient_penalty,
    hold_weights,
    phrase_form,
    random_latents,
    sample,
    sample_many,
    sample_probabilities,
    sample_rolls,
    save_gan,
    set_onset_grid,
)
from cadenza.models.training.gan_data import (
    build_dataset,
    key_shift,
    load_dataset,
    onset_grid,
    save_dataset,
    score_phrases,
)
from cadenza.music.roll import BASS, DRUMS, LEAD, LOWEST, PITCHES, STEPS, TRACKS, encode, timeline
from cadenza.music.score import ChordEvent, Note, Score, Track
from cadenza.music.theory import Chord, Key

STYLES = ("folk", "jazz")


def tiny_config(**kw: object) -> GANConfig:
    return GANConfig(styles=STYLES, phrase_bars=2, z_dim=8, style_dim=4, g_channels=8,
                     d_channels=4, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and OpenMP spin-waits badly on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model() -> MuseGAN:
    torch.manual_seed(0)
    m = MuseGAN(tiny_config()).eval()
    # a fresh generator starts near-silent (as sparse as real rolls); centre its output so
    # random weights write plenty of notes for the sampling paths to work on
    with torch.no_grad():
        m.generator.bar.out_bias.fill_(0.0)
    return m


def test_fresh_generator_is_as_sparse_as_music() -> None:
    torch.manual_seed(0)
    m = MuseGAN(tiny_config()).eval()
    probs = sample_probabilities(m, [GANRequest("folk", 4, 0)])[0]
    assert 0.005 < probs.mean() < 0.05


def test_forward_backward_shapes() -> None:
    torch.manual_seed(1)
    m = MuseGAN(tiny_config()).train()
    cfg = m.config
    style = torch.tensor([0, 1, 1])
    fake = m.generator(random_latents(3, cfg), style)
    assert fake.shape == (3, cfg.phrase_bars, TRACKS, STEPS, PITCHES)
    assert float(fake.detach().min()) >= 0.0 and float(fake.detach().max()) <= 1.0
    scores = m.discriminator(fake, style)
    assert scores.shape == (3,)
    generator_loss(scores).backward()
    for name, p in m.generator.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in m.generator.parameters())
    real = (torch.rand_like(fake) < 0.05).float()
    m.zero_grad()
    loss = critic_loss(m.discriminator(real, style), m.discriminator(fake.detach(), style))
    loss.backward()
    assert all(p.grad is not None for p in m.discriminator.parameters())
    assert all(p.grad is None for p in m.generator.parameters())  # fake was detached


def test_style_changes_the_critic_score() -> None:
    torch.manual_seed(2)
    m = MuseGAN(tiny_config())
    x = torch.rand(1, 2, TRACKS, STEPS, PITCHES)
    with torch.no_grad():
        a, b = m.discriminator(x, torch.tensor([0])), m.discriminator(x, torch.tensor([1]))
    assert a.item() != b.item()


def test_gradient_penalty_is_finite_and_positive() -> None:
    torch.manual_seed(3)
    m = MuseGAN(tiny_config())
    real = (torch.rand(4, 2, TRACKS, STEPS, PITCHES) < 0.05).float()
    fake = m.generator(random_latents(4, m.config), torch.tensor([0, 1, 0, 1]))
    gp = gradient_penalty(m.discriminator, real, fake, torch.tensor([0, 1, 0, 1]))
    assert torch.isfinite(gp) and gp.item() > 0
    gp.backward()  # differentiable w.r.t. the critic (double backward)
    assert all(torch.isfinite(p.grad).all() for p in m.discriminator.parameters()
               if p.grad is not None)


@pytest.mark.parametrize("bars", [1, 3, 5, 32])
def test_sample_any_bars_deterministic(model: MuseGAN, bars: int) -> None:
    a = sample(model, "jazz", bars, seed=11)
    b = sample(model, "jazz", bars, seed=11)
    assert a == b
    assert a.bars == bars and a.resolution == 12 and a.style == "jazz"
    assert [t.role for t in a.tracks] == ["lead", "chords", "bass", "drums"]
    assert a.tracks[DRUMS].is_drum
    assert all(n.start < bars * 48 for t in a.tracks for n in t.notes)
    assert a.note_count() > 0 and a.chords and a.chords[-1].end == bars * 48
    for role in ("lead", "bass"):  # monophonic after cleaning
        starts = [n.start for n in a.track(role).notes]
        ends = sorted((n.start, n.end) for n in a.track(role).notes)
        assert len(starts) == len(set(starts))
        assert all(e1 <= s2 for (_, e1), (s2, _) in pairwise(ends))
    assert sample(model, "jazz", bars, seed=12) != a


def test_longer_clips_start_like_shorter_ones_and_batching_is_invisible(model: MuseGAN) -> None:
    reqs = [GANRequest("folk", 3, 5), GANRequest("folk", 5, 5)]
    short, long_ = sample_probabilities(model, reqs)
    assert short.shape == (3, TRACKS, STEPS, PITCHES) and long_.shape[0] == 5
    np.testing.assert_allclose(short, long_[:3], atol=1e-5)
    reqs = [GANRequest("folk", 2, 1), GANRequest("jazz", 7, 2), GANRequest(1, 1, 3)]
    together = sample_many(model, reqs)
    assert together == [sample_many(model, [r])[0] for r in reqs]
    assert together[2].style == "jazz"


def test_eval_rolls_and_training_mode(model: MuseGAN) -> None:
    rolls = sample_rolls(model, 3, "jazz", seed=2)
    assert rolls.shape == (3, 2, TRACKS, STEPS, PITCHES) and rolls.dtype == bool
    assert np.array_equal(rolls, sample_rolls(model, 3, "jazz", seed=2))
    model.train()
    try:
        sample_probabilities(model, [GANRequest("folk", 1, 0)])
        assert model.generator.training  # sampling borrows eval mode and gives it back
    finally:
        model.eval()


def test_phrases_follow_the_form(model: MuseGAN) -> None:
    # phrases with the same letter share their temporal plan; without drift they would repeat,
    # so the form shows in the per-bar probabilities being closer for A-A than for A-B
    p = sample_probabilities(model, [GANRequest("folk", 8, 9, form="AABA")])[0]
    phrase = p.reshape(4, 2, -1)
    same = np.abs(phrase[0] - phrase[1]).mean()
    assert same < np.abs(phrase[1] - phrase[2]).mean()


def test_a_returning_phrase_starts_from_its_first_statements_latents() -> None:
    cfg = tiny_config()  # phrases of two bars: AABA over 8 bars
    plan = {r: _plan(cfg, GANRequest("folk", 8, 5, form="AABA", restate=r))["shared"]
            for r in (0.0, 0.2, 1.0)}
    first, second, b, last = (plan[0.2][k] for k in (0, 2, 4, 6))
    assert np.array_equal(plan[0.0][2], plan[0.0][0])  # restate 0: played again
    # a return lies nearer its first statement than the B phrase does, and is not a copy
    for again in (second, last):
        assert 0 < np.abs(again - first).mean() < np.abs(b - first).mean()
    # the first statement and the B phrase are the same draw whatever ``restate`` is
    assert np.array_equal(plan[0.0][4], b) and np.array_equal(plan[1.0][0], first)


def test_key_moves_pitched_tracks_only(model: MuseGAN) -> None:
    plain = sample(model, "folk", 2, seed=4)
    moved = sample(model, "folk", 2, seed=4, key=Key.parse("Eb"))
    assert moved.key == Key(3)
    assert plain.tracks[DRUMS].notes == moved.tracks[DRUMS].notes

    def shifted(s: int) -> list[set[tuple[int, int, int]]]:
        return [{(n.start, n.duration, n.pitch + s) for n in t.notes
                 if LOWEST <= n.pitch + s < LOWEST + PITCHES} for t in plain.tracks[:DRUMS]]

    got = [{(n.start, n.duration, n.pitch) for n in t.notes} for t in moved.tracks[:DRUMS]]
    # the clip moves as a whole, by at most a tritone (notes pushed off the range are lost)
    assert [s for s in range(-6, 7) if shifted(s) == got]


def test_threshold_and_bernoulli(model: MuseGAN) -> None:
    req = GANRequest("folk", 2, 1)
    probs = sample_probabilities(model, [req])[0]
    low, high = binarize(probs, replace(req, threshold=0.45)), binarize(probs, req)
    assert np.array_equal(high, probs > 0.5) and low.sum() > high.sum() > 0
    drawn = binarize(probs, replace(req, bernoulli=True))
    assert np.array_equal(drawn, binarize(probs, replace(req, bernoulli=True)))
    assert not np.array_equal(drawn, high)
    assert abs(drawn.mean() - probs.mean()) < 0.01  # notes drawn with their probabilities
    b1 = sample(model, "folk", 2, seed=1, bernoulli=True)
    assert b1 == sample(model, "folk", 2, seed=1, bernoulli=True) and b1.note_count() > 0


def test_bad_requests(model: MuseGAN) -> None:
    with pytest.raises(ModelError, match="no style 'polka'"):
        sample(model, "polka", 4, 1)
    with pytest.raises(ModelError, match="bars must be 1-512"):
        sample(model, "folk", 0, 1)
    with pytest.raises(ModelError, match="form must be letters"):
        sample(model, "folk", 4, 1, form="A-B")
    with pytest.raises(ModelError, match="style index 5"):
        sample(model, 5, 4, 1)


def test_checkpoint_round_trip(tmp_path: Path, model: MuseGAN) -> None:
    path = tmp_path / "gan" / "model.pt"
    save_gan(path, model, {"name": "gan", "family": "gan", "steps": 0})
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == "gan" and payload["styles"] == list(STYLES)
    loaded = load(path, torch.device("cpu"))
    assert loaded.kind == "gan" and loaded.vocab is None and loaded.styles == STYLES
    assert isinstance(loaded.model, MuseGAN) and loaded.model.config == model.config
    sd = model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in loaded.model.state_dict().items())
    assert sample(loaded.model, "folk", 3, 8) == sample(model, "folk", 3, 8)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="9/8 bar is 54 steps"):
        GANConfig(meter=(9, 8))
    with pytest.raises(ValueError, match="distinct"):
        GANConfig(styles=("a", "a"))
    assert GANConfig.from_dict(tiny_config().to_dict()) == tiny_config()


# ---------------------------------------------------------------- data and training


def band_score(style: str, key: Key, bars: int, meter: tuple[int, int] = (4, 4)) -> Score:
    bar = 48 * meter[0] // 4
    tonic = 60 + key.tonic
    lead = tuple(Note(b * bar + i * 12, 11, tonic + (0, 4, 7, 12)[i % 4])
                 for b in range(bars) for i in range(meter[0]))
    bass = tuple(Note(b * bar, bar - 1, tonic - 24) for b in range(bars))
    drums = tuple(Note(b * bar + t, 3, 42) for b in range(bars) for t in range(0, bar, 6))
    return Score(tracks=(Track("L", "lead", notes=lead), Track("B", "bass", notes=bass),
                         Track("D", "drums", is_drum=True, notes=drums)),
                 time_signature=meter, key=key, bars=bars, style=style)


def test_phrases_are_cut_and_key_normalised() -> None:
    d_major = band_score("folk", Key.parse("D"), bars=5)
    ph = score_phrases(d_major, phrase_bars=2)
    assert ph.shape == (3, 2, TRACKS, STEPS, PITCHES)  # bars 0-1, 2-3 and the ending 3-4
    assert key_shift(Key.parse("D")) == -2 and key_shift(Key.parse("Am")) == 0
    assert key_shift(Key.parse("Bm")) == -2 and key_shift(Key.parse("F#")) == -6
    lead = timeline(ph[0])[LEAD]
    assert lead[0, 60 - LOWEST] and not lead[0, 62 - LOWEST]  # D4 moved to C4
    assert ph[0, 0, DRUMS, 0, 42 - LOWEST]  # drums unmoved
    raw = score_phrases(d_major, phrase_bars=2, normalize_key=False)
    assert np.array_equal(raw[0, :, BASS], encode(d_major)[:2, BASS])


def test_build_dataset_and_files(tmp_path: Path) -> None:
    scores = [band_score("folk", Key(0), 4), band_score("jazz", Key(5), 6),
              band_score("jazz", Key(0), 4, meter=(3, 4)), band_score("polka", Key(0), 4)]
    data = build_dataset(scores, STYLES, phrase_bars=2)
    assert data.rolls.shape == (5, 2, TRACKS, STEPS, PITCHES)
    assert data.style_ids.tolist() == [0, 0, 1, 1, 1]
    assert data.summary["styles"] == {"folk": {"pieces": 1, "phrases": 2},
                                      "jazz": {"pieces": 1, "phrases": 3}}
    assert data.summary["skipped"] == {"meter 3/4": 1, "style not trained": 1}
    capped = build_dataset(scores, STYLES, phrase_bars=2, max_per_style=1, pack=True)
    assert capped.rolls.shape == (2, 2, TRACKS, STEPS, 11) and capped.rolls.dtype == np.uint8
    save_dataset(tmp_path / "d.npz", data)
    back = load_dataset(tmp_path / "d.npz")
    assert back.styles == STYLES and back.summary == data.summary
    assert np.array_equal(np.unpackbits(back.rolls, axis=-1, count=PITCHES).astype(bool),
                          data.rolls)


def test_train_gan_smoke(tmp_path: Path) -> None:
    from cadenza.models.training.train_gan import train_gan

    rng = np.random.default_rng(0)
    rolls = rng.random((6, 2, TRACKS, STEPS, PITCHES)) < 0.03
    ids = np.array([0, 0, 0, 1, 1, 1])
    out = tmp_path / "gan" / "model.pt"
    meta = train_gan(np.packbits(rolls, axis=-1), ids, STYLES, out, steps=3, batch=2,
                     n_critic=2, z_dim=8, g_channels=8, d_channels=4, eval_every=2,
                     eval_clips=4, seed=5, device="cpu",
                     data_note={"per_style": {"folk": {"pieces": 2, "bars": 9}}})
    assert meta["steps"] == 3 and [h["step"] for h in meta["history"]] == [2, 3]
    assert meta["data"] == {"folk": {"phrases": 3, "pieces": 2}, "jazz": {"phrases": 3}}
    assert {"overlap", "real_mean", "gen_mean"} <= set(meta["metrics"]["scale_consistency"])
    for h in meta["history"]:
        assert all(np.isfinite(h[k]) for k in ("w", "gp", "g"))
    loaded = load(out, torch.device("cpu"))
    assert loaded.kind == "gan" and loaded.meta["steps"] == 3
    assert loaded.model.config.phrase_bars == 2
    assert loaded.model.config.onset_grid == onset_grid(rolls, ids, STYLES)  # its data's
    assert sample(loaded.model, "jazz", 3, 1).bars == 3


def test_train_gan_rejects_bad_arrays(tmp_path: Path) -> None:
    from cadenza.models.training.train_gan import train_gan

    with pytest.raises(ValueError, match="rolls must be"):
        train_gan(np.zeros((2, 2, 3, STEPS, PITCHES), bool), np.zeros(2, int), STYLES,
                  tmp_path / "m.pt")
    with pytest.raises(ValueError, match="style_ids must be 0-1"):
        train_gan(np.zeros((2, 2, 4, STEPS, PITCHES), bool), np.array([0, 2]), STYLES,
                  tmp_path / "m.pt")


# ---------------------------------------------------------------- rhythm and groove


def _rhythm(gate_open: list[int], free: list[int]) -> MuseGAN:
    """A tiny model whose rhythm, for every track, opens the gate at ``gate_open`` only and
    lets notes change at the ``free`` steps only (holding elsewhere)."""
    torch.manual_seed(6)
    m = MuseGAN(tiny_config()).eval()
    last = m.generator.rhythm.net[-1]
    gate, hold = torch.full((STEPS,), -30.0), torch.full((STEPS,), 30.0)
    gate[gate_open], hold[free] = 30.0, -30.0
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.cat([gate.repeat(TRACKS), hold.repeat(TRACKS)]))
        m.generator.bar.out_bias.fill_(0.0)  # plenty of notes, varying from step to step
    return m


def test_the_rhythm_code_gives_every_bar_and_track_the_same_onsets() -> None:
    from cadenza.models.zoo.metrics import groove_consistency

    beats = [0, 12, 24, 36]
    rests = [11, 23, 35, 47]  # the step before each beat is silent: every beat re-strikes
    model = _rhythm([t for t in range(STEPS) if t not in rests], beats)
    req = GANRequest("folk", 6, 3)
    probs = sample_probabilities(model, [req])[0]
    assert probs[:, :, rests].max() < 1e-6
    active = binarize(probs, req)
    assert active.any() and not active.all()
    # notes hold from the beat to the rest: within each beat a pitch is on throughout or not
    for b in beats:
        seg = active[:, :, b:b + 11]
        assert (seg == seg[:, :, :1]).all()
    starts = active & ~np.concatenate([np.zeros_like(active[:, :, :1]), active[:, :, :-1]], 2)
    assert set(np.nonzero(starts.any(axis=(0, 1, 3)))[0]) <= set(beats)
    assert groove_consistency(active.any(axis=1)) == 1.0
    # with the hold let go everywhere, the same model's notes change from step to step
    free = _rhythm(list(range(STEPS)), list(range(STEPS)))
    loose = binarize(sample_probabilities(free, [req])[0], req)
    assert groove_consistency(loose.any(axis=1)) < 1.0


def test_hold_weights_carry_a_step_over_the_held_ones() -> None:
    hold = torch.zeros(STEPS)
    hold[1:12] = 1.0  # the first beat holds what its first step proposes
    w = hold_weights(hold)
    assert w.shape == (STEPS, STEPS)
    torch.testing.assert_close(w.sum(-1), torch.ones(STEPS))
    x = torch.rand(STEPS, 5)
    y = w @ x
    torch.testing.assert_close(y[:12], x[:1].expand(12, 5))
    torch.testing.assert_close(y[12:], x[12:], atol=1e-5, rtol=0)
    soft = hold_weights(torch.full((2, STEPS), 0.5))
    torch.testing.assert_close(soft.sum(-1), torch.ones(2, STEPS))
    assert float(soft[0, 2, 0]) == pytest.approx(0.25)  # (1 - h_0) * h_1 * h_2, h_0 = 0


def test_the_rhythm_code_is_drawn_per_clip_and_shapes_gate_and_hold() -> None:
    torch.manual_seed(7)
    m = MuseGAN(tiny_config())
    plan = _plan(m.config, GANRequest("folk", 6, 3))  # three phrases of two bars
    assert plan["rhythm"].shape == (6, TRACKS, m.config.rhythm_dim)
    assert (plan["rhythm"] == plan["rhythm"][0]).all()
    # time-independent latents hold for a phrase (as in training) and change between phrases
    assert np.array_equal(plan["shared"][0], plan["shared"][1])
    assert not np.array_equal(plan["shared"][1], plan["shared"][2])
    other = _plan(m.config, GANRequest("folk", 6, 4))["rhythm"][0]
    style = m.generator.style(torch.tensor([0, 0]))
    with torch.no_grad():
        gate, hold = m.generator.rhythm(torch.from_numpy(np.stack([plan["rhythm"][0], other]))
                                        .float(), style)
    assert gate.shape == hold.shape == (2, TRACKS, STEPS)
    assert not torch.allclose(gate[0], gate[1]) and not torch.allclose(hold[0], hold[1])


def test_the_critic_reads_bar_to_bar_onset_changes() -> None:
    torch.manual_seed(8)
    m = MuseGAN(tiny_config())
    same = torch.zeros(1, 2, TRACKS, STEPS, PITCHES)
    same[:, :, :, 0:6, 40] = 1.0  # a note on every beat, in both bars
    same[:, :, :, 12:18, 40] = 1.0
    moved = same.clone()
    moved[:, 1] = 0.0
    moved[:, 1, :, 6:12, 40] = 1.0  # the second bar plays the same notes off the beat
    moved[:, 1, :, 18:24, 40] = 1.0
    seen: list[torch.Tensor] = []
    groove = m.discriminator.groove
    assert groove is not None
    groove.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].detach()))
    style = torch.tensor([0])
    m.discriminator(same, style)
    score = m.discriminator(moved.requires_grad_(True), style)
    assert seen[0].shape == (1, TRACKS, STEPS) and float(seen[0].abs().sum()) == 0.0
    assert seen[1][0, :, [0, 6, 12, 18]].eq(1.0).all() and float(seen[1].sum()) == 4 * TRACKS
    score.sum().backward()
    assert all(p.grad is not None for p in groove.parameters())
    no_groove = MuseGAN(tiny_config(groove_critic=False))
    assert no_groove.discriminator.groove is None
    assert no_groove.discriminator(same, style).shape == (1,)


def test_checkpoints_from_before_the_rhythm_code_still_load(tmp_path: Path) -> None:
    d = tiny_config().to_dict()
    del d["rhythm_dim"], d["groove_critic"]
    old = GANConfig.from_dict(d)
    assert old.rhythm_dim == 0 and not old.groove_critic
    torch.manual_seed(9)
    m = MuseGAN(old)
    assert m.generator.rhythm is None and m.discriminator.groove is None
    path = tmp_path / "old" / "model.pt"
    save_gan(path, m, {"name": "old"})
    payload = torch.load(path, weights_only=True)
    payload["config"] = d  # as the file was written before the two fields existed
    torch.save(payload, path)
    loaded = load(path, torch.device("cpu"))
    assert loaded.model.config == old
    assert sample(loaded.model, "folk", 3, 1).bars == 3


def test_phrase_form_follows_the_clip_sections() -> None:
    from cadenza.music.form import lay_out

    # 32-bar AABA with 8-bar sections: the second phrase of each A replays the first A's
    assert phrase_form(lay_out("aaba", 32), 32, 4) == "ababcdab"
    assert phrase_form(lay_out("aab", 12), 12, 4) == "aab"
    assert phrase_form(lay_out("ab", 6), 6, 4) == "ab"  # a phrase is named where it starts
    assert phrase_form((), 8, 4) == "ab"



# ---------------------------------------------------------------- the onset grid


def test_onset_grid_is_measured_per_style_and_track(tmp_path: Path) -> None:
    # band_score: lead on every beat, bass once a bar, drums every eighth; no chords
    data = build_dataset([band_score("folk", Key(0), 4), band_score("jazz", Key(5), 4)],
                         STYLES, phrase_bars=2, pack=True)
    grid = onset_grid(data.rolls, data.style_ids, STYLES)
    assert grid["folk"] == [[0], list(range(12)), [0], [0, 6]] == grid["jazz"]
    assert onset_grid(data.rolls[:1], data.style_ids[:1], STYLES).keys() == {"folk"}
    with pytest.raises(ValueError, match="onset_grid for 'polka'"):
        tiny_config(onset_grid={"polka": [[0]] * TRACKS})
    with pytest.raises(ValueError, match="steps 0-11"):
        tiny_config(onset_grid={"folk": [[0], [0], [0], [12]]})
    assert GANConfig.from_dict(tiny_config(onset_grid=grid).to_dict()).onset_grid == grid


def _onset_steps(score_track_notes: tuple[Note, ...]) -> set[int]:
    return {n.start % 12 for n in score_track_notes}


def test_the_sampler_starts_every_note_on_its_style_and_track_grid(model: MuseGAN) -> None:
    grid = {"folk": [[0, 3, 6, 9], [0, 6], [0], [0, 3, 6, 9]]}
    snapped = MuseGAN(replace(model.config, onset_grid=grid))
    snapped.load_state_dict(model.state_dict())
    snapped.eval()
    free = sample(model, "folk", 4, 3)
    assert _onset_steps(free.track("lead").notes) - {0, 3, 6, 9}  # the generator alone
    clip = sample(snapped, "folk", 4, 3)
    for role, steps in zip(("lead", "chords", "bass", "drums"), grid["folk"], strict=True):
        assert clip.track(role).notes and _onset_steps(clip.track(role).notes) <= set(steps)
    lead = sorted(clip.track("lead").notes, key=lambda n: n.start)
    assert all(a.start + a.duration <= b.start for a, b in pairwise(lead))  # still one voice
    assert sample(snapped, "folk", 4, 3, snap=False) == free
    assert sample(snapped, "jazz", 4, 3) == sample(model, "jazz", 4, 3)  # no grid for jazz


def test_set_onset_grid_writes_a_trained_checkpoint_and_refuses_others(
        tmp_path: Path, model: MuseGAN) -> None:
    path = tmp_path / "gan" / "model.pt"
    save_gan(path, model, {"name": "gan", "steps": 0})
    grid = {"folk": [[0, 6], [0], [0], [0, 6]]}
    set_onset_grid(path, grid, "measured on the test's rolls")
    loaded = load(path, torch.device("cpu"))
    assert loaded.model.config.onset_grid == grid
    assert loaded.meta["onset_grid"] == "measured on the test's rolls"
    assert all(torch.equal(v, model.state_dict()[k])
               for k, v in loaded.model.state_dict().items())
    with pytest.raises(ValueError, match="onset_grid for 'polka'"):
        set_onset_grid(path, {"polka": [[0]] * TRACKS}, "")
    other = tmp_path / "lstm.pt"
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "kind": "lstm"}, other)
    with pytest.raises(ModelError, match="not a GAN checkpoint"):
        set_onset_grid(other, grid, "")


def test_a_request_with_candidates_keeps_the_first_that_ends_best(model: MuseGAN) -> None:
    """Candidates: the request's own draw first, then draws from seeds of its own; the clip
    kept is the first of them with the best ending (on the key's tonic at rest, then on the
    tonic), each draw the clip it is alone, and a request's choice is the same in a batch."""
    from cadenza.models.gan import _candidates, _ending_rank

    chose_another = 0
    requests = [GANRequest("jazz", 4, seed, key=Key(0), candidates=6) for seed in range(8)]
    kept = sample_many(model, requests)
    for req, clip in zip(requests, kept, strict=True):
        alone = [sample_many(model, [replace(c, candidates=1)])[0] for c in _candidates(req)]
        ranks = [_ending_rank(c) for c in alone]
        assert clip == alone[ranks.index(max(ranks))]
        chose_another += clip != alone[0]
    assert chose_another  # the random-weight model does end off the tonic now and then
    # a request's choice is its own whatever the batch (seed 0 keeps its sixth candidate)
    assert kept[0] != sample_many(model, [replace(requests[0], candidates=1)])[0]
    assert sample_many(model, requests[:1]) == kept[:1]
    # the candidates' seeds are part of what a seed means (the same MIDI for the same seed)
    assert [c.seed for c in _candidates(GANRequest("jazz", 4, 7, candidates=3))] == \
        [7, 1885889270737342808, 2657384597952972825]
    with pytest.raises(ModelError, match="candidates"):
        sample_many(model, [GANRequest("jazz", 4, 1, candidates=0)])


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_drawing_candidates_in_chunks_keeps_the_same_clips(model: MuseGAN, chunk: int,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from cadenza.models import gan

    requests = [GANRequest("jazz", 4, seed, key=Key(0), candidates=6) for seed in range(8)]
    kept = sample_many(model, requests)  # CANDIDATE_CHUNK (2) at a time
    drawn: list[int] = []
    real = gan.sample_probabilities

    def counting(m, reqs):  # type: ignore[no-untyped-def]
        drawn.append(len(reqs))
        return real(m, reqs)

    monkeypatch.setattr(gan, "CANDIDATE_CHUNK", chunk)
    monkeypatch.setattr(gan, "sample_probabilities", counting)
    assert sample_many(model, requests) == kept
    # the first batch holds every request's own draw, the later ones at most `chunk` each
    assert drawn[0] == len(requests) and all(n <= chunk * len(requests) for n in drawn[1:])
    # five candidates after a request's own: all in one batch at 7, in up to five at 1
    assert len(drawn) - 1 <= -(-5 // chunk) and (chunk > 1 or len(drawn) > 2)


def test_the_ending_rank_reads_the_last_chord_against_the_key() -> None:
    from cadenza.models.gan import _ending_rank

    def clip(chord: Chord, key: Key, style: str = "jazz") -> Score:
        return Score(chords=(ChordEvent(0, 48, Chord(7, "7")), ChordEvent(48, 48, chord)),
                     key=key, bars=2, style=style)

    assert _ending_rank(clip(Chord(0, "maj7"), Key(0))) == 2
    assert _ending_rank(clip(Chord(0, "7"), Key(0))) == 1  # I7 leads on to IV ...
    assert _ending_rank(clip(Chord(0, "7"), Key(0), "blues")) == 2  # ... but a blues rests
    assert _ending_rank(clip(Chord(9, "min"), Key(9, "minor"))) == 2
    assert _ending_rank(clip(Chord(9, "maj"), Key(9, "minor"))) == 1  # a major tonic in minor
    assert _ending_rank(clip(Chord(0, "7b9"), Key(0), "blues")) == 1  # it pulls on
    assert _ending_rank(clip(Chord(9, "min"), Key(0))) == 0
    assert _ending_rank(Score(key=Key(0), bars=2)) == 0  # no chords read: no ending
