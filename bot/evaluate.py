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

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.arrange import arrange
from bot.errors import ResourceError, UserError
from bot.styles import STYLE_NAMES, STYLES
from models.corpus import Piece
from models.dataset import is_heldout
from models.errors import ModelError
from models.metrics import (
    TRACK_PAIRS,
    clip_metrics,
    compare,
    empty_beat_rate,
    groove_consistency,
    onsets,
    pitch_class_entropy,
    pitch_class_histogram,
    qualified_note_rate,
    scale_consistency,
    used_pitch_classes,
)
from models.registry import ModelRegistry
from models.roll import DRUMS, LEAD, ROLES, STEPS_PER_BEAT, RollError, bar_steps, encode, runs
from models.score import Note, Score
from models.theory import Chord, Key

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
CorpusSource = Sequence[Piece] | Callable[[], Sequence[Piece]]

MAX_CLIPS = 500
MAX_BARS = 48
SEED_STRIDE = 1_000_003  # clip i of a run with seed s uses seed s * SEED_STRIDE + i

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
FEATURE_SETS = ("band", "lead")


# ---------------------------------------------------------------- clips


@dataclass
class Clip:
    """One scored clip: its roll trimmed to the meter's bar length, metrics, classifier inputs."""

    style: str
    source: str
    meter: tuple[int, int]
    metrics: dict[str, float]
    features: dict[str, np.ndarray]


def clip_from_score(score: Score, style: str, source: str) -> Clip | None:
    """Score -> Clip, or None for meters the roll cannot hold (9/8, 12/8 bars exceed 48 steps)."""
    try:
        per_bar = bar_steps(score.time_signature)
        rolls = encode(score)[:, :, :per_bar]  # drop the lane padding after short bars
    except RollError:
        return None
    metrics = clip_metrics(rolls, steps_per_bar=per_bar)
    return Clip(style, source, tuple(score.time_signature), metrics,
                clip_features(rolls, metrics, score.key, score.tempo))


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


def _intervals(lane: np.ndarray) -> np.ndarray:
    """Mean |interval|, share of steps (<= 2 semitones) and leaps (>= 5) of a melodic line."""
    starts, _, pitches = runs(lane)
    order = np.lexsort((-pitches, starts))  # by onset, top note first
    s, p = starts[order], pitches[order]
    keep = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, dtype=bool)
    d = np.abs(np.diff(p[keep]))
    if len(d) == 0:
        return np.full(3, math.nan)
    return np.array([d.mean(), np.mean(d <= 2), np.mean(d >= 5)])


def clip_features(rolls: np.ndarray, metrics: Mapping[str, float], key: Key,
                  tempo: float) -> dict[str, np.ndarray]:
    """Classifier inputs of one clip (rolls: (bars, 4, bar steps, pitches)).

    ``band``: every metric, key-relative pitch-class histogram of the pitched lanes, onset
    positions of all lanes, notes per bar per track, tempo. ``lead``: the same kinds of figure
    for the lead lane alone (the part a melody model writes), plus its interval profile;
    register is left out because the arranger moves the lead into the style's range.
    """
    bars, _, per_bar, _ = rolls.shape
    flat = rolls.transpose(1, 0, 2, 3).reshape(len(ROLES), bars * per_bar, -1)
    pitched, lead = flat[:DRUMS].any(axis=0), flat[LEAD]
    density = np.array([onsets(flat[i]).sum() / max(1, bars) for i in range(len(ROLES))])
    band = np.concatenate([
        [metrics[m] for m in METRICS], _relative_pc(pitched, key),
        _onset_positions(flat.any(axis=0), per_bar), density, [tempo / 100.0],
    ])
    lead_figures = [
        pitch_class_entropy(lead), scale_consistency(lead), used_pitch_classes(lead, per_bar),
        qualified_note_rate(lead), empty_beat_rate(lead), groove_consistency(lead, per_bar),
        density[LEAD],
    ]
    lead_vec = np.concatenate([lead_figures, _relative_pc(lead, key),
                               _onset_positions(lead, per_bar), _intervals(lead)])
    return {"band": band.astype(float), "lead": lead_vec.astype(float)}


