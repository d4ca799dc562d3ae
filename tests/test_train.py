"""Training loops run end to end on literal pieces and save loadable checkpoints with cards."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.card import write_card
from models.checkpoint import load
from models.corpus import Piece
from models.theory import Key
from models.train import TrainOptions, train


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
    from models.errors import ModelError

    with pytest.raises(ModelError, match="no training data"):
        train(TrainOptions(out=tmp_path / "m.pt", steps=1), [])
