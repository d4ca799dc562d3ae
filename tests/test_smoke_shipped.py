"""Smoke test with the shipped checkpoints: they load (weights_only), compose, and carry cards."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadenza.models.checkpoint import read_payload
from cadenza.models.registry import SHIPPED_DIR, ModelRegistry
from cadenza.service import Composer, ComposeRequest

MAX_BYTES = 30 * 1024 * 1024


@pytest.mark.smoke
def test_shipped_lstm_composes_a_clip_and_has_a_model_card(tmp_path: Path) -> None:
    ckpt = SHIPPED_DIR / "lstm" / "model.pt"
    assert ckpt.exists(), "the LSTM checkpoint must ship in the repository"
    assert ckpt.stat().st_size <= MAX_BYTES
    payload = read_payload(ckpt)  # torch.load(weights_only=True) inside
    meta = payload["meta"]
    assert meta["heldout"]["nll"] < 2.0 and set(meta["trained_styles"]) >= {
        "classical", "folk", "celtic"}
    card = (ckpt.parent / "card.md").read_text()
    assert f"{meta['heldout']['nll']:.4f} nats" in card and "cadenza train" in card
    composer = Composer(ModelRegistry({"lstm": ckpt}))
    r = composer.resolve(ComposeRequest(style="classical", bars=4, seed=1))
    comp = composer.compose(r)
    lead = comp.score.track("lead")
    assert lead is not None and len(lead.notes) >= 4
    files = composer.make_files(comp.score, comp.midi, tmp_path, "smoke")
    assert files.mp3.stat().st_size > 10_000 and files.audio_seconds > 4


@pytest.mark.smoke
def test_every_shipped_checkpoint_is_small_loadable_and_documented() -> None:
    registry = ModelRegistry.discover()
    shipped = sorted(p.parent.name for p in SHIPPED_DIR.glob("*/model.pt"))
    assert "lstm" in shipped
    for name in shipped:
        path = SHIPPED_DIR / name / "model.pt"
        assert path.stat().st_size <= MAX_BYTES, name
        assert (path.parent / "card.md").exists(), f"{name} has no model card"
        loaded = registry.get(name)
        assert loaded.sha256 and loaded.kind in ("rnn", "vae", "gan")


def test_no_shipped_weights_learned_from_the_non_commercial_joplin_edition() -> None:
    """Issue 9: the CC BY-NC-SA Joplin set is for evaluation (or ``--include-nc``) only."""
    from cadenza.models.training.train_chords import HARMONY_DIR

    paths = [*SHIPPED_DIR.glob("*/model.pt"), HARMONY_DIR / "model.pt"]
    assert len(paths) >= 6
    for path in paths:
        meta = read_payload(path)["meta"]
        assert "--include-nc" not in meta.get("command", ""), path
        assert "joplin-nc" not in meta.get("sources", []), path