# ---------------------------------------------------------------- generated clips


@dataclass
class Generated:
    clips: list[Clip] = field(default_factory=list)
    skipped_seeds: int = 0  # seeds whose drawn meter the roll cannot hold (9/8)
    error: str | None = None


def generate(composer, model: str, style: str, n: int, bars: int, seed: int,  # type: ignore[no-untyped-def]
             ) -> Generated:
    """``n`` scored clips of one model and style from seeds ``seed * SEED_STRIDE + i``, through
    ``Composer.compose`` (what a member would get, arrangement included).

    Seeds whose drawn meter does not fit the roll are skipped for every model alike, so the
    sets stay paired. A model that cannot play the style gives no clips and an error note.
    """
    from bot.service import ComposeRequest

    out = Generated()
    i = 0
    while len(out.clips) < n and i < 4 * n + 8:
        s = seed * SEED_STRIDE + i
        i += 1
        r = composer.resolve(ComposeRequest(style=style, bars=bars, seed=s, model=model))
        try:
            bar_steps(r.meter)
        except RollError:
            out.skipped_seeds += 1
            continue
        try:
            score = composer.compose(r).score
        except UserError as e:
            out.error = str(e)
            break
        clip = clip_from_score(score, style, f"seed {s}")
        if clip is None:
            out.skipped_seeds += 1
            continue
        out.clips.append(clip)
    return out


# ---------------------------------------------------------------- real reference


@dataclass
class Reference:
    clips: list[Clip] = field(default_factory=list)
    heldout_pieces: int = 0
    training_pieces: int = 0
    heldout_clips: int = 0
    skipped_pieces: int = 0  # meter too long for the roll, or shorter than one excerpt
    available_heldout: int = 0
    available_training: int = 0
    reason: str | None = None


def _excerpt(piece: Piece, start_bar: int, bars: int, rng: np.random.Generator,
             tempo: float) -> Score:
    """Bars ``start_bar`` .. + ``bars`` of a corpus melody, arranged as a generated one is."""
    bt = piece.bar_ticks
    lo, hi = start_bar * bt, (start_bar + bars) * bt
    melody = [Note(s - lo, min(d, hi - s), p, 88) for s, d, p in piece.notes if lo <= s < hi]
    plan: list[tuple[int, Chord]] = []
    for t, name in piece.chords:  # the chord sounding at the excerpt's start, then changes
        if t <= lo:
            plan = [(0, Chord.parse(name))]
        elif t < hi:
            plan.append((t - lo, Chord.parse(name)))
    spec = STYLES[piece.style]
    return arrange(melody, plan, spec=spec, meter=piece.meter, bars=bars, tempo=tempo,
                   key=piece.key, rng=rng)


