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
    CHORD_FEATURES,
    HOLD,
    N_CLASSES,
    REST,
    SEG_STEPS,
    STEP_TICKS,
    chords_to_steps,
    notes_to_steps,
    steps_to_notes,
    transpose_chord_steps,
    window_starts,
    windows,
)
from cadenza.music.theory import Chord

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


def test_decoding_steps_the_cell_as_the_decoder_module_steps_to_the_bit() -> None:
    """decode steps the decoder's LSTM cell itself: the same logits, bit for bit, as the
    nn.LSTM module called one step at a time on PyTorch's own kernels; with oneDNN's RNN
    kernel (the module's default on CPU, 8x the time a step) and over the whole window
    (teacher forced) they agree to rounding."""
    torch.manual_seed(3)
    cfg = VAEConfig(n_embd=8, enc_hidden=16, dec_hidden=24, n_latent=4, dropout=0.0,
                    styles=("folk", "jazz"))
    m = MelodyVAE(cfg).eval()
    z = torch.randn(3, cfg.n_latent)
    style = torch.tensor([1, 2, 0])
    chords = torch.rand(3, SEG_STEPS, CHORD_FEATURES).round()
    seen: list[torch.Tensor] = []
    head = m.head.forward
    m.head.forward = lambda h: seen.append(head(h)) or seen[-1]  # type: ignore[method-assign]
    y = m.decode(z, style=style, chords=chords)
    del m.head.forward
    stepped = torch.stack(seen, 1)
    prev = torch.cat([torch.full((3, 1), m.start_id), y[:, :-1]], 1)

    def module_steps() -> torch.Tensor:
        s = m.style_emb(style)
        state, out = m._init_state(z, s), []
        for t in range(SEG_STEPS):
            inp = torch.cat([m.emb(prev[:, t]), z, s, chords[:, t]], -1)[:, None]
            h, state = m.decoder(inp, state)
            out.append(m.head(h[:, -1]))
        out[0][:, HOLD] = -1e9  # as decode does: no held first step
        return torch.stack(out, 1)

    with torch.no_grad():
        with torch.backends.mkldnn.flags(enabled=False):
            native = module_steps()
        default = module_steps()
        forced = m.decode_logits(z, y, style=style, chords=chords)
    forced[:, 0, HOLD] = -1e9
    assert torch.equal(stepped, native)
    assert torch.allclose(stepped, default, atol=1e-5)
    assert torch.allclose(stepped, forced, atol=1e-5)


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
    chords = np.zeros((len(batch), SEG_STEPS, CHORD_FEATURES), dtype=bool)
    chords[:, :16] = chords_to_steps([(0, Chord(0, "maj"))], 16)  # C for a bar, then none
    out, feats = _augment(batch, chords, np.random.default_rng(0))
    assert np.array_equal(batch, before)  # the input batch is not changed
    assert out.shape == batch.shape and out.dtype == batch.dtype
    shifts = []
    for w_in, w_out, f in zip(batch, out, feats, strict=True):
        notes = w_in >= 2
        assert np.array_equal(w_out[~notes], w_in[~notes])  # REST and HOLD stay in place
        assert (w_out[notes] >= 2).all()  # no note turns into REST/HOLD
        assert ((lo <= w_out[notes]) & (w_out[notes] <= hi)).all()
        k = set((w_out[notes] - w_in[notes]).tolist()) or {0}
        assert len(k) == 1  # one shift per window: intervals kept
        shifts.append(k.pop())
        c_major = Chord(shifts[-1] % 12, "maj")  # the chords move with the notes
        assert np.array_equal(f[:16], chords_to_steps([(0, c_major)], 16)) and not f[16:].any()
    assert all(-6 <= k <= 6 for k in shifts)
    kinds = ["mid", "bottom", "top", "full", "silent"]
    by_kind = {name: shifts[i::5] for i, name in enumerate(kinds)}
    assert all(k >= 0 for k in by_kind["bottom"]) and any(k > 0 for k in by_kind["bottom"])
    assert all(k <= 0 for k in by_kind["top"]) and any(k < 0 for k in by_kind["top"])
    assert by_kind["full"] == [0] * 40 and by_kind["silent"] == [0] * 40
    assert min(by_kind["mid"]) < 0 < max(by_kind["mid"])  # windows really move, both ways



