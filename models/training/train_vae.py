"""Training loop for the melody VAE: two-bar windows of corpus melodies, held-out accuracy."""

from __future__ import annotations

import logging
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cadenza.models.checkpoint import FORMAT, save_payload
from cadenza.models.checkpoint import device as pick_device
from cadenza.models.training.corpus import Piece
from cadenza.models.training.dataset import split_heldout
from cadenza.models.training.schedule import Budget, cosine_lr, set_threads, step_optimizer
from cadenza.models.vae import MelodyVAE, VAEConfig, reconstruction_accuracy
from cadenza.music.score import Note
from cadenza.music.steps import N_CLASSES, windows

log = logging.getLogger(__name__)


@dataclass
class VAEOptions:
    out: Path
    steps: int = 6000
    minutes: float | None = None
    batch: int = 64
    lr: float = 1e-3
    beta_warmup: float = 0.3  # fraction of training over which beta ramps from 0
    eval_every: int = 500
    seed: int = 1234
    config: VAEConfig = field(default_factory=VAEConfig)
    command: str = field(default_factory=lambda: " ".join(sys.argv))


@dataclass
class Windows:
    """Two-bar windows with the style of the piece each came from."""

    train: np.ndarray  # (N, SEG_STEPS)
    train_styles: np.ndarray  # (N,) style names' indices into ``styles``
    held: np.ndarray
    held_styles: np.ndarray
    styles: tuple[str, ...]
    counts: dict[str, int]  # training windows per style
    pieces: dict[str, int]  # training pieces per style


def piece_windows(pieces: list[Piece]) -> Windows:
    """Train and held-out two-bar windows with their styles and a per-style count. Pieces are
    split as the sequence models' are, among those that give a window, so neither side is
    empty (fewer than two such pieces are refused)."""
    usable = []
    for p in pieces:
        notes = [Note(s, d, pitch) for s, d, pitch in p.notes]
        ws = [w for w in windows(notes, p.bars * p.bar_ticks) if (w >= 2).sum() >= 3]
        if ws:
            usable.append((p, ws))
    styles = tuple(sorted({p.style for p, _ in usable}))
    train, held, train_s, held_s = [], [], [], []
    counts: dict[str, int] = {}
    n_pieces: dict[str, int] = {}
    for (p, ws), is_held in zip(usable, split_heldout([p.source for p, _ in usable]),
                                strict=True):
        (held if is_held else train).extend(ws)
        (held_s if is_held else train_s).extend([styles.index(p.style)] * len(ws))
        if not is_held:
            counts[p.style] = counts.get(p.style, 0) + len(ws)
            n_pieces[p.style] = n_pieces.get(p.style, 0) + 1
    return Windows(np.asarray(train, dtype=np.int64), np.asarray(train_s, dtype=np.int64),
                   np.asarray(held, dtype=np.int64), np.asarray(held_s, dtype=np.int64),
                   styles, counts, n_pieces)


def balanced_indices(style_ids: np.ndarray, n: int, rng: np.random.Generator,
                     temperature: float = 0.5) -> np.ndarray:
    """``n`` window indices, styles drawn with weight ~ windows**temperature (folk's 6,800
    tunes would drown 17 rags otherwise), then a window of that style uniformly."""
    ids, counts = np.unique(style_ids, return_counts=True)
    p = counts.astype(float) ** temperature
    chosen = rng.choice(ids, size=n, p=p / p.sum())
    by_style = {i: np.flatnonzero(style_ids == i) for i in ids}
    return np.array([by_style[c][rng.integers(len(by_style[c]))] for c in chosen])


