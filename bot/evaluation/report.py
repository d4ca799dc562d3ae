"""The Markdown report: summary and the issue's bars, lead-line figures per style, held-out
likelihood per style, real data, band metrics, classifier, method."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cadenza.evaluation.clips import LABELS, METRICS
from cadenza.evaluation.data import SEED_STRIDE
from cadenza.evaluation.harmony import ROLES
from cadenza.evaluation.references import MIN_EXCERPT_NOTES, NC_SAME_AS_MUTOPIA
from cadenza.evaluation.results import (
    lead_overlap,
    mean_overlap,
    repetition_within,
    uninformative,
)
from cadenza.models.zoo.lead_features import FEATURE_NAMES
from cadenza.models.zoo.lead_metrics import LEAD_LABELS

LEAD_BAR = 0.70  # the bar: the best model's mean lead-feature overlap in every style
CLASSIFIER_BAR = 0.90

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


def _nll_cell(d: Mapping[str, Any] | None) -> str:
    """'1.234 (1.456), 12 pieces' or n/a."""
    if not d or d.get("nll") is None or not math.isfinite(d["nll"]):
        return "n/a"
    return f"{_f(d['nll'])} ({_f(d.get('nll_sampled'))}), {d.get('pieces', '?')} pieces"


def _acc(entry: Mapping[str, Any], key: str) -> str:
    r = entry.get(key)
    return "n/a" if not r else f"{_f(r['accuracy'], 2)} (chance {_f(r['chance'], 2)}, n={r['n']})"


def _best(values: Mapping[str, float]) -> tuple[str, float]:
    """(model, value) of the highest finite value, ("", NaN) when there is none."""
    finite = {m: v for m, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        return "", math.nan
    m = max(finite, key=lambda k: finite[k])
    return m, finite[m]


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("✓" if ok else "✗")


def write_report(res: Mapping[str, Any], plots: Mapping[str, Path]) -> str:
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
        f"Run seed {st['seed']}: the same arguments and checkpoints give the same report. "
        "One piano roll per style and model: [listen.md](listen.md).", "",
    ]
    if st.get("command"):
        L += [f"Made by `{st['command']}`.", ""]
    L += _bars_section(res, models, styles, backed)
    L += ["## Summary", "",
          "| model | kind | lead-feature overlap, mean over styles | band-metric overlap | "
          "band features within real mean ± sd | style accuracy, CV (lead) | "
          "real-trained on generated (lead) |",
          "|---|---|---|---|---|---|---|"]
    cls = res["classifier"]
    for m in models:
        hit, total = _within(res, m, backed)
        lead = cls[m]["lead"]
        per_style = [lead_overlap(res, m, s) for s in backed]
        per_style = [v for v in per_style if math.isfinite(v)]
        lead_mean = sum(per_style) / len(per_style) if per_style else math.nan
        L.append(f"| {m} | {res['models'][m]['kind']} | {_f(lead_mean, 2)} "
                 f"| {_f(mean_overlap(res, m, backed), 2)} "
                 f"| {hit}/{total} | {_acc(lead, 'cv')} | {_acc(lead, 'real_to_gen')} |")
    left_out = {s: [k for k in METRICS if uninformative(res, s, k)] for s in backed}
    L += ["", "Lead-feature overlap: the Yang–Lerch overlap area on the seven lead-line "
          "features (below), averaged per style, then over the styles with real data "
          f"({', '.join(backed) or 'none'}); 1 means the generated lines sit among the real "
          "ones as the real ones sit among themselves. Band-metric overlap: the same over the "
          "MusPy/MuseGAN metrics of the whole arrangement, leaving out the features that are "
          "one constant for the real data and every model in a style (they tell nothing "
          "apart): " + "; ".join(f"{s}: {', '.join(ks) or 'none'}" for s, ks in left_out.items())
          + ". The band's rhythm features (drum-pattern rate, groove consistency) and its "
          "comping come from the rule-based arranger, which every melody model shares; the "
          "lead figures and the style classifier read the lead line only.", ""]
    if unbacked:
        L += [f"**No real reference for {', '.join(unbacked)}**: no held-out pieces of "
              "these styles were found (is the style corpus beside the checkout?), so they "
              "get generated figures only (no overlap area, no real-trained classifier).", ""]

    L += _lead_section(res, models, styles, plots)
    L += _form_section(res, models, styles)
    L += _harmony_section(res)
    L += _likelihood_section(res, models, plots)
    L += _real_section(res, styles)
    L += _metrics_section(res, models, styles, plots)
    L += _classifier_section(res, models, plots)
    L += _method_section(res, models)
    return "\n".join(L).rstrip() + "\n"


def _bars_section(res: Mapping[str, Any], models: Sequence[str], styles: Sequence[str],
                  backed: Sequence[str]) -> list[str]:
    """The issue's bars, each with the figure that decides it."""
    base = res["settings"].get("baseline")
    models = [m for m in models if m != base]  # the bars are the real models'
    L = ["## The bars", "",
         "| bar | figure | met |", "|---|---|---|"]
    cls = res["classifier"]
    acc = {m: (cls[m]["lead"].get("cv") or {}).get("accuracy") for m in models}
    best_m, best_acc = _best(acc)
    at_chance = [m for m in models if cls[m]["lead"].get("cv")
                 and cls[m]["lead"]["cv"]["accuracy"] <= cls[m]["lead"]["cv"]["chance"] + 1e-9]
    base_acc = (cls[base]["lead"].get("cv") or {}).get("accuracy") if base else None
    real_cv = (cls.get("real", {}).get("lead") or {}).get("cv")
    beside = [f"untrained baseline {_f(base_acc, 2)}"] if base else []
    if real_cv:
        beside.append(f"real held-out excerpts {_f(real_cv['accuracy'], 2)}"
                      + (", folds by piece" if real_cv.get("grouped") else ""))
    if best_m:
        c = cls[best_m]["lead"]["cv"]
        beside.append(f"chance {_f(c['chance'], 2)}, n={c['n']}")
    also = f" ({'; '.join(beside)})" if beside else ""
    L.append(f"| lead-only style classification, {len(styles)} styles, CV ≥ {CLASSIFIER_BAR:.2f} "
             f"for the best model | {best_m or 'n/a'} {_f(best_acc, 2)}{also} | "
             f"{_mark(None if not best_m else best_acc >= CLASSIFIER_BAR)} |")
    L.append(f"| no model at chance (lead CV) | {', '.join(at_chance) or 'none at chance'} | "
             f"{_mark(None if not best_m else not at_chance)} |")
    for s in styles:
        if s not in backed:
            L.append(f"| {s}: best mean lead-feature overlap ≥ {LEAD_BAR:.2f} | no real "
                     "reference | n/a |")
            continue
        m, v = _best({m: lead_overlap(res, m, s) for m in models})
        also = f" (untrained baseline {_f(lead_overlap(res, base, s), 2)})" if base else ""
        L.append(f"| {s}: best mean lead-feature overlap ≥ {LEAD_BAR:.2f} | {m or 'n/a'} "
                 f"{_f(v, 2)}{also} | {_mark(None if not m else v >= LEAD_BAR)} |")
    for s in backed:
        r = res["real"][s]["lead"]["repetition_rate"]
        ok = [m for m in models if repetition_within(res, m, s)]
        L.append(f"| {s}: repetition rate within real {_ms(r)} | "
                 f"{', '.join(ok) or 'no model'} within | {_mark(bool(ok))} |")
    nll = {m: v for m, v in (res.get("nll") or {}).items() if m in models}
    jazz_blues = [s for s in ("jazz", "blues") if s in styles]
    have = [m for m in nll if all(s in nll[m]["heldout"] for s in jazz_blues)]
    which = " and ".join(jazz_blues) or "jazz and blues"
    named = f" ({', '.join(have)})" if have else ""
    L.append(f"| held-out NLL per style for lstm/gru/rnn ({which} on real held-out solos) | "
             f"{len(have)} of {len(nll)} sequence models{named} | "
             f"{_mark(None if not nll or not jazz_blues else len(have) == len(nll))} |")
    if base:
        L += ["", f"`{base}` is {res['models'][base]['untrained_twin_of'] or 'a model'}'s "
              "configuration with random weights, scored beside the models: a figure it "
              "reaches as well comes from the pipeline around the model (the request's meter, "
              "the sampler's style idiom, the chord plan, the arranger's register and swing), "
              "not from what the model learned. It takes no part in the bars."]
    return [*L, ""]


