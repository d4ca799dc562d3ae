"""WGAN-GP training of the multi-track GAN on phrase rolls the caller builds, with eval figures.

``train_gan`` takes arrays, not files: ``rolls`` (N, P, 4, 48, 84) bool/uint8/float, or
bit-packed along the pitch axis (``cadenza.models.training.gan_data``), and ``style_ids`` (N,)
indexing ``styles``. Each generator step follows ``n_critic`` critic steps (WGAN-GP, Adam with betas
(0.5, 0.9) for both nets, as MuseGAN). Every ``eval_every`` steps and at the end the generator
writes ``eval_clips`` phrases that are scored with ``cadenza.models.zoo.metrics`` beside as many
real phrases (mean, spread, Yang-Lerch overlap area per metric), and the checkpoint is saved with
its config, styles and meta (steps, time, data summary, losses, figures).

CLI (on an .npz from ``cadenza.models.training.gan_data.save_dataset``)::

    python -m cadenza.models.training.train_gan data.npz --minutes 30 \
        --out models/checkpoints/gan/model.pt
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cadenza.models.checkpoint import device as pick_device
from cadenza.models.gan import (
    GANConfig,
    GANRequest,
    MuseGAN,
    binarize,
    critic_loss,
    generator_loss,
    gradient_penalty,
    random_latents,
    sample_probabilities,
    save_gan,
)
from cadenza.models.training.gan_data import is_packed, load_dataset, onset_grid, unpack
from cadenza.models.zoo.metrics import clip_metrics, compare
from cadenza.music.roll import PITCHES, STEPS, TRACKS

log = logging.getLogger(__name__)


def _check(rolls: np.ndarray, style_ids: np.ndarray, styles: tuple[str, ...]) -> None:
    if rolls.ndim != 5 or rolls.shape[2:4] != (TRACKS, STEPS) or not (
            rolls.shape[4] == PITCHES or is_packed(rolls)):
        raise ValueError(f"rolls must be (N, bars, {TRACKS}, {STEPS}, {PITCHES}) or bit-packed; "
                         f"got {tuple(rolls.shape)} {rolls.dtype}")
    if len(rolls) == 0:
        raise ValueError("no training phrases")
    if style_ids.shape != (len(rolls),):
        raise ValueError(f"style_ids must be ({len(rolls)},), got {tuple(style_ids.shape)}")
    if not styles:
        raise ValueError("styles must name at least one style")
    if style_ids.min() < 0 or style_ids.max() >= len(styles):
        raise ValueError(f"style_ids must be 0-{len(styles) - 1} (one per style name)")


def _batch(rolls: np.ndarray, idx: np.ndarray, dev: torch.device) -> torch.Tensor:
    x = rolls[np.sort(idx)]
    x = unpack(x) if is_packed(x) else x
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


@torch.no_grad()
def evaluate(model: MuseGAN, real: np.ndarray, real_styles: np.ndarray,
             seed: int = 0) -> dict[str, dict[str, float]]:
    """Metrics of generated phrases (same style mix as ``real``) vs the real phrases."""
    p = model.config.phrase_bars
    reqs = [GANRequest(int(s), p, seed * 1_000_003 + i) for i, s in enumerate(real_styles)]
    probs = sample_probabilities(model, reqs)
    # the raw binarised output, before the sampler's clean-up: this measures the model itself
    # (clean() would make qualified notes 1.0 and the lead monophonic by construction)
    gen = [clip_metrics(binarize(pr, r)) for pr, r in zip(probs, reqs, strict=True)]
    ref = [clip_metrics(unpack(x) if is_packed(x) else x > 0.5) for x in real]
    return {k: v.summary() for k, v in compare(ref, gen).items()}


def train_gan(
    rolls: np.ndarray,
    style_ids: np.ndarray,
    styles: tuple[str, ...],
    out: Path,
    *,
    minutes: float | None = None,
    steps: int = 2000,
    batch: int = 16,
    n_critic: int = 5,
    lr: float = 5e-4,
    betas: tuple[float, float] = (0.5, 0.9),
    gp_weight: float = 10.0,
    z_dim: int = 32,
    g_channels: int = 32,
    d_channels: int = 32,
    rhythm_dim: int = 16,
    groove_critic: bool = True,
    meter: tuple[int, int] = (4, 4),
    style_balance: float = 0.5,
    eval_every: int = 250,
    eval_clips: int = 48,
    log_every: int = 25,
    seed: int = 1234,
    threads: int | None = None,
    device: torch.device | str | None = None,
    data_note: dict | None = None,
    name: str | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train and save to ``out``; returns the final meta (also stored in the checkpoint).

    ``steps`` counts generator updates; ``minutes`` (if given) stops earlier. ``style_balance``
    in [0, 1] evens out the styles: each style is drawn with probability proportional to
    (its phrase count) ** (1 - style_balance). ``threads`` sets torch's CPU threads for the
    run (1 is much faster than 2 when other jobs share the cores).
    """
    with _threads(threads):
        return _train(**{k: v for k, v in locals().items() if k != "threads"})


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(rolls: np.ndarray, style_ids: np.ndarray, styles: tuple[str, ...], out: Path, *,
           minutes: float | None, steps: int, batch: int, n_critic: int, lr: float,
           betas: tuple[float, float], gp_weight: float, z_dim: int, g_channels: int,
           d_channels: int, rhythm_dim: int, groove_critic: bool, meter: tuple[int, int],
           style_balance: float, eval_every: int,
           eval_clips: int, log_every: int, seed: int, device: torch.device | str | None,
           data_note: dict | None, name: str | None, command: str | None) -> dict[str, Any]:
    rolls, style_ids = np.asarray(rolls), np.asarray(style_ids, dtype=np.int64)
    styles = tuple(styles)
    _check(rolls, style_ids, styles)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = torch.device(device) if device else pick_device()
    cfg = GANConfig(styles=styles, phrase_bars=int(rolls.shape[1]), z_dim=z_dim,
                    g_channels=g_channels, d_channels=d_channels, meter=meter,
                    rhythm_dim=rhythm_dim, groove_critic=groove_critic,
                    onset_grid=onset_grid(rolls, style_ids, styles))
    model = MuseGAN(cfg).to(dev).train()
    g, d = model.generator, model.discriminator
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=betas)

    counts = Counter(style_ids.tolist())
    weights = np.array([counts[s] ** -style_balance for s in style_ids.tolist()])
    weights /= weights.sum()
    # pieces per style when the caller says (data_note["per_style"]), for `cadenza models`
    pieces = {k: v["pieces"] for k, v in ((data_note or {}).get("per_style") or {}).items()
              if isinstance(v, dict) and "pieces" in v}
    data_summary = {styles[s]: {"phrases": c, **({"pieces": pieces[styles[s]]}
                                                 if styles[s] in pieces else {})}
                    for s, c in sorted(counts.items())}
    eval_idx = rng.choice(len(rolls), min(eval_clips, len(rolls)), replace=False, p=weights)
    eval_real, eval_styles = rolls[np.sort(eval_idx)], style_ids[np.sort(eval_idx)]
    log.info("GAN: %d phrases %s; G %.2fM + D %.2fM parameters on %s",
             len(rolls), data_summary, model.num_params("generator") / 1e6,
             model.num_params("discriminator") / 1e6, dev)

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        idx = rng.choice(len(rolls), batch, p=weights)
        idx.sort()
        return _batch(rolls, idx, dev), torch.from_numpy(style_ids[idx]).to(dev)

    history: list[dict[str, Any]] = []
    losses: list[dict[str, float]] = []
    figures: dict[str, Any] = {}
    t0 = time.time()
    deadline = t0 + minutes * 60 if minutes else None
    step = 0

    def save() -> dict[str, Any]:
        meta = {
            "name": name or out.parent.name,
            "family": "gan",
            "styles": list(styles),
            "trained_styles": sorted(data_summary),
            "data": data_summary,
            "data_note": data_note or {},
            "steps": step,
            "train_seconds": round(time.time() - t0, 1),
            "training": {"batch": batch, "n_critic": n_critic, "lr": lr, "betas": list(betas),
                         "gp_weight": gp_weight, "style_balance": style_balance, "seed": seed},
            "metrics": _round(figures),
            "metric_clips": len(eval_real),
            "history": history,
            "command": command or " ".join(sys.argv),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                       f"torch {torch.__version__}",
            "params": {"generator": model.num_params("generator"),
                       "discriminator": model.num_params("discriminator")},
        }
        save_gan(out, model, meta)
        return meta

    while step < steps and not (deadline and time.time() > deadline):
        for _ in range(n_critic):
            real, style = draw()
            with torch.no_grad():
                fake = g(random_latents(batch, cfg, dev), style)
            d_real, d_fake = d(real, style), d(fake, style)
            gp = gradient_penalty(d, real, fake, style, gp_weight)
            loss_d = critic_loss(d_real, d_fake) + gp
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        _, style = draw()
        loss_g = generator_loss(d(g(random_latents(batch, cfg, dev), style), style))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        step += 1
        losses.append({"w": (d_real.mean() - d_fake.mean()).item(), "gp": gp.item(),
                       "g": loss_g.item()})
        if step % log_every == 0:
            m = {k: float(np.mean([x[k] for x in losses[-log_every:]])) for k in losses[-1]}
            log.info("step %d  W-dist %.3f  gp %.3f  G %.3f  (%.0fs)", step, m["w"], m["gp"],
                     m["g"], time.time() - t0)
        last = step >= steps or (deadline is not None and time.time() > deadline)
        if step % eval_every == 0 or last:
            figures = evaluate(model, eval_real, eval_styles, seed)
            recent = losses[-min(len(losses), log_every):]
            history.append(_round({
                "step": step, "seconds": time.time() - t0,
                **{k: float(np.mean([x[k] for x in recent])) for k in recent[0]},
                "mean_overlap": float(np.nanmean([f["overlap"] for f in figures.values()])),
            }))
            log.info("step %d  mean overlap area %.3f over %d metrics; saved %s", step,
                     history[-1]["mean_overlap"] or float("nan"), len(figures), out)
            save()
    if not history:  # stopped before the first step (tiny time budget)
        figures = evaluate(model, eval_real, eval_styles, seed)
    return save()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help=".npz from "
                    "cadenza.models.training.gan_data.save_dataset")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n-critic", type=int, default=5)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--g-channels", type=int, default=32)
    ap.add_argument("--d-channels", type=int, default=32)
    ap.add_argument("--rhythm-dim", type=int, default=16, help="0: no rhythm code")
    ap.add_argument("--no-groove-critic", action="store_true")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = load_dataset(a.data)
    meta = train_gan(data.rolls, data.style_ids, data.styles, a.out, minutes=a.minutes,
                     steps=a.steps, batch=a.batch, n_critic=a.n_critic, lr=a.lr,
                     g_channels=a.g_channels, d_channels=a.d_channels, rhythm_dim=a.rhythm_dim,
                     groove_critic=not a.no_groove_critic, eval_every=a.eval_every,
                     seed=a.seed, threads=a.threads,
                     data_note={"file": a.data.name, **data.summary})
    log.info("done: %d steps in %.1f min -> %s", meta["steps"], meta["train_seconds"] / 60, a.out)


if __name__ == "__main__":
    main()
