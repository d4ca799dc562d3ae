"""Melody VAE: step round trips, shapes, slerp, checkpoint, deterministic decoding, training
augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cadenza.models.vae import MelodyVAE, VAEConfig, reconstruction_accuracy, slerp
from cadenza.music.score import Note
from cadenza.music.steps import (
    HOLD,
    N_CLASSES,
    REST,
    SEG_STEPS,
    notes_to_steps,
    steps_to_notes,
    windows,
)

TINY = VAEConfig(n_embd=8, enc_hidden=16, dec_hidden=16, n_latent=4, dropout=0.0)


def test_steps_round_trip_a_literal_melody_with_rests() -> None:
    notes = [Note(0, 6, 60, 88), Note(6, 6, 62, 88), Note(12, 3, 64, 88), Note(24, 24, 67, 88)]
    steps = notes_to_steps(notes, SEG_STEPS)
    assert steps[:10].tolist() == [26, HOLD, 28, HOLD, 30, REST, HOLD, HOLD, 33, HOLD]
    assert steps_to_notes(steps) == notes


def test_steps_fold_pitches_and_mark_leading_silence() -> None:
    steps = notes_to_steps([Note(12, 3, 20, 88)], 8)
    assert steps.tolist() == [REST, HOLD, HOLD, HOLD, 2 + 32 - 36 + 12, REST, HOLD, HOLD]


def test_windows_restate_a_note_held_across_the_window_start() -> None:
    notes = [Note(0, 96, 60, 88), Note(96, 12, 62, 88)]
    ws = windows(notes, 192)
    assert len(ws) == 3 and all(len(w) == SEG_STEPS for w in ws)
    assert ws[1][0] == 2 + 60 - 36  # the long note, restated at the window's start


def test_vae_forward_backward_and_decode_shapes() -> None:
    torch.manual_seed(0)
    m = MelodyVAE(TINY)
    x = torch.randint(0, N_CLASSES, (3, SEG_STEPS))
    logits, loss = m(x, x, beta=0.5)
    assert logits.shape == (3, SEG_STEPS, N_CLASSES) and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    z = torch.zeros(2, TINY.n_latent)
    y = m.decode(z)
    assert y.shape == (2, SEG_STEPS) and (y[:, 0] != HOLD).all()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(m.decode(z, temperature=1.0, generator=g1),
                       m.decode(z, temperature=1.0, generator=g2))
    acc = reconstruction_accuracy(m, x)  # greedy decode of the posterior mean, step by step
    y = m.decode(m.encode(x)[0])
    pairs = list(zip(x.flatten().tolist(), y.flatten().tolist(), strict=True))
    assert acc["step_accuracy"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs))
    onsets = [(a, b) for a, b in pairs if a >= 2]
    assert acc["onset_accuracy"] == pytest.approx(sum(a == b for a, b in onsets) / len(onsets))


def test_slerp_keeps_endpoints_and_norm_on_the_great_circle() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert np.isclose(np.arctan2(mid[1], mid[0]), np.pi / 4) and np.isclose(np.linalg.norm(mid), 1)
    assert np.allclose(slerp(a, 3 * b, 1.0), 3 * b)
    assert np.allclose(slerp(a, a, 0.3), a)


def test_vae_checkpoint_round_trip_through_the_generic_loader(tmp_path: Path) -> None:
    from cadenza.models.checkpoint import FORMAT, save_payload
    from cadenza.models.families import load

    m = MelodyVAE(TINY)
    path = tmp_path / "vae" / "model.pt"
    save_payload(path, {"format": FORMAT, "kind": "vae", "config": TINY.to_dict(), "styles": [],
                        "meta": {"name": "vae"}, "state_dict": m.state_dict()})
    loaded = load(path, torch.device("cpu"))
    assert loaded.kind == "vae" and isinstance(loaded.model, MelodyVAE)
    z = torch.ones(1, TINY.n_latent)
    assert torch.equal(loaded.model.decode(z), m.eval().decode(z))


def test_training_smoke_saves_a_loadable_checkpoint(tmp_path: Path) -> None:
    from cadenza.models.families import load
    from cadenza.models.training.corpus import Piece
    from cadenza.models.training.train_vae import VAEOptions, train_vae
    from cadenza.music.theory import Key

    notes = tuple((i * 6, 6, 60 + (i % 7)) for i in range(64))
    pieces = [Piece(f"t{i}", "folk", (4, 4), Key(0), 8, notes, ((0, "C"),)) for i in range(30)]
    path = tmp_path / "vae" / "model.pt"
    best = train_vae(pieces, VAEOptions(out=path, steps=3, batch=4, eval_every=3, config=TINY))
    assert best["step"] == 3 and "step_accuracy" in best
    loaded = load(path, torch.device("cpu"))
    assert loaded.kind == "vae" and isinstance(loaded.model, MelodyVAE)


def test_augment_transposes_each_window_whole_within_the_pitch_range() -> None:
    from cadenza.models.training.train_vae import _augment

    lo, hi = 2, N_CLASSES - 1  # lowest and highest note classes
    mid = [30, HOLD, 32, REST, 34, HOLD, HOLD, 30] * 4
    bottom = [lo, HOLD, lo + 3, REST] * 8  # can only go up
    top = [hi, HOLD, hi - 4, REST] * 8  # can only go down
    full = [lo, hi] * 16  # spans the whole range: cannot move
    silent = [REST] + [HOLD] * 31
    batch = np.array([mid, bottom, top, full, silent] * 40, dtype=np.int64)
    before = batch.copy()
    out = _augment(batch, np.random.default_rng(0))
    assert np.array_equal(batch, before)  # the input batch is not changed
    assert out.shape == batch.shape and out.dtype == batch.dtype
    shifts = []
    for w_in, w_out in zip(batch, out, strict=True):
        notes = w_in >= 2
        assert np.array_equal(w_out[~notes], w_in[~notes])  # REST and HOLD stay in place
        assert (w_out[notes] >= 2).all()  # no note turns into REST/HOLD
        assert ((lo <= w_out[notes]) & (w_out[notes] <= hi)).all()
        k = set((w_out[notes] - w_in[notes]).tolist()) or {0}
        assert len(k) == 1  # one shift per window: intervals kept
        shifts.append(k.pop())
    assert all(-6 <= k <= 6 for k in shifts)
    kinds = ["mid", "bottom", "top", "full", "silent"]
    by_kind = {name: shifts[i::5] for i, name in enumerate(kinds)}
    assert all(k >= 0 for k in by_kind["bottom"]) and any(k > 0 for k in by_kind["bottom"])
    assert all(k <= 0 for k in by_kind["top"]) and any(k < 0 for k in by_kind["top"])
    assert by_kind["full"] == [0] * 40 and by_kind["silent"] == [0] * 40
    assert min(by_kind["mid"]) < 0 < max(by_kind["mid"])  # windows really move, both ways
