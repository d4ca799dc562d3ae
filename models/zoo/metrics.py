"""Objective music metrics on piano rolls (MusPy / MuseGAN) and Yang-Lerch set comparison.

Pure numpy. A *lane* is one track's bool roll of shape ``(steps, pitches)`` (or ``(bars, steps,
pitches)``, read as consecutive bars); column 0 is MIDI pitch ``lowest``
(``cadenza.music.roll.LOWEST`` by default) and a note is a run of active steps
(``cadenza.music.roll.runs``), so metrics that count notes count runs. Bars are ``steps_per_bar``
steps and beats ``steps_per_beat`` steps (48 and 12 for the 4/4 rolls of ``cadenza.music.roll``).
Metrics that are undefined on a clip (no notes, one bar) return NaN; the set comparisons drop NaNs.

Definitions follow MusPy (pitch-class entropy, scale consistency, groove consistency, empty-beat
rate, polyphony) and MuseGAN (empty bars, used pitch classes per bar, qualified notes, drum
pattern, tonal distance), with the resolution-dependent thresholds restated for 12 steps per beat
in each docstring. ``compare`` implements Yang & Lerch (2018): per feature, pairwise distances
within the real set and between the real and generated sets, a Gaussian KDE of each (Scott's
bandwidth, as ``scipy.stats.gaussian_kde``), their overlap area and KL divergence.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cadenza.music.roll import DRUMS, LOWEST, ROLES, STEPS, STEPS_PER_BEAT, runs

log = logging.getLogger(__name__)

MAJOR = (0, 2, 4, 5, 7, 9, 11)
PITCHED = ("lead", "chords", "bass")
TRACK_PAIRS = (("lead", "chords"), ("lead", "bass"), ("chords", "bass"))


def _lane(roll: np.ndarray) -> np.ndarray:
    a = np.asarray(roll)
    if a.ndim == 3:
        a = a.reshape(-1, a.shape[-1])
    if a.ndim != 2:
        raise ValueError(f"a lane is (steps, pitches) or (bars, steps, pitches), got {a.shape}")
    return a if a.dtype == bool else a > 0.5


def _bars(lane: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """(steps, pitches) -> (bars, steps_per_bar, pitches), zero-padding a partial last bar."""
    n = -(-lane.shape[0] // steps_per_bar)
    out = np.zeros((n * steps_per_bar, lane.shape[1]), dtype=bool)
    out[: lane.shape[0]] = lane
    return out.reshape(n, steps_per_bar, lane.shape[1])


def onsets(roll: np.ndarray) -> np.ndarray:
    """Bool (steps, pitches): where a note starts (active, and not active the step before)."""
    a = _lane(roll)
    prev = np.zeros_like(a)
    prev[1:] = a[:-1]
    return a & ~prev


def pitch_class_histogram(roll: np.ndarray, lowest: int = LOWEST) -> np.ndarray:
    """Notes per pitch class (12,), each note counted once at its onset."""
    counts = onsets(roll).sum(axis=0)
    hist = np.zeros(12)
    np.add.at(hist, (np.arange(len(counts)) + lowest) % 12, counts)
    return hist


def histogram_entropy(hist: np.ndarray) -> float:
    """Shannon entropy in bits of a pitch-class histogram (0 to log2 12); NaN when empty."""
    h = np.asarray(hist, dtype=float)
    if h.sum() == 0:
        return math.nan
    p = h[h > 0] / h.sum()
    return float(-(p * np.log2(p)).sum())


def histogram_scale_consistency(hist: np.ndarray) -> float:
    """Largest share of a pitch-class histogram inside one of the 12 major scales (their
    relative minors are the same sets); NaN when empty."""
    h = np.asarray(hist, dtype=float)
    if h.sum() == 0:
        return math.nan
    return float(max(h[[(t + s) % 12 for s in MAJOR]].sum() for t in range(12)) / h.sum())


def pitch_class_entropy(roll: np.ndarray, lowest: int = LOWEST) -> float:
    """Shannon entropy in bits of the notes' pitch-class distribution (0 to log2 12)."""
    return histogram_entropy(pitch_class_histogram(roll, lowest))


