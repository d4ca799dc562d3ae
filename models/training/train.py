"""Training loop for the recurrent melody models, with held-out NLL and a model card."""

from __future__ import annotations

import logging
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cadenza.models.checkpoint import device as pick_device
from cadenza.models.checkpoint import save_rnn
from cadenza.models.errors import ModelError
from cadenza.models.grammar import feature_sizes
from cadenza.models.rnn import RNNConfig, SequenceModel
from cadenza.models.training.corpus import Piece, load_corpus, midi_folder_pieces
from cadenza.models.training.dataset import (
    Batcher,
    Encoded,
    encode_each,
    spelled_returns,
    split_heldout,
)
from cadenza.models.training.form_choruses import form_choruses
from cadenza.models.training.schedule import Budget, cosine_lr, step_optimizer
from cadenza.models.training.style_corpus import (
    default_style_corpus,
    is_style_corpus,
    source_kind,
    style_corpus_pieces,
)
from cadenza.music.tokens import BOS, DEFAULT_STYLES, PAD, Vocab

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    out: Path
    cell: str = "lstm"
    styles: tuple[str, ...] = DEFAULT_STYLES
    data_dirs: tuple[Path, ...] = ()
    use_corpus: bool = True
    use_style_corpus: bool = True
    include_nc: bool = False  # the CC BY-NC-SA Joplin edition: never for shipped weights
    corpus_styles: tuple[str, ...] | None = None
    n_layer: int = 2
    n_embd: int = 128
    n_hidden: int = 256
    dropout: float = 0.15
    batch: int = 32
    block: int = 256
    lr: float = 2e-3
    steps: int = 4000
    minutes: float | None = None
    eval_every: int = 250
    seed: int = 1234
    limit_files: int | None = None
    init_from: Path | None = None  # a checkpoint of the same shape to start from (warm_start)
    form_choruses: bool = True  # jazz and blues solos also as heads' forms (form_choruses.py)
    # pieces with REP_k bars also with those bars written out (dataset.spelled_returns)
    spelled_returns: bool = True
    command: str = field(default_factory=lambda: " ".join(sys.argv))


def gather_pieces(opts: TrainOptions, skipped: Counter[str] | None = None) -> list[Piece]:
    """music21's corpus (classical, folk, celtic and a little ragtime), the style corpus (jazz,
    blues and ragtime: beside the checkout, or a ``--data`` folder that is one), and folders of
    MIDI files whose sub-folder names are styles; the style corpus files that do not parse are
    counted by reason into ``skipped``."""
    pieces: list[Piece] = []
    if opts.use_corpus:
        pieces += load_corpus(opts.corpus_styles, limit_files=opts.limit_files)
    dirs = [Path(d) for d in opts.data_dirs]
    if not any(is_style_corpus(d) for d in dirs) and opts.use_style_corpus:
        found = default_style_corpus()
        if found is not None:
            dirs.append(found)
    for d in dirs:
        if is_style_corpus(d):
            got, bad = style_corpus_pieces(d, include_nc=opts.include_nc)
            log.info("style corpus %s: %d pieces, skipped %s", d, len(got), dict(bad))
            if skipped is not None:
                skipped.update(dict(bad))
            pieces += got
        else:
            pieces += midi_folder_pieces(d)
    return pieces


def _free_mask(y: torch.Tensor, vocab: Vocab) -> torch.Tensor:
    """Targets the sampler actually chooses (not the forced preamble and chord tokens)."""
    return (y != PAD) & (y != BOS) & ~((y >= vocab.style0) & (y < vocab.pos0)) & ~(
        (y >= vocab.chord0) & (y < vocab.vel0)
    )


