"""Held-out likelihood of a sequence model per style, on pieces it never trained on, encoded
exactly as training encodes them (``cadenza.models.training.dataset.encode_pieces``: tokens with
REP_k repeats and per-step features with the form rows)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cadenza.models.training.corpus import Piece
from cadenza.models.training.dataset import encode_pieces
from cadenza.models.training.train import evaluate

log = logging.getLogger(__name__)


def style_nll(loaded: Any, pieces: Sequence[Piece]) -> dict[str, dict[str, float]]:
    """Per style of ``pieces``: NLL per token in nats over whole sequences (all tokens, and the
    tokens the sampler chooses), token and piece counts. Styles the model has no label for are
    left out. ``loaded`` is a ``cadenza.models.checkpoint.Loaded`` sequence model; it is left in
    inference mode (``evaluate`` switches to training mode when done)."""
    vocab = loaded.vocab
    encoded = encode_pieces(pieces, vocab)
    out: dict[str, dict[str, float]] = {}
    with loaded.lock:
        try:
            for style in sorted({e.style for e in encoded}):
                mine = [e for e in encoded if e.style == style]
                ev = evaluate(loaded.model, mine, vocab, loaded.device)
                out[style] = {"nll": ev["nll"], "nll_sampled": ev["nll_sampled"],
                              "tokens": ev["tokens"], "pieces": len(mine)}
        finally:
            loaded.model.eval()
    log.info("held-out NLL by style: %s", {s: round(v["nll"], 4) for s, v in out.items()})
    return out
