"""Training loop for the melody VAE: two-bar windows of corpus melodies with the chords under
them, held-out accuracy; optionally warm-started from an older checkpoint."""

from __future__ import annotations

import logging
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cadenza.models.checkpoint import FORMAT, read_payload, save_payload
from cadenza.models.checkpoint import device as pick_device
from cadenza.models.errors import ModelError
from cadenza.models.training.corpus import Piece
from cadenza.models.training.dataset import split_heldout
from cadenza.models.training.schedule import Budget, cosine_lr, set_threads, step_optimizer
from cadenza.models.training.style_corpus import source_kind
from cadenza.models.vae import MelodyVAE, VAEConfig, reconstruction_accuracy
from cadenza.music.score import Note
from cadenza.music.steps import (
    CHORD_FEATURES,
    N_CLASSES,
    SEG_STEPS,
    STEP_TICKS,
    chords_to_steps,
    transpose_chord_steps,
    window_starts,
    windows,
)

log = logging.getLogger(__name__)


@dataclass
class VAEOptions:
    out: Path
    steps: int = 6000
    minutes: float | None = None
    batch: int = 64
    lr: float = 1e-3
    # a warm start's code is shaped already: at 1e-3 its held-out accuracy fell from 0.92 to
    # 0.84 in the first 500 steps
    warm_lr: float = 3e-4
    beta_warmup: float = 0.3  # fraction of training over which beta ramps from 0
    eval_every: int = 500
    seed: int = 1234
    chord_dropout: float = 0.15  # windows trained without their chords (lines with none)
    init_from: Path | None = None  # start from this checkpoint's weights (chord inputs at 0)
    skipped: dict[str, int] = field(default_factory=dict)  # source files that did not parse
    config: VAEConfig = field(default_factory=VAEConfig)
    command: str = field(default_factory=lambda: " ".join(sys.argv))


@dataclass
class Windows:
    """Two-bar windows with the style of the piece each came from."""

    train: np.ndarray  # (N, SEG_STEPS)
    train_styles: np.ndarray  # (N,) style names' indices into ``styles``
    held: np.ndarray
    held_styles: np.ndarray
    train_chords: np.ndarray  # (N, SEG_STEPS, CHORD_FEATURES) bool: the chords under each step
    held_chords: np.ndarray
    styles: tuple[str, ...]
    counts: dict[str, int]  # training windows per style
    pieces: dict[str, int]  # training pieces per style
    sources: tuple[str, ...] = ()  # the training pieces' sources (style_corpus.source_kind)