@torch.no_grad()
def evaluate(model: SequenceModel, data: list[Encoded], vocab: Vocab, dev: torch.device) -> dict:
    """Held-out NLL per token (nats) over whole sequences: all tokens and the sampled ones."""
    model.eval()
    tot = tot_free = 0.0
    n = n_free = 0
    per_style: dict[str, list[float]] = {}  # style -> [nll sum, tokens]
    for e in data:
        x = torch.from_numpy(e.tokens[:-1])[None].to(dev)
        y = torch.from_numpy(e.tokens[1:])[None].to(dev)
        f = torch.from_numpy(e.features[:-1])[None].to(dev)
        logits, _ = model(x, features=f)
        nll = torch.nn.functional.cross_entropy(
            logits[0], y[0], reduction="none", ignore_index=PAD
        )
        valid = y[0] != PAD
        free = _free_mask(y[0], vocab)
        tot += float(nll[valid].sum())
        n += int(valid.sum())
        acc = per_style.setdefault(e.style, [0.0, 0])
        acc[0] += float(nll[valid].sum())
        acc[1] += int(valid.sum())
        tot_free += float(nll[free].sum())
        n_free += int(free.sum())
    model.train()
    return {
        "nll": tot / max(n, 1),
        "nll_sampled": tot_free / max(n_free, 1),
        "tokens": n,
        "sampled_tokens": n_free,
        "per_style": {s: {"nll": round(v[0] / max(v[1], 1), 4), "tokens": v[1]}
                      for s, v in sorted(per_style.items())},
    }


def train(opts: TrainOptions, pieces: list[Piece] | None = None) -> dict:
    """Train, evaluate on the held-out split as it goes, save the best checkpoint; ``pieces``
    replaces the corpus and ``--data`` folders (tests)."""
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)
    dev = pick_device()
    t0 = time.time()
    skipped: Counter[str] = Counter()
    pieces = gather_pieces(opts, skipped) if pieces is None else pieces
    styles = tuple(dict.fromkeys([*opts.styles, *sorted({p.style for p in pieces})]))
    vocab = Vocab(styles)
    # Split the pieces that encode (not all pieces), so the held-out set is never empty.
    encoded = encode_each(pieces, vocab, skipped)
    held_mask = split_heldout([e.source for _, e in encoded])
    train_pairs = [pe for pe, held in zip(encoded, held_mask, strict=True) if not held]
    train_e = [e for _, e in train_pairs]
    held_e = [e for (_, e), held in zip(encoded, held_mask, strict=True) if held]
    data_summary = {
        s: {"pieces": c, "tokens": sum(len(e.tokens) for e in train_e if e.style == s),
            "sources": sorted({source_kind(e.source) or "music21" for e in train_e
                               if e.style == s})}
        for s, c in sorted(Counter(e.style for e in train_e).items())
    }
    log.info("data: %d train / %d held-out sequences in %.0fs: %s; skipped %s",
             len(train_e), len(held_e), time.time() - t0, data_summary, dict(skipped))
    # derived sequences come from training pieces only, so no held-out piece reaches training
    chorus_pairs = (encode_each([c for p, _ in train_pairs for c in form_choruses(p)], vocab)
                    if opts.form_choruses else [])
    if opts.form_choruses:
        choruses = [replace(e, derived=True) for _, e in chorus_pairs]
        train_e += choruses
        per_style = Counter(c.style for c in choruses)
        for style, n in per_style.items():
            data_summary[style]["form_choruses"] = n
        log.info("form choruses: %s", dict(per_style))
    if opts.spelled_returns:
        spelled = spelled_returns(train_pairs + chorus_pairs, vocab)
        train_e += spelled
        per_style = Counter(e.style for e in spelled)
        for style, n in per_style.items():
            data_summary[style]["spelled_returns"] = n
        log.info("returns written out: %s", dict(per_style))
    cfg = RNNConfig(len(vocab), feature_sizes(vocab), cell=opts.cell, n_layer=opts.n_layer,
                    n_embd=opts.n_embd, n_hidden=opts.n_hidden, dropout=opts.dropout)
    model = SequenceModel(cfg)
    if opts.init_from is not None:
        warm_start(model, opts.init_from)
        log.info("starting from %s", opts.init_from)
    model = model.to(dev)
    log.info("%s model, %.2fM parameters, on %s", opts.cell, model.num_params() / 1e6, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=0.01)
    batcher = Batcher(train_e, vocab, opts.block, seed=opts.seed)
    budget = Budget(opts.steps, opts.minutes)
    best: dict | None = None
    history = []
    step = 0
    while not budget.over(step):
        lr = cosine_lr(opts.lr, budget.frac(step))
        x, y, f = (torch.from_numpy(a).to(dev) for a in batcher.batch(opts.batch))
        _, loss = model(x, y, features=f)
        step_optimizer(model, opt, loss, lr)
        step += 1
        if step % 50 == 0:
            log.info("step %d loss %.4f lr %.2e (%.0fs)", step, loss.item(), lr,
                     budget.elapsed())
        last = budget.over(step)
        if held_e and (step % opts.eval_every == 0 or last):
            ev = evaluate(model, held_e, vocab, dev)
            ev["step"] = step
            history.append(ev)
            log.info("step %d held-out NLL %.4f nats/token (sampled tokens %.4f)",
                     step, ev["nll"], ev["nll_sampled"])
            if best is None or ev["nll"] < best["nll"]:
                best = ev
                _save(opts, model, vocab, cfg, best, data_summary, step, budget.t0, history,
                      [e.source for e in train_e], skipped)
    if not held_e or best is None:
        best = {"nll": float("nan"), "nll_sampled": float("nan"), "step": step}
        _save(opts, model, vocab, cfg, best, data_summary, step, budget.t0, history,
              [e.source for e in train_e], skipped)
    log.info("best held-out NLL %.4f nats/token at step %s; saved %s",
             best["nll"], best.get("step"), opts.out)
    return best


