"""Grammar-constrained, batched sampling with temperature and top-k for the sequence models.

Each sequence in a batch has its own ``Constraint`` (plan, length, primer) and its own numpy RNG,
so a request's output depends only on its own seed, whatever it was batched with. Choices are
made in float64 numpy from the model's logits, which keeps results reproducible for a given seed
and checkpoint on one machine.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from models.grammar import Constraint
from models.rnn import SequenceModel

log = logging.getLogger(__name__)

# torch warns on every mkldnn.flags() toggle about TF32 on Intel GPUs: noise for us
warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")

BiasFn = Callable[[Constraint], "np.ndarray | None"]


def choose(
    logits: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    temperature: float,
    top_k: int | None,
    bias: np.ndarray | None = None,
) -> int:
    """Sample one token id from masked logits."""
    z = logits.astype(np.float64)
    if bias is not None:
        z = z + bias
    z = np.where(mask, z, -np.inf)
    if temperature <= 1e-6:
        return int(np.argmax(z))
    z = z / temperature
    if top_k is not None and top_k > 0:
        allowed = int(mask.sum())
        if top_k < allowed:
            kth = np.partition(z, -top_k)[-top_k]
            z = np.where(z >= kth, z, -np.inf)
    z = z - z.max()
    p = np.exp(z)
    p /= p.sum()
    # inverse-CDF with one uniform draw: cheaper than rng.choice and stable across numpy versions
    return int(min(np.searchsorted(np.cumsum(p), rng.random(), side="right"), len(p) - 1))


def sample(
    model: SequenceModel,
    constraints: Sequence[Constraint],
    rngs: Sequence[np.random.Generator],
    *,
    temperature: float = 1.0,
    top_k: int | None = 24,
    bias: BiasFn | None = None,
    device: torch.device | str = "cpu",
    max_steps: int = 20_000,
) -> list[list[int]]:
    """Run all constraints to completion; returns each token sequence (BOS ... EOS)."""
    if len(constraints) != len(rngs):
        raise ValueError("one RNG per constraint")
    model.eval()
    b = len(constraints)
    state = None
    device = torch.device(device)
    # oneDNN off: step-by-step LSTM sampling is 2-4x faster on CPU without it
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
        tokens = np.zeros(b, dtype=np.int64)
        feats = np.zeros((b, len(constraints[0].features())), dtype=np.int64)
        for i, c in enumerate(constraints):
            tok = c.forced()
            c.feed(tok)
            tokens[i] = tok
            feats[i] = c.features()
        for _ in range(max_steps):
            if all(c.done for c in constraints):
                break
            x = torch.from_numpy(tokens).to(device)
            f = torch.from_numpy(feats).to(device)
            logits, state = model.step(x, f, state)
            logits_np = logits.float().cpu().numpy()
            for i, c in enumerate(constraints):
                if c.done:
                    continue
                tok = c.forced()
                if tok is None:
                    tok = choose(
                        logits_np[i], c.mask(), rngs[i], temperature, top_k,
                        bias(c) if bias else None,
                    )
                c.feed(tok)
                tokens[i] = tok
                feats[i] = c.features()
        else:
            raise RuntimeError(f"sampling did not finish in {max_steps} steps")
    return [list(c.tokens) for c in constraints]