def _augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random transposition per window, within the pitch range."""
    out = batch.copy()
    for w in out:
        notes = w >= 2
        if not notes.any():
            continue
        lo, hi = w[notes].min(), w[notes].max()
        k = int(rng.integers(max(-6, 2 - lo), min(6, N_CLASSES - 1 - hi) + 1))
        w[notes] += k
    return out


def train_vae(pieces: list[Piece], opts: VAEOptions) -> dict:
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    dev = pick_device()
    w = piece_windows(pieces)
    train, held, counts = w.train, w.held, w.counts
    log.info("VAE data: %d train / %d held-out windows %s", len(train), len(held), counts)
    cfg = replace(opts.config, styles=w.styles)
    model = MelodyVAE(cfg).to(dev)
    log.info("VAE %.2fM parameters on %s, styles %s", model.num_params() / 1e6, dev, w.styles)
    opt = torch.optim.Adam(model.parameters(), lr=opts.lr)
    # a fixed, style-balanced held-out sample (every style is measured, not only folk)
    held_idx = balanced_indices(w.held_styles, min(2000, len(held)),
                                np.random.default_rng(opts.seed), temperature=0.0)
    held_t = torch.from_numpy(held[held_idx]).to(dev)
    held_st = torch.from_numpy(w.held_styles[held_idx] + 1).to(dev)
    budget = Budget(opts.steps, opts.minutes)
    best: dict | None = None
    step = 0
    while not budget.over(step):
        frac = budget.frac(step)
        beta = opts.config.beta * min(1.0, frac / max(opts.beta_warmup, 1e-6))
        idx = balanced_indices(w.train_styles, opts.batch, rng)
        x = torch.from_numpy(_augment(train[idx], rng)).to(dev)
        st = torch.from_numpy(w.train_styles[idx] + 1).to(dev)
        model.train()
        _, loss = model(x, x, beta=beta, style=st)
        step_optimizer(model, opt, loss, cosine_lr(opts.lr, frac))
        step += 1
        if step % 50 == 0:
            log.info("step %d loss %.2f rec %.2f kl %.2f beta %.2f", step, loss.item(),
                     model.last_stats["rec"], model.last_stats["kl"], beta)
        last = budget.over(step)
        if step % opts.eval_every == 0 or last:
            acc = reconstruction_accuracy(model, held_t, held_st)
            acc["step"] = step
            acc["kl"] = model.last_stats["kl"]
            log.info("step %d held-out reconstruction %s", step, acc)
            if best is None or acc["step_accuracy"] >= best["step_accuracy"]:
                best = acc
                _save(opts, model, best, w, step, budget.t0)
    assert best is not None
    return best


def _save(opts: VAEOptions, model: MelodyVAE, best: dict, w: Windows, step: int,
          t0: float) -> None:
    meta = {
        "name": opts.out.parent.name, "family": "vae", "styles": list(model.config.styles),
        "data": {s: {"windows": c, "pieces": w.pieces.get(s, 0)}
                 for s, c in sorted(w.counts.items())},
        "heldout": {k: round(v, 4) for k, v in best.items() if isinstance(v, float)},
        "heldout_windows": min(len(w.held), 2000), "train_windows": len(w.train),
        "best_step": best["step"], "steps": step, "train_seconds": round(time.time() - t0, 1),
        "params": model.num_params(), "command": opts.command,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}",
    }
    save_payload(opts.out, {
        "format": FORMAT, "kind": "vae", "config": model.config.to_dict(),
        "styles": list(model.config.styles),
        "meta": meta, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })


def main(argv: list[str] | None = None) -> None:
    """``python -m cadenza.models.training.train_vae --minutes 40
    --out models/checkpoints/vae/model.pt``"""
    import argparse

    from cadenza.models.training.train import TrainOptions, gather_pieces
    from cadenza.models.zoo.card import write_card

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", type=Path, default=Path("models/checkpoints/vae/model.pt"))
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads(args.threads)
    pieces = gather_pieces(TrainOptions(out=args.out))
    best = train_vae(pieces, VAEOptions(out=args.out, steps=args.steps, minutes=args.minutes))
    write_card(args.out)
    print(f"saved {args.out}: held-out step accuracy {best['step_accuracy']:.3f}")


if __name__ == "__main__":
    main()
