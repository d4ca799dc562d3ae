"""Model subcommands of the launcher: ``train`` (lstm/gru/rnn/vae/gan), ``models``, ``eval``."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections import Counter
from pathlib import Path

from cadenza.errors import UserError

log = logging.getLogger(__name__)

FAMILIES = ("lstm", "gru", "rnn", "vae", "gan", "chords")


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model on the offline corpus and MIDI folders")
    t.add_argument("--model", choices=FAMILIES, default="lstm",
                   help="lstm/gru/rnn: melody model; vae: melody VAE; gan: multi-track GAN; "
                        "chords: the chord-progression model")
    t.add_argument("--name", help="checkpoint name (default: the family)")
    t.add_argument("--data", type=Path, action="append", default=[],
                   help="the style corpus (default ../shared/style-corpus when present), or a "
                        "folder of MIDI files whose sub-folder names are style labels "
                        "(repeatable)")
    t.add_argument("--no-corpus", action="store_true", help="skip music21's corpus")
    t.add_argument("--no-style-corpus", action="store_true",
                   help="do not look for ../shared/style-corpus when no --data names it")
    t.add_argument("--include-nc", action="store_true",
                   help="also learn from the CC BY-NC-SA Joplin edition (non-commercial: never "
                        "for weights you ship)")
    t.add_argument("--styles", help="comma-separated corpus styles (default all)")
    t.add_argument("--out", type=Path, help="checkpoint folder (default models/checkpoints)")
    t.add_argument("--force", action="store_true",
                   help="overwrite an existing checkpoint of the same name")
    t.add_argument("--minutes", type=float, help="time budget")
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--embd", type=int, default=128)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--block", type=int, default=256)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--no-form-choruses", action="store_true",
                   help="lstm/gru/rnn: learn jazz and blues from the solos alone, not also "
                        "from the solos laid out as heads (AABA, AAB)")
    t.add_argument("--no-spelled-returns", action="store_true",
                   help="lstm/gru/rnn: learn a bar that repeats an earlier one only as a "
                        "repeat token, not also written out note by note")
    t.add_argument("--init-from", type=Path,
                   help="lstm/gru/rnn/vae: start from this checkpoint (same cell and sizes; "
                        "side features it lacks, such as the vae's chords, start at zero)")
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest on a busy machine)")
    t.add_argument("--gan-phrases", type=int, default=1500,
                   help="gan: training phrases (4 bars) per style")
    t.add_argument("--onset-grid-only", action="store_true",
                   help="gan: do not train; measure where the notes of the data this command "
                        "would train on start within a beat and write that grid into the "
                        "existing checkpoint (one trained before the grid existed)")
    t.add_argument("-v", "--verbose", action="store_true")

    m = sub.add_parser("models", help="list the installed models with their figures")
    m.add_argument("-v", "--verbose", action="store_true")

    e = sub.add_parser("eval", help="evaluation report (Markdown + PNG plots) for every model")
    e.add_argument("--out", type=Path, default=Path("eval-report"))
    e.add_argument("--models", help="comma-separated (default: all installed)")
    e.add_argument("--styles", help="comma-separated (default: all)")
    e.add_argument("--clips", type=int, default=24, help="clips per model and style")
    e.add_argument("--bars", type=int, default=8)
    e.add_argument("--form-clips", type=int, default=8,
                   help="long clips per model and style that measure whether returning "
                        "sections come back (0: skip)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--data", type=Path,
                   help="the style corpus (default ../shared/style-corpus when present): the "
                        "jazz, blues and ragtime references")
    e.add_argument("--no-corpus", action="store_true",
                   help="skip music21's corpus (folk, celtic and classical get no reference)")
    e.add_argument("--no-baseline", action="store_true",
                   help="do not score the lstm's untrained twin (random weights) beside the "
                        "models")
    e.add_argument("-v", "--verbose", action="store_true")


def handles(cmd: str) -> bool:
    return cmd in ("train", "models", "eval")


def run(args: argparse.Namespace) -> int:
    return {"train": cmd_train, "models": cmd_models, "eval": cmd_eval}[args.cmd](args)


# ------------------------------------------------------------------ train


def cmd_train(args: argparse.Namespace) -> int:
    from cadenza.models.registry import SHIPPED_DIR
    from cadenza.models.training.schedule import set_threads
    from cadenza.models.zoo.card import write_card

    if args.model == "chords":
        from cadenza.models.training.train_chords import HARMONY_DIR

        out = (args.out / (args.name or "chords") / "model.pt" if args.out
               else HARMONY_DIR / "model.pt")
    else:
        out = (args.out or SHIPPED_DIR) / (args.name or args.model) / "model.pt"
    # The default name is the family and the default folder the shipped one, so a plain
    # `cadenza train --model lstm` would replace the shipped model and its card: refuse before
    # any work is done.
    if args.onset_grid_only:
        if args.model != "gan":
            raise UserError("--onset-grid-only applies to --model gan")
        if not out.is_file():
            raise UserError(f"--onset-grid-only writes into an existing checkpoint: {out} "
                            "not found")
        return _gan_onset_grid(args, out)
    if out.exists() and not args.force:
        raise UserError(f"{out} already exists: train under another --name or --out, or pass "
                        "--force to overwrite it")
    if args.init_from is not None:
        if args.model not in ("lstm", "gru", "rnn", "vae"):
            raise UserError("--init-from starts a sequence model (lstm, gru, rnn) or the vae "
                            "from a checkpoint; it does not apply to --model " + args.model)
        if not args.init_from.is_file():
            raise UserError(f"--init-from checkpoint not found: {args.init_from}")
    set_threads(args.threads)
    for d in args.data:
        if not d.is_dir():
            raise UserError(f"--data folder not found: {d}")
    if args.model in ("lstm", "gru", "rnn"):
        from cadenza.models.training.train import train

        best = train(_train_options(args, out))
        summary = f"held-out NLL {best['nll']:.4f} nats/token"
    elif args.model == "chords":
        from cadenza.models.training.style_corpus import default_style_corpus, is_style_corpus
        from cadenza.models.training.train_chords import ChordTrainOptions, train_chords

        root = next((d for d in args.data if is_style_corpus(d)), None) or (
            None if args.no_style_corpus else default_style_corpus())
        if root is None:
            raise UserError("the chord model learns from the style corpus: pass --data "
                            "../shared/style-corpus")
        best = train_chords(ChordTrainOptions(out=out, data=root, include_nc=args.include_nc,
                                              steps=args.steps, minutes=args.minutes,
                                              seed=args.seed))
        summary = f"held-out NLL {best['nll']:.4f} nats/token"
    elif args.model == "vae":
        from cadenza.models.training.train_vae import VAEOptions, train_vae

        skipped: Counter[str] = Counter()
        best = train_vae(_pieces(args, skipped),
                         VAEOptions(out=out, steps=args.steps, minutes=args.minutes,
                                    seed=args.seed, init_from=args.init_from,
                                    skipped=dict(skipped)))
        summary = f"held-out reconstruction accuracy {best['step_accuracy']:.3f}"
    else:
        meta = _train_gan(args, out)
        summary = f"{meta.get('steps')} steps"
    write_card(out)
    print(f"saved {out}; {summary}")
    return 0


def _train_options(args: argparse.Namespace, out: Path):  # type: ignore[no-untyped-def]
    from cadenza.models.training.train import TrainOptions

    return TrainOptions(
        out=out, cell=args.model if args.model in ("lstm", "gru", "rnn") else "lstm",
        data_dirs=tuple(args.data), use_corpus=not args.no_corpus,
        use_style_corpus=not args.no_style_corpus, include_nc=args.include_nc,
        corpus_styles=tuple(args.styles.split(",")) if args.styles else None,
        n_layer=args.layers, n_hidden=args.hidden, n_embd=args.embd, batch=args.batch,
        block=args.block, lr=args.lr, steps=args.steps, minutes=args.minutes, seed=args.seed,
        init_from=args.init_from, form_choruses=not args.no_form_choruses,
        spelled_returns=not args.no_spelled_returns)


def _pieces(args: argparse.Namespace,  # type: ignore[no-untyped-def]
            skipped: Counter[str] | None = None):
    """The same pieces the sequence models learn from (music21's corpus, the style corpus,
    MIDI folders); style corpus files that do not parse are counted into ``skipped``."""
    from cadenza.models.training.train import gather_pieces

    pieces = gather_pieces(_train_options(args, Path("unused")), skipped)
    if args.styles:
        pieces = [p for p in pieces if p.style in args.styles.split(",")]
    if not pieces:
        raise UserError("no training data: check --data folders and --styles")
    return pieces


def _gan_data(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The GAN's training phrases (packed) and the note its checkpoint records about them."""
    from cadenza.gan_bands import training_bands
    from cadenza.models.training.gan_data import build_dataset
    from cadenza.styles import STYLE_NAMES

    bands = training_bands(_pieces(args), args.gan_phrases, seed=args.seed)
    data = build_dataset(bands.scores, STYLE_NAMES, hop=bands.hops,
                         max_per_style=args.gan_phrases, pack=True, seed=args.seed)
    styles = data.summary.get("styles", {})
    note = {"sources": "real melodies of each style arranged by cadenza.arrange in that style over "
                       "their own chords (jazz and blues: Weimar Jazz Database solos and "
                       "Impro-Visor transcriptions; ragtime: public-domain rags, 2/4 bars in "
                       "pairs; folk, celtic, classical: music21's corpus), cut where the source "
                       "has no chord",
            "credits": bands.credits(),
            "per_style": {s: {"pieces": bands.pieces.get(s, 0), "bars": bands.bars.get(s, 0),
                              "hop": bands.hops.get(s),
                              "phrases": styles.get(s, {}).get("phrases", 0)}
                          for s in STYLE_NAMES},
            "skipped": {**bands.skipped, **data.summary.get("skipped", {})}}
    return data, note


