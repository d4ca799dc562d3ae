"""How recognisable blends are: endpoint accuracy of VAE blends between held-out phrases.

Usage: .venv/bin/python bench/vae_blend.py [--pairs 100] [--bars 8]

For pairs of held-out two-bar phrases (A, B) from the corpus, with the chords under them,
blends ``bars`` bars from A to B
and prints the step accuracy of the first two bars against A and of the last two against B
(1.0 = identical), beside the same figures for an unrelated phrase (chance level) and the VAE's
plain held-out reconstruction accuracy from its checkpoint.
"""

from __future__ import annotations

import argparse

import numpy as np

from cadenza.models.blend import blend_melody, window_chords
from cadenza.models.registry import ModelRegistry
from cadenza.models.training.corpus import load_corpus
from cadenza.models.training.dataset import is_heldout
from cadenza.music.motif import Motif
from cadenza.music.score import Note
from cadenza.music.steps import (
    SEG_STEPS,
    STEP_TICKS,
    notes_to_steps,
    steps_to_notes,
    window_starts,
    windows,
)
from cadenza.music.theory import Key


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--bars", type=int, default=8)
    args = ap.parse_args()
    loaded = ModelRegistry.discover().get("vae")
    rng = np.random.default_rng(0)
    # (steps, the chords under them: changes in ticks from the phrase's start, style)
    phrases = []
    for p in load_corpus():
        if is_heldout(p.source) and p.meter == (4, 4):
            notes = [Note(s, d, pitch) for s, d, pitch in p.notes]
            total = p.bars * p.bar_ticks
            chords = p.chord_changes()
            phrases += [(w, window_chords(chords, s * STEP_TICKS), p.style) for w, s in
                        zip(windows(notes, total), window_starts(total), strict=True)
                        if (w >= 2).sum() >= 6]
    pick = rng.permutation(len(phrases))
    first, last, chance = [], [], []
    for k in range(args.pairs):
        (a, ca, style), (b, cb, _), (c, _, _) = (phrases[pick[(3 * k + i) % len(phrases)]]
                                                 for i in range(3))
        ma, mb = (Motif(tuple(steps_to_notes(w)), tuple((t, ch) for t, ch in cs if ch),
                        (4, 4), Key(0), 120.0, 2) for w, cs in ((a, ca), (b, cb)))
        # as /seed blend does: in a style (A's here; the VAE reads none badly, 0.55 per step)
        notes = blend_melody(loaded, ma, mb, args.bars, 1.0, seed=k, style=style)
        total = args.bars * 48
        out = notes_to_steps(notes, total // 3)
        first.append(float((out[:SEG_STEPS] == a).mean()))
        last.append(float((out[-SEG_STEPS:] == b).mean()))
        chance.append(float((out[:SEG_STEPS] == c).mean()))
    held = loaded.meta.get("heldout", {})
    print(f"VAE {loaded.path} ({held.get('step_accuracy', float('nan')):.3f} held-out step "
          f"accuracy in its card); {args.pairs} blends of {args.bars} bars between held-out "
          f"phrases ({len(phrases)} available)")
    print(f"  first 2 bars vs A: mean {np.mean(first):.3f}, median {np.median(first):.3f}")
    print(f"  last 2 bars vs B:  mean {np.mean(last):.3f}, median {np.median(last):.3f}")
    print(f"  first 2 bars vs an unrelated phrase (chance): mean {np.mean(chance):.3f}")



if __name__ == "__main__":
    main()
