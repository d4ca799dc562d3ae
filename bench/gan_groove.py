"""Where the GAN's groove consistency comes from: stage by stage, lane by lane.

Usage: .venv/bin/python bench/gan_groove.py [--checkpoint models/checkpoints/gan/model.pt]
                                            [--clips 24] [--bars 8] [--styles jazz,blues]

For ``clips`` clips of ``bars`` bars per style, prints groove consistency (MusPy: 1 - mean
Hamming distance between consecutive bars' onset patterns / 48) over all lanes, per lane and
over the pitched lanes, and the share of onsets off the sixteenth / eighth-triplet grid, at each
stage of the sampler: the raw thresholded output, after ``clean`` (monophonic lead and bass,
specks under two steps dropped), after ``clean`` with the checkpoint's onset grid (each
track's notes moved to the steps of the beat its style's data uses; the same as "clean" for a
checkpoint without one) and after ``restyle_band`` (what a member gets and what
``cadenza eval`` scores). Then, on the raw output: the same with thresholds 0.3 and 0.7 (how
saturated the probabilities are) and the differing positions per bar pair split into on- and
off-grid.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cadenza.arrange import restyle_band
from cadenza.models.families import load
from cadenza.models.gan import GANRequest, binarize, clean, sample_probabilities, to_score
from cadenza.models.zoo.metrics import groove_consistency, onsets
from cadenza.music.roll import ROLES, STEPS, encode
from cadenza.styles import STYLES

GRID_STEPS = (0, 3, 4, 6, 8, 9)  # sixteenths and eighth triplets within a 12-step beat


def _pattern(rolls: np.ndarray) -> np.ndarray:
    """(bars, 4, 48, 84) -> (bars, 48): steps where any lane starts a note."""
    flat = rolls.any(axis=1).reshape(-1, rolls.shape[-1])
    return onsets(flat).any(axis=1).reshape(len(rolls), STEPS)


def figures(rolls: np.ndarray) -> list[float]:
    """All lanes, each lane, pitched lanes, off-grid onset share."""
    t = np.nonzero(_pattern(rolls).ravel())[0] % 12
    off = float(np.mean(~np.isin(t, GRID_STEPS))) if len(t) else float("nan")
    return [groove_consistency(rolls.any(axis=1)),
            *(groove_consistency(rolls[:, i]) for i in range(len(ROLES))),
            groove_consistency(rolls[:, :3].any(axis=1)), off]


def differing(rolls: np.ndarray) -> tuple[float, float]:
    """Positions whose onset differs from the bar before, per bar pair: on-grid, off-grid."""
    pat = _pattern(rolls)
    d = pat[1:] != pat[:-1]
    on = np.isin(np.arange(STEPS) % 12, GRID_STEPS)
    return float(d[:, on].sum(1).mean()), float(d[:, ~on].sum(1).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=Path("models/checkpoints/gan/model.pt"))
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--styles")
    args = ap.parse_args()
    model = load(args.checkpoint).model
    styles = args.styles.split(",") if args.styles else list(model.config.styles)
    print(f"{args.checkpoint}: {args.clips} clips x {args.bars} bars per style")
    print(f"{'style':<10}{'stage':<14}{'all':>7}{'lead':>7}{'chords':>7}{'bass':>7}"
          f"{'drums':>7}{'pitched':>8}{'offgrid':>8}")
    for style in styles:
        reqs = [GANRequest(style, args.bars, 1000 + i) for i in range(args.clips)]
        probs = sample_probabilities(model, reqs)
        grid = (model.config.onset_grid or {}).get(style)
        stages: dict[str, list[list[float]]] = {k: [] for k in
                                                 ("raw", "clean", "on the grid", "restyled",
                                                  "raw @0.3", "raw @0.7")}
        diffs = []
        for p, r in zip(probs, reqs, strict=True):
            raw = binarize(p, r)
            cleaned = clean(raw, r.min_steps)
            snapped = clean(raw, r.min_steps, grid)  # what sample() does
            band = to_score(snapped, r, style, model.config.meter)
            styled = restyle_band(band, STYLES[style], np.random.default_rng(r.seed))
            stages["raw"].append(figures(raw))
            stages["clean"].append(figures(cleaned))
            stages["on the grid"].append(figures(snapped))
            stages["restyled"].append(figures(encode(styled)))
            stages["raw @0.3"].append(figures(p > 0.3))
            stages["raw @0.7"].append(figures(p > 0.7))
            diffs.append(differing(raw))
        for name, rows in stages.items():
            m = np.nanmean(np.array(rows, dtype=float), axis=0)
            print(f"{style:<10}{name:<14}" + "".join(f"{x:7.3f}" for x in m[:6])
                  + f"{m[6]:8.3f}")
        on, off = np.mean(diffs, axis=0)
        print(f"{style:<10}raw: onset positions differing per bar pair: {on:.1f} on the grid, "
              f"{off:.1f} off it (of 48)")


if __name__ == "__main__":
    main()