def _feature_table(res: Mapping[str, Any], models: Sequence[str], style: str, group: str,
                   labels: Mapping[str, str], clips: bool = False) -> list[str]:
    """Feature rows of one style: the real mean ± sd, then each model's with its overlap area
    (``group``: "metrics" for the band, "lead" for the lead line)."""
    real = res["real"][style]
    L = ["| feature | real | " + " | ".join(models) + " |",
         "|---|---|" + "---|" * len(models)]
    if clips:
        L.append("| clips | " + str(real["clips"]) + " | " + " | ".join(
            str(res["generated"][m][style]["clips"]) for m in models) + " |")
    for k, label in labels.items():
        cells = []
        for m in models:
            g = res["generated"][m][style][group][k]
            oa = f" (OA {_f(g['overlap'], 2)})" if real["clips"] else ""
            cells.append(_ms(g) + oa)
        L.append(f"| {label} | {_ms(real[group][k])} | " + " | ".join(cells) + " |")
    return L


def _lead_section(res: Mapping[str, Any], models: Sequence[str], styles: Sequence[str],
                  plots: Mapping[str, Path]) -> list[str]:
    L = ["## Lead line against real lead lines", "",
         "The lead line of each generated clip (as the member hears it: after the arranger's "
         "register shift and, for jazz and blues, its swing) against the line of each real "
         "excerpt as the data has it: a WJD solo with its performed timing on the 1/12-beat "
         "grid (the models learn it straightened, and the arranger swings their lines), an "
         "Impro-Visor transcription as notated (straight eighths Impro-Visor plays swung, so "
         "it has no swing ratio of its own), a rag as engraved. Definitions: "
         "`models/zoo/lead_metrics.py` and *How the figures are computed*.", "",
         "### Mean overlap on the lead features, per style", "",
         "| model | " + " | ".join(styles) + " |", "|---|" + "---|" * len(styles)]
    for m in models:
        L.append(f"| {m} | " + " | ".join(_f(lead_overlap(res, m, s), 2) for s in styles)
                 + " |")
    base = res["settings"].get("baseline")
    best = [_best({m: lead_overlap(res, m, s) for m in models if m != base}) for s in styles]
    L.append(f"| **best**{' (not ' + base + ')' if base else ''} | "
             + " | ".join(f"{_f(v, 2)} ({m})" if m else "n/a" for m, v in best) + " |")
    L += ["", "### Repetition rate: real mean ± sd beside each model's mean", "",
          "✓: the model's mean lies within the real mean ± 1 sd.", "",
          "| style | real | " + " | ".join(models) + " |",
          "|---|---|" + "---|" * len(models)]
    for s in styles:
        r = res["real"][s]["lead"]["repetition_rate"]
        cells = []
        for m in models:
            g = res["generated"][m][s]["lead"]["repetition_rate"]
            cells.append("n/a" if not g["n"] else
                         f"{_f(g['mean'])} {_mark(repetition_within(res, m, s))}")
        L.append(f"| {s} | {_ms(r)} | " + " | ".join(cells) + " |")
    L.append("")
    for s in styles:
        L += [f"### {s}: lead features", ""]
        L += _feature_table(res, models, s, "lead", LEAD_LABELS)
        if f"lead_{s}" in plots:
            L += ["", f"![{s} lead features]({plots[f'lead_{s}'].name})"]
        L.append("")
    if "lead_overlap" in plots:
        L += [f"![lead-feature overlap]({plots['lead_overlap'].name})", ""]
    return L


