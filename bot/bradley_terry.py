"""Bradley-Terry ratings for the blind A/B arena, on an Elo-like scale, with bootstrap intervals.

Each vote is (model A, model B, outcome) with outcome 1 (A better), 0 (B better) or 0.5 (tie);
"both bad" votes say nothing about the order and are left out by the caller. Strengths come
from Hunter's (2004) minorisation-maximisation updates; a weak prior (one virtual tie of every
model against an average opponent) keeps them finite when a model has won or lost every vote.
Ratings are ``1000 + 400 * log10(strength / geometric mean)``, so a 400-point gap means 10:1 odds.
Intervals come from a parametric bootstrap (see ``ratings``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Vote = tuple[str, str, float]

PROVISIONAL_VOTES = 20  # fewer votes than this and a rating is marked provisional


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    low: float  # 95% bootstrap interval
    high: float
    votes: int
    wins: float  # ties count half

    @property
    def provisional(self) -> bool:
        return self.votes < PROVISIONAL_VOTES


def fit_strengths(votes: Sequence[Vote], models: Sequence[str], *, prior: float = 1.0,
                  iterations: int = 500, tol: float = 1e-9) -> np.ndarray:
    """Strengths (geometric mean 1) by MM iterations, ties as half a win each way."""
    idx = {m: i for i, m in enumerate(models)}
    n = len(models)
    wins = np.full(n, prior / 2)  # the prior: one tie against a strength-1 opponent
    games = np.zeros((n, n))
    for a, b, outcome in votes:
        i, j = idx[a], idx[b]
        wins[i] += outcome
        wins[j] += 1 - outcome
        games[i, j] += 1
        games[j, i] += 1
    p = np.ones(n)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1) + prior / (p + 1.0)
        new = wins / denom
        new /= math.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    return p


def to_elo(strengths: np.ndarray) -> np.ndarray:
    return 1000 + 400 * np.log10(strengths)


def ratings(votes: Sequence[Vote], *, boot: int = 200, seed: int = 0) -> list[Rating]:
    """Ratings with 95% bootstrap intervals, best first.

    Each resample draws the votes with replacement and then redraws every decisive outcome
    from the fitted model (ties stay ties). Resampling the observed outcomes alone gives a
    zero-width interval to a unanimous record (25 votes, all "A better", resample to the same
    25 votes every time), which is exactly when the uncertainty matters.
    """
    models = sorted({m for a, b, _ in votes for m in (a, b)})
    if not models:
        return []
    strengths = fit_strengths(votes, models)
    point = to_elo(strengths)
    idx = {m: i for i, m in enumerate(models)}
    rng = np.random.default_rng(seed)
    samples = np.empty((boot, len(models)))
    arr = list(votes)
    for k in range(boot):
        pick = rng.integers(0, len(arr), len(arr))
        draws = rng.random(len(arr))
        resample = []
        for i, u in zip(pick, draws, strict=True):
            a, b, outcome = arr[i]
            if outcome not in (0.0, 1.0):
                resample.append((a, b, outcome))
                continue
            sa, sb = strengths[idx[a]], strengths[idx[b]]
            resample.append((a, b, 1.0 if u < sa / (sa + sb) else 0.0))
        samples[k] = to_elo(fit_strengths(resample, models))
    lo, hi = np.percentile(samples, [2.5, 97.5], axis=0)
    count = {m: 0 for m in models}
    won = {m: 0.0 for m in models}
    for a, b, outcome in votes:
        count[a] += 1
        count[b] += 1
        won[a] += outcome
        won[b] += 1 - outcome
    out = [Rating(m, float(point[i]), float(lo[i]), float(hi[i]), count[m], won[m])
           for i, m in enumerate(models)]
    return sorted(out, key=lambda r: -r.rating)
