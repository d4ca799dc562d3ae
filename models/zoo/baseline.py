"""An untrained twin of a sequence-model checkpoint: the same configuration, vocabulary and
sampler with random weights. The evaluation scores it beside the trained models, so a figure
the untrained twin reaches as well is seen to come from the pipeline around the model (the
sampler's style idiom, the chord plan, the arranger), not from what the model learned."""

from __future__ import annotations

from pathlib import Path

import torch

from cadenza.models.checkpoint import read_payload, save_payload
from cadenza.models.errors import ModelError
from cadenza.models.rnn import RNNConfig, SequenceModel


def untrained_twin(src: Path, dst: Path, seed: int = 0) -> Path:
    """Write a random-weight copy of the sequence model at ``src`` to ``dst``; ModelError when
    ``src`` is not a sequence model."""
    payload = read_payload(src)
    if payload.get("kind") != "rnn":
        raise ModelError(f"{src} is not a sequence model: no untrained twin")
    torch.manual_seed(seed)
    model = SequenceModel(RNNConfig(**payload["config"]))
    meta = dict(payload.get("meta") or {})
    save_payload(dst, {
        **payload,
        "meta": {"name": dst.parent.name, "family": meta.get("family", "lstm"),
                 "styles": list(payload.get("styles") or []),
                 "untrained_twin_of": src.parent.name, "heldout": {}},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })
    return dst
