"""Shared fixtures: tiny random-weight checkpoints and an application wired to temp files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Ray clusters the tests start (and every process that joins them) stay on loopback: Ray
# otherwise binds its services to the machine's network address. Read when ray is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

pytest_plugins = ["deadline"]  # every test under a deadline that fails it (tests/deadline.py)

CORPUS_DIR = Path(__file__).resolve().parents[2] / "shared" / "midi-corpus"


def make_tiny_checkpoint(path: Path, cell: str = "lstm", seed: int = 0) -> Path:
    """A randomly initialised, very small sequence model saved like a real checkpoint."""
    import torch

    from cadenza.models.checkpoint import save_rnn
    from cadenza.models.grammar import feature_sizes
    from cadenza.models.rnn import RNNConfig, SequenceModel
    from cadenza.music.tokens import Vocab

    torch.manual_seed(seed)
    vocab = Vocab()
    cfg = RNNConfig(len(vocab), feature_sizes(vocab), cell=cell, n_layer=1, n_embd=16,
                    n_hidden=32, dropout=0.0)
    save_rnn(path, SequenceModel(cfg), vocab, {"name": path.parent.name, "family": cell,
                                               "styles": list(vocab.styles)})
    return path


def make_tiny_vae(path: Path, seed: int = 0, chord_dim: int | None = None) -> Path:
    import torch

    from cadenza.models.checkpoint import FORMAT, save_payload
    from cadenza.models.vae import MelodyVAE, VAEConfig

    torch.manual_seed(seed)
    cfg = VAEConfig(n_embd=8, enc_hidden=16, dec_hidden=16, n_latent=4, dropout=0.0)
    if chord_dim is not None:
        cfg = VAEConfig(**{**cfg.to_dict(), "chord_dim": chord_dim})
    save_payload(path, {"format": FORMAT, "kind": "vae", "config": cfg.to_dict(), "styles": [],
                        "meta": {"name": "vae", "family": "vae"},
                        "state_dict": MelodyVAE(cfg).state_dict()})
    return path


def make_tiny_gan(path: Path, seed: int = 0) -> Path:
    import torch

    from cadenza.models.gan import GANConfig, MuseGAN, save_gan
    from cadenza.styles import STYLE_NAMES

    torch.manual_seed(seed)
    cfg = GANConfig(styles=STYLE_NAMES, phrase_bars=2, z_dim=8, style_dim=4, g_channels=8,
                    d_channels=8)
    model = MuseGAN(cfg)
    save_gan(path, model, {"name": "gan", "family": "gan", "steps": 0, "params": {
        "generator": model.num_params("generator"),
        "discriminator": model.num_params("discriminator")}})
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CADENZA_MODELS folder with tiny lstm, gru, rnn, vae and gan checkpoints."""
    root = tmp_path_factory.mktemp("models")
    for cell in ("lstm", "gru", "rnn"):
        make_tiny_checkpoint(root / cell / "model.pt", cell)
    make_tiny_vae(root / "vae" / "model.pt")
    make_tiny_gan(root / "gan" / "model.pt")
    return root


@pytest.fixture(scope="session")
def tiny_registry(tiny_models: Path):
    from cadenza.models.registry import ModelRegistry

    return ModelRegistry({p.parent.name: p for p in tiny_models.glob("*/model.pt")})


@pytest.fixture()
def composer(tiny_registry):
    from cadenza.service import Composer

    return Composer(tiny_registry)


@pytest.fixture()
async def app(tmp_path: Path, composer):
    from cadenza.app import Cadenza
    from cadenza.store import Store

    store = await Store.open(tmp_path / "cadenza.db")
    application = Cadenza(composer, store, output_dir=tmp_path / "out")
    yield application
    await application.close()
    await store.close()


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server on loopback for the whole run (tests/pg_server.py); skipped
    only when the server binaries are not installed."""
    from tests.pg_server import PgServer, PgUnavailable

    try:
        server = PgServer()
    except PgUnavailable as e:
        pytest.skip(str(e))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def pg_url(pg_server) -> str:
    """A fresh, empty database on the test server: its postgresql:// URL."""
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request, tmp_path: Path):
    """Where a store test's database lives: a SQLite file, or a fresh PostgreSQL database (its
    URL); the store's tests run on both (tests/store_backends.py)."""
    if request.param == "sqlite":
        return tmp_path / "cadenza.db"
    return request.getfixturevalue("pg_server").create_database()
