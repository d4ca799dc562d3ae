"""Training loop for the chord-progression model, with held-out NLL per style and a model card.

``cadenza train --model chords`` (or ``python -m cadenza.models.training.train_chords``) reads
the jazz charts and the rags of the style corpus, holds out the fixed hashed 5% of progressions,
and writes ``models/harmony/model.pt`` (or ``--out``) with its card.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cadenza.models.checkpoint import FORMAT, save_payload
from cadenza.models.checkpoint import device as pick_device
from cadenza.models.chord_model import (
    PAD,
    ChordSeq,
    ChordTokenError,
    ChordVocab,
    encode,
    feature_sizes,
    form_rows,
    sequence_features,
)
from cadenza.models.errors import ModelError
from cadenza.models.registry import HARMONY_DIR
from cadenza.models.rnn import RNNConfig, SequenceModel
from cadenza.models.training.dataset import split_heldout
from cadenza.models.training.schedule import Budget, cosine_lr, set_threads, step_optimizer

log = logging.getLogger(__name__)

CHORD_STYLES = ("jazz", "blues", "ragtime")


@dataclass
class ChordTrainOptions:
    out: Path = HARMONY_DIR / "model.pt"
    data: Path | None = None
    include_nc: bool = False
    n_layer: int = 2
    n_embd: int = 96
    n_hidden: int = 192
    dropout: float = 0.3
    # crops per style ~ tokens ** style_power. At 0.5 the 17 rags had 13 % of the crops, ~360
    # passes over each in 3000 steps: the model knew them by heart (0.36 nats/token; 2.35 on
    # the evaluation-only Joplin rags) and its own ragtime plans had half the rags' secondary
    # dominants (0.10 of the changes against 0.20). At 1.0 (3 %, dropout 0.3): 1.27 and 1.81
    # nats, 0.17 secondary dominants, and jazz and blues no worse (2026-12-07)
    style_power: float = 1.0
    # and times this per style (1 for a style not named). Blues: at 1.0 the 154 12-bar charts
    # had 3 % of the crops and the plans were rarely a 12-bar blues (I in bar 1, IV in 5, I in
    # 7, V or ii in 9, I in 11: 4 of those 5 in 12 of 60 plans of 12 bars; the training charts
    # 122 of all 161); boosted 4x (11 % of the crops) 41 of 60, 10x (24 %) 49, held-out blues NLL
    # 1.351 -> 1.280 / 1.296, jazz 1.387 -> 1.390 / 1.392 (2026-12-08)
    style_boost: dict[str, float] = field(default_factory=lambda: {"blues": 10.0})
    batch: int = 32
    block: int = 192
    lr: float = 3e-3
    steps: int = 3000
    minutes: float | None = None
    eval_every: int = 250
    seed: int = 1234
    command: str = field(default_factory=lambda: " ".join(sys.argv))  # set by the launcher


@dataclass
class _Seq:
    style: str
    source: str
    tokens: np.ndarray
    features: np.ndarray


def encode_sequences(seqs: list[ChordSeq], vocab: ChordVocab) -> tuple[list[_Seq], Counter]:
    out, skipped = [], Counter()
    for s in seqs:
        try:
            toks = encode(s.bars, vocab, style=s.style, meter=s.meter, key=s.key)
        except ChordTokenError as e:
            skipped[str(e).split(":")[0]] += 1
            continue
        feats = sequence_features(toks, vocab, s.meter, form_rows(s.sections, len(s.bars)))
        out.append(_Seq(s.style, s.source, np.asarray(toks, dtype=np.int64), feats))
    return out, skipped


@dataclass(frozen=True)
class _Crops:
    """Where training crops come from: per style its progressions, and the chance of drawing
    the style, ~ its tokens ** power (1: every progression alike; below 1 the smaller styles
    get more than their share). Built once: counting every style's tokens for each batch
    cost a few per cent of a step."""

    pools: tuple[tuple[_Seq, ...], ...]
    p: np.ndarray

    @classmethod
    def of(cls, data: list[_Seq], power: float,
           boost: dict[str, float] | None = None) -> _Crops:
        styles = sorted({d.style for d in data})
        pools = tuple(tuple(d for d in data if d.style == s) for s in styles)
        tok = np.array([sum(len(d.tokens) for d in pool) for pool in pools], float)
        weight = tok ** power * np.array([(boost or {}).get(s, 1.0) for s in styles])
        return cls(pools, weight / weight.sum())

    def batch(self, block: int, size: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``size`` random crops of ``block`` tokens (inputs, targets, features)."""
        x = np.full((size, block), PAD, np.int64)
        y = np.full((size, block), PAD, np.int64)
        f = np.zeros((size, block, self.pools[0][0].features.shape[1]), np.int64)
        for b in range(size):
            pool = self.pools[rng.choice(len(self.pools), p=self.p)]
            d = pool[rng.integers(len(pool))]
            n = len(d.tokens)
            start = int(rng.integers(0, n - block)) if n > block + 1 else 0
            seg = d.tokens[start:start + block + 1]
            m = len(seg) - 1
            x[b, :m], y[b, :m], f[b, :m] = seg[:-1], seg[1:], d.features[start:start + m]
        return x, y, f