# ---------------------------------------------------------------- chords under the steps


def test_chords_to_steps_marks_pitch_classes_and_root_per_step() -> None:
    g7, am = Chord.parse("G7"), Chord.parse("Am")
    feats = chords_to_steps([(0, g7), (4 * STEP_TICKS, None), (6 * STEP_TICKS, am)], 8)
    assert feats.shape == (8, CHORD_FEATURES) and feats.dtype == np.float32
    assert np.flatnonzero(feats[0]).tolist() == [2, 5, 7, 11, 12 + 7]  # G B D F, root G
    assert (feats[:4] == feats[0]).all() and not feats[4:6].any()  # NC: nothing sounds
    assert np.flatnonzero(feats[7]).tolist() == [0, 4, 9, 12 + 9]
    # from the middle of a piece: the chord sounding there, whenever it started
    assert np.array_equal(chords_to_steps([(0, g7)], 2, offset=96), feats[:2])
    up = transpose_chord_steps(feats, 2)  # G7 -> A7, Am -> Bm
    assert np.flatnonzero(up[0]).tolist() == [1, 4, 7, 9, 12 + 9]
    assert np.array_equal(transpose_chord_steps(up, -2), feats)


def test_window_starts_are_the_windows_own() -> None:
    notes = [Note(i * 6, 6, 60 + i % 5, 88) for i in range(40)]
    for ticks in (0, 95, 96, 240, 241):
        assert len(window_starts(ticks)) == len(windows(notes, ticks))
    assert list(window_starts(240)) == [0, 16, 32, 48]


def test_a_chord_conditioned_decoder_follows_its_chords_and_an_old_one_has_none() -> None:
    torch.manual_seed(0)
    m = MelodyVAE(TINY).eval()
    assert TINY.chord_dim == CHORD_FEATURES
    z = torch.randn(1, TINY.n_latent) * 3
    c = torch.from_numpy(chords_to_steps([(0, Chord.parse("C"))], SEG_STEPS))[None]
    f = torch.from_numpy(chords_to_steps([(0, Chord.parse("F#7"))], SEG_STEPS))[None]
    x = torch.randint(2, N_CLASSES, (1, SEG_STEPS))
    assert not torch.allclose(m.decode_logits(z, x, chords=c), m.decode_logits(z, x, chords=f))
    # no chords given: the decoder reads "no chord" (zeros)
    assert torch.equal(m.decode_logits(z, x), m.decode_logits(z, x, chords=torch.zeros_like(c)))
    old = MelodyVAE(VAEConfig(**{**TINY.to_dict(), "chord_dim": 0})).eval()
    assert old.decode(z, chords=c).shape == (1, SEG_STEPS)  # chords are ignored


def test_checkpoints_from_before_chords_load_without_them(tmp_path: Path) -> None:
    from cadenza.models.checkpoint import FORMAT, save_payload
    from cadenza.models.families import load

    d = {**TINY.to_dict(), "chord_dim": 0}
    m = MelodyVAE(VAEConfig(**d))
    del d["chord_dim"]  # as written before the field existed
    path = tmp_path / "vae" / "model.pt"
    save_payload(path, {"format": FORMAT, "kind": "vae", "config": d, "styles": [],
                        "meta": {"name": "vae"}, "state_dict": m.state_dict()})
    assert load(path, torch.device("cpu")).model.config.chord_dim == 0