def in_scale_rate(roll: np.ndarray, scale: Sequence[int], lowest: int = LOWEST) -> float:
    """Fraction of notes whose pitch class is in ``scale`` (absolute pitch classes)."""
    h = pitch_class_histogram(roll, lowest)
    if h.sum() == 0:
        return math.nan
    return float(h[list(scale)].sum() / h.sum())


def scale_consistency(roll: np.ndarray, lowest: int = LOWEST) -> float:
    """Largest in-scale rate over the 12 major scales (their relative minors are the same sets)."""
    return histogram_scale_consistency(pitch_class_histogram(roll, lowest))


def groove_consistency(roll: np.ndarray, steps_per_bar: int = STEPS) -> float:
    """1 - mean Hamming distance between consecutive bars' onset patterns / steps per bar.

    The pattern of a bar marks the steps where any note starts (MusPy). NaN below two bars.
    """
    pattern = _bars(onsets(roll).any(axis=1)[:, None], steps_per_bar)[..., 0]
    if len(pattern) < 2:
        return math.nan
    dist = np.count_nonzero(pattern[1:] != pattern[:-1])
    return float(1.0 - dist / (steps_per_bar * (len(pattern) - 1)))


def empty_beat_rate(roll: np.ndarray, steps_per_beat: int = STEPS_PER_BEAT) -> float:
    """Fraction of beats in which no note sounds (MusPy)."""
    sounding = _bars(_lane(roll).any(axis=1)[:, None], steps_per_beat)[..., 0]
    if len(sounding) == 0:
        return math.nan
    return float(np.mean(~sounding.any(axis=1)))


def empty_bar_rate(roll: np.ndarray, steps_per_bar: int = STEPS) -> float:
    """Fraction of bars in which no note sounds (MuseGAN's EB)."""
    bars = _bars(_lane(roll), steps_per_bar)
    if len(bars) == 0:
        return math.nan
    return float(np.mean(~bars.any(axis=(1, 2))))


def used_pitch_classes(roll: np.ndarray, steps_per_bar: int = STEPS,
                       lowest: int = LOWEST) -> float:
    """Pitch classes sounding per bar (MuseGAN's UPC, 0-12), averaged over non-empty bars.

    Empty bars are left out (``empty_bar_rate`` reports them), so silence does not pass for
    harmonic simplicity.
    """
    bars = _bars(_lane(roll), steps_per_bar).any(axis=1)  # (bars, pitches)
    pcs = np.zeros((len(bars), 12), dtype=bool)
    for k in range(bars.shape[1]):
        pcs[:, (k + lowest) % 12] |= bars[:, k]
    used = pcs.sum(axis=1)
    used = used[bars.any(axis=1)]
    return float(used.mean()) if len(used) else math.nan


def qualified_note_rate(roll: np.ndarray, min_steps: int = 2) -> float:
    """Fraction of notes at least ``min_steps`` long (MuseGAN's QN).

    MuseGAN counts notes of 3 or more steps at 24 steps per beat (a 32nd note); a 32nd is 1.5
    steps at 12 per beat, hence the default of 2.
    """
    starts, ends, _ = runs(_lane(roll))
    if len(starts) == 0:
        return math.nan
    return float(np.mean(ends - starts >= min_steps))


