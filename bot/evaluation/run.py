"""The evaluation driver: check arguments, load models and corpora, score, classify, measure
held-out likelihood per style, write the report, its plots and the listening page."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from cadenza.errors import ResourceError, UserError
from cadenza.evaluation.classifier import classify
from cadenza.evaluation.data import Generated, generate
from cadenza.evaluation.form_check import measure_form, real_form
from cadenza.evaluation.harmony import measure_harmony
from cadenza.evaluation.listen import write_listening
from cadenza.evaluation.plots import write_plots
from cadenza.evaluation.references import (
    Reference,
    is_reference,
    nc_trained,
    real_reference,
)
from cadenza.evaluation.report import write_report
from cadenza.evaluation.results import ModelInfo, build_results, json_safe
from cadenza.models.errors import ModelError
from cadenza.models.registry import ModelRegistry
from cadenza.models.training.corpus import Piece
from cadenza.models.training.dataset import is_heldout
from cadenza.models.training.style_corpus import source_kind
from cadenza.styles import STYLE_NAMES, STYLES

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
CorpusSource = Sequence[Piece] | Callable[[], Sequence[Piece]]

MAX_CLIPS = 500
MAX_BARS = 48
BASELINE = "untrained"  # the random-weight twin of the first sequence model evaluated


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


def _load_corpus(corpus: CorpusSource | None, data: Path | None, use_corpus: bool,
                 note: Callable[[str], None]) -> tuple[list[Piece], list[Piece]]:
    """(pieces as the models learn them, pieces as the references use them): ``corpus`` for
    both when given (tests), else music21's corpus (unless ``use_corpus`` is off), the style
    corpus (``data`` or the default beside the checkout) and, as evaluation-only ragtime, its
    non-commercial Joplin edition. The two differ in the WJD solos only: the models learn them
    straightened, the references keep the performed swing."""
    if corpus is not None:
        pieces = list(corpus() if callable(corpus) else corpus)
        return pieces, pieces
    from cadenza.models.training.corpus import load_corpus
    from cadenza.models.training.style_corpus import (
        default_style_corpus,
        rag_pieces,
        style_corpus_pieces,
        wjd_pieces,
    )

    pieces: list[Piece] = []
    if use_corpus:
        note("loading the offline corpus (cached; the first run extracts it for minutes)")
        # all styles: load_corpus keys its cache by the style list, so a subset would re-extract
        pieces = load_corpus()
    root = data or default_style_corpus()
    if root is None or not (root / "MANIFEST.md").is_file():
        note("no style corpus (../shared/style-corpus or --data): jazz and blues have no real "
             "reference, ragtime only music21's rags")
        return pieces, pieces
    note(f"loading the style corpus from {root}")
    extra, skipped = style_corpus_pieces(root)
    nc, nc_skipped = rag_pieces(root, nc_only=True)
    if skipped or nc_skipped:
        note(f"style corpus files skipped: {dict(skipped + nc_skipped)}")
    performed = {p.source: p for p in wjd_pieces(root, performed=True)[0]}
    learned = pieces + extra + nc
    return learned, [performed.get(p.source, p) for p in learned]


def _style_nll(registry: ModelRegistry, info: dict[str, ModelInfo], pieces: Sequence[Piece],
               styles: Sequence[str], note: Callable[[str], None]) -> dict[str, dict]:
    """Per sequence model: NLL per style on the hashed held-out pieces (the split every trainer
    uses) and on the evaluation-only Joplin pieces, encoded as training encodes them."""
    from cadenza.models.training.heldout import style_nll

    held = [p for p in pieces if p.style in styles and is_heldout(p.source)
            and source_kind(p.source) != "joplin-nc"]
    nc = [p for p in pieces if "ragtime" in styles and source_kind(p.source) == "joplin-nc"
          and is_reference(p)]
    out: dict[str, dict] = {}
    for m, mi in info.items():
        if mi.kind != "rnn" or mi.meta.get("untrained_twin_of"):
            continue  # the untrained twin's NLL is about ln(vocabulary): minutes for nothing
        note(f"held-out likelihood of {m}: {len(held)} held-out pieces, {len(nc)} Joplin pieces")
        loaded = registry.get(m)
        out[m] = {"heldout": style_nll(loaded, held)}
        if nc and not nc_trained(mi.meta):
            out[m]["joplin_nc"] = style_nll(loaded, nc).get("ragtime")
    return out


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
    data: Path | None = None,
    baseline: bool = False,
    use_corpus: bool = True,
    command: str | None = None,
    form_clips: int = 8,
) -> Path:
    """Evaluate ``models`` (default: all installed) on ``styles`` (default: all six); write
    ``report.md``, ``results.json``, PNG plots and the listening page (``listen.md`` with one
    piano roll per style and model) into ``out_dir``; return the report's path.

    ``corpus`` (pieces, or a function returning them) replaces the offline corpora; ``data``
    names the style corpus (default: beside the checkout); ``use_corpus=False`` leaves out
    music21's corpus (folk, celtic, classical then have no reference). With ``baseline``, the first
    sequence model's untrained twin (``cadenza.models.zoo.baseline``) is scored beside the models,
    as BASELINE: what the pipeline around a model reaches with random weights. ``command`` (the
    command line that asked for the report) is recorded in it. ``form_clips`` long clips per
    model and style measure whether returning sections come back
    (``cadenza.evaluation.form_check``; 0 leaves that out). The same arguments give the same
    report.
    """
    def note(msg: str) -> None:
        log.info(msg)
        if progress is not None:
            progress(msg)

    if registry is None:
        registry = ModelRegistry.discover()
    models, styles = _check(models, styles, clips, bars, registry.names())
    if not 0 <= form_clips <= MAX_CLIPS:
        raise UserError(f"form clips must be 0-{MAX_CLIPS}, got {form_clips}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="cadenza-eval-") as tmp:
        if baseline:
            registry, models = _with_baseline(registry, models, Path(tmp), note)
        return _run(out_dir, models, styles, clips, bars, seed, registry, note,
                    lambda: _load_corpus(corpus, data, use_corpus, note), command, form_clips)


def _with_baseline(registry: ModelRegistry, models: list[str], tmp: Path,
                   note: Callable[[str], None]) -> tuple[ModelRegistry, list[str]]:
    """The registry and model list with BASELINE added (unchanged without a sequence model)."""
    from cadenza.models.zoo.baseline import untrained_twin

    if BASELINE in registry.names():
        raise UserError(f"a model is named {BASELINE!r}: that name is the baseline's")
    twin_of = next((m for m in sorted(models, key=lambda m: m != "lstm")
                    if _kind(registry, m) == "rnn"), None)
    if twin_of is None:
        note("no sequence model evaluated: no untrained baseline")
        return registry, models
    note(f"baseline: {BASELINE}, {twin_of}'s configuration with random weights")
    path = untrained_twin(registry.entry(twin_of).path, tmp / BASELINE / "model.pt")
    entries = {n: registry.entry(n).path for n in registry.names()}
    return ModelRegistry({**entries, BASELINE: path}), [*models, BASELINE]


def _kind(registry: ModelRegistry, name: str) -> str:
    try:
        return str(registry.get(name).kind)
    except ModelError as e:  # a corrupt or mismatched checkpoint: say which, stop early
        raise ResourceError(str(e)) from None


def _run(out_dir: Path, models: list[str], styles: list[str], clips: int, bars: int, seed: int,
         registry: ModelRegistry, note: Callable[[str], None],
         load: Callable[[], tuple[list[Piece], list[Piece]]], command: str | None = None,
         form_clips: int = 0) -> Path:
    from cadenza.service import Composer

    composer = Composer(registry)
    info: dict[str, ModelInfo] = {}
    for m in models:
        _kind(registry, m)
        loaded = registry.get(m)
        info[m] = ModelInfo(m, loaded.kind, loaded.sha256, list(loaded.styles),
                            dict(loaded.meta))

    pieces, real_pieces = load()
    refs: dict[str, Reference] = {}
    for s in styles:
        refs[s] = real_reference(real_pieces, s, clips, bars, seed)
        note(f"real {s}: {len(refs[s].clips)} clips" +
             (f" ({refs[s].reason})" if refs[s].reason else ""))

    gen: dict[str, dict[str, Generated]] = {}
    for m in models:
        gen[m] = {}
        for s in styles:
            note(f"generating {m} / {s}: {clips} clips of {bars} bars")
            gen[m][s] = generate(composer, m, s, clips, bars, seed)

    form: dict[str, dict] = {"clips": form_clips, "models": {}, "real": {}}
    if form_clips:
        for m in models:
            note(f"form: {m}, {form_clips} long clips per style")
            form["models"][m] = {s: measure_form(composer, m, s, form_clips, seed)
                                 for s in styles}
        form["real"] = {s: real_form(real_pieces, s) for s in styles}

    nll = _style_nll(registry, info, pieces, styles, note)
    results = build_results(info, refs, gen, styles, clips, bars, seed, nll)
    results["form"] = form
    # the pieces as encoded for training (the performed-time WJD copies in real_pieces carry
    # the same changes)
    results["harmony"] = measure_harmony(pieces, styles, composer.chord_model(), seed,
                                         note=note)
    results["settings"]["baseline"] = BASELINE if BASELINE in info else None
    results["settings"]["command"] = command
    note("classifying styles")
    results["classifier"], conf = classify(refs, gen, models, styles, seed)
    note("plotting")
    plots = write_plots(out_dir, results, conf, models, styles)
    note("writing the listening page")
    results["listen"] = write_listening(out_dir, refs, gen,
                                        [m for m in models if m != BASELINE], styles)
    (out_dir / "results.json").write_text(json.dumps(json_safe(results), indent=1,
                                                     sort_keys=True) + "\n")
    report = out_dir / "report.md"
    report.write_text(write_report(results, plots))
    note(f"wrote {report}")
    return report
