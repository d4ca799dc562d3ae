"""Clips: a score as a trimmed 4-lane piano roll with its band metrics, its lead line with the
lead-line metrics, and its style-classifier features."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cadenza.models.zoo.lead_features import lead_vector
from cadenza.models.zoo.lead_metrics import Line, lead_metrics, line_from_score
from cadenza.models.zoo.metrics import TRACK_PAIRS, clip_metrics, onsets, pitch_class_histogram
from cadenza.music.roll import DRUMS, ROLES, STEPS_PER_BEAT, RollError, bar_steps, encode
from cadenza.music.score import Score
from cadenza.music.theory import Key

log = logging.getLogger(__name__)

# every figure clip_metrics returns, in its order (asked once, so the lists never drift apart)
METRICS: tuple[str, ...] = tuple(clip_metrics(np.zeros((2, len(ROLES), 48, 84), dtype=bool)))
LABELS: dict[str, str] = {
    "pitch_class_entropy": "pitch-class entropy (bits)",
    "scale_consistency": "scale consistency",
    "groove_consistency": "groove consistency",
    "empty_beat_rate": "empty-beat rate",
    "polyphony_chords": "polyphony, chords",
    "drum_pattern_rate": "drum-pattern rate",
    **{f"empty_bars_{r}": f"empty bars, {r}" for r in ROLES},
    **{f"upc_{r}": f"pitch classes per bar, {r}" for r in ROLES},
    **{f"qualified_notes_{r}": f"qualified-note rate, {r}" for r in ROLES},
    **{f"tonal_distance_{a}_{b}": f"tonal distance, {a}-{b}" for a, b in TRACK_PAIRS},
}


@dataclass
class Clip:
    """One scored clip: band metrics of its roll (trimmed to the meter's bar length), lead-line
    metrics (``cadenza.models.zoo.lead_metrics``) and classifier inputs."""

    style: str
    source: str
    meter: tuple[int, int]
    metrics: dict[str, float]
    features: dict[str, np.ndarray]
    lead: dict[str, float]
    group: str = ""  # the piece a real excerpt comes from (its CV fold keeps it whole)


def roll_holds(meter: tuple[int, int]) -> bool:
    """Whether a bar of ``meter`` fits the roll's 48-step lane (9/8 and 12/8 do not)."""
    try:
        bar_steps(meter)
    except RollError:
        return False
    return True


def clip_from_score(score: Score, style: str, source: str, line: Line | None = None, *,
                    swing_known: bool = True, group: str | None = None) -> Clip | None:
    """Score -> Clip, or None for meters the roll cannot hold (9/8, 12/8 bars exceed 48 steps).

    ``line`` is the lead line to measure; by default the score's lead track (a generated clip,
    as the member hears it). A real excerpt passes the line as the data has it; a line notated
    with straight eighths that are played swung (``swing_known=False``) has no swing ratio.
    ``group`` names the piece the clip comes from (default: the clip's own ``source``).
    """
    try:
        per_bar = bar_steps(score.time_signature)
        rolls = encode(score)[:, :, :per_bar]  # drop the lane padding after short bars
    except RollError:
        return None
    metrics = clip_metrics(rolls, steps_per_bar=per_bar)
    line = line_from_score(score) if line is None else line
    lead = lead_metrics(line)
    if not swing_known:
        lead["swing_ratio"] = math.nan
    features = {"band": band_features(rolls, metrics, score.key, score.tempo),
                "lead": lead_vector(line, lead)}
    return Clip(style, source, tuple(score.time_signature), metrics, features, lead,
                group if group is not None else source)


def _relative_pc(lane: np.ndarray, key: Key) -> np.ndarray:
    """Pitch-class histogram rotated so the key's tonic is 0 (keys are a rule, not the model)."""
    h = np.roll(pitch_class_histogram(lane), -key.tonic)
    return h / h.sum() if h.sum() else h


def _onset_positions(lane: np.ndarray, per_bar: int) -> np.ndarray:
    """Onsets by position in the beat (12 GRID steps) and by beat in the bar (4), each summing
    to 1: the rhythmic fingerprint (straight, swung, triplet; downbeat-heavy or not)."""
    t = np.nonzero(onsets(lane).any(axis=1))[0] % per_bar
    phase = np.bincount(t % STEPS_PER_BEAT, minlength=STEPS_PER_BEAT).astype(float)
    beat = np.bincount(np.minimum(t // STEPS_PER_BEAT, 3), minlength=4).astype(float)
    n = max(1, len(t))
    return np.concatenate([phase / n, beat / n])


def band_features(rolls: np.ndarray, metrics: Mapping[str, float], key: Key,
                  tempo: float) -> np.ndarray:
    """The band classifier's inputs (rolls: (bars, 4, bar steps, pitches)): every metric,
    key-relative pitch-class histogram of the pitched lanes, onset positions of all lanes, notes
    per bar per track, tempo. The lead classifier's inputs are
    ``cadenza.models.zoo.lead_features.lead_vector`` of the lead line alone."""
    bars, _, per_bar, _ = rolls.shape
    flat = rolls.transpose(1, 0, 2, 3).reshape(len(ROLES), bars * per_bar, -1)
    pitched = flat[:DRUMS].any(axis=0)
    density = np.array([onsets(flat[i]).sum() / max(1, bars) for i in range(len(ROLES))])
    band = np.concatenate([
        [metrics[m] for m in METRICS], _relative_pc(pitched, key),
        _onset_positions(flat.any(axis=0), per_bar), density, [tempo / 100.0],
    ])
    return band.astype(float)
