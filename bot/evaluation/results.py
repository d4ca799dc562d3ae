"""The results record: model provenance, per-style band and lead-line metric summaries, their
overlap with the real data, held-out likelihood per style."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cadenza.evaluation.clips import METRICS
from cadenza.evaluation.data import Generated
from cadenza.evaluation.references import Reference
from cadenza.models.zoo.lead_metrics import LEAD_METRICS
from cadenza.models.zoo.metrics import compare

log = logging.getLogger(__name__)


@dataclass
class ModelInfo:
    name: str
    kind: str
    sha256: str
    styles: list[str]
    meta: dict[str, Any]


def _summary(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    a = a[~np.isnan(a)]
    if not len(a):
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std()), "n": len(a)}


def _compared(real: Sequence[Mapping[str, float]], gen: Sequence[Mapping[str, float]],
              keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per feature: the generated clips' mean, sd and n, with the overlap area and KL against
    the real clips (NaN without both sets)."""
    cmp = compare(list(real), list(gen)) if real and gen else {}
    out = {}
    for k in keys:
        d = _summary([c[k] for c in gen])
        d["overlap"] = cmp[k].overlap if k in cmp else math.nan
        d["kl"] = cmp[k].kl if k in cmp else math.nan
        out[k] = d
    return out


def build_results(info: Mapping[str, ModelInfo], refs: Mapping[str, Reference],
                  gen: Mapping[str, Mapping[str, Generated]], styles: Sequence[str], clips: int,
                  bars: int, seed: int,
                  nll: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "settings": {"clips": clips, "bars": bars, "seed": seed, "styles": list(styles),
                     "models": list(info), "metrics": list(METRICS),
                     "lead_metrics": list(LEAD_METRICS)},
        "models": {}, "real": {}, "generated": {}, "nll": dict(nll or {}),
    }
    for m, mi in info.items():
        held = mi.meta.get("heldout") or {}
        res["models"][m] = {
            "kind": mi.kind, "sha256": mi.sha256, "styles": mi.styles,
            "heldout": {k: v for k, v in held.items() if isinstance(v, int | float)},
            "steps": mi.meta.get("steps"), "train_seconds": mi.meta.get("train_seconds"),
            "untrained_twin_of": mi.meta.get("untrained_twin_of"),
        }
    for s, ref in refs.items():
        res["real"][s] = {
            "clips": len(ref.clips), "heldout_clips": ref.heldout_clips,
            "heldout_pieces": ref.heldout_pieces, "training_pieces": ref.training_pieces,
            "available_heldout": ref.available_heldout,
            "available_training": ref.available_training,
            "skipped_pieces": ref.skipped_pieces, "short_pieces": ref.short_pieces,
            "reason": ref.reason, "per_piece": dict(ref.per_piece), "sources": dict(ref.sources),
            "metrics": {k: _summary([c.metrics[k] for c in ref.clips]) for k in METRICS},
            "lead": {k: _summary([c.lead[k] for c in ref.clips]) for k in LEAD_METRICS},
        }
    for m, per_style in gen.items():
        res["generated"][m] = {}
        for s, g in per_style.items():
            real = refs[s].clips
            res["generated"][m][s] = {
                "clips": len(g.clips), "skipped_seeds": g.skipped_seeds, "error": g.error,
                "metrics": _compared([c.metrics for c in real], [c.metrics for c in g.clips],
                                     METRICS),
                "lead": _compared([c.lead for c in real], [c.lead for c in g.clips],
                                  LEAD_METRICS),
            }
    return res


def uninformative(res: Mapping[str, Any], style: str, metric: str) -> bool:
    """Whether ``metric`` is one constant for the real data and every model in ``style`` (e.g.
    empty bars: nobody leaves one): its overlap is 1 for everyone and tells nothing apart."""
    real = res["real"][style]["metrics"][metric]
    if not real["n"] or real["std"] != 0:
        return False
    for per_style in res["generated"].values():
        g = per_style[style]["metrics"][metric]
        if g["n"] and not (g["std"] == 0 and abs(g["mean"] - real["mean"]) < 1e-9):
            return False
    return True


def mean_overlap(res: Mapping[str, Any], model: str, styles: Sequence[str],
                 metrics: Sequence[str] = METRICS) -> float:
    """The model's overlap area averaged over ``styles`` x ``metrics``, leaving out the
    uninformative features (NaN where none is left)."""
    v = [res["generated"][model][s]["metrics"][k]["overlap"] for s in styles for k in metrics
         if not uninformative(res, s, k)]
    v = [x for x in v if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def lead_overlap(res: Mapping[str, Any], model: str, style: str,
                 metrics: Sequence[str] = LEAD_METRICS) -> float:
    """Mean Yang-Lerch overlap area of the model's clips on the lead-line features in one style
    (features undefined for every clip, e.g. the swing ratio of 6/8 tunes, left out; NaN
    without a real reference)."""
    v = [res["generated"][model][style]["lead"][k]["overlap"] for k in metrics]
    v = [x for x in v if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def repetition_within(res: Mapping[str, Any], model: str, style: str) -> bool | None:
    """Whether the model's mean repetition rate lies within the real clips' mean ± 1 sd (None
    when either is missing)."""
    r = res["real"][style]["lead"]["repetition_rate"]
    g = res["generated"][model][style]["lead"]["repetition_rate"]
    if not r["n"] or not g["n"]:
        return None
    return bool(abs(g["mean"] - r["mean"]) <= r["std"] + 1e-12)


def json_safe(x: Any) -> Any:
    """JSON-safe: NaN -> null, numpy scalars -> Python numbers."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