def _train_gan(args: argparse.Namespace, out: Path) -> dict:
    from cadenza.models.training.train_gan import train_gan
    from cadenza.styles import STYLE_NAMES

    data, note = _gan_data(args)
    return train_gan(data.rolls, data.style_ids, STYLE_NAMES, out, minutes=args.minutes,
                     steps=args.steps, seed=args.seed, threads=args.threads, data_note=note,
                     name=args.name or "gan", command=" ".join(sys.argv))


def _gan_onset_grid(args: argparse.Namespace, out: Path) -> int:
    from cadenza.models.gan import set_onset_grid
    from cadenza.models.training.gan_data import onset_grid
    from cadenza.models.zoo.card import write_card
    from cadenza.music.roll import ROLES
    from cadenza.styles import STYLE_NAMES

    data, _ = _gan_data(args)
    grid = onset_grid(data.rolls, data.style_ids, STYLE_NAMES)
    set_onset_grid(out, grid, f"measured after training on the training phrases rebuilt by "
                              f"`{' '.join(sys.argv)}`")
    write_card(out)
    for style, lanes in grid.items():
        print(f"{style:<10}" + "  ".join(f"{role} {','.join(map(str, steps))}"
                                         for role, steps in zip(ROLES, lanes, strict=True)))
    print(f"saved the onset grid into {out}")
    return 0