def real_reference(pieces: Sequence[Piece], style: str, n: int, bars: int,
                   seed: int = 0) -> Reference:
    """Up to ``n`` arranged ``bars``-bar excerpts of the style's corpus pieces.

    Held-out pieces come first, round-robin (every piece's first excerpt before any piece's
    second), then training pieces only if the held-out ones run out; the order within each
    group is a seeded shuffle. Tempos are drawn from the style's range, as ``resolve`` does.
    """
    ref = Reference()
    if style not in STYLES:
        raise UserError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
    mine = sorted((p for p in pieces if p.style == style), key=lambda p: p.source)
    if not mine:
        ref.reason = f"the corpus has no {style} pieces"
        return ref
    usable = []
    for p in mine:
        try:
            bar_steps(p.meter)
        except RollError:
            ref.skipped_pieces += 1
            continue
        if p.bars < bars:
            ref.skipped_pieces += 1
            continue
        usable.append(p)
    held = [p for p in usable if is_heldout(p.source)]
    train = [p for p in usable if not is_heldout(p.source)]
    ref.available_heldout, ref.available_training = len(held), len(train)
    rng = np.random.default_rng([seed, STYLE_NAMES.index(style), 1])
    lo, hi = STYLES[style].tempo_range
    used: set[str] = set()
    for group in (held, train):
        order = [group[i] for i in rng.permutation(len(group))]
        for k in range(max((p.bars // bars for p in order), default=0)):
            if len(ref.clips) >= n:
                break
            for p in order:
                if len(ref.clips) >= n:
                    break
                if k >= p.bars // bars:
                    continue
                tempo = float(int(lo + rng.random() * (hi - lo + 1)))
                arr_rng = np.random.default_rng([seed, STYLE_NAMES.index(style), 2,
                                                 len(ref.clips)])
                try:
                    score = _excerpt(p, k * bars, bars, arr_rng, tempo)
                except ValueError as e:  # an unparsable chord name in a user's folder
                    log.debug("skipping %s: %s", p.source, e)
                    continue
                clip = clip_from_score(score, style, f"{p.source} bars {k * bars + 1}-"
                                       f"{(k + 1) * bars}")
                if clip is None:
                    continue
                ref.clips.append(clip)
                used.add(p.source)
                if group is held:
                    ref.heldout_clips += 1
    ref.heldout_pieces = len(used & {p.source for p in held})
    ref.training_pieces = len(used) - ref.heldout_pieces
    if not ref.clips:
        ref.reason = (f"no {style} piece is {bars}+ bars long in a meter the piano roll holds")
    return ref


# ---------------------------------------------------------------- style classifier


class LogisticClassifier:
    """Multinomial logistic regression (softmax, L2) by full-batch gradient descent in numpy.

    Features are standardised with the training set's statistics (and clipped to +-CLIP sd, so
    a feature nearly constant in training cannot decide a test clip alone) and NaNs filled with
    its column means; the step is 1 / (Lipschitz bound of the gradient), so training converges
    without tuning and is deterministic.
    """

    CLIP = 5.0

    def __init__(self, l2: float = 1e-2, iterations: int = 400) -> None:
        self.l2, self.iterations = l2, iterations

    def _prep(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), self.fill, x)
        return np.clip((x - self.mean) / self.scale, -self.CLIP, self.CLIP)

    def fit(self, x: np.ndarray, y: np.ndarray, classes: int) -> LogisticClassifier:
        x = np.asarray(x, dtype=float)
        seen = (~np.isnan(x)).sum(axis=0)
        self.fill = np.nansum(x, axis=0) / np.maximum(seen, 1)  # 0 for an all-NaN column
        x = np.where(np.isnan(x), self.fill, x)
        self.mean = x.mean(axis=0)
        sd = x.std(axis=0)
        self.scale = np.where(sd > 1e-9, sd, 1.0)
        z = np.c_[self._prep(x), np.ones(len(x))]
        onehot = np.eye(classes)[y]
        n = len(z)
        step = 1.0 / (0.5 * np.linalg.norm(z, 2) ** 2 / n + self.l2)
        w = np.zeros((z.shape[1], classes))
        for _ in range(self.iterations):
            logits = z @ w
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            grad = z.T @ (p - onehot) / n
            grad[:-1] += self.l2 * w[:-1]  # the bias row is not shrunk
            w -= step * grad
        self.w = w
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.c_[self._prep(np.asarray(x, dtype=float)), np.ones(len(x))]
        return np.argmax(z @ self.w, axis=1)


@dataclass
class ClassifierResult:
    accuracy: float
    confusion: np.ndarray  # (true, predicted) counts
    labels: list[str]
    n: int
    chance: float  # CV: the commonest style's share; train/test: 1 / styles trained on
    folds: int = 0  # 0: one train/test split

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "chance": self.chance, "n": self.n,
                "folds": self.folds, "labels": self.labels,
                "confusion": self.confusion.astype(int).tolist()}


def cross_validate(x: np.ndarray, y: Sequence[str], folds: int = 5, seed: int = 0,
                   ) -> ClassifierResult | None:
    """Stratified k-fold accuracy (k = min(folds, smallest class)); None below 2 per class or
    with fewer than two classes."""
    labels = sorted(set(y))
    yi = np.array([labels.index(v) for v in y])
    counts = np.bincount(yi, minlength=len(labels))
    k = min(folds, int(counts.min()) if len(counts) else 0)
    if len(labels) < 2 or k < 2:
        return None
    rng = np.random.default_rng(seed)
    fold = np.empty(len(yi), dtype=int)
    for c in range(len(labels)):
        idx = rng.permutation(np.nonzero(yi == c)[0])
        fold[idx] = np.arange(len(idx)) % k
    pred = np.empty_like(yi)
    for f in range(k):
        test = fold == f
        model = LogisticClassifier().fit(x[~test], yi[~test], len(labels))
        pred[test] = model.predict(x[test])
    return _result(yi, pred, labels, float(counts.max() / counts.sum()), folds=k)


def train_test(x_train: np.ndarray, y_train: Sequence[str], x_test: np.ndarray,
               y_test: Sequence[str]) -> ClassifierResult | None:
    """Train on one set, test on another; labels are the training set's."""
    labels = sorted(set(y_train))
    test = [i for i, v in enumerate(y_test) if v in labels]
    if len(labels) < 2 or not test:
        return None
    model = LogisticClassifier().fit(x_train, np.array([labels.index(v) for v in y_train]),
                                     len(labels))
    yt = np.array([labels.index(y_test[i]) for i in test])
    # the test set may hold only some of the styles, so chance is the classifier's own
    return _result(yt, model.predict(x_test[test]), labels, 1.0 / len(labels))


def _result(y: np.ndarray, pred: np.ndarray, labels: list[str], chance: float,
            folds: int = 0) -> ClassifierResult:
    conf = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(conf, (y, pred), 1)
    return ClassifierResult(float(np.mean(y == pred)), conf, labels, len(y), chance, folds)


def _matrix(clips: Sequence[Clip], kind: str) -> np.ndarray:
    return np.stack([c.features[kind] for c in clips])


# ---------------------------------------------------------------- the run


@dataclass
class ModelInfo:
    name: str
    kind: str
    sha256: str
    styles: list[str]
    meta: dict[str, Any]


def _check(models: Sequence[str] | None, styles: Sequence[str] | None, clips: int, bars: int,
           names: Sequence[str]) -> tuple[list[str], list[str]]:
    if not 2 <= clips <= MAX_CLIPS:
        raise UserError(f"clips must be 2-{MAX_CLIPS} (the overlap area needs pairs), got {clips}")
    if not 1 <= bars <= MAX_BARS:
        raise UserError(f"bars must be 1-{MAX_BARS}, got {bars}")
    if not names:
        raise UserError("no models installed: train one (cadenza train) or set CADENZA_MODELS")
    models = list(dict.fromkeys(models or names))
    if bad := [m for m in models if m not in names]:
        raise UserError(f"unknown model {bad[0]!r} (available: {', '.join(names)})")
    styles = list(dict.fromkeys(styles or STYLE_NAMES))
    if bad := [s for s in styles if s not in STYLES]:
        raise UserError(f"unknown style {bad[0]!r}: choose from {', '.join(STYLE_NAMES)}")
    return models, styles


def _load_corpus(corpus: CorpusSource | None, note: Callable[[str], None]) -> list[Piece]:
    if corpus is not None:
        return list(corpus() if callable(corpus) else corpus)
    from models.corpus import load_corpus

    note("loading the offline corpus (cached; the first run extracts it for minutes)")
    # all styles: load_corpus keys its cache by the style list, so a subset would re-extract
    return load_corpus()


def run_evaluation(
    out_dir: Path,
    *,
    models: list[str] | None = None,
    styles: list[str] | None = None,
    clips: int = 24,
    bars: int = 8,
    seed: int = 0,
    registry: ModelRegistry | None = None,
    progress: Progress | None = None,
    corpus: CorpusSource | None = None,
) -> Path:
    """Evaluate ``models`` (default: all installed) on ``styles`` (default: all six); write
    ``report.md``, ``results.json`` and PNG plots into ``out_dir``; return the report's path.

    ``corpus`` (pieces, or a function returning them) replaces the offline corpus as the real
    reference. The same arguments give the same report.
    """
    from bot.service import Composer

    def note(msg: str) -> None:
        log.info(msg)
        if progress is not None:
            progress(msg)

    if registry is None:
        registry = ModelRegistry.discover()
    models, styles = _check(models, styles, clips, bars, registry.names())
    composer = Composer(registry)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    info: dict[str, ModelInfo] = {}
    for m in models:
        try:
            loaded = registry.get(m)
        except ModelError as e:  # a corrupt or mismatched checkpoint: say which, stop early
            raise ResourceError(str(e)) from None
        info[m] = ModelInfo(m, loaded.kind, loaded.sha256, list(loaded.styles),
                            dict(loaded.meta))

    pieces = _load_corpus(corpus, note)
    refs: dict[str, Reference] = {}
    for s in styles:
        refs[s] = real_reference(pieces, s, clips, bars, seed)
        note(f"real {s}: {len(refs[s].clips)} clips" +
             (f" ({refs[s].reason})" if refs[s].reason else ""))

    gen: dict[str, dict[str, Generated]] = {}
    for m in models:
        gen[m] = {}
        for s in styles:
            note(f"generating {m} / {s}: {clips} clips of {bars} bars")
            gen[m][s] = generate(composer, m, s, clips, bars, seed)

    results = _results(info, refs, gen, styles, clips, bars, seed)
    note("classifying styles")
    results["classifier"], conf = _classify(refs, gen, models, styles, seed)
    note("plotting")
    plots = _plots(out_dir, results, conf, models, styles)
    (out_dir / "results.json").write_text(json.dumps(_plain(results), indent=1,
                                                     sort_keys=True) + "\n")
    report = out_dir / "report.md"
    report.write_text(render_report(results, plots))
    note(f"wrote {report}")
    return report


def _summary(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    a = a[~np.isnan(a)]
    if not len(a):
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std()), "n": len(a)}


