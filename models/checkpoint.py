"""Checkpoint files: weights plus config, vocabulary and training facts, loadable weights_only."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cadenza.models.errors import ModelError
from cadenza.models.rnn import SequenceModel
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
