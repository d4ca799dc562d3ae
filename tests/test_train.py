"""Training loops run end to end on literal pieces and save loadable checkpoints with cards."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cadenza.models.families import load
from cadenza.models.training.corpus import Piece
from cadenza.models.training.train import TrainOptions, train
from cadenza.models.zoo.card import write_card
from cadenza.music.theory import Key
from cadenza.music.tokens import Vocab


def pieces(n: int = 40) -> list[Piece]:
    notes = tuple((i * 6, 6, 60 + (i * 5) % 12) for i in range(32))
    return [Piece(f"literal/{i}", ("folk", "celtic")[i % 2], (4, 4), Key(0), 4, notes,
                  ((0, "C"), (96, "G7"))) for i in range(n)]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_train_saves_a_checkpoint_with_heldout_figures_and_a_card(tmp_path: Path,
                                                                  cell: str) -> None:
    out = tmp_path / cell / "model.pt"
    best = train(TrainOptions(out=out, cell=cell, n_layer=1, n_embd=8, n_hidden=16, batch=4,
                              block=32, steps=4, eval_every=2), pieces())
    loaded = load(out)
    assert loaded.kind == "rnn" and loaded.config["cell"] == cell
    assert loaded.meta["steps"] == 4 and loaded.meta["trained_styles"] == ["celtic", "folk"]
    assert best["nll"] > 0 and loaded.meta["heldout"]["nll"] == pytest.approx(best["nll"])
    card = write_card(out).read_text()
    assert f"{best['nll']:.4f} nats" in card and "No training data for: " in card


def test_train_without_data_is_a_clear_error(tmp_path: Path) -> None:
    from cadenza.models.errors import ModelError

    with pytest.raises(ModelError, match="no training data"):
        train(TrainOptions(out=tmp_path / "m.pt", steps=1), [])


def test_split_holds_out_one_piece_of_a_small_set_and_keeps_the_hashed_five_percent() -> None:
    from cadenza.models.training.dataset import is_heldout, split_heldout

    small = [f"mine/{i}.mid" for i in range(4)]
    assert not any(is_heldout(s) for s in small)  # the hashed 5% alone would hold out none
    held = split_heldout(small)
    assert sum(held) == 1 and held == split_heldout(small)  # stable across runs
    many = [f"corpus/{i}" for i in range(200)]
    assert split_heldout(many) == [is_heldout(s) for s in many]


@pytest.mark.parametrize(("n", "message"), [
    (0, "no training data: found 0 usable pieces"),
    (1, r"not enough training data: found 1 usable piece, need at least 2"),
])
def test_fewer_than_two_pieces_are_refused_with_the_count(tmp_path: Path, n: int,
                                                          message: str) -> None:
    from cadenza.models.errors import ModelError
    from cadenza.models.training.train_vae import piece_windows

    with pytest.raises(ModelError, match=message):
        train(TrainOptions(out=tmp_path / "m.pt", steps=1), pieces(n))
    with pytest.raises(ModelError, match=message):
        piece_windows(pieces(n))


def test_train_on_a_small_set_reports_a_finite_heldout_nll(tmp_path: Path) -> None:
    import math

    small = [Piece(f"mine/{i}.mid", p.style, p.meter, p.key, p.bars, p.notes, p.chords)
             for i, p in enumerate(pieces(4))]
    out = tmp_path / "small" / "model.pt"
    best = train(TrainOptions(out=out, cell="gru", n_layer=1, n_embd=8, n_hidden=16, batch=2,
                              block=32, steps=2, eval_every=2), small)
    assert math.isfinite(best["nll"]) and best["tokens"] > 0
    assert math.isfinite(load(out).meta["heldout"]["nll"])
    assert "nan" not in write_card(out).read_text()


def test_vae_windows_of_a_small_set_have_a_heldout_side() -> None:
    from cadenza.models.training.train_vae import piece_windows

    small = [Piece(f"mine/{i}.mid", p.style, p.meter, p.key, p.bars, p.notes, p.chords)
             for i, p in enumerate(pieces(3))]
    w = piece_windows(small)
    assert len(w.train) > 0 and len(w.held) > 0
    assert len(w.train_styles) == len(w.train) and len(w.held_styles) == len(w.held)
    assert set(w.styles) == {p.style for p in small}


def test_warm_start_begins_where_an_older_checkpoint_was_and_refuses_other_shapes(
        tmp_path: Path) -> None:
    """A checkpoint trained before a side feature existed: the new table starts at zero, so
    the warm-started model gives the checkpoint's own logits; a different size is refused."""
    import torch

    from cadenza.models.checkpoint import save_rnn
    from cadenza.models.errors import ModelError
    from cadenza.models.grammar import feature_sizes
    from cadenza.models.rnn import RNNConfig, SequenceModel
    from cadenza.models.training.train import warm_start
    from cadenza.music.tokens import Vocab

    v = Vocab()
    torch.manual_seed(0)
    old = SequenceModel(RNNConfig(len(v), feature_sizes(v)[:-1], n_layer=1, n_embd=8,
                                  n_hidden=16, dropout=0.0)).eval()
    path = tmp_path / "old" / "model.pt"
    save_rnn(path, old, v, {"name": "old"})
    new = SequenceModel(RNNConfig(len(v), feature_sizes(v), n_layer=1, n_embd=8, n_hidden=16,
                                  dropout=0.0)).eval()
    warm_start(new, path)
    x = torch.randint(0, len(v), (2, 6))
    f = torch.stack([torch.randint(0, n, (2, 6)) for n in feature_sizes(v)], -1)
    with torch.no_grad():
        assert torch.allclose(new(x, features=f)[0], old(x, features=f)[0], atol=1e-6)
    wider = SequenceModel(RNNConfig(len(v), feature_sizes(v), n_layer=1, n_embd=8,
                                    n_hidden=32, dropout=0.0))
    with pytest.raises(ModelError, match="does not fit"):
        warm_start(wider, path)


