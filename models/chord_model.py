"""Chord-progression model: tokens, sampling grammar and plans for jazz, blues and ragtime.

Harmony is learned from real changes (jazz-standard charts, 12-bar blues charts, the chords of
real rags) by the same style-conditioned recurrent network as the melodies
(``cadenza.models.rnn.SequenceModel``), over its own vocabulary. Chords are written relative to the
key's tonic, so one ii-V-I is one pattern in every key. A progression encodes as::

    BOS STYLE_s METER_m MODE_k  ( BAR ( REP_r | ( CH_c LEN_l )+ ) )*  EOS

* ``CH_<degree>:<quality>``: root ``degree`` semitones above the tonic, any quality of
  ``cadenza.music.theory.QUALITY_INTERVALS`` (extensions and alterations included);
  ``CH_NC`` = none;
* ``LEN_l``: the chord lasts ``l`` beat units (quarters in x/4, eighths in x/8); a bar's lengths
  add up to exactly its units;
* ``REP_r``: the bar's changes are those of the bar ``r`` back (A sections that come back).

Vocabulary layout (ids in this order; ``ChordVocab`` computes the offsets):

=====================  ============================================================
``PAD BOS EOS BAR``    ids 0-3
``STYLE_<name>``       one per style of the checkpoint
``METER_<n>/<d>``      ``cadenza.music.tokens.METERS``
``MODE_major/minor``   the key's mode
``CH_NC``, ``CH_*``    1 + 12 x len(QUALITIES), degree-major order
``LEN_<l>``            l = 1 .. MAX_UNITS (12 = a bar of 12/8)
``REP_<r>``            r = 1 .. MAX_REPEAT
=====================  ============================================================

Side features at every step (summed embeddings, as for melodies): style, meter, mode, units
left in the bar, bars left, and the per-bar form features of ``cadenza.music.form``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from cadenza.models.grammar import changes_per_bar, masks
from cadenza.music.form import (
    BLUES_CHORUS,
    FORM_FEATURE_SIZES,
    UNKNOWN_FORM,
    Section,
    bar_features,
    form_for,
)
from cadenza.music.score import GRID, bar_ticks
from cadenza.music.theory import QUALITY_INTERVALS, Chord, Key, rests
from cadenza.music.tokens import MAX_REPEAT, METERS

if TYPE_CHECKING:  # the sampler imports torch; style_corpus reads this module without it
    from cadenza.models.sample import Row

log = logging.getLogger(__name__)

PAD, BOS, EOS, BAR = 0, 1, 2, 3
QUALITIES: tuple[str, ...] = tuple(QUALITY_INTERVALS)
MODES = ("major", "minor")
MAX_UNITS = 12
MAX_BARS_LEFT = 8
CHORD_FEATURES = ("style", "meter", "mode", "units_left", "bars_left", "section", "sec_bar",
                  "sec_left", "repeat")

BarChanges = tuple[tuple[int, Chord | None], ...]  # (tick in bar, chord), first at tick 0


@functools.cache
def home_bits(mode: str, style: str) -> int:
    """The qualities a last bar in ``mode`` may use (``theory.rests``), as a bitset over
    QUALITIES (a MaskSpec's bitset, from the tonic's first chord token)."""
    return sum(1 << i for i, q in enumerate(QUALITIES) if rests(q, mode, style))


class ChordTokenError(ValueError):
    """A chord token sequence that breaks the grammar."""


def unit_ticks(meter: tuple[int, int]) -> int:
    """Ticks of one beat unit: a quarter in x/4 (and x/2), an eighth in x/8."""
    return GRID // 2 if meter[1] == 8 else GRID


def bar_units(meter: tuple[int, int]) -> int:
    return bar_ticks(meter) // unit_ticks(meter)


@dataclass(frozen=True)
class ChordVocab:
    """Token <-> id mapping of a chord checkpoint (its style list is part of it)."""

    styles: tuple[str, ...] = ("jazz", "blues", "ragtime")
    names: tuple[str, ...] = field(init=False, repr=False)
    # the first id of each token kind, and each id's kind: fixed by the styles, and read for
    # every token of every plan sampled (as chained properties they were a sixth of a batched
    # compose's CPU)
    style0: int = field(init=False, repr=False, compare=False)
    meter0: int = field(init=False, repr=False, compare=False)
    mode0: int = field(init=False, repr=False, compare=False)
    ch0: int = field(init=False, repr=False, compare=False)
    len0: int = field(init=False, repr=False, compare=False)
    rep0: int = field(init=False, repr=False, compare=False)
    kinds: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = ["PAD", "BOS", "EOS", "BAR"]
        names += [f"STYLE_{s}" for s in self.styles]
        names += [f"METER_{n}/{d}" for n, d in METERS]
        names += [f"MODE_{m}" for m in MODES]
        names += ["CH_NC"] + [f"CH_{d}:{q}" for d in range(12) for q in QUALITIES]
        names += [f"LEN_{u}" for u in range(1, MAX_UNITS + 1)]
        names += [f"REP_{r}" for r in range(1, MAX_REPEAT + 1)]
        firsts = {"style0": 4}
        firsts["meter0"] = firsts["style0"] + len(self.styles)
        firsts["mode0"] = firsts["meter0"] + len(METERS)
        firsts["ch0"] = firsts["mode0"] + len(MODES)
        firsts["len0"] = firsts["ch0"] + 1 + 12 * len(QUALITIES)
        firsts["rep0"] = firsts["len0"] + MAX_UNITS
        bounds = [("special", 0), ("style", firsts["style0"]), ("meter", firsts["meter0"]),
                  ("mode", firsts["mode0"]), ("chord", firsts["ch0"]), ("len", firsts["len0"]),
                  ("rep", firsts["rep0"]), ("", len(names))]
        kinds = [k for (k, lo), (_, hi) in pairwise(bounds) for _ in range(lo, hi)]
        for attr, value in {"names": tuple(names), **firsts, "kinds": tuple(kinds)}.items():
            object.__setattr__(self, attr, value)

    def __len__(self) -> int:
        return len(self.names)

    def style(self, name: str) -> int:
        if name not in self.styles:
            raise ChordTokenError(f"style {name!r} is not in this chord model {self.styles}")
        return self.style0 + self.styles.index(name)

    def meter(self, ts: tuple[int, int]) -> int:
        if tuple(ts) not in METERS:
            raise ChordTokenError(f"meter {ts[0]}/{ts[1]} is not supported")
        return self.meter0 + METERS.index(tuple(ts))

    def mode(self, mode: str) -> int:
        return self.mode0 + MODES.index(mode)

    def chord(self, chord: Chord | None, tonic: int) -> int:
        if chord is None:
            return self.ch0
        degree = (chord.root - tonic) % 12
        return self.ch0 + 1 + degree * len(QUALITIES) + QUALITIES.index(chord.quality)

    def chord_of(self, token: int, tonic: int) -> Chord | None:
        i = token - self.ch0
        if i == 0:
            return None
        degree, q = divmod(i - 1, len(QUALITIES))
        return Chord((tonic + degree) % 12, QUALITIES[q])

    def length(self, units: int) -> int:
        if not 1 <= units <= MAX_UNITS:
            raise ChordTokenError(f"a chord lasts 1-{MAX_UNITS} beat units, not {units}")
        return self.len0 + units - 1

    def rep(self, r: int) -> int:
        return self.rep0 + r - 1

    def kind(self, token: int) -> str:
        if not 0 <= token < len(self.kinds):
            raise ChordTokenError(f"token id {token} outside the vocabulary of {len(self)}")
        return self.kinds[token]


def feature_sizes(vocab: ChordVocab) -> tuple[int, ...]:
    return (len(vocab.styles) + 1, len(METERS) + 1, len(MODES) + 1, MAX_UNITS + 1,
            MAX_BARS_LEFT + 1, *FORM_FEATURE_SIZES)


# ---------------------------------------------------------------- plain data <-> bars


def bars_from_changes(changes: Sequence[tuple[int, Chord | None]], bars: int,
                      meter: tuple[int, int]) -> list[BarChanges]:
    """Per-bar changes on beat units from absolute (tick, chord) changes; each bar restates its
    downbeat chord, changes off the beat move to the nearest unit, repeats within a bar merge."""
    unit = unit_ticks(meter)
    marks = [(round(t / unit) * unit, c) for t, c in changes]
    return list(changes_per_bar(marks, bars, unit * bar_units(meter)))


def changes_from_bars(bars: Sequence[BarChanges], meter: tuple[int, int]
                      ) -> list[tuple[int, Chord | None]]:
    bt = unit_ticks(meter) * bar_units(meter)
    return [(b * bt + t, c) for b, bar in enumerate(bars) for t, c in bar]


def encode(bars: Sequence[BarChanges], vocab: ChordVocab, *, style: str,
           meter: tuple[int, int], key: Key, eos: bool = True) -> list[int]:
    """Tokens for per-bar changes (ticks on beat units) in ``key``."""
    unit, units = unit_ticks(meter), bar_units(meter)
    if units > MAX_UNITS:
        raise ChordTokenError(f"bars of {units} units are longer than {MAX_UNITS}")
    out = [BOS, vocab.style(style), vocab.meter(meter), vocab.mode(key.mode)]
    seen: dict[BarChanges, int] = {}
    for b, bar in enumerate(bars):
        out.append(BAR)
        earlier = seen.get(tuple(bar))
        seen[tuple(bar)] = b
        if earlier is not None and b - earlier <= MAX_REPEAT:
            out.append(vocab.rep(b - earlier))
            continue
        for i, (tick, chord) in enumerate(bar):
            stop = bar[i + 1][0] if i + 1 < len(bar) else units * unit
            if tick % unit or stop % unit or stop <= tick:
                raise ChordTokenError(f"bar {b}: a change at tick {tick} or {stop} is off the "
                                      "beat units")
            out += [vocab.chord(chord, key.tonic), vocab.length((stop - tick) // unit)]
    if eos:
        out.append(EOS)
    return out


def decode(tokens: Sequence[int], vocab: ChordVocab, *, key: Key, meter: tuple[int, int]
           ) -> list[BarChanges]:
    """Per-bar changes from tokens (strict: ChordTokenError on a grammar error)."""
    unit = unit_ticks(meter)
    bars: list[BarChanges] = []
    current: list[tuple[int, Chord | None]] | None = None
    pos = 0
    chord: Chord | None = None
    have_chord = False

    def close() -> None:
        if current is not None:
            bars.append(tuple(current))

    for t in tokens:
        kind = vocab.kind(t)
        if t in (BOS, PAD) or kind in ("style", "meter", "mode"):
            continue
        if t == EOS:
            break
        if t == BAR:
            close()
            current, pos = [], 0
        elif current is None:
            raise ChordTokenError("a chord before the first BAR")
        elif kind == "rep":
            r = t - vocab.rep0 + 1
            if len(bars) - r < 0 or current:
                raise ChordTokenError(f"REP_{r} must open a bar at least {r} bars in")
            current = list(bars[len(bars) - r])
            pos = bar_units(meter) * unit
        elif kind == "chord":
            chord, have_chord = vocab.chord_of(t, key.tonic), True
        elif kind == "len":
            if not have_chord:
                raise ChordTokenError("a LEN without a chord")
            current.append((pos, chord))
            pos += (t - vocab.len0 + 1) * unit
            have_chord = False
    close()
    return bars


def form_rows(sections: Sequence[Section], bars: int) -> tuple[tuple[int, int, int, int], ...]:
    return tuple(bar_features(sections, bars)) if sections else (UNKNOWN_FORM,) * bars


def section_returns(sections: Sequence[Section]) -> dict[int, int]:
    """bar -> the bar it restates: each bar of a section whose letter came before (but its
    last) maps to the same place in that letter's first section, within MAX_REPEAT bars."""
    first: dict[str, tuple[int, int]] = {}
    out: dict[int, int] = {}
    for start, length, letter in sections:
        if letter not in first:
            first[letter] = (start, length)
            continue
        f_start, f_len = first[letter]
        for i in range(min(length, f_len) - 1):
            if 0 < start - f_start <= MAX_REPEAT:
                out[start + i] = f_start + i
    return out