def piece_windows(pieces: list[Piece]) -> Windows:
    """Train and held-out two-bar windows with their styles, the chords under them and a
    per-style count. Pieces are split as the sequence models' are, among those that give a
    window, so neither side is empty (fewer than two such pieces are refused)."""
    usable = []
    for p in pieces:
        total = p.bars * p.bar_ticks
        notes = [Note(s, d, pitch) for s, d, pitch in p.notes]
        feats = chords_to_steps(p.chord_changes(), total // STEP_TICKS).astype(bool)
        pairs = [(w, feats[s:s + SEG_STEPS]) for w, s in
                 zip(windows(notes, total), window_starts(total), strict=True)
                 if (w >= 2).sum() >= 3]
        if pairs:
            usable.append((p, pairs))
    styles = tuple(sorted({p.style for p, _ in usable}))
    train, held, train_s, held_s, train_c, held_c = [], [], [], [], [], []
    counts: dict[str, int] = {}
    n_pieces: dict[str, int] = {}
    held_flags = split_heldout([p.source for p, _ in usable])
    for (p, pairs), is_held in zip(usable, held_flags, strict=True):
        (held if is_held else train).extend(w for w, _ in pairs)
        (held_c if is_held else train_c).extend(c for _, c in pairs)
        (held_s if is_held else train_s).extend([styles.index(p.style)] * len(pairs))
        if not is_held:
            counts[p.style] = counts.get(p.style, 0) + len(pairs)
            n_pieces[p.style] = n_pieces.get(p.style, 0) + 1

    def chords(c: list[np.ndarray]) -> np.ndarray:
        return np.asarray(c, dtype=bool).reshape(-1, SEG_STEPS, CHORD_FEATURES)

    return Windows(np.asarray(train, dtype=np.int64), np.asarray(train_s, dtype=np.int64),
                   np.asarray(held, dtype=np.int64), np.asarray(held_s, dtype=np.int64),
                   chords(train_c), chords(held_c), styles, counts, n_pieces,
                   tuple(sorted({source_kind(p.source) or "music21" for (p, _), is_held in
                                 zip(usable, held_flags, strict=True) if not is_held})))


def balanced_indices(style_ids: np.ndarray, n: int, rng: np.random.Generator,
                     temperature: float = 0.5) -> np.ndarray:
    """``n`` window indices, styles drawn with weight ~ windows**temperature (folk's 6,800
    tunes would drown 17 rags otherwise), then a window of that style uniformly."""
    ids, counts = np.unique(style_ids, return_counts=True)
    p = counts.astype(float) ** temperature
    chosen = rng.choice(ids, size=n, p=p / p.sum())
    by_style = {i: np.flatnonzero(style_ids == i) for i in ids}
    return np.array([by_style[c][rng.integers(len(by_style[c]))] for c in chosen])


def _augment(batch: np.ndarray, chords: np.ndarray, rng: np.random.Generator,
             chord_dropout: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Random transposition per window (its chords with it), within the pitch range; a
    ``chord_dropout`` share of windows lose their chords."""
    out, feats = batch.copy(), chords.astype(np.float32)
    for i, w in enumerate(out):
        notes = w >= 2
        if not notes.any():
            continue
        lo, hi = w[notes].min(), w[notes].max()
        k = int(rng.integers(max(-6, 2 - lo), min(6, N_CLASSES - 1 - hi) + 1))
        w[notes] += k
        feats[i] = transpose_chord_steps(feats[i], k)
    feats[rng.random(len(out)) < chord_dropout] = 0.0
    return out, feats


def warm_start(model: MelodyVAE, path: Path) -> None:
    """Load an older VAE checkpoint's weights into ``model``: same sizes and styles; inputs the
    old decoder lacked (the chord features) start at zero, so the model begins by decoding
    exactly as the old one did."""
    payload = read_payload(path)
    if payload.get("kind") != "vae":
        raise ModelError(f"--init-from {path} is not a VAE checkpoint")
    old = payload["state_dict"]
    if tuple(payload["config"].get("styles", ())) != model.config.styles:
        raise ModelError(f"--init-from {path} learned the styles "
                         f"{payload['config'].get('styles')}, this data has "
                         f"{list(model.config.styles)}")
    new = model.state_dict()
    for name, value in new.items():
        src = old.get(name)
        if src is None:
            raise ModelError(f"--init-from {path} has no {name}")
        if src.shape == value.shape:
            new[name] = src
        elif name in ("decoder.weight_ih_l0", "encoder.weight_ih_l0",
                      "encoder.weight_ih_l0_reverse") and src.shape[0] == value.shape[0] \
                and src.shape[1] < value.shape[1]:
            new[name] = torch.cat([src, value.new_zeros(value.shape[0],
                                                        value.shape[1] - src.shape[1])], 1)
        else:
            raise ModelError(f"--init-from {path}: {name} is {tuple(src.shape)}, this model's "
                             f"{tuple(value.shape)}")
    model.load_state_dict(new)


def train_vae(pieces: list[Piece], opts: VAEOptions) -> dict:
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    dev = pick_device()
    w = piece_windows(pieces)
    train, held, counts = w.train, w.held, w.counts
    log.info("VAE data: %d train / %d held-out windows %s", len(train), len(held), counts)
    cfg = replace(opts.config, styles=w.styles)
    model = MelodyVAE(cfg)
    if opts.init_from is not None:
        warm_start(model, opts.init_from)
    model = model.to(dev)
    log.info("VAE %.2fM parameters on %s, styles %s", model.num_params() / 1e6, dev, w.styles)
    lr = opts.warm_lr if opts.init_from is not None else opts.lr
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # a fixed, style-balanced held-out sample (every style is measured, not only folk)
    held_idx = balanced_indices(w.held_styles, min(2000, len(held)),
                                np.random.default_rng(opts.seed), temperature=0.0)
    held_t = torch.from_numpy(held[held_idx]).to(dev)
    held_st = torch.from_numpy(w.held_styles[held_idx] + 1).to(dev)
    held_ch = torch.from_numpy(w.held_chords[held_idx].astype(np.float32)).to(dev)
    budget = Budget(opts.steps, opts.minutes)
    best: dict | None = None
    step = 0
    while not budget.over(step):
        frac = budget.frac(step)
        # a warm start keeps the full KL weight from the first step: its code is shaped already
        warmup = 0.0 if opts.init_from is not None else opts.beta_warmup
        beta = opts.config.beta * min(1.0, frac / max(warmup, 1e-6))
        idx = balanced_indices(w.train_styles, opts.batch, rng)
        xs, feats = _augment(train[idx], w.train_chords[idx], rng, opts.chord_dropout)
        x, ch = torch.from_numpy(xs).to(dev), torch.from_numpy(feats).to(dev)
        st = torch.from_numpy(w.train_styles[idx] + 1).to(dev)
        model.train()
        _, loss = model(x, x, beta=beta, style=st, chords=ch)
        step_optimizer(model, opt, loss, cosine_lr(lr, frac))
        step += 1
        if step % 50 == 0:
            log.info("step %d loss %.2f rec %.2f kl %.2f beta %.2f", step, loss.item(),
                     model.last_stats["rec"], model.last_stats["kl"], beta)
        last = budget.over(step)
        if step % opts.eval_every == 0 or last:
            acc = reconstruction_accuracy(model, held_t, held_st, held_ch)
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
        "chords": (("encoder and decoder read" if model.config.encoder_chords else
                    "decoder reads") + f" the chord under every step; "
                   f"{opts.chord_dropout:.0%} of training windows without them")
        if model.config.chord_dim else "none",
        **({"init_from": str(opts.init_from)} if opts.init_from else {}),
        "sources": list(w.sources),
        "skipped": dict(sorted(opts.skipped.items())),
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