# ------------------------------------------------------------------ models and eval


def describe(meta: dict, kind: str) -> str:
    held = meta.get("heldout") or {}
    if kind == "rnn" and "nll" in held:
        return f"held-out NLL {held['nll']:.3f} nats/token ({held.get('nll_sampled', 0):.3f} " \
               "on sampled tokens)"
    if kind == "vae" and "step_accuracy" in held:
        return f"held-out reconstruction accuracy {held['step_accuracy']:.3f}"
    if kind == "gan":
        overlaps = [m["overlap"] for m in (meta.get("metrics") or {}).values()
                    if isinstance(m, dict) and isinstance(m.get("overlap"), float)]
        if overlaps:
            return f"mean overlap area vs data {sum(overlaps) / len(overlaps):.2f} over " \
                   f"{len(overlaps)} features"
        return f"{meta.get('steps', '?')} training steps"
    if kind == "chords" and "nll" in held:
        return f"chord plans; held-out NLL {held['nll']:.3f} nats/token"
    return "no figures recorded"


def learned_from(meta: dict) -> str:
    """'jazz 287 pieces, blues 80, ...': the styles a checkpoint learned from real data."""
    parts = []
    for style, d in (meta.get("data") or {}).items():
        if not isinstance(d, dict):
            continue
        n = d.get("pieces", d.get("progressions"))
        if n:
            unit = "progressions" if "progressions" in d else "pieces"
            parts.append(f"{style} {n} {unit}" if not parts else f"{style} {n}")
    return ", ".join(parts) if parts else "not recorded"


