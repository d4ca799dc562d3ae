"""The model families, listed: a checkpoint's ``kind`` names one, whose builder makes the
untrained network its weights load into. This table is the registration — no module registers
itself on import — and each family's module (torch with it) is imported only when a checkpoint
of its kind loads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cadenza.models.checkpoint import Loaded, device, file_sha256, read_payload
from cadenza.models.errors import ModelError

Builder = Callable[[dict[str, Any]], tuple[Any, Any]]  # payload -> (network, vocabulary or None)


def _rnn(payload: dict[str, Any]) -> tuple[Any, Any]:
    from cadenza.models.rnn import build

    return build(payload)


def _chords(payload: dict[str, Any]) -> tuple[Any, Any]:
    from cadenza.models.chord_model import build

    return build(payload)


def _vae(payload: dict[str, Any]) -> tuple[Any, Any]:
    from cadenza.models.vae import build

    return build(payload)


def _gan(payload: dict[str, Any]) -> tuple[Any, Any]:
    from cadenza.models.gan import build

    return build(payload)


FAMILIES: dict[str, Builder] = {"rnn": _rnn, "chords": _chords, "vae": _vae, "gan": _gan}


def load(path: Path, dev: torch.device | None = None) -> Loaded:
    """Load any Cadenza checkpoint; the ``kind`` field picks the model class."""
    payload = read_payload(path)
    dev = dev or device()
    kind = payload.get("kind")
    try:
        if kind not in FAMILIES:
            raise ModelError(f"{path}: unknown model kind {kind!r}")
        model, vocab = FAMILIES[str(kind)](payload)
        if kind == "rnn" and model.config.vocab_size != len(vocab):
            raise ModelError(f"{path}: vocabulary size does not match its config")
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