def test_train_cli_refuses_init_from_for_other_families_and_missing_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cadenza.cli import main

    missing = str(tmp_path / "x.pt")
    for model, message in (("gan", "error: --init-from starts a sequence model"),
                           ("rnn", "error: --init-from checkpoint not found")):
        assert main(["train", "--model", model, "--init-from", missing, "--out",
                     str(tmp_path)]) == 2
        assert capsys.readouterr().err.startswith(message)
    assert not list(tmp_path.iterdir())  # nothing was written


def test_onset_grid_only_is_for_an_existing_gan_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cadenza.cli import main

    for model, message in (("lstm", "error: --onset-grid-only applies to --model gan"),
                           ("gan", "error: --onset-grid-only writes into an existing "
                                   "checkpoint")):
        assert main(["train", "--model", model, "--onset-grid-only", "--out",
                     str(tmp_path)]) == 2
        assert capsys.readouterr().err.startswith(message)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("choruses", [True, False])
def test_form_choruses_join_the_training_side_only_and_can_be_turned_off(
        tmp_path: Path, choruses: bool) -> None:
    notes = tuple((b * 48 + i * 12, 12, 60 + (b * 3 + i) % 12) for b in range(12)
                  for i in range(4))
    blues = [Piece(f"literal/blues{i}", "blues", (4, 4), Key(0), 12, notes,
                   ((0, "C7"), (192, "F7"), (384, "C7"))) for i in range(10)]
    out = tmp_path / "m" / "model.pt"
    train(TrainOptions(out=out, n_layer=1, n_embd=8, n_hidden=16, batch=4, block=32, steps=2,
                       eval_every=2, form_choruses=choruses), blues)
    meta = load(out).meta
    trained = meta["data"]["blues"]["pieces"]
    assert trained < len(blues)  # one piece at least is held out ...
    # ... and only the training pieces were laid out as choruses
    assert meta["data"]["blues"].get("form_choruses") == (trained if choruses else None)
    assert meta["form_choruses"] is choruses


