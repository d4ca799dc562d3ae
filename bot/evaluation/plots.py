"""The report's PNG figures: per-style band and lead features, overlap heatmaps, held-out NLL
(overall and per style), confusions."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cadenza.evaluation.classifier import ClassifierResult
from cadenza.evaluation.clips import LABELS, METRICS
from cadenza.evaluation.results import lead_overlap, mean_overlap
from cadenza.models.zoo.lead_metrics import LEAD_LABELS, LEAD_METRICS

log = logging.getLogger(__name__)


def _figure(w: float, h: float):  # type: ignore[no-untyped-def]
    """A matplotlib Figure on the Agg canvas (object API only: no pyplot global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=80)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path, tight: bool = True) -> Path:  # type: ignore[no-untyped-def]
    if tight:
        fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    return path


def write_plots(out_dir: Path, res: Mapping[str, Any],
                conf: Mapping[str, Mapping[str, ClassifierResult]], models: Sequence[str],
                styles: Sequence[str]) -> dict[str, Path]:
    """Every figure the results support, written into ``out_dir``; {plot key: PNG path}."""
    plots: dict[str, Path] = {}
    for s in styles:
        plots[f"features_{s}"] = _plot_features(out_dir / f"features_{s}.png", res, models, s)
        plots[f"lead_{s}"] = _plot_features(out_dir / f"lead_{s}.png", res, models, s,
                                            group="lead")
    backed = [s for s in styles if res["real"][s]["clips"]]
    if backed:
        plots["overlap"] = _plot_overlap(out_dir / "overlap.png", res, models, backed)
        plots["lead_overlap"] = _plot_lead_overlap(out_dir / "lead_overlap.png", res, models,
                                                   styles)
    nll = {m: res["models"][m]["heldout"].get("nll") for m in models}
    if any(v is not None for v in nll.values()):
        plots["nll"] = _plot_nll(out_dir / "nll.png", nll)
    if res.get("nll"):
        plots["nll_styles"] = _plot_nll_styles(out_dir / "nll_styles.png", res["nll"], styles)
    for m in ["real", *models]:
        if conf.get(m):
            plots[f"confusion_{m}"] = _plot_confusion(out_dir / f"confusion_{m}.png", m, conf[m])
    return plots


def _plot_features(path: Path, res: Mapping[str, Any], models: Sequence[str], style: str,
                   group: str = "metrics") -> Path:
    """One panel per feature of ``group`` ("metrics": band, "lead": lead line)."""
    keys, labels = (LEAD_METRICS, LEAD_LABELS) if group == "lead" else (METRICS, LABELS)
    cols = 4
    rows = -(-len(keys) // cols)
    height = 2.6 * rows + 0.4
    fig = _figure(4 * cols, height)
    real = res["real"][style][group]
    x = np.arange(len(models))
    for i, k in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        r = real[k]
        if res["real"][style]["clips"] and not math.isnan(r["mean"]):
            ax.axhspan(r["mean"] - r["std"], r["mean"] + r["std"], color="0.85", zorder=0)
            ax.axhline(r["mean"], color="0.4", lw=1, zorder=1)
        g = [res["generated"][m][style][group][k] for m in models]
        ax.bar(x, [v["mean"] for v in g], yerr=[v["std"] for v in g], color="tab:blue",
               alpha=0.8, capsize=3, zorder=2)
        ax.set_xticks(x, list(models), fontsize=8, rotation=30)
        ax.set_title(labels.get(k, k), fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        shown = [v["mean"] for v in g] + [r["mean"]]
        if all(math.isnan(v) or abs(v) < 1e-9 for v in shown):
            ax.set_ylim(-0.05, 1.0)  # all zero: a readable 0-1 scale, not +-0.05 or 1e-17
    band = "grey band: real mean ± sd" if res["real"][style]["clips"] else "no real reference"
    what = "lead line" if group == "lead" else "band"
    fig.suptitle(f"{style}, {what}: generated mean ± sd per model ({band})", fontsize=11)
    # fixed margins: tight_layout over a grid this size costs more than drawing it
    # (the title and the slanted model names need about the same room whatever the rows)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.6 / height, top=1 - 0.9 / height,
                        hspace=0.75, wspace=0.25)
    return _save(fig, path, tight=False)


def _heatmap(path: Path, grid: np.ndarray, columns: Sequence[str], rows: Sequence[str],
             title: str, size: tuple[float, float], slanted: bool) -> Path:
    """Values in [0, 1] as a viridis grid with each cell's value written in it."""
    fig = _figure(*size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    if slanted:
        ax.set_xticks(range(len(columns)), list(columns), rotation=60, ha="right", fontsize=8)
    else:
        ax.set_xticks(range(len(columns)), list(columns), fontsize=9)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=9)
    for (i, j), v in np.ndenumerate(grid):
        if not math.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7 if slanted else 8,
                    color="white" if v < 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.02 if slanted else 0.03)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _plot_overlap(path: Path, res: Mapping[str, Any], models: Sequence[str],
                  backed: Sequence[str]) -> Path:
    grid = np.array([[mean_overlap(res, m, backed, [k]) for k in METRICS] for m in models])
    return _heatmap(path, grid, [LABELS.get(k, k) for k in METRICS], models,
                    f"Yang-Lerch overlap area (1 = like the real data), mean over "
                    f"{', '.join(backed)}", (1.0 + 0.55 * len(METRICS), 1.8 + 0.45 * len(models)),
                    slanted=True)