def warm_start(model: SequenceModel, path: Path) -> None:
    """Start ``model`` from a checkpoint of the same cell and sizes. Side-feature tables the
    checkpoint lacks (columns added to FEATURES since it was trained) start at zero, so the
    model begins exactly where the checkpoint was and learns to use them; any other mismatch
    is refused (ModelError)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    theirs = payload.get("state_dict", {})
    own = model.state_dict()
    for key, value in own.items():
        if key in theirs and theirs[key].shape == value.shape:
            own[key] = theirs[key]
        elif key.startswith("feat_emb.") and key not in theirs:
            own[key] = torch.zeros_like(value)
        else:
            raise ModelError(f"{path} does not fit this model ({key}: "
                             f"{tuple(theirs[key].shape) if key in theirs else 'missing'} vs "
                             f"{tuple(value.shape)}); check --model and the sizes")
    model.load_state_dict(own)


def _save(opts: TrainOptions, model: SequenceModel, vocab: Vocab, cfg: RNNConfig, best: dict,
          data: dict, step: int, t_train: float, history: list, sources: list[str],
          skipped: Counter[str]) -> None:
    meta = {
        "name": opts.out.parent.name,
        "family": opts.cell,
        "styles": list(vocab.styles),
        "trained_styles": sorted(data),
        "data": data,
        # style corpus files that did not parse and pieces that did not encode, by reason
        "skipped": dict(sorted(skipped.items())),
        "heldout": {k: best[k] for k in ("nll", "nll_sampled", "tokens", "sampled_tokens",
                                         "per_style") if k in best},
        "best_step": best.get("step", step),
        "steps": step,
        "train_seconds": round(time.time() - t_train, 1),
        "command": opts.command,
        "init_from": str(opts.init_from) if opts.init_from is not None else None,
        "form_choruses": opts.form_choruses,
        "spelled_returns": opts.spelled_returns,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}",
        "params": model.num_params(),
        "history": [{k: round(v, 4) if isinstance(v, float) else v for k, v in h.items()
                     if k != "per_style"} for h in history],
        "sources": sorted({source_kind(s) or "music21" for s in sources}),
    }
    save_rnn(opts.out, model, vocab, meta)