def test_warm_start_from_a_chordless_vae_decodes_as_it_did(tmp_path: Path) -> None:
    from cadenza.models.checkpoint import FORMAT, save_payload
    from cadenza.models.errors import ModelError
    from cadenza.models.training.train_vae import warm_start

    cfg = VAEConfig(**{**TINY.to_dict(), "styles": ("folk",), "chord_dim": 0})
    torch.manual_seed(3)
    old = MelodyVAE(cfg).eval()
    path = tmp_path / "old.pt"
    save_payload(path, {"format": FORMAT, "kind": "vae", "config": cfg.to_dict(),
                        "styles": ["folk"], "meta": {}, "state_dict": old.state_dict()})
    new = MelodyVAE(VAEConfig(**{**cfg.to_dict(), "chord_dim": CHORD_FEATURES}))
    warm_start(new, path)
    new.eval()
    x = torch.randint(2, N_CLASSES, (2, SEG_STEPS))
    z = torch.randn(2, TINY.n_latent)
    chords = torch.rand(2, SEG_STEPS, CHORD_FEATURES)  # any chords: their weights start at 0
    assert torch.allclose(new.decode_logits(z, x, chords=chords), old.decode_logits(z, x),
                          atol=1e-6)
    other = MelodyVAE(VAEConfig(**{**cfg.to_dict(), "styles": ("jazz",)}))
    with pytest.raises(ModelError, match="learned the styles"):
        warm_start(other, path)
    wider = MelodyVAE(VAEConfig(**{**cfg.to_dict(), "dec_hidden": 32}))
    with pytest.raises(ModelError, match="z_to_state"):
        warm_start(wider, path)


def test_training_windows_carry_the_chords_under_them() -> None:
    from cadenza.models.training.corpus import Piece
    from cadenza.models.training.train_vae import piece_windows
    from cadenza.music.theory import Key

    notes = tuple((i * 6, 6, 60 + (i % 7)) for i in range(64))  # 8 bars of eighths
    chords = ((0, "C"), (48, "NC"), (96, "G7"), (150, "not a chord"))  # bars are 48 ticks
    w = piece_windows([Piece(f"t{i}.mid", "folk", (4, 4), Key(0), 8, notes, chords)
                       for i in range(4)])
    assert w.train_chords.shape == (len(w.train), SEG_STEPS, CHORD_FEATURES)
    assert w.held_chords.shape == (len(w.held), SEG_STEPS, CHORD_FEATURES)
    first, second, third = w.train_chords[:3]  # windows hop one bar
    assert np.array_equal(first[:16], chords_to_steps([(0, Chord.parse("C"))], 16))
    assert not first[16:].any()  # bar 2: no chord
    assert not second[:16].any() and second[16:, 12 + 7].all()  # bar 3: G7
    assert third[:18, 12 + 7].all() and not third[18:].any()  # a name that does not parse


def test_window_chords_start_with_the_chord_sounding_at_the_window() -> None:
    from cadenza.models.blend import window_chords

    c, f, g7 = Chord.parse("C"), Chord.parse("F"), Chord.parse("G7")
    changes = [(48, f), (0, c), (100, g7), (200, c)]  # in any order
    assert window_chords(changes) == [(0, c), (48, f)]  # two bars: 96 ticks
    assert window_chords(changes, 60) == [(0, f), (40, g7)]
    assert window_chords([(30, g7)]) == [(0, None), (30, g7)]


def _bars(notes: list, lo: int, hi: int, bar_ticks: int) -> list[tuple[int, int, int]]:
    """Notes starting in bars [lo, hi), as (start from bar lo, duration, pitch)."""
    return [(n.start - lo * bar_ticks, n.duration, n.pitch) for n in notes
            if lo * bar_ticks <= n.start < hi * bar_ticks]


