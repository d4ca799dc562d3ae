"""The evaluation report: every model x style scored against real held-out music, as Markdown,
PNGs and a listening page.

For each model and style, ``clips`` clips of ``bars`` bars are generated from fixed seeds (the same
seeds for every model, so tempo, key and meter are paired across models). Each is measured twice:
its lead line with ``cadenza.models.zoo.lead_metrics`` (pitch-class entropy, scale consistency,
swing ratio, notes per bar, pitch range, chord vocabulary, repetition rate), and its whole
arrangement as a 4-track piano roll with ``cadenza.models.zoo.metrics`` (MusPy / MuseGAN). The real
reference (``cadenza.evaluation.references``) is held-out pieces of the same style cut into
bar-aligned excerpts: their own lines for the lead figures, arranged by ``cadenza.arrange`` as
generated lines are for the band figures. Beside the metrics: held-out likelihood per style
(``cadenza.models.training.heldout``), a numpy logistic-regression style classifier on lead-only and
on band features, and one piano roll per style and model (``listen.md``).
"""

from __future__ import annotations

from cadenza.evaluation.classifier import (
    ClassifierResult,
    LogisticClassifier,
    cross_validate,
    train_test,
)
from cadenza.evaluation.clips import LABELS, METRICS, Clip, band_features, clip_from_score
from cadenza.evaluation.data import SEED_STRIDE, Generated, generate
from cadenza.evaluation.references import Reference, is_reference, real_reference
from cadenza.evaluation.report import write_report
from cadenza.evaluation.run import MAX_BARS, MAX_CLIPS, run_evaluation

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
    "band_features",
    "clip_from_score",
    "cross_validate",
    "generate",
    "is_reference",
    "real_reference",
    "run_evaluation",
    "train_test",
    "write_report",
]
