"""The results record: model provenance, per-style metric summaries and overlap with real data."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.evaluation.clips import METRICS
from bot.evaluation.data import Generated, Reference
from models.metrics import compare

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


def build_results(info: Mapping[str, ModelInfo], refs: Mapping[str, Reference],
                  gen: Mapping[str, Mapping[str, Generated]], styles: Sequence[str], clips: int,
                  bars: int, seed: int) -> dict[str, Any]:
    res: dict[str, Any] = {
        "settings": {"clips": clips, "bars": bars, "seed": seed, "styles": list(styles),
                     "models": list(info), "metrics": list(METRICS)},
        "models": {}, "real": {}, "generated": {},
    }
    for m, mi in info.items():
        held = mi.meta.get("heldout") or {}
        res["models"][m] = {
            "kind": mi.kind, "sha256": mi.sha256, "styles": mi.styles,
            "heldout": {k: v for k, v in held.items() if isinstance(v, int | float)},
            "steps": mi.meta.get("steps"), "train_seconds": mi.meta.get("train_seconds"),
        }
    for s, ref in refs.items():
        res["real"][s] = {
            "clips": len(ref.clips), "heldout_clips": ref.heldout_clips,
            "heldout_pieces": ref.heldout_pieces, "training_pieces": ref.training_pieces,
            "available_heldout": ref.available_heldout,
            "available_training": ref.available_training,
            "skipped_pieces": ref.skipped_pieces, "reason": ref.reason,
            "metrics": {k: _summary([c.metrics[k] for c in ref.clips]) for k in METRICS},
        }
    for m, per_style in gen.items():
        res["generated"][m] = {}
        for s, g in per_style.items():
            entry: dict[str, Any] = {"clips": len(g.clips), "skipped_seeds": g.skipped_seeds,
                                     "error": g.error, "metrics": {}}
            cmp = (compare([c.metrics for c in refs[s].clips], [c.metrics for c in g.clips])
                   if refs[s].clips and g.clips else {})
            for k in METRICS:
                d = _summary([c.metrics[k] for c in g.clips])
                d["overlap"] = cmp[k].overlap if k in cmp else math.nan
                d["kl"] = cmp[k].kl if k in cmp else math.nan
                entry["metrics"][k] = d
            res["generated"][m][s] = entry
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