def _results(info: Mapping[str, ModelInfo], refs: Mapping[str, Reference],
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


def _classify(refs: Mapping[str, Reference], gen: Mapping[str, Mapping[str, Generated]],
              models: Sequence[str], styles: Sequence[str], seed: int,
              ) -> tuple[dict[str, Any], dict[str, dict[str, ClassifierResult]]]:
    """(a) per model, cross-validated accuracy over its generated clips of every style;
    (b) trained on the real arranged clips, tested on the model's clips of those styles;
    plus the real clips' own cross-validated accuracy, the ceiling (b) can hope for."""
    out: dict[str, Any] = {}
    conf: dict[str, dict[str, ClassifierResult]] = {}
    real = [c for s in styles for c in refs[s].clips]
    for key, clips_of in [("real", None), *((m, m) for m in models)]:
        out[key], conf[key] = {}, {}
        own = real if clips_of is None else [c for s in styles for c in gen[clips_of][s].clips]
        for kind in FEATURE_SETS:
            entry: dict[str, Any] = {}
            if own:
                cv = cross_validate(_matrix(own, kind), [c.style for c in own], seed=seed)
                if cv is not None:
                    entry["cv"] = cv.to_json()
                    conf[key][f"cv_{kind}"] = cv
            if clips_of is not None and real and own:
                tt = train_test(_matrix(real, kind), [c.style for c in real],
                                _matrix(own, kind), [c.style for c in own])
                if tt is not None:
                    entry["real_to_gen"] = tt.to_json()
                    conf[key][f"real_to_gen_{kind}"] = tt
            out[key][kind] = entry
    return out, conf


def _plain(x: Any) -> Any:
    """JSON-safe: NaN -> null, numpy scalars -> Python numbers."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ---------------------------------------------------------------- plots


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


def _plots(out_dir: Path, res: Mapping[str, Any],
           conf: Mapping[str, Mapping[str, ClassifierResult]], models: Sequence[str],
           styles: Sequence[str]) -> dict[str, Path]:
    plots: dict[str, Path] = {}
    for s in styles:
        plots[f"features_{s}"] = _plot_features(out_dir / f"features_{s}.png", res, models, s)
    backed = [s for s in styles if res["real"][s]["clips"]]
    if backed:
        plots["overlap"] = _plot_overlap(out_dir / "overlap.png", res, models, backed)
    nll = {m: res["models"][m]["heldout"].get("nll") for m in models}
    if any(v is not None for v in nll.values()):
        plots["nll"] = _plot_nll(out_dir / "nll.png", nll)
    for m in ["real", *models]:
        if conf.get(m):
            plots[f"confusion_{m}"] = _plot_confusion(out_dir / f"confusion_{m}.png", m, conf[m])
    return plots


def _plot_features(path: Path, res: Mapping[str, Any], models: Sequence[str], style: str) -> Path:
    cols = 4
    rows = -(-len(METRICS) // cols)
    fig = _figure(4 * cols, 2.6 * rows)
    real = res["real"][style]["metrics"]
    x = np.arange(len(models))
    for i, k in enumerate(METRICS):
        ax = fig.add_subplot(rows, cols, i + 1)
        r = real[k]
        if res["real"][style]["clips"] and not math.isnan(r["mean"]):
            ax.axhspan(r["mean"] - r["std"], r["mean"] + r["std"], color="0.85", zorder=0)
            ax.axhline(r["mean"], color="0.4", lw=1, zorder=1)
        g = [res["generated"][m][style]["metrics"][k] for m in models]
        ax.bar(x, [v["mean"] for v in g], yerr=[v["std"] for v in g], color="tab:blue",
               alpha=0.8, capsize=3, zorder=2)
        ax.set_xticks(x, list(models), fontsize=8, rotation=30)
        ax.set_title(LABELS.get(k, k), fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        shown = [v["mean"] for v in g] + [r["mean"]]
        if all(math.isnan(v) or abs(v) < 1e-9 for v in shown):
            ax.set_ylim(-0.05, 1.0)  # all zero: a readable 0-1 scale, not +-0.05 or 1e-17
    band = "grey band: real mean ± sd" if res["real"][style]["clips"] else "no real reference"
    fig.suptitle(f"{style}: generated mean ± sd per model ({band})", fontsize=11)
    # fixed margins: tight_layout over a grid this size costs more than drawing it
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.05, top=0.93, hspace=0.75, wspace=0.25)
    return _save(fig, path, tight=False)


def _plot_overlap(path: Path, res: Mapping[str, Any], models: Sequence[str],
                  backed: Sequence[str]) -> Path:
    grid = np.array([[_mean_overlap(res, m, backed, [k]) for k in METRICS] for m in models])
    fig = _figure(1.0 + 0.55 * len(METRICS), 1.8 + 0.45 * len(models))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(METRICS)), [LABELS.get(k, k) for k in METRICS], rotation=60,
                  ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), list(models), fontsize=9)
    for (i, j), v in np.ndenumerate(grid):
        if not math.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.02)
    ax.set_title(f"Yang-Lerch overlap area (1 = like the real data), mean over "
                 f"{', '.join(backed)}", fontsize=10)
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


# ---------------------------------------------------------------- report


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _ms(d: Mapping[str, float]) -> str:
    return "n/a" if not d.get("n") else f"{_f(d['mean'])} ± {_f(d['std'])}"


def _mean_overlap(res: Mapping[str, Any], model: str, styles: Sequence[str],
                  metrics: Sequence[str] = METRICS) -> float:
    v = [res["generated"][model][s]["metrics"][k]["overlap"] for s in styles for k in metrics]
    v = [x for x in v if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _within(res: Mapping[str, Any], model: str, styles: Sequence[str]) -> tuple[int, int]:
    """(features whose generated mean lies within the real mean ± sd, features compared)."""
    hit = total = 0
    for s in styles:
        for k in METRICS:
            r, g = res["real"][s]["metrics"][k], res["generated"][model][s]["metrics"][k]
            if r["n"] and g["n"]:
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
        L.append(f"| {m} | {res['models'][m]['kind']} | {_f(_mean_overlap(res, m, backed), 2)} "
                 f"| {hit}/{total} | {_acc(lead, 'cv')} | {_acc(lead, 'real_to_gen')} |")
    L += ["", "Mean overlap area: Yang–Lerch overlap averaged over every metric and every "
          f"style with real data ({', '.join(backed) or 'none'}); 1 means the generated clips "
          "sit among the real ones as the real ones sit among themselves.", ""]
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
