"""The evaluation driver: check arguments, load models and corpus, score, classify, write out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.errors import ResourceError, UserError
from bot.evaluation.classifier import classify
from bot.evaluation.data import Generated, Reference, generate, real_reference
from bot.evaluation.plots import write_plots
from bot.evaluation.report import render_report
from bot.evaluation.results import ModelInfo, build_results, json_safe
from bot.styles import STYLE_NAMES, STYLES
from models.corpus import Piece
from models.errors import ModelError
from models.registry import ModelRegistry

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
CorpusSource = Sequence[Piece] | Callable[[], Sequence[Piece]]

MAX_CLIPS = 500
MAX_BARS = 48


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

    results = build_results(info, refs, gen, styles, clips, bars, seed)
    note("classifying styles")
    results["classifier"], conf = classify(refs, gen, models, styles, seed)
    note("plotting")
    plots = write_plots(out_dir, results, conf, models, styles)
    (out_dir / "results.json").write_text(json.dumps(json_safe(results), indent=1,
                                                     sort_keys=True) + "\n")
    report = out_dir / "report.md"
    report.write_text(render_report(results, plots))
    note(f"wrote {report}")
    return report
