"""Token datasets for the sequence models: fixed held-out split, transposition, style balance."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from cadenza.models.errors import ModelError
from cadenza.models.grammar import ECHO_PITCH_COL, FEATURES, PREV_PITCH_COL, sequence_features
from cadenza.models.training.corpus import Piece
from cadenza.music.tokens import (
    N_CHORD_CLASSES,
    PAD,
    PITCH_MAX,
    PITCH_MIN,
    TokenError,
    Vocab,
    chord_index,
    encode,
    index_chord,
)

HELDOUT_EVERY = 20  # 5% of pieces, chosen by a hash of their source name: stable across runs
TRANSPOSE_RANGE = range(-6, 6)
LEAD_RANGE = (36, 96)  # transpositions keep melodies within this range
CHORD_COL = FEATURES.index("chord")


def shift_prev_pitch(col: np.ndarray, k: int) -> np.ndarray:
    """The prev_pitch feature of a crop transposed by ``k`` semitones, as its pitch tokens are
    (0, no note yet, stays 0; the crop's shift keeps its pitches in range, the clip is a guard)."""
    return np.where(col > 0, np.clip(col + k, 1, PITCH_MAX - PITCH_MIN + 1), 0)


def _source_hash(source: str) -> int:
    return int(hashlib.sha1(source.encode()).hexdigest(), 16)


def is_heldout(source: str) -> bool:
    return _source_hash(source) % HELDOUT_EVERY == 0


def split_heldout(sources: Sequence[str]) -> list[bool]:
    """Which of the usable pieces (by source name) are held out: the fixed hashed 5%, but
    never none and never all. A small ``--data`` folder often has no piece in the hashed 5%,
    and an empty held-out set made training report (and the card record) a NaN NLL; so the
    piece with the smallest hash is held out then, which is just as stable across runs.
    Fewer than two usable pieces cannot be split: refused (ModelError) with the count."""
    n = len(sources)
    if n == 0:
        raise ModelError("no training data: found 0 usable pieces; check --data folders and "
                         "styles")
    if n < 2:
        raise ModelError("not enough training data: found 1 usable piece, need at least 2 "
                         "(one is held out to measure the model); add MIDI files with --data")
    hashes = [_source_hash(s) for s in sources]
    held = [h % HELDOUT_EVERY == 0 for h in hashes]  # is_heldout, without hashing twice
    if not any(held):
        held[hashes.index(min(hashes))] = True
    if all(held):
        held[hashes.index(max(hashes))] = False
    return held


@dataclass
class Encoded:
    style: str
    tokens: np.ndarray  # (T,) int64
    features: np.ndarray  # (T, F) int64
    pitch_lo: int
    pitch_hi: int
    source: str = ""  # the piece's source name, which decides the held-out split
    # a sequence made from another (a form chorus, a piece with its repeats written out):
    # cropped within its style like the rest, left out of the style weights, so adding them
    # does not tilt the balance of styles (within a style, a piece with a written-out copy is
    # cropped twice as often)
    derived: bool = False


def encode_pieces(pieces: Sequence[Piece], vocab: Vocab,
                  skipped: Counter[str] | None = None, *, repeats: bool = True) -> list[Encoded]:
    """The pieces of the vocabulary's styles as tokens and features; those that do not encode
    are left out and counted into ``skipped``. ``repeats=False`` writes a bar that repeats an
    earlier one out note by note instead of as ``REP_k`` (``cadenza.music.tokens.encode``)."""
    return [e for _, e in encode_each(pieces, vocab, skipped, repeats=repeats)]


def encode_each(pieces: Sequence[Piece], vocab: Vocab, skipped: Counter[str] | None = None,
                *, repeats: bool = True) -> list[tuple[Piece, Encoded]]:
    """``encode_pieces``, each sequence beside the piece it was made from."""
    out = []
    for p in pieces:
        if p.style not in vocab.styles:
            continue
        if not p.notes:
            if skipped is not None:
                skipped["no notes"] += 1
            continue
        try:
            toks = encode(p.to_score(), vocab, repeats=repeats)
        except TokenError:
            if skipped is not None:
                skipped["does not encode"] += 1
            continue
        pitches = [n[2] for n in p.notes]
        form, echo = p.melody_form()
        feats = sequence_features(toks, vocab, form=tuple(form), echo=echo)
        out.append((p, Encoded(p.style, np.asarray(toks, dtype=np.int64), feats, min(pitches),
                               max(pitches), p.source)))
    return out


def spelled_returns(encoded: Sequence[tuple[Piece, Encoded]], vocab: Vocab) -> list[Encoded]:
    """Of the pieces encoded as usual (``encode_each``), those that repeat a bar (``REP_k``),
    again with every bar that repeats an earlier
    one written out note by note, as derived sequences. Taught only with ``REP_k``, a model
    copies a returning bar whole or writes it afresh without a look at what came before (the
    form table's returns were exact copies or nothing like their first statement); written out,
    a returning bar's notes are the ones its echo features name (``echo_pitch``, ``echo_next``),
    so the model also learns to play a return note by note from its echo, and a sampled return
    can come back varied. (A bar that repeats one its echo does not name, a riff's ``REP_1``,
    is written out as well: it teaches notes the echo features do not predict.)"""
    repeating = [p for p, e in encoded if any(vocab.kind(int(t)) == "rep" for t in e.tokens)]
    # a piece that encoded with REP_k encodes written out too (only that branch differs)
    return [replace(e, derived=True) for e in encode_pieces(repeating, vocab, repeats=False)]


def transpose_tables(vocab: Vocab) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per shift k: token id map (pitches +k, chord roots +k) and chord-feature map."""
    tok_tables, chord_tables = {}, {}
    for k in TRANSPOSE_RANGE:
        t = np.arange(len(vocab), dtype=np.int64)
        for p in range(PITCH_MIN, PITCH_MAX + 1):
            q = p + k
            if PITCH_MIN <= q <= PITCH_MAX:
                t[vocab.pitch0 + p - PITCH_MIN] = vocab.pitch0 + q - PITCH_MIN
        c = np.arange(N_CHORD_CLASSES, dtype=np.int64)
        for i in range(1, N_CHORD_CLASSES):
            chord = index_chord(i)
            assert chord is not None
            c[i] = chord_index(chord.transpose(k))
            t[vocab.chord0 + i] = vocab.chord0 + c[i]
        tok_tables[k], chord_tables[k] = t, c
    return tok_tables, chord_tables


class Batcher:
    """Random style-balanced crops with random transposition, as (x, y, features) arrays."""

    def __init__(
        self,
        data: list[Encoded],
        vocab: Vocab,
        block: int,
        *,
        augment: bool = True,
        style_temperature: float = 0.5,
        seed: int = 0,
    ) -> None:
        if not data:
            raise ValueError("no training sequences")
        self.data, self.vocab, self.block, self.augment = data, vocab, block, augment
        self.rng = np.random.default_rng(seed)
        self.tok_tables, self.chord_tables = transpose_tables(vocab)
        # sample style first (weight ~ tokens**temperature), then a piece by its length
        tokens_per_style = Counter()
        for e in data:
            tokens_per_style[e.style] += 0 if e.derived else len(e.tokens)
        self.styles = sorted(tokens_per_style)
        w = np.array([tokens_per_style[s] ** style_temperature for s in self.styles])
        self.style_p = w / w.sum()
        self.by_style = {s: [i for i, e in enumerate(data) if e.style == s] for s in self.styles}
        self.len_p = {
            s: np.array([len(data[i].tokens) for i in idx], dtype=np.float64)
            for s, idx in self.by_style.items()
        }
        for s in self.len_p:
            self.len_p[s] /= self.len_p[s].sum()

    def _shift(self, e: Encoded) -> int:
        if not self.augment:
            return 0
        ok = [k for k in TRANSPOSE_RANGE
              if LEAD_RANGE[0] <= e.pitch_lo + k and e.pitch_hi + k <= LEAD_RANGE[1]]
        return int(self.rng.choice(ok)) if ok else 0

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = self.block
        x = np.full((size, t), PAD, dtype=np.int64)
        y = np.full((size, t), PAD, dtype=np.int64)
        f = np.zeros((size, t, len(FEATURES)), dtype=np.int64)
        for b in range(size):
            style = self.styles[self.rng.choice(len(self.styles), p=self.style_p)]
            idx = self.by_style[style]
            e = self.data[idx[self.rng.choice(len(idx), p=self.len_p[style])]]
            n = len(e.tokens)
            start = int(self.rng.integers(0, max(1, n - t - 1) + 1)) if n > t + 1 else 0
            seg = e.tokens[start : start + t + 1]
            feat = e.features[start : start + len(seg) - 1]
            k = self._shift(e)
            if k:
                seg = self.tok_tables[k][seg]
                feat = feat.copy()
                feat[:, CHORD_COL] = self.chord_tables[k][feat[:, CHORD_COL]]
                for col in (PREV_PITCH_COL, ECHO_PITCH_COL):
                    feat[:, col] = shift_prev_pitch(feat[:, col], k)
            m = len(seg) - 1
            x[b, :m], y[b, :m], f[b, :m] = seg[:-1], seg[1:], feat
        return x, y, f


def eval_windows(
    data: list[Encoded], block: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Whole held-out sequences cut into consecutive windows (no augmentation)."""
    out = []
    for e in data:
        for start in range(0, len(e.tokens) - 1, block):
            seg = e.tokens[start : start + block + 1]
            out.append((seg[:-1], seg[1:], e.features[start : start + len(seg) - 1]))
    return out
