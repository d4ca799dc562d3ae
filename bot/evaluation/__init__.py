"""The evaluation report: every model x style scored against arranged real data, as Markdown + PNGs.

For each model and style, ``clips`` clips of ``bars`` bars are generated from fixed seeds (the same
seeds for every model, so tempo, key and meter are paired across models), encoded as 4-track
piano rolls (``models.roll``) and scored with ``models.metrics``. The real reference is corpus
melodies of the same style (held-out pieces first, ``models.dataset.is_heldout``) cut into
``bars``-bar excerpts and arranged by ``bot.arrange`` exactly as generated melodies are, so the
two sets differ only in where the melody (and, for the GAN, the band) comes from. Beside the
metrics: held-out likelihoods read from the checkpoints' meta, and a numpy logistic-regression
style classifier on clip-level features.
"""

from __future__ import annotations

from bot.evaluation.classifier import (
    ClassifierResult,
    LogisticClassifier,
    cross_validate,
    train_test,
)
from bot.evaluation.clips import LABELS, METRICS, Clip, clip_features, clip_from_score
from bot.evaluation.data import SEED_STRIDE, Generated, Reference, generate, real_reference
from bot.evaluation.report import render_report
from bot.evaluation.run import MAX_BARS, MAX_CLIPS, run_evaluation

__all__ = [
    "LABELS",
    "MAX_BARS",
    "MAX_CLIPS",
    "METRICS",
    "SEED_STRIDE",
    "ClassifierResult",
    "Clip",
    "Generated",
    "LogisticClassifier",
    "Reference",
    "clip_features",
    "clip_from_score",
    "cross_validate",
    "generate",
    "real_reference",
    "render_report",
    "run_evaluation",
    "train_test",
]
