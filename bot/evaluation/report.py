"""The Markdown report: summary, held-out likelihood, real data, metrics, classifier, method."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.evaluation.clips import LABELS, METRICS
from bot.evaluation.data import SEED_STRIDE
from bot.evaluation.results import mean_overlap, uninformative

log = logging.getLogger(__name__)


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _ms(d: Mapping[str, float]) -> str:
    return "n/a" if not d.get("n") else f"{_f(d['mean'])} ± {_f(d['std'])}"


def _within(res: Mapping[str, Any], model: str, styles: Sequence[str]) -> tuple[int, int]:
    """(features whose generated mean lies within the real mean ± sd, features compared)."""
    hit = total = 0
    for s in styles:
        for k in METRICS:
            r, g = res["real"][s]["metrics"][k], res["generated"][model][s]["metrics"][k]
            if r["n"] and g["n"] and not uninformative(res, s, k):
                total += 1
                hit += abs(g["mean"] - r["mean"]) <= r["std"]
    return hit, total


def _acc(entry: Mapping[str, Any], key: str) -> str:
    r = entry.get(key)
    return "n/a" if not r else f"{_f(r['accuracy'], 2)} (chance {_f(r['chance'], 2)}, n={r['n']})"


def render_report(res: Mapping[str, Any], plots: Mapping[str, Path]) -> str:
    """The Markdown report from ``results`` (as built by ``run_evaluation``) and plot paths."""
    st = res["settings"]
    models, styles = st["models"], st["styles"]
    backed = [s for s in styles if res["real"][s]["clips"]]
    unbacked = [s for s in styles if not res["real"][s]["clips"]]
    L: list[str] = [
        "# Cadenza evaluation report", "",
        f"Models: {', '.join(models)}. Styles: {', '.join(styles)}. Per model and style, "
        f"{st['clips']} clips of {st['bars']} bars from seeds {st['seed']} × {SEED_STRIDE} + i "
        f"(the same seeds, hence the same tempo, key and meter, for every model). "
        f"Run seed {st['seed']}: the same arguments and checkpoints give the same report.", "",
    ]

    L += ["## Summary", "",
          "| model | kind | mean overlap area | features within real mean ± sd | "
          "style accuracy, CV (lead) | real-trained on generated (lead) |",
          "|---|---|---|---|---|---|"]
    cls = res["classifier"]
    for m in models:
        hit, total = _within(res, m, backed)
        lead = cls[m]["lead"]
        L.append(f"| {m} | {res['models'][m]['kind']} | {_f(mean_overlap(res, m, backed), 2)} "
                 f"| {hit}/{total} | {_acc(lead, 'cv')} | {_acc(lead, 'real_to_gen')} |")
    left_out = {s: [k for k in METRICS if uninformative(res, s, k)] for s in backed}
    L += ["", "Mean overlap area: Yang–Lerch overlap averaged over every metric and every "
          f"style with real data ({', '.join(backed) or 'none'}); 1 means the generated clips "
          "sit among the real ones as the real ones sit among themselves. Both summary columns "
          "leave out the features that are one constant for the real data and every model in "
          "a style (they tell nothing apart): "
          + "; ".join(f"{s}: {', '.join(ks) or 'none'}" for s, ks in left_out.items()) + ". "
          "The band's rhythm features (drum-pattern rate, groove consistency) come mostly "
          "from the rule-based arranger, which every melody model shares; the style "
          "classifier reads the lead line only.", ""]
    if unbacked:
        L += [f"**No real reference for {', '.join(unbacked)}**: the offline corpus has no "
              "such pieces, so these styles get generated figures only (no overlap area, no "
              "real-trained classifier).", ""]

    L += _likelihood_section(res, models, plots)
    L += _real_section(res, styles)
    L += _metrics_section(res, models, styles, plots)
    L += _classifier_section(res, models, plots)
    L += _method_section(res, models)
    return "\n".join(L).rstrip() + "\n"


def _likelihood_section(res: Mapping[str, Any], models: Sequence[str],
                        plots: Mapping[str, Path]) -> list[str]:
    L = ["## Held-out likelihood (sequence models)", "",
         "Source: the checkpoint's `meta['heldout']`, written by `models.train` at its best "
         "held-out step: whole held-out sequences (the fixed 5% split of "
         "`models.dataset.is_heldout`, untransposed), NLL per token in nats. Not recomputed "
         "here.", "",
         "| model | NLL / token (nats) | bits / token | perplexity | NLL, sampled tokens only "
         "| tokens |", "|---|---|---|---|---|---|"]
    rows = 0
    for m in models:
        info = res["models"][m]
        if info["kind"] != "rnn":
            continue
        h = info["heldout"]
        nll = h.get("nll")
        rows += 1
        if nll is None or not math.isfinite(nll):
            L.append(f"| {m} | n/a (no held-out figure in the checkpoint) | | | | |")
            continue
        L.append(f"| {m} | {_f(nll, 4)} | {_f(nll / math.log(2), 3)} | {_f(math.exp(nll), 2)} "
                 f"| {_f(h.get('nll_sampled'), 4)} | {h.get('tokens', 'n/a')} |")
    if not rows:
        L.append("| (no sequence models evaluated) | | | | | |")
    if "nll" in plots:
        L += ["", f"![held-out NLL]({plots['nll'].name})"]
    vaes = [m for m in models if res["models"][m]["kind"] == "vae"]
    if vaes:
        L += ["", "### VAE held-out reconstruction", "",
              "Source: the checkpoint's `meta['heldout']`, written by `models.train_vae`: "
              "two-bar held-out windows encoded to the posterior mean and decoded greedily.", "",
              "| model | step accuracy | note-onset accuracy | rest accuracy |",
              "|---|---|---|---|"]
        for m in vaes:
            h = res["models"][m]["heldout"]
            if "step_accuracy" not in h:
                L.append(f"| {m} | n/a (no held-out figure in the checkpoint) | | |")
                continue
            L.append(f"| {m} | {_f(h.get('step_accuracy'))} | {_f(h.get('onset_accuracy'))} | "
                     f"{_f(h.get('rest_accuracy'))} |")
    others = [m for m in models if res["models"][m]["kind"] not in ("rnn", "vae")]
    if others:
        L += ["", f"No likelihood for {', '.join(others)} "
              f"({', '.join(sorted({res['models'][m]['kind'] for m in others}))}): a GAN has "
              "none; see its metrics below."]
    return [*L, ""]


def _real_section(res: Mapping[str, Any], styles: Sequence[str]) -> list[str]:
    bars = res["settings"]["bars"]
    L = ["## Real reference data", "",
         f"Corpus melodies of each style cut into {bars}-bar excerpts, arranged by "
         "`bot.arrange` in that style (as generated melodies are), tempo drawn "
         "from the style's range. Held-out pieces are used first; training pieces only when "
         "the held-out ones run out.", "",
         "| style | real clips | from held-out pieces | held-out pieces used / available | "
         "training pieces used / available | pieces skipped | note |",
         "|---|---|---|---|---|---|---|"]
    for s in styles:
        r = res["real"][s]
        L.append(f"| {s} | {r['clips']} | {r['heldout_clips']} | {r['heldout_pieces']} / "
                 f"{r['available_heldout']} | {r['training_pieces']} / "
                 f"{r['available_training']} | {r['skipped_pieces']} | "
                 f"{r['reason'] or ''} |")
    return [*L, "", f"Pieces skipped: meters whose bar exceeds the 48-step roll (9/8, 12/8) or "
            f"shorter than {bars} bars.", ""]


def _metrics_section(res: Mapping[str, Any], models: Sequence[str], styles: Sequence[str],
                     plots: Mapping[str, Path]) -> list[str]:
    L = ["## Objective metrics", "",
         "Per style: the real clips' mean ± sd beside each model's mean ± sd, and in brackets "
         "the Yang–Lerch overlap area (OA) of that feature.", ""]
    for s in styles:
        real = res["real"][s]
        L += [f"### {s}", ""]
        notes = []
        for m in models:
            g = res["generated"][m][s]
            if g["error"]:
                notes.append(f"{m}: {g['error']}")
            if g["skipped_seeds"]:
                notes.append(f"{m}: {g['skipped_seeds']} seeds skipped (meter too long for "
                             "the roll)")
        if not real["clips"]:
            notes.append(f"no real reference ({real['reason']})")
        L += [f"- {n}" for n in notes]
        if notes:
            L.append("")
        L += ["| feature | real | " + " | ".join(models) + " |",
              "|---|---|" + "---|" * len(models)]
        L.append("| clips | " + str(real["clips"]) + " | " + " | ".join(
            str(res["generated"][m][s]["clips"]) for m in models) + " |")
        for k in METRICS:
            cells = []
            for m in models:
                g = res["generated"][m][s]["metrics"][k]
                oa = f" (OA {_f(g['overlap'], 2)})" if real["clips"] else ""
                cells.append(_ms(g) + oa)
            L.append(f"| {LABELS.get(k, k)} | {_ms(real['metrics'][k])} | " + " | ".join(cells)
                     + " |")
        if f"features_{s}" in plots:
            L += ["", f"![{s} features]({plots[f'features_{s}'].name})"]
        L.append("")
    if "overlap" in plots:
        L += ["### Overlap area, model × feature", "",
              f"![overlap heatmap]({plots['overlap'].name})", ""]
    return L


def _classifier_section(res: Mapping[str, Any], models: Sequence[str],
                        plots: Mapping[str, Path]) -> list[str]:
    cls = res["classifier"]
    L = ["## Style classifier", "",
         "Multinomial logistic regression (numpy, L2) on clip-level features. *Band* features "
         "see the whole arrangement, which the arranger makes style-typical by rule (drums, "
         "comping, swing, tempo), so they separate styles for any model; *lead* features see "
         "only the lead line, the part a melody model writes, and are the fairer test of the "
         "model. Even so, the sampler's per-style idiom (tonic and chord-tone bias, pitch "
         "range) and the arranger's swing shape every model's lead, so random-weight models "
         "already score well above chance on lead features: compare models with each other, "
         "not with chance.", "",
         "(a) Cross-validated accuracy telling the styles apart among one model's clips "
         "(stratified k-fold). (b) Trained on the real arranged clips of the data-backed "
         "styles, tested on the model's clips of those styles. Chance: the commonest "
         "style's share (a), one over the number of real styles (b). When (b) puts nearly every "
         "generated clip in one style, the generated clips lie outside the real clips' range "
         "on some features (see the metric tables: entropy, scale consistency) and the linear "
         "classifier extrapolates to the most extreme real style.", "",
         "| clips | CV, band | CV, lead | real-trained → generated, band | "
         "real-trained → generated, lead |", "|---|---|---|---|---|"]
    for key in ["real", *models]:
        c = cls[key]
        name = "real (arranged corpus)" if key == "real" else key
        L.append(f"| {name} | {_acc(c['band'], 'cv')} | {_acc(c['lead'], 'cv')} | "
                 f"{_acc(c['band'], 'real_to_gen')} | {_acc(c['lead'], 'real_to_gen')} |")
    L.append("")
    for key in ["real", *models]:
        if f"confusion_{key}" in plots:
            L += [f"![confusion {key}]({plots[f'confusion_{key}'].name})", ""]
    return L


def _method_section(res: Mapping[str, Any], models: Sequence[str]) -> list[str]:
    L = ["## How the figures are computed", "",
         "- Clips become 4-lane piano rolls (`models.roll.encode`: lead, chords, bass, drums; "
         "12 steps per quarter), cut to the meter's bar length. Generated clips come from "
         "`Composer.compose`, as a member would get them: a melody model's line over the "
         "style's chord plan arranged by `bot.arrange`; the GAN's four parts restyled by the "
         "arranger's instrumentation path, in 4/4.",
         "- Metrics (`models.metrics.clip_metrics`, MusPy / MuseGAN definitions): pitch-class "
         "entropy and scale consistency over the pitched lanes; groove consistency and "
         "empty-beat rate over all lanes; pitch classes used per bar (UPC) and qualified-note "
         "rate (notes ≥ 2 steps, a 32nd) per pitched lane; drum-pattern rate (drum hits on "
         "the sixteenth grid); tonal distance (Harte et al. tonal centroids, bar by bar) "
         "between lane pairs; polyphony of the chords lane; empty-bar rate per lane. "
         "Undefined values (e.g. a silent lane) are left out of means.",
         "- Overlap area (Yang & Lerch 2018, `models.metrics.compare`): per feature, the "
         "pairwise distances within the real set and between real and generated clips, each "
         "smoothed by a Gaussian KDE; OA is the area under the smaller density.",
         "- Classifier features: *band*: every metric, key-relative pitch-class histogram, "
         "onset positions within the beat (12 steps) and the bar (4 beats), notes per bar per "
         "lane, tempo; *lead*: the lead lane's entropy, scale consistency, UPC, qualified "
         "notes, empty beats, groove, density, key-relative pitch-class histogram, onset "
         "positions and interval profile (mean |interval|, share of steps, of leaps). "
         "Standardised on the training fold; NaN filled with training means."]
    return [*L, ""]