def _form_section(res: Mapping[str, Any], models: Sequence[str],
                  styles: Sequence[str]) -> list[str]:
    form = res.get("form") or {}
    if not form.get("clips"):
        return []
    L = ["## Form: do returning sections come back?", "",
         f"Per model and style, {form['clips']} clips in the style's long form "
         "(`cadenza.evaluation.form_check.FORM_CLIPS`: "
         + ", ".join(f"{s} {form['models'][models[0]][s]['form'].upper()} over "
                     f"{form['models'][models[0]][s]['bars']} bars" for s in styles
                     if models and s in form["models"].get(models[0], {}))
         + "). For every bar of a section heard before: the Jaccard similarity of its "
         "(position, pitch) onsets with the same bar of the letter's first statement "
         "(**same**) and, averaged, with the bars at the same place in the sections of other "
         "letters (**other**); in brackets the share of those bars that repeat it exactly "
         "and the mean same of the rest (**varied**: a return that changes its first statement "
         "keeps this much of it; near 0 when the returns that are not copies are new lines, "
         "n/a when every return is a copy). A "
         "melody whose form comes back has same well above other; one that only knows where "
         "it is in the form has them alike. The real row reads pieces whose source marks "
         "their sections (WJD choruses, ...; sections inferred from a melody's repeats would "
         "find what they were inferred from); improvised solos rarely bring a chorus back.",
         "", "| model | " + " | ".join(styles) + " |", "|---|" + "---|" * len(styles)]

    def cell(d: Mapping[str, Any] | None) -> str:
        if not d or d.get("error") or not d.get("clips", d.get("pieces")):
            return "n/a"
        return (f"{_f(d.get('same'), 2)} / {_f(d.get('other'), 2)} ({_f(d.get('exact'), 2)}; "
                f"{_f(d.get('varied'), 2)})")

    for m in models:
        per = form["models"].get(m, {})
        L.append(f"| {m} | " + " | ".join(cell(per.get(s)) for s in styles) + " |")
    real = form.get("real") or {}
    L.append("| real (marked sections) | "
             + " | ".join(cell(real.get(s)) + (f", {real[s]['pieces']} pieces"
                                               if real.get(s, {}).get("pieces") else "")
                          for s in styles) + " |")
    return [*L, ""]


