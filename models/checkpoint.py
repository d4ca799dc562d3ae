"""Checkpoint files: weights plus config, vocabulary and training facts, loadable weights_only."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cadenza.models.errors import ModelError
from cadenza.models.rnn import RNNConfig, SequenceModel
from cadenza.music.tokens import Vocab

log = logging.getLogger(__name__)

FORMAT = "cadenza-checkpoint-1"


def device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Loaded:
    """A model ready to sample, with what is needed to use and cite it."""

    kind: str
    model: torch.nn.Module
    vocab: Vocab | None
    config: dict[str, Any]
    meta: dict[str, Any]
    sha256: str
    path: Path
    device: torch.device
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(self.meta.get("styles") or (self.vocab.styles if self.vocab else ()))


def save_rnn(path: Path, model: SequenceModel, vocab: Vocab, meta: dict[str, Any]) -> None:
    payload = {
        "format": FORMAT,
        "kind": "rnn",
        "config": model.config.to_dict(),
        "styles": list(vocab.styles),
        "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_payload(path, payload)


def save_payload(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write, so a crash mid-save never leaves a half-written checkpoint behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def read_payload(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        # Every checkpoint file is called model.pt: the message names the whole path.
        raise ModelError(f"model checkpoint {path} is corrupt or not a Cadenza checkpoint "
                         f"({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path} is not a Cadenza checkpoint")
    return payload


# other model families register a builder: kind -> fn(payload) -> (model, vocab or None)
BUILDERS: dict[str, Callable[[dict[str, Any]], tuple[torch.nn.Module, Vocab | None]]] = {}


def register_kind(
    kind: str, builder: Callable[[dict[str, Any]], tuple[torch.nn.Module, Vocab | None]]
) -> None:
    BUILDERS[kind] = builder


def _import_families() -> None:
    """Import the model modules that register their kinds (kept lazy: each imports torch)."""
    import importlib

    for mod in ("cadenza.models.vae", "cadenza.models.gan"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def load(path: Path, dev: torch.device | None = None) -> Loaded:
    """Load any Cadenza checkpoint; the ``kind`` field picks the model class."""
    payload = read_payload(path)
    dev = dev or device()
    kind = payload.get("kind")
    try:
        if kind == "rnn":
            cfg = RNNConfig(**payload["config"])
            vocab = Vocab(tuple(payload["styles"]))
            if cfg.vocab_size != len(vocab):
                raise ModelError(f"{path}: vocabulary size does not match its config")
            model: torch.nn.Module = SequenceModel(cfg)
        elif kind == "chords":
            from cadenza.models.chord_model import build

            model, vocab = build(payload)  # type: ignore[assignment]
        else:
            if kind not in BUILDERS:
                _import_families()
            if kind not in BUILDERS:
                raise ModelError(f"{path}: unknown model kind {kind!r}")
            model, vocab = BUILDERS[str(kind)](payload)
        model.load_state_dict(payload["state_dict"])
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - shape mismatches, missing keys
        # load_state_dict lists every mismatched key on its own line: keep the first line,
        # so the message stays one line.
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ModelError(f"model checkpoint {path} does not match its config ({first})") from None
    model.to(dev).eval()
    meta = dict(payload.get("meta") or {})
    meta.setdefault("styles", list(payload.get("styles") or []))
    return Loaded(str(kind), model, vocab, payload["config"], meta, file_sha256(path), path, dev)