def drum_pattern_rate(roll: np.ndarray, steps_per_beat: int = STEPS_PER_BEAT,
                      tolerance: float = 0.0) -> float:
    """Fraction of drum hits on the sixteenth-note grid, i.e. in 8- or 16-beat patterns (DP).

    MuseGAN (24 steps per beat) gives hits one step off the grid a weight of 0.1; at 12 steps
    per beat the steps between sixteenths are the triplet positions, which are a different
    feel rather than a near miss, so ``tolerance`` (their weight) defaults to 0.
    """
    hits = onsets(roll).sum(axis=1)
    if hits.sum() == 0:
        return math.nan
    grid = max(1, steps_per_beat // 4)
    weight = np.where(np.arange(len(hits)) % grid == 0, 1.0, tolerance)
    return float((weight * hits).sum() / hits.sum())


def tonal_matrix(r1: float = 1.0, r2: float = 1.0, r3: float = 0.5) -> np.ndarray:
    """Harte, Sandler & Gasser (2006): 6x12 map from chroma to the tonal centroid.

    Rows: circle of fifths (r1), minor thirds (r2), major thirds (r3), as sine/cosine pairs.
    """
    pcs = np.arange(12)
    return np.stack([
        r1 * np.sin(pcs * 7 * np.pi / 6), r1 * np.cos(pcs * 7 * np.pi / 6),
        r2 * np.sin(pcs * 3 * np.pi / 2), r2 * np.cos(pcs * 3 * np.pi / 2),
        r3 * np.sin(pcs * 2 * np.pi / 3), r3 * np.cos(pcs * 2 * np.pi / 3),
    ])


def chroma(roll: np.ndarray, lowest: int = LOWEST) -> np.ndarray:
    """Active steps per pitch class (12,) (duration-weighted)."""
    a = _lane(roll).sum(axis=0)
    out = np.zeros(12)
    np.add.at(out, (np.arange(len(a)) + lowest) % 12, a)
    return out


def tonal_distance(roll_a: np.ndarray, roll_b: np.ndarray, steps_per_bar: int = STEPS,
                   lowest: int = LOWEST) -> float:
    """Mean Euclidean distance between two tracks' tonal centroids, bar by bar (MuseGAN's TD).

    Each bar's chroma is L1-normalised and mapped by ``tonal_matrix``; bars where either track
    is silent are skipped. 0 for tracks with the same pitch classes in the same proportions.
    """
    a, b = _bars(_lane(roll_a), steps_per_bar), _bars(_lane(roll_b), steps_per_bar)
    n = min(len(a), len(b))
    phi = tonal_matrix()
    dists = []
    for i in range(n):
        ca, cb = chroma(a[i], lowest), chroma(b[i], lowest)
        if ca.sum() == 0 or cb.sum() == 0:
            continue
        dists.append(float(np.linalg.norm(phi @ (ca / ca.sum()) - phi @ (cb / cb.sum()))))
    return float(np.mean(dists)) if dists else math.nan


def polyphony(roll: np.ndarray) -> float:
    """Mean number of pitches sounding together, over steps where any sounds (MusPy)."""
    n = _lane(roll).sum(axis=1)
    n = n[n > 0]
    return float(n.mean()) if len(n) else math.nan


def polyphony_rate(roll: np.ndarray) -> float:
    """Fraction of sounding steps with two or more pitches (MusPy)."""
    n = _lane(roll).sum(axis=1)
    n = n[n > 0]
    return float(np.mean(n >= 2)) if len(n) else math.nan


# ---------------------------------------------------------------- whole clips


def clip_metrics(rolls: np.ndarray, steps_per_bar: int = STEPS,
                 steps_per_beat: int = STEPS_PER_BEAT, lowest: int = LOWEST) -> dict[str, float]:
    """Every metric for one band clip ``(bars, 4, steps, pitches)`` in ``cadenza.music.roll``
    layout.

    Pitch metrics read the pitched lanes together; rhythm metrics read all four; per-track
    figures are suffixed with the role. Values are NaN where undefined.
    """
    r = np.asarray(rolls)
    if r.ndim != 4 or r.shape[1] != len(ROLES):
        raise ValueError(f"expected (bars, {len(ROLES)}, steps, pitches), got {r.shape}")
    r = r if r.dtype == bool else r > 0.5
    lane = {role: r[:, i] for i, role in enumerate(ROLES)}
    pitched = r[:, :DRUMS].any(axis=1)  # pitched lanes overlaid; same pitch in two lanes = one
    everything = r.any(axis=1)
    out = {
        "pitch_class_entropy": pitch_class_entropy(pitched, lowest),
        "scale_consistency": scale_consistency(pitched, lowest),
        "groove_consistency": groove_consistency(everything, steps_per_bar),
        "empty_beat_rate": empty_beat_rate(everything, steps_per_beat),
        "polyphony_chords": polyphony(lane["chords"]),
        "drum_pattern_rate": drum_pattern_rate(lane["drums"], steps_per_beat),
    }
    for role in ROLES:
        out[f"empty_bars_{role}"] = empty_bar_rate(lane[role], steps_per_bar)
    for role in PITCHED:
        out[f"upc_{role}"] = used_pitch_classes(lane[role], steps_per_bar, lowest)
        out[f"qualified_notes_{role}"] = qualified_note_rate(lane[role])
    for a, b in TRACK_PAIRS:
        out[f"tonal_distance_{a}_{b}"] = tonal_distance(lane[a], lane[b], steps_per_bar, lowest)
    return out


# ---------------------------------------------------------------- Yang & Lerch


def _as_samples(x: np.ndarray | Sequence[float]) -> np.ndarray:
    """(n,) or (n, ...) -> (n, d) float, rows with any NaN dropped."""
    a = np.asarray(x, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a.reshape(len(a), int(np.prod(a.shape[1:])))
    return a[~np.isnan(a).any(axis=1)]


def intra_distances(x: np.ndarray | Sequence[float]) -> np.ndarray:
    """Euclidean distances between all pairs of distinct samples of one set (n(n-1)/2,)."""
    a = _as_samples(x)
    i, j = np.triu_indices(len(a), k=1)
    return np.linalg.norm(a[i] - a[j], axis=1)


def inter_distances(x: np.ndarray | Sequence[float],
                    y: np.ndarray | Sequence[float]) -> np.ndarray:
    """Euclidean distances between every sample of one set and every sample of another."""
    a, b = _as_samples(x), _as_samples(y)
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2).ravel()


def _bandwidth(x: np.ndarray) -> float:
    """Scott's rule, as scipy.stats.gaussian_kde: std * n^(-1/5), floored for constant data."""
    std = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    floor = 1e-3 * max(1.0, float(np.max(np.abs(x))) if len(x) else 1.0)
    return max(std * len(x) ** (-1 / 5), floor)


def gaussian_kde(samples: np.ndarray, points: np.ndarray,
                 bandwidth: float | None = None) -> np.ndarray:
    """Density of a 1-D Gaussian KDE of ``samples`` at ``points``."""
    s = np.asarray(samples, dtype=np.float64).ravel()
    p = np.asarray(points, dtype=np.float64).ravel()
    h = bandwidth or _bandwidth(s)
    out = np.zeros(len(p))
    for i in range(0, len(s), 4096):  # chunks keep the (points x samples) block small
        z = (p[:, None] - s[None, i:i + 4096]) / h
        out += np.exp(-0.5 * z * z).sum(axis=1)
    return out / (len(s) * h * math.sqrt(2 * math.pi))


MAX_KDE_SAMPLES = 5000  # distance sets grow as n^2; a seeded subset this size fixes a KDE well


def _subset(x: np.ndarray) -> np.ndarray:
    if len(x) <= MAX_KDE_SAMPLES:
        return x
    return np.random.default_rng(len(x)).choice(x, MAX_KDE_SAMPLES, replace=False)


def densities(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float],
              points: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Both KDEs on one grid reaching 4 bandwidths past either set: (grid, p, q), or None if
    a set is empty."""
    a, b = _subset(_as_samples(x).ravel()), _subset(_as_samples(y).ravel())
    if len(a) == 0 or len(b) == 0:
        return None
    ha, hb = _bandwidth(a), _bandwidth(b)
    g = np.linspace(min(a.min() - 4 * ha, b.min() - 4 * hb),
                    max(a.max() + 4 * ha, b.max() + 4 * hb), points)
    return g, gaussian_kde(a, g, ha), gaussian_kde(b, g, hb)


def _overlap(d: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> float:
    if d is None:
        return math.nan
    g, p, q = d
    return float(min(1.0, np.trapezoid(np.minimum(p, q), g)))


def _kl(d: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> float:
    if d is None:
        return math.nan
    _, p, q = d
    p, q = p / p.sum(), np.maximum(q, 1e-12 * q.max()) / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def overlap_area(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float],
                 points: int = 1000) -> float:
    """Area under the smaller of the two KDE densities: 1 for equal sets, 0 for disjoint ones."""
    return _overlap(densities(x, y, points))


def kl_divergence(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float],
                  points: int = 1000) -> float:
    """KL(P || Q) in nats between the KDEs of x and y on a shared grid (as mgeval).

    Q is floored at 1e-12 of its peak so far-apart sets give a large finite value, not inf.
    """
    return _kl(densities(x, y, points))


@dataclass(frozen=True)
class FeatureComparison:
    """One feature, real vs generated: absolute figures and Yang-Lerch relative ones."""

    name: str
    real_mean: float
    real_std: float
    gen_mean: float
    gen_std: float
    overlap: float  # overlap area of intra-set (real) and inter-set distance densities
    kl: float  # KL(intra-set (real) || inter-set), nats
    intra_real: np.ndarray
    intra_gen: np.ndarray
    inter: np.ndarray

    def summary(self) -> dict[str, float]:
        return {"real_mean": self.real_mean, "real_std": self.real_std,
                "gen_mean": self.gen_mean, "gen_std": self.gen_std,
                "overlap": self.overlap, "kl": self.kl}


def compare_feature(name: str, real: np.ndarray | Sequence[float],
                    gen: np.ndarray | Sequence[float]) -> FeatureComparison:
    """Yang & Lerch for one feature (scalars or vectors per sample; NaN samples dropped)."""
    r, g = _as_samples(real), _as_samples(gen)
    intra_r, intra_g, inter = intra_distances(r), intra_distances(g), inter_distances(r, g)
    dens = densities(intra_r, inter)

    def stat(a: np.ndarray, f: str) -> float:
        if len(a) == 0:
            return math.nan
        v = np.linalg.norm(a, axis=1) if a.shape[1] > 1 else a[:, 0]
        return float(np.mean(v) if f == "mean" else np.std(v))

    return FeatureComparison(
        name, stat(r, "mean"), stat(r, "std"), stat(g, "mean"), stat(g, "std"),
        _overlap(dens), _kl(dens),
        intra_r, intra_g, inter,
    )


def compare(real: Sequence[Mapping[str, float]] | Mapping[str, np.ndarray],
            gen: Sequence[Mapping[str, float]] | Mapping[str, np.ndarray],
            ) -> dict[str, FeatureComparison]:
    """Compare two sets feature by feature.

    Each set is either a list of per-clip dicts (``clip_metrics`` output) or a dict of feature
    name -> array with one row per clip. Features present in both are compared.
    """
    def columns(s: Sequence[Mapping[str, float]] | Mapping[str, np.ndarray]
                ) -> dict[str, np.ndarray]:
        if isinstance(s, Mapping):
            return {k: np.asarray(v, dtype=np.float64) for k, v in s.items()}
        keys = list(dict.fromkeys(k for d in s for k in d))
        return {k: np.array([d.get(k, math.nan) for d in s], dtype=np.float64) for k in keys}

    cr, cg = columns(real), columns(gen)
    return {k: compare_feature(k, cr[k], cg[k]) for k in cr if k in cg}