def _harmony_section(res: Mapping[str, Any]) -> list[str]:
    harmony = res.get("harmony") or {}
    if not harmony:
        return []
    cols = (*ROLES, "changes per bar", "chords per 8 bars")
    L = ["## Harmony: chord plans against real changes", "",
         "Per style the chord model writes, the share of chord changes in each role "
         "(relative to the key: tonic, any chord on I; dominant, V with a major third; "
         "secondary dominant, a dominant seventh leading to another chord of the key (V of "
         "IV, II, V, VI, III in major; of iv, V, VI, III in minor) or a major triad no "
         "chord of the key (II, III, VI, VII in major); minor; diminished; suspended; "
         "extended, a 9th or above), the changes per bar and the distinct chords per whole "
         "8 bars. Real: the annotated changes of the held-out solos (jazz, blues) and the "
         "chords read from both hands of the held-out rags (the evaluation-only Joplin "
         "edition; ragtime), those in the plans' meter (2/4 for ragtime, else 4/4). Chord "
         "model and rule-based: plans of "
         + ", ".join(f"{d['bars']} bars ({s})" for s, d in harmony.items())
         + " in the references' keys, in the style's usual form (a blues: 12-bar choruses, "
         "planned a chorus at a time, `cadenza.models.chord_model.choruses`; "
         "`cadenza.evaluation.harmony`); in "
         "brackets how many progressions each row reads. Blues, **12-bar blues**: the share "
         "of whole 12-bar choruses whose downbeats have at least 4 of its landmarks (I in bar "
         "1, IV in 5, I in 7, V or ii in 9, I in 11; 0.76 of the 161 blues charts, 154 of "
         "which the chord model learns from).", "",
         "| style | source | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for style, d in harmony.items():
        for source in ("real", "chord model", "rule-based"):
            row = d[source]
            L.append(f"| {style} | {source} ({row['progressions']}) | "
                     + " | ".join(_f(row[c], 2) for c in cols) + " |")
    blues = harmony.get("blues")
    if blues and "12-bar blues" in blues["real"]:
        L += ["", "12-bar blues: " + ", ".join(
            f"{source} {_f(blues[source]['12-bar blues'], 2)}"
            for source in ("real", "chord model", "rule-based")) + "."]
    return [*L, ""]


def _likelihood_section(res: Mapping[str, Any], models: Sequence[str],
                        plots: Mapping[str, Path]) -> list[str]:
    styles = res["settings"]["styles"]
    nll = res.get("nll") or {}
    nc = int("ragtime" in styles)  # the Joplin column
    L = ["## Held-out likelihood per style (sequence models)", "",
         "Computed here, per style, on the pieces of the fixed hashed 5% held-out split "
         "(`cadenza.models.training.dataset.is_heldout`, the split every trainer leaves out): "
         "whole pieces, "
         "encoded as training encodes them (`cadenza.models.training.dataset.encode_pieces`: "
         "REP_k repeats, "
         "per-step features with the form rows), untransposed; NLL per token in nats (all "
         "tokens; in brackets the tokens the sampler chooses), then the number of pieces. "
         "Jazz and blues are real held-out WJD solos and Impro-Visor transcriptions. The "
         "Joplin column is ragtime again, on the non-commercial Joplin edition's pieces "
         "outside the Mutopia titles, which no shipped model learns from (left out for a "
         "checkpoint trained with --include-nc).", "",
         "| model | " + " | ".join(styles) + (" | ragtime, Joplin (NC) |" if nc else " |"),
         "|---|" + "---|" * (len(styles) + nc)]
    rows = 0
    for m in models:
        if res["models"][m]["kind"] != "rnn" or m not in nll:
            continue
        rows += 1
        per = (nll.get(m) or {}).get("heldout") or {}
        cells = [_nll_cell(per.get(s)) for s in styles]
        if nc:
            cells.append(_nll_cell((nll.get(m) or {}).get("joplin_nc")))
        L.append(f"| {m} | " + " | ".join(cells) + " |")
    if not rows:
        L.append("| (no sequence models evaluated) |" + " |" * (len(styles) + nc))
    if "nll_styles" in plots:
        L += ["", f"![held-out NLL per style]({plots['nll_styles'].name})"]
    L += ["", "### As recorded at training", "",
          "Source: the checkpoint's `meta['heldout']`, written by `cadenza.models.training.train` "
          "at its "
          "best held-out step: every held-out sequence of every style together.", "",
          "| model | NLL / token (nats) | bits / token | perplexity | NLL, sampled tokens only "
          "| tokens |", "|---|---|---|---|---|---|"]
    for m in models:
        info = res["models"][m]
        if info["kind"] != "rnn":
            continue
        h = info["heldout"]
        nll_all = h.get("nll")
        if nll_all is None or not math.isfinite(nll_all):
            L.append(f"| {m} | n/a (no held-out figure in the checkpoint) | | | | |")
            continue
        L.append(f"| {m} | {_f(nll_all, 4)} | {_f(nll_all / math.log(2), 3)} | "
                 f"{_f(math.exp(nll_all), 2)} | {_f(h.get('nll_sampled'), 4)} | "
                 f"{h.get('tokens', 'n/a')} |")
    if "nll" in plots:
        L += ["", f"![held-out NLL]({plots['nll'].name})"]
    vaes = [m for m in models if res["models"][m]["kind"] == "vae"]
    if vaes:
        L += ["", "### VAE held-out reconstruction", "",
              "Source: the checkpoint's `meta['heldout']`, written by "
              "`cadenza.models.training.train_vae`: "
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
         f"Per style, {bars}-bar excerpts of held-out pieces: music21's corpus (folk, celtic, "
         "classical, its rags) in the hashed held-out split; for jazz and blues the held-out "
         "Weimar Jazz Database solos (`wjd`) and Impro-Visor transcriptions (`impro-visor`); "
         "for ragtime the held-out public-domain rags plus the CC BY-NC-SA Joplin edition "
         "(`joplin-nc`, evaluation only) without the "
         f"{len(NC_SAME_AS_MUTOPIA)} pieces whose title the public-domain Mutopia set also "
         "holds. Only pieces in a meter the style composes in (Joplin's waltzes and marches "
         f"are not ragtime's 2/4 or 4/4). Excerpts start on a bar line: back to back from "
         "the first bar of the piece's form (after a solo's pickup bars), each with at least "
         f"{MIN_EXCERPT_NOTES} notes. Pieces take turns, one excerpt each per round, until the "
         "style has as many clips as each model; a piece's excerpts are spread evenly over it "
         "(a long solo gives its opening, middle and closing choruses, not only its first). "
         "So the excerpts per piece are about clips ÷ pieces: one for the large corpora, "
         "several for the few held-out blues solos. Training pieces would be used only when "
         "the held-out ones run out (the table says when).", "",
         "| style | real clips | from held-out pieces | held-out pieces used / available | "
         "excerpts per piece | sources (pieces) | training pieces used / available | "
         "pieces in other meters | pieces too short | note |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for s in styles:
        r = res["real"][s]
        per = sorted((r.get("per_piece") or {}).values())
        span = "n/a" if not per else (f"{per[0]}" if per[0] == per[-1] else
                                      f"{per[0]}-{per[-1]}")
        src = ", ".join(f"{k} {v}" for k, v in sorted((r.get("sources") or {}).items()))
        L.append(f"| {s} | {r['clips']} | {r['heldout_clips']} | {r['heldout_pieces']} / "
                 f"{r['available_heldout']} | {span} | {src or 'n/a'} | "
                 f"{r['training_pieces']} / {r['available_training']} | "
                 f"{r['skipped_pieces']} | {r.get('short_pieces', 0)} | {r['reason'] or ''} |")
    return [*L, "", "The pieces and excerpts of every style: `results.json`, "
            "`real.<style>.per_piece`.", ""]


def _metrics_section(res: Mapping[str, Any], models: Sequence[str], styles: Sequence[str],
                     plots: Mapping[str, Path]) -> list[str]:
    L = ["## Band metrics (the whole arrangement)", "",
         "Per style: the real clips' mean ± sd beside each model's mean ± sd, and in brackets "
         "the Yang–Lerch overlap area (OA) of that feature. The chords, bass and drums lanes "
         "come from the arranger for every melody model and for the real excerpts alike; "
         "they follow the chord plan (the chord model's or the rule-based one, against the "
         "real excerpt's own changes) and the lead.", ""]
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
        L += _feature_table(res, models, s, "metrics", {k: LABELS.get(k, k) for k in METRICS},
                            clips=True)
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
         "Multinomial logistic regression (numpy, L2 0.1, 1500 full-batch gradient steps; "
         "features standardised on the training fold) on clip-level features. *Band* features see"
         " the whole arrangement, which the arranger makes style-typical by rule (drums, comping,"
         " swing, tempo), so they separate styles for any model; *lead* features see only the "
         "lead line, the part a melody model writes, and are the fairer test of the model: "
         f"{len(FEATURE_NAMES)} figures a musicologist reads off a line "
         "(`cadenza.models.zoo.lead_features`: key-relative scale degrees, chromaticism, "
         "intervals, contour, inter-onset intervals, onset phase in the beat, swing, syncopation,"
         " articulation, phrasing, n-gram recurrence), none of which reads the chords, the "
         "register or the meter. Even so, the sampler's per-style idiom (tonic and chord-tone "
         "bias, pitch range), the chord plan the line follows and the arranger's swing shape "
         "every model's lead, so random-weight models already score well above chance on lead "
         "features: compare models with each other and with the real excerpts, not with chance. "
         "The classifier's settings were "
         "fixed on real training-set excerpts, never on the generated clips scored here.", "",
         "(a) Cross-validated accuracy telling the styles apart among one set of clips "
         "(stratified 5-fold; the real excerpts' folds keep each piece's excerpts together, so "
         "no test excerpt is named by its own piece's other excerpts: a few held-out pieces "
         "give several excerpts each; generated clips are one seed each). (b) Trained on the "
         "real arranged clips of the data-backed styles, tested on the model's clips of those "
         "styles. Chance: the commonest style's share (a), one over the number of real styles "
         "(b). When (b) puts nearly every generated clip in one style, the generated clips lie "
         "outside the real clips' range on some features (see the metric tables: entropy, "
         "scale consistency) and the linear classifier extrapolates to the most extreme real "
         "style. Real lead lines of jazz and blues are WJD solos and Impro-Visor "
         "transcriptions alike, improvised by the same players in the same idiom: on these "
         "features they are the pair the real clips confuse most (see the real confusion "
         "matrix), which caps (a) for the real clips.", "",
         "| clips | CV, band | CV, lead | real-trained → generated, band | "
         "real-trained → generated, lead |", "|---|---|---|---|---|"]
    for key in ["real", *models]:
        c = cls[key]
        name = "real (held-out excerpts)" if key == "real" else key
        L.append(f"| {name} | {_acc(c['band'], 'cv')} | {_acc(c['lead'], 'cv')} | "
                 f"{_acc(c['band'], 'real_to_gen')} | {_acc(c['lead'], 'real_to_gen')} |")
    L.append("")
    for key in ["real", *models]:
        if f"confusion_{key}" in plots:
            L += [f"![confusion {key}]({plots[f'confusion_{key}'].name})", ""]
    return L


def _method_section(res: Mapping[str, Any], models: Sequence[str]) -> list[str]:
    L = ["## How the figures are computed", "",
         "- Generated clips come from `Composer.compose`, as a member would get them: a melody "
         "model's line over the style's chord plan (the chord model's, or the rule-based "
         "plan), in the style's default form, arranged by `cadenza.arrange`; the GAN's four parts "
         "restyled by the arranger's instrumentation path, in 4/4.",
         "- **Lead-line features** (`models/zoo/lead_metrics.py`; a line is its notes on the "
         "1/12-beat grid, one per onset, the top one when several start together): "
         "*pitch-class entropy*, Shannon entropy in bits of the notes' pitch classes, each "
         "note once; *scale consistency*, the largest share of notes inside one major scale "
         "(or its relative minor) over the 12 transpositions; *swing ratio*, the geometric "
         "mean of long/short over the line's eighth-note pairs, where a pair is three "
         "consecutive onsets a < u < c in a x/4 meter with a within one step (1/12 beat) of "
         "a beat line b, c within one step of b + 12 and u on steps 4-9 of the beat, and its "
         "ratio is (u − a)/(c − u): 1 straight, 2 triplet swing, 3 dotted eighth + "
         "sixteenth; NaN without a pair (and in x/8 meters); *notes per bar*, onsets per bar; "
         "*pitch range*, highest minus lowest pitch in semitones; *chord vocabulary*, the "
         "number of distinct chord symbols (root and quality) in the clip's chord timeline "
         "(the chord sounding at its start and every change); *repetition rate* "
         "(`cadenza.music.form.repetition_rate`), the share of non-empty bars after the first "
         "that repeat an earlier bar of the clip exactly (same onsets, positions and pitches). A "
         "generated line is the arranged lead track brought back to the grid; a real line is "
         "the excerpt's notes and chords as the data has them (WJD solos with their "
         "performed swing; Impro-Visor transcriptions without a swing ratio, being notated "
         "straight and played swung).",
         "- Overlap area (Yang & Lerch 2018, `cadenza.models.zoo.metrics.compare`): per feature, "
         "the "
         "pairwise distances within the real set and between real and generated clips, each "
         "smoothed by a Gaussian KDE; OA is the area under the smaller density. Clips where "
         "a feature is undefined are left out of that feature.",
         "- Band metrics (`cadenza.models.zoo.metrics.clip_metrics`, MusPy / MuseGAN definitions, "
         "on "
         "the 4-lane piano roll of the arranged clip, 12 steps per quarter, cut to the meter's "
         "bar): pitch-class entropy and scale consistency over the pitched lanes; groove "
         "consistency and empty-beat rate over all lanes; pitch classes used per bar (UPC) "
         "and qualified-note rate (notes ≥ 2 steps) per pitched lane; drum-pattern rate; "
         "tonal distance between lane pairs; polyphony of the chords lane; empty-bar rate per "
         "lane. The real excerpts are arranged the same way as generated lines (for jazz and "
         "blues the arranger swings the already swung solos, as it does the models' lines).",
         "- Held-out NLL per style: `cadenza.models.training.heldout.style_nll`, the training "
         "loop's own "
         "`evaluate` on each style's held-out pieces.",
         "- Classifier features: *lead* (`cadenza.models.zoo.lead_features.lead_vector`, the lead "
         f"line alone, {len(FEATURE_NAMES)} values): pitch-class entropy, scale consistency, swing"
         " ratio, pitch range, repetition rate; key-relative scale-degree shares (12), chromatic "
         "share (notes outside the key's scale), blue third (the smaller of the minor and major "
         "third's shares), ending on the tonic; shares of 11 interval classes, mean |interval|, "
         "chromatic runs and arpeggios (two semitone steps, two thirds, the same way); contour "
         "(upward share, turning points per move, mean run); notes per beat, onsets by step of "
         "the beat (12), inter-onset intervals in 10 classes with their entropy and log sd, "
         "articulation (duration over inter-onset interval), syncopation (notes starting off the "
         "beat and sounding over the next beat line), rest share, phrases per four beats (split "
         "by silences of a beat); recurrence of interval and rhythm 3-grams, variety of interval "
         "2-grams. Left out: chord vocabulary (the chord plan's), register (the arranger moves "
         "every lead into the style's range) and what reads the bar length (the request draws the"
         " meter from the style; the model does not write it). *band*: every band metric, "
         "key-relative pitch-class histogram, onset positions of all lanes, notes per bar per "
         "lane, tempo. Multinomial logistic "
         "regression, standardised on the training fold, NaN filled with training means."]
    return [*L, ""]