def test_derived_sequences_are_cropped_but_do_not_weigh_their_style() -> None:
    from cadenza.models.training.dataset import Batcher, encode_pieces

    vocab = Vocab(("blues", "folk"))
    notes = tuple((b * 48, 12, 60 + b) for b in range(12))
    pieces = [Piece(f"t/{s}", s, (4, 4), Key(0), 12, notes, ((0, "C7"),))
              for s in ("blues", "folk")]
    real = encode_pieces(pieces, vocab)
    chorus = [replace(real[0], derived=True, source="t/chorus")] * 20
    plain, with_choruses = Batcher(real, vocab, 16), Batcher(real + chorus, vocab, 16)
    assert with_choruses.style_p.tolist() == plain.style_p.tolist() == [0.5, 0.5]
    # ... while the blues crops come from the choruses too, by length
    assert with_choruses.len_p["blues"].tolist() == [1 / 21] * 21


def test_a_returning_bar_is_also_learned_written_out_from_its_echo() -> None:
    import numpy as np

    from cadenza.models.grammar import ECHO_PITCH_COL
    from cadenza.models.training.dataset import encode_each, spelled_returns
    from cadenza.music.tokens import BAR, MAX_REPEAT, PITCH_MAX, PITCH_MIN

    vocab = Vocab(("folk",))
    phrase = [(b * 48 + 12 * i, 12, 60 + 2 * b + i) for b in range(4) for i in range(4)]
    again = tuple(phrase + [(s + 4 * 48, d, p) for s, d, p in phrase])  # bars 4-7 = bars 0-3
    fresh = tuple((s, d, p + 12 * (s >= 4 * 48)) for s, d, p in again)  # bars 4-7 an octave up
    tune, other = (Piece(f"t/{n}", "folk", (4, 4), Key(0), 8, notes, ((0, "C"),))
                   for n, notes in (("again", again), ("fresh", fresh)))
    # the tune without a return has none
    (spelled,) = spelled_returns(encode_each([tune, other], vocab), vocab)
    assert spelled.derived and spelled.source == "t/again"
    toks = spelled.tokens.tolist()
    assert not any(vocab.rep0 <= t < vocab.rep0 + MAX_REPEAT for t in toks)  # no REP_k left ...
    # ... and every note of the returning bars is the one its echo names, a step before
    bar_starts = [i for i, t in enumerate(toks) if t == BAR]
    pitches = [(i, t - vocab.pitch0 + PITCH_MIN) for i, t in enumerate(toks[bar_starts[4]:],
                                                                     bar_starts[4])
               if vocab.pitch0 <= t <= vocab.pitch0 + PITCH_MAX - PITCH_MIN]
    assert [p for _, p in pitches] == [p for _, _, p in phrase]
    echo = np.array([spelled.features[i - 1, ECHO_PITCH_COL] for i, _ in pitches])
    assert echo.tolist() == [p - PITCH_MIN + 1 for _, p in pitches]


@pytest.mark.parametrize("spelled", [True, False])
def test_returns_written_out_are_counted_in_the_checkpoint_and_its_card(tmp_path: Path,
                                                                         spelled: bool) -> None:
    phrase = tuple((b * 48 + 12 * i, 12, 60 + 2 * b + i) for b in range(2) for i in range(4))
    notes = phrase + tuple((s + 96, d, p) for s, d, p in phrase)  # bars 2-3 = bars 0-1
    tunes = [Piece(f"t/{i}", "folk", (4, 4), Key(0), 4, notes, ((0, "C"),)) for i in range(6)]
    out = tmp_path / "m" / "model.pt"
    train(TrainOptions(out=out, n_layer=1, n_embd=8, n_hidden=16, batch=4, block=32, steps=2,
                       eval_every=2, spelled_returns=spelled), tunes)
    meta = load(out).meta
    trained = meta["data"]["folk"]["pieces"]
    assert meta["data"]["folk"].get("spelled_returns") == (trained if spelled else None)
    assert meta["spelled_returns"] is spelled
    assert ("Returns written out" in write_card(out).read_text()) is spelled