def sequence_features(tokens: Sequence[int], vocab: ChordVocab, meter: tuple[int, int],
                      form: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """(T, len(CHORD_FEATURES)) features after each token of a whole progression."""
    total = sum(1 for t in tokens if t == BAR)
    tracker = _Tracker(vocab, meter, total, form)
    out = np.zeros((len(tokens), len(CHORD_FEATURES)), dtype=np.int64)
    for i, t in enumerate(tokens):
        tracker.feed(int(t))
        out[i] = tracker.features()
    return out


class _Tracker:
    def __init__(self, vocab: ChordVocab, meter: tuple[int, int], total_bars: int,
                 form: Sequence[tuple[int, int, int, int]]) -> None:
        self.vocab, self.units, self.total, self.form = vocab, bar_units(meter), total_bars, form
        self.style = self.meter = self.mode = 0
        self.bar = -1
        self.left = 0
        self.pending_len = False

    def feed(self, t: int) -> None:
        v = self.vocab
        kind = v.kind(t)
        if kind == "style":
            self.style = 1 + t - v.style0
        elif kind == "meter":
            self.meter = 1 + t - v.meter0
        elif kind == "mode":
            self.mode = 1 + t - v.mode0
        elif t == BAR:
            self.bar += 1
            self.left = self.units
        elif kind == "rep":
            self.left = 0
        elif kind == "len":
            self.left = max(0, self.left - (t - v.len0 + 1))

    def features(self) -> tuple[int, ...]:
        left = 0 if self.bar < 0 else max(1, min(MAX_BARS_LEFT, self.total - self.bar))
        form = self.form[self.bar] if 0 <= self.bar < len(self.form) else UNKNOWN_FORM
        return (self.style, self.meter, self.mode, self.left, left, *form)


# ---------------------------------------------------------------- sampling grammar


class ChordConstraint:
    """Grammar for sampling a progression of exactly ``bars`` bars in ``meter``.

    The last bar stays on the tonic in qualities that rest in the key's mode
    (``cadenza.music.theory.rests``: I, I6, Imaj7 ... in major, i, im6, im7 ... in minor; a
    blues' I7, but no other style's, which leads on to IV), so a clip ends home; a REP is
    offered only for bars that exist. A section that comes back (``returns``: the second A of
    AABA) takes the changes its letter had the first time, as lead sheets write them, except
    its last bar, which the model writes (a turnaround, or the cadence the piece ends on): the
    model alone brings them back only now and then, and the melody can only repeat a phrase
    over the same changes. Same interface as ``cadenza.models.grammar.Constraint`` (forced,
    allowed, feed, features, done, tokens), so ``cadenza.models.sample`` drives both.
    """

    def __init__(self, vocab: ChordVocab, *, style: str, meter: tuple[int, int], key: Key,
                 bars: int, form: Sequence[tuple[int, int, int, int]] | None = None,
                 min_units: int = 1, returns: dict[int, int] | None = None,
                 ends_home: bool = True) -> None:
        if bars < 1:
            raise ValueError("a progression needs at least one bar")
        # False for a blues chorus that another follows (``choruses``): its last bar may turn
        # around, as the charts' do
        self.ends_home = ends_home
        self.vocab, self.meter, self.key, self.bars = vocab, meter, key, bars
        self.home_bits = home_bits(key.mode, style)
        self.units = bar_units(meter)
        # shortest chord: a beat in fast bars, so comping has time to state it
        self.min_units = min(min_units, self.units)
        self.tracker = _Tracker(vocab, meter, bars, form or (UNKNOWN_FORM,) * bars)
        self.forced_queue = [BOS, vocab.style(style), vocab.meter(meter), vocab.mode(key.mode),
                             BAR]
        self.tokens: list[int] = []
        self.bar = -1
        self.left = 0
        self.after_chord = False
        self.chords_in_bar = 0
        self.done = False
        self.returns = returns or {}

    def forced(self) -> int | None:
        if self.done:
            return PAD
        if self.forced_queue:
            return self.forced_queue[0]
        earlier = self.returns.get(self.bar)
        if earlier is not None and self.chords_in_bar == 0 and self.left == self.units:
            return self.vocab.rep(self.bar - earlier)
        if self.bar >= 0 and self.left == 0 and not self.after_chord:
            return EOS if self.bar == self.bars - 1 else BAR
        return None

    def allowed(self) -> tuple[int, ...]:
        """The choices now as a ``cadenza.models.grammar`` MaskSpec (ranges of ids), so the batched
        sampler handles chord rows as it handles melody rows."""
        v = self.vocab
        if self.after_chord:
            lo = min(self.min_units, self.left)
            return (v.length(lo), v.length(self.left) + 1, 0, 0, 0, 0, -1, -1, 0, 0)
        # the last bar stays home: real choruses turn around in it (110 of 157 12-bar charts
        # in bar 12) because the next chorus follows, but a clip stops there, and one whose
        # last chord rang a V7 or a bVI (43 of 64 jazz plans) sounded cut off, not ended; on
        # the tonic alone the model still turned around by its quality (I7 ended 46 of 64
        # 32-bar rags, 13 of 64 8-bar jazz plans)
        if self.bar == self.bars - 1 and self.ends_home:
            return (0, 0, 0, 0, 0, 0, -1, -1, v.ch0 + 1, self.home_bits)
        reps = (0, 0)
        if self.chords_in_bar == 0 and self.bar >= 1:
            reps = (v.rep(1), v.rep(min(self.bar, MAX_REPEAT)) + 1)
        return (v.ch0, v.len0, *reps, 0, 0, -1, -1, 0, 0)

    def mask(self) -> np.ndarray:
        return masks([self.allowed()], len(self.vocab))[0]

    def feed(self, token: int) -> None:
        if self.done:
            return
        if self.forced_queue:
            expected = self.forced_queue.pop(0)
            if token != expected:
                raise ValueError(f"expected forced token {self.vocab.names[expected]}")
        self.tokens.append(token)
        self.tracker.feed(token)
        kind = self.vocab.kind(token)
        if token == EOS:
            self.done = True
        elif token == BAR:
            self.bar += 1
            self.left = self.units
            self.chords_in_bar = 0
        elif kind == "rep":
            self.left = 0
        elif kind == "chord":
            self.after_chord = True
            self.chords_in_bar += 1
        elif kind == "len":
            self.left -= token - self.vocab.len0 + 1
            self.after_chord = False

    def features(self) -> tuple[int, ...]:
        return self.tracker.features()


# ---------------------------------------------------------------- checkpoints and plans


def build(payload: dict) -> tuple[object, ChordVocab]:
    """An untrained model shaped by a 'chords' checkpoint (``cadenza.models.families``)."""
    from cadenza.models.rnn import RNNConfig, SequenceModel

    vocab = ChordVocab(tuple(payload["styles"]))
    cfg = RNNConfig(**payload["config"])
    if cfg.vocab_size != len(vocab):
        raise ValueError("chord vocabulary size does not match its config")
    return SequenceModel(cfg), vocab


@dataclass(frozen=True)
class PlanRequest:
    style: str
    key: Key
    meter: tuple[int, int]
    bars: int
    seed: int
    sections: tuple[Section, ...] = ()
    # the model's own distribution: at 0.9 with top-12 the shipped model's plans had two
    # thirds of the real changes' variety (distinct chords per 8 bars: blues 3.0 against 5.8,
    # rags 5.1 against 7.5; ``cadenza eval``'s harmony table), at 1.0 untruncated 4.9 and 7.1
    temperature: float = 1.0
    top_k: int | None = None
    ends_home: bool = True  # the last bar on the tonic (False: a chorus another follows)


def plan_row(loaded, request: PlanRequest, tag: Any = None,  # type: ignore[no-untyped-def]
             stop: Callable[[], bool] | None = None) -> Row:
    """A sampler row for one chord plan (its own constraint and RNG), so plans batch with
    each other, in ``sample_plans`` or in the process's batcher beside the melodies."""
    from cadenza.models.sample import Row

    vocab: ChordVocab = loaded.vocab
    r = request
    constraint = ChordConstraint(vocab, style=r.style, meter=r.meter, key=r.key, bars=r.bars,
                                 form=form_rows(r.sections, r.bars),
                                 # a blues's AAB is the lyric's form: its second line moves
                                 # to IV, so its changes are the 12-bar form's, not A's again
                                 returns={} if r.style == "blues" else
                                 section_returns(r.sections), ends_home=r.ends_home)
    return Row(constraint, np.random.default_rng(r.seed), r.temperature, r.top_k, tag=tag,
               stop=stop)


def plan_from_tokens(tokens: Sequence[int], vocab: ChordVocab, request: PlanRequest,
                     before: Chord | None = None) -> list[tuple[int, Chord]]:
    """A sampled progression as absolute (tick, Chord) changes on the GRID. A stretch the
    model marks NC keeps the chord before it (a plan always has a chord sounding: at its start
    ``before``, the last chord of the chorus before, else the key's tonic triad)."""
    r = request
    plan: list[tuple[int, Chord]] = []
    for tick, chord in changes_from_bars(decode(tokens, vocab, key=r.key, meter=r.meter),
                                         r.meter):
        chord = chord or (plan[-1][1] if plan else before or Chord(
            r.key.tonic, "maj" if r.key.mode == "major" else "min"))
        if not plan or plan[-1][1] != chord:
            plan.append((tick, chord))
    return plan


def choruses(request: PlanRequest) -> list[PlanRequest]:
    """The requests to sample for ``request``: a blues of whole 12-bar choruses in its lyric
    form (AAB a chorus) is planned a chorus at a time, the first from the request's seed; any
    other request alone. The blues charts it learned from are single choruses: asked for 24
    bars at once its first chorus reached V (or ii) in bar 9 in 3 of 40 plans, where a 12-bar
    plan did in 51 of 60 (2026-12-08)."""
    n = request.bars // BLUES_CHORUS
    if request.style != "blues" or n < 2 or request.bars % BLUES_CHORUS or \
            tuple(request.sections) != form_for("blues", request.bars):
        return [request]
    rng = np.random.default_rng(request.seed)
    seeds = [request.seed, *(int(s) for s in rng.integers(2**63, size=n - 1))]
    # every chorus but the last may turn around in its bar 12, into the next
    return [replace(request, bars=BLUES_CHORUS, seed=seed, ends_home=k == n - 1 and
                    request.ends_home, sections=form_for("blues", BLUES_CHORUS))
            for k, seed in enumerate(seeds)]


def plan_parts(tokens: Sequence[Sequence[int]], vocab: ChordVocab,
               parts: Sequence[PlanRequest]) -> list[tuple[int, Chord]]:
    """The plans sampled for ``parts`` (``choruses``: ``tokens`` one sequence each) one after
    another as one plan; a chorus that opens on NC keeps the last chord of the one before."""
    out: list[tuple[int, Chord]] = []
    offset = 0
    for toks, part in zip(tokens, parts, strict=True):
        for tick, chord in plan_from_tokens(toks, vocab, part, out[-1][1] if out else None):
            if not out or out[-1][1] != chord:
                out.append((tick + offset, chord))
        offset += part.bars * bar_ticks(part.meter)
    return out


def sample_plans(loaded, requests: Sequence[PlanRequest]  # type: ignore[no-untyped-def]
                 ) -> list[list[tuple[int, Chord]]]:
    """Chord plans, one per request (a chorus at a time where ``choruses`` says), sampled in
    one batch (each request has its own RNG, so batching never changes a plan)."""
    from cadenza.models.generate import generate_tokens

    parts = [choruses(r) for r in requests]
    outs = iter(generate_tokens(loaded, [p for ps in parts for p in ps], plan_row))
    return [plan_parts([next(outs) for _ in ps], loaded.vocab, ps) for ps in parts]


@dataclass(frozen=True)
class ChordSeq:
    """One training progression: per-bar changes on beat units, in a key and a form."""

    source: str
    style: str
    meter: tuple[int, int]
    key: Key
    bars: tuple[BarChanges, ...]
    sections: tuple[Section, ...] = ()


def bar_content(bars: Sequence[BarChanges]) -> list[frozenset]:
    """Per bar, its changes as a set (for ``cadenza.music.form.infer_sections``)."""
    return [frozenset(bar) for bar in bars]