def cmd_models(args: argparse.Namespace) -> int:
    from cadenza.models.checkpoint import read_payload
    from cadenza.models.registry import ModelRegistry

    registry = ModelRegistry.discover()
    if not registry.names():
        print("no models installed")
        return 0
    for name in registry.names():
        entry = registry.entry(name)
        payload = read_payload(entry.path)
        meta = payload.get("meta") or {}
        kind = str(payload.get("kind"))
        family = meta.get("family", kind)
        size = entry.path.stat().st_size / 1e6
        minutes = meta.get("train_seconds", 0) / 60
        params = meta.get("params", 0)
        if isinstance(params, dict):  # the GAN counts generator and critic apart
            params = sum(params.values())
        print(f"{name:<8} {family:<5} {params:>10,} params  {size:5.1f} MB  "
              f"trained {minutes:5.1f} min  {describe(meta, kind)}")
        print(f"{'':<8} learned from real data: {learned_from(meta)}")
        if entry.card.exists():
            print(f"{'':<8} card: {entry.card}")
    _print_chord_model()
    return 0


def _print_chord_model() -> None:
    """The chord-progression model is no ``model:`` of its own: it plans the harmony of jazz,
    blues and ragtime clips for every melody model."""
    from cadenza.models.checkpoint import read_payload
    from cadenza.models.errors import ModelError
    from cadenza.service import HARMONY_CHECKPOINT

    if not HARMONY_CHECKPOINT.is_file():
        print("harmony: no chord model installed: rule-based chord plans for every style")
        return
    try:
        meta = read_payload(HARMONY_CHECKPOINT).get("meta") or {}
    except ModelError as e:
        print(f"harmony: chord model unusable ({e}): rule-based chord plans")
        return
    print(f"harmony  chords {meta.get('params', 0):>10,} params  "
          f"{HARMONY_CHECKPOINT.stat().st_size / 1e6:5.1f} MB  trained "
          f"{meta.get('train_seconds', 0) / 60:5.1f} min  {describe(meta, 'chords')}")
    print(f"{'':<8} learned from real data: {learned_from(meta)}")
    card = HARMONY_CHECKPOINT.parent / "card.md"
    if card.exists():
        print(f"{'':<8} card: {card}")


def cmd_eval(args: argparse.Namespace) -> int:
    from cadenza.evaluation import run_evaluation

    if args.data is not None and not (args.data / "MANIFEST.md").is_file():
        raise UserError(f"--data {args.data} is not the style corpus (no MANIFEST.md in it)")
    report = run_evaluation(
        args.out, models=args.models.split(",") if args.models else None,
        styles=args.styles.split(",") if args.styles else None, clips=args.clips,
        bars=args.bars, seed=args.seed, data=args.data, baseline=not args.no_baseline,
        use_corpus=not args.no_corpus, command=shlex.join(["cadenza", *args.argv]),
        form_clips=args.form_clips, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(report)
    return 0