def _plot_lead_overlap(path: Path, res: Mapping[str, Any], models: Sequence[str],
                       styles: Sequence[str]) -> Path:
    grid = np.array([[lead_overlap(res, m, s) for s in styles] for m in models])
    return _heatmap(path, grid, styles, models,
                    "mean overlap area on the lead-line features (bar: best >= 0.70)",
                    (1.8 + 1.1 * len(styles), 1.6 + 0.45 * len(models)), slanted=False)


def _plot_nll_styles(path: Path, nll: Mapping[str, Mapping[str, Any]],
                     styles: Sequence[str]) -> Path:
    models = list(nll)
    cols = [*styles, *(["ragtime (Joplin NC)"] if "ragtime" in styles else [])]
    fig = _figure(2.0 + 1.2 * len(cols), 3.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        per = dict(nll[m].get("heldout") or {})
        if nll[m].get("joplin_nc"):
            per["ragtime (Joplin NC)"] = nll[m]["joplin_nc"]
        v = [float(per[c]["nll"]) if c in per and per[c].get("nll") is not None else math.nan
             for c in cols]
        ax.bar(np.arange(len(cols)) + (i - (len(models) - 1) / 2) * width, v, width, label=m)
    ax.set_xticks(range(len(cols)), cols, fontsize=8, rotation=20)
    ax.set_ylabel("nats / token")
    ax.legend(fontsize=8)
    ax.set_title("held-out NLL per token, per style", fontsize=10)
    return _save(fig, path)


def _plot_nll(path: Path, nll: Mapping[str, float | None]) -> Path:
    names = [m for m, v in nll.items() if v is not None]
    fig = _figure(1.5 + 1.0 * len(names), 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(names, [float(nll[m]) for m in names], color="tab:orange")  # type: ignore[arg-type]
    ax.set_ylabel("nats / token")
    ax.set_title("held-out NLL per token (checkpoint meta)", fontsize=10)
    return _save(fig, path)


def _plot_confusion(path: Path, name: str, results: Mapping[str, ClassifierResult]) -> Path:
    titles = {"cv_band": "cross-validated, band features",
              "cv_lead": "cross-validated, lead features",
              "real_to_gen_band": "trained on real, band features",
              "real_to_gen_lead": "trained on real, lead features"}
    keys = [k for k in titles if k in results]
    fig = _figure(3.6 * len(keys), 3.8)
    for i, k in enumerate(keys):
        r = results[k]
        ax = fig.add_subplot(1, len(keys), i + 1)
        ax.imshow(r.confusion, cmap="Blues")
        n = len(r.labels)
        ax.set_xticks(range(n), r.labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), r.labels, fontsize=8)
        top = r.confusion.max() or 1
        for (a, b), v in np.ndenumerate(r.confusion):
            ax.text(b, a, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > top / 2 else "black")
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(f"{name}: {titles[k]}\naccuracy {r.accuracy:.2f} (chance {r.chance:.2f})",
                     fontsize=9)
    return _save(fig, path)