@torch.no_grad()
def evaluate(model: SequenceModel, data: list[_Seq], dev: torch.device) -> dict:
    """Held-out NLL per token (nats), overall and per style."""
    model.eval()
    sums: Counter = Counter()
    counts: Counter = Counter()
    for d in data:
        x = torch.from_numpy(d.tokens[:-1])[None].to(dev)
        y = torch.from_numpy(d.tokens[1:])[None].to(dev)
        f = torch.from_numpy(d.features[:-1])[None].to(dev)
        logits, _ = model(x, features=f)
        nll = torch.nn.functional.cross_entropy(logits[0], y[0], reduction="sum")
        sums[d.style] += float(nll)
        counts[d.style] += len(d.tokens) - 1
    model.train()
    per_style = {s: sums[s] / counts[s] for s in sorted(counts)}
    return {"nll": sum(sums.values()) / max(1, sum(counts.values())),
            "per_style": per_style, "tokens": sum(counts.values())}


def train_chords(opts: ChordTrainOptions, seqs: list[ChordSeq] | None = None) -> dict:
    """Train and save the best checkpoint by held-out NLL; ``seqs`` replaces the corpus (tests)."""
    from cadenza.models.training.style_corpus import chord_sequences, default_style_corpus

    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    dev = pick_device()
    skipped: Counter = Counter()
    if seqs is None:
        root = opts.data or default_style_corpus()
        if root is None or not root.is_dir():
            raise ModelError("no style corpus: pass --data ../shared/style-corpus")
        seqs, skipped = chord_sequences(root, include_nc=opts.include_nc)
    styles = tuple(s for s in CHORD_STYLES if any(q.style == s for q in seqs)) or CHORD_STYLES
    vocab = ChordVocab(styles)
    data, bad = encode_sequences(seqs, vocab)
    skipped += bad
    held_mask = split_heldout([d.source for d in data])
    train_d = [d for d, h in zip(data, held_mask, strict=True) if not h]
    held_d = [d for d, h in zip(data, held_mask, strict=True) if h]
    summary = {s: {"progressions": sum(1 for d in train_d if d.style == s),
                   "tokens": sum(len(d.tokens) for d in train_d if d.style == s)}
               for s in styles}
    log.info("chord data: %d train / %d held out: %s; skipped %s", len(train_d), len(held_d),
             summary, dict(skipped))
    cfg = RNNConfig(len(vocab), feature_sizes(vocab), cell="lstm", n_layer=opts.n_layer,
                    n_embd=opts.n_embd, n_hidden=opts.n_hidden, dropout=opts.dropout)
    model = SequenceModel(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=0.01)
    budget = Budget(opts.steps, opts.minutes)
    best: dict | None = None
    history: list[dict] = []
    crops = _Crops.of(train_d, opts.style_power, opts.style_boost)
    log.info("crops per style: %s", dict(zip((pool[0].style for pool in crops.pools),
                                              np.round(crops.p, 3).tolist(), strict=True)))
    step = 0
    while not budget.over(step):
        lr = cosine_lr(opts.lr, budget.frac(step))
        x, y, f = (torch.from_numpy(a).to(dev)
                   for a in crops.batch(opts.block, opts.batch, rng))
        _, loss = model(x, y, features=f)
        step_optimizer(model, opt, loss, lr)
        step += 1
        if step % 50 == 0:
            log.info("step %d loss %.4f (%.0fs)", step, loss.item(), budget.elapsed())
        if step % opts.eval_every == 0 or budget.over(step):
            ev = evaluate(model, held_d, dev)
            ev["step"] = step
            history.append({"step": step, "nll": round(ev["nll"], 4)})
            log.info("step %d held-out NLL %.4f %s", step, ev["nll"],
                     {k: round(v, 3) for k, v in ev["per_style"].items()})
            if best is None or ev["nll"] < best["nll"]:
                best = ev
                _save(opts, model, vocab, best, summary, skipped, step, budget, history)
    assert best is not None
    return best


def _save(opts: ChordTrainOptions, model: SequenceModel, vocab: ChordVocab, best: dict,
          summary: dict, skipped: Counter, step: int, budget: Budget, history: list) -> None:
    meta = {
        "name": "chords", "family": "chords", "styles": list(vocab.styles),
        "trained_styles": sorted(s for s, v in summary.items() if v["progressions"]),
        "data": summary, "skipped": dict(skipped),
        "heldout": {"nll": best["nll"], "per_style": best["per_style"],
                    "tokens": best["tokens"]},
        "best_step": best["step"], "steps": step, "style_power": opts.style_power,
        "style_boost": dict(opts.style_boost),
        "train_seconds": round(budget.elapsed(), 1), "command": opts.command,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}",
        "params": model.num_params(), "history": history,
    }
    save_payload(opts.out, {
        "format": FORMAT, "kind": "chords", "config": model.config.to_dict(),
        "styles": list(vocab.styles), "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="train the chord-progression model")
    ap.add_argument("--data", type=Path, help="the style corpus (default ../shared/style-corpus)")
    ap.add_argument("--out", type=Path, default=HARMONY_DIR / "model.pt")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--include-nc", action="store_true",
                    help="also learn from the CC BY-NC-SA Joplin edition (never for shipping)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads(a.threads)
    best = train_chords(ChordTrainOptions(
        out=a.out, data=a.data, steps=a.steps, minutes=a.minutes, include_nc=a.include_nc,
        command="python -m cadenza.models.training.train_chords "
        + " ".join(argv if argv is not None else sys.argv[1:])))
    from cadenza.models.zoo.card import write_card

    write_card(a.out)
    print(f"best held-out NLL {best['nll']:.4f} nats/token; saved {a.out}")


if __name__ == "__main__":
    main()