@pytest.mark.parametrize(("form", "bar_ticks", "restated", "endings"), [
    # 4/4, 8-bar sections: four two-bar phrases each; A returns at bars 8 and 24
    ("aaba", 48, [((0, 6), (8, 14)), ((0, 6), (24, 30))], {7: 3, 15: 3}),
    # 2/4, 8-bar sections: two four-bar phrases each; A at 8, B at 24
    ("aabb", 24, [((0, 4), (8, 12)), ((16, 20), (24, 28))], {3: 1, 7: 5}),
])
def test_a_returning_section_decodes_its_phrases_again_with_a_new_ending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, bar_ticks: int,
        restated: list, endings: dict[int, int]) -> None:
    from conftest import make_tiny_vae

    from cadenza.models import blend
    from cadenza.models.families import load
    from cadenza.music.form import lay_out
    from cadenza.music.theory import Key

    loaded = load(make_tiny_vae(tmp_path / "vae" / "model.pt"), torch.device("cpu"))
    calls: list[tuple[np.ndarray, dict]] = []
    decode = blend._decode

    def spy(loaded, zs, temperatures, seed, style=None, chords=None,  # type: ignore[no-untyped-def]
            replay=None):
        calls.append((zs, dict(replay or {})))
        return decode(loaded, zs, temperatures, seed, style, chords, replay)

    monkeypatch.setattr(blend, "_decode", spy)
    for seed in range(3):
        calls.clear()
        notes = blend.vae_prior_melody(loaded, 32 * bar_ticks, Key(0), 1.0, seed,
                                       sections=lay_out(form, 32), bar_ticks=bar_ticks)
        for (a, b), (c, d) in restated:  # the first statement's phrases, note for note
            assert _bars(notes, a, b, bar_ticks) == _bars(notes, c, d, bar_ticks)
            assert _bars(notes, a, b, bar_ticks), "the tiny model wrote no notes"
        zs, replay = calls[-1]
        # every returning phrase replays its first statement's noise; all but the section's
        # last decode from its code, the last (the new ending) from a code near it
        for i, first in replay.items():
            same = np.array_equal(zs[i], zs[first])
            assert same != (i in endings), (i, first)
            if i in endings:
                assert endings[i] == first
                cos = np.dot(zs[i], zs[first]) / np.linalg.norm(zs[i]) / np.linalg.norm(
                    zs[first])
                assert cos > 0.85  # near it: a tenth of the way to fresh noise
        assert set(endings) <= set(replay)


def test_a_replayed_segment_leaves_the_others_noise_as_it_was(tmp_path: Path) -> None:
    """A replayed segment draws from a generator of its own: the segments after it get what
    they would have got without it (a C after B does not take B's noise again)."""
    from conftest import make_tiny_vae

    from cadenza.models.blend import SEG_TICKS, _decode
    from cadenza.models.families import load

    loaded = load(make_tiny_vae(tmp_path / "vae" / "model.pt"), torch.device("cpu"))
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal(TINY.n_latent) * 2 for _ in range(3))
    with_return = _decode(loaded, np.stack([a, b, a, c]), [1.0] * 4, 5, replay={2: 0})
    without = _decode(loaded, np.stack([a, b, c]), [1.0] * 3, 5)

    def seg(notes: list, i: int) -> list[tuple[int, int, int]]:
        return [(n.start - i * SEG_TICKS, n.duration, n.pitch) for n in notes
                if i * SEG_TICKS <= n.start < (i + 1) * SEG_TICKS]

    assert seg(with_return, 2) == seg(with_return, 0)  # the return: same code, same noise
    assert seg(with_return, 3) == seg(without, 2)  # C drew what it draws with no return
    assert seg(with_return, 1) == seg(without, 1)


def _last_bar_pitch_classes(tmp_path: Path, ending_bias: float) -> list[set[int]]:
    from conftest import make_tiny_vae

    from cadenza.models.blend import vae_prior_melody
    from cadenza.models.families import load
    from cadenza.music.steps import CHORD_FEATURES
    from cadenza.music.theory import Chord, Key

    loaded = load(make_tiny_vae(tmp_path / "vae" / "model.pt", chord_dim=CHORD_FEATURES),
                  torch.device("cpu"))
    bar = 48
    plan = [(0, Chord(0, "maj")), (2 * bar, Chord(7, "7")), (3 * bar, Chord(0, "6"))]
    out = []
    for seed in range(6):
        notes = vae_prior_melody(loaded, 4 * bar, Key(0), 1.0, seed, chords=plan,
                                 ending_bias=ending_bias)
        out.append({n.pitch % 12 for n in notes if n.start >= 3 * bar})
    return out


def test_the_ending_bias_brings_a_prior_line_to_rest_on_its_last_chord(tmp_path: Path) -> None:
    """The VAE's last bar leans to its chord's tones (C6 here: C E G A), as the sequence
    models' lines do; without the bias the same seeds leave it."""
    from cadenza.music.theory import Chord

    tones = set(Chord(0, "6").pitch_classes)
    ended = _last_bar_pitch_classes(tmp_path, 50.0)
    assert any(ended) and all(pcs <= tones for pcs in ended)
    assert any(pcs - tones for pcs in _last_bar_pitch_classes(tmp_path, 0.0))
