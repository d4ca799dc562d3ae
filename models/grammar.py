"""Token-stream tracking: side features for the models and grammar constraints for sampling.

``Tracker`` follows a token stream and reports, after each token, the context the sequence models
are conditioned on at every step (style, meter, current chord, position in the bar, bars left,
the form, the previous note's pitch).
``Constraint`` adds the grammar of ``cadenza.music.tokens`` plus a chord plan and a bar count, so
that sampling can only produce well-formed sequences with exactly the requested harmony and length;
tokens it forces (the preamble, chords, a primer) are not sampled at all.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cadenza.music.form import FORM_FEATURE_SIZES, FORM_FEATURES, UNKNOWN_FORM
from cadenza.music.score import bar_ticks
from cadenza.music.score import bar_ticks as bar_ticks_of
from cadenza.music.theory import Chord
from cadenza.music.tokens import (
    BAR,
    BOS,
    EOS,
    MAX_BAR_TICKS,
    MAX_REPEAT,
    METERS,
    N_CHORD_CLASSES,
    PAD,
    PITCH_MAX,
    PITCH_MIN,
    Vocab,
    chord_index,
)

# side feature columns and their cardinalities (the model embeds each and sums them); the
# form columns (section letter, bar in section, bars left in it, repeat) are per bar, from
# ``cadenza.music.form``
# The last column, the previous note's pitch, came last so that checkpoints trained before it
# (fewer feature_sizes) read a prefix of the columns: with absolute pitch tokens a model must
# otherwise recall the last pitch across the POS/VEL/DUR tokens between notes, and a blurred
# memory of it spread probability over the pitch itself (4x the data's repeated notes, see
# docs/style-classifier.md).
# The echo columns came after it: in a section heard before, the same bar of its first
# statement (``cadenza.music.form.echo_bars``) is the bar's echo, and the model reads where it
# is and what it played here, so a returning phrase can come back (copied, varied, answered):
# ``echo_back`` 0 = no echo, k = the echo is k bars back (MAX_REPEAT + 1: further), so REP_k
# would copy it; ``echo_next`` 0 = no echo, 1 + p = the echo's next onset after the current
# position is at tick p (at or after tick 0 before the bar's first POS), MAX_BAR_TICKS + 1 =
# the echo has no onset left; ``echo_pitch`` 0 = no echo or no further note of it at this
# position, else the pitch (prev_pitch's values) of the echo's n-th note at this position,
# n = the notes this bar has placed here so far (lead lines hold one note per position).
# Without them a returning section was told it returns but not what came before: its bars
# were no more alike their first statement than any other section's (docs/eval).
FEATURES = ("style", "meter", "chord", "pos", "bars_left", *FORM_FEATURES, "prev_pitch",
            "echo_back", "echo_next", "echo_pitch")
MAX_BARS_LEFT = 8  # bars_left feature: 0 = before the first bar, k = min(k, 8) bars to go
PREV_PITCH_COL = FEATURES.index("prev_pitch")  # 0 = no note yet, else 1 + pitch - PITCH_MIN
ECHO_COL = FEATURES.index("echo_back")  # the first echo column (form guidance zeroes them)
ECHO_PITCH_COL = FEATURES.index("echo_pitch")  # values as PREV_PITCH_COL's
ECHO_NONE_LEFT = MAX_BAR_TICKS + 1  # echo_next: the echo has no onset after this position

FormRows = tuple[tuple[int, int, int, int], ...]  # per bar, from cadenza.music.form.bar_features


def feature_sizes(vocab: Vocab) -> tuple[int, ...]:
    return (len(vocab.styles) + 1, len(METERS) + 1, N_CHORD_CLASSES, MAX_BAR_TICKS + 1,
            MAX_BARS_LEFT + 1, *FORM_FEATURE_SIZES, PITCH_MAX - PITCH_MIN + 2,
            MAX_REPEAT + 2, MAX_BAR_TICKS + 2, PITCH_MAX - PITCH_MIN + 2)


class Tracker:
    """Follows tokens and exposes the side features after each one."""

    def __init__(self, vocab: Vocab, total_bars: int | None = None,
                 form: FormRows | None = None, echo: Sequence[int] | None = None) -> None:
        self.vocab = vocab
        self.total_bars = total_bars
        self.form = form or ()
        self.echo = tuple(echo or ())  # per bar: bars back to its echo, 0 for none
        self.style = 0  # 0 = unknown, else 1 + style index
        self.meter = 0  # 0 = unknown, else 1 + meter index
        self.bar_ticks = 48
        self.chord = 0
        self.bar = -1
        self.pos: int | None = None
        self.prev_pitch = 0  # PREV_PITCH_COL's value
        self.bar_prev: list[int] = []  # per bar: prev_pitch at its end, which a REP_k copies
        # per bar: its notes as (position, pitch value) in token order, which an echo reads
        self.bar_notes: list[list[tuple[int, int]]] = []
        self.at_pos = 0  # notes of this bar at the current position so far
        self.echo_back = 0
        self.echo_onsets: list[int] = []  # the echo's onset positions, ascending, distinct
        self.echo_pitches: dict[int, list[int]] = {}  # the echo's pitch values per position

    def feed(self, token: int) -> None:
        v = self.vocab
        kind = v.kind(token)
        if kind == "style":
            self.style = 1 + v.value(token)
        elif kind == "meter":
            self.meter = 1 + v.value(token)
            n, d = METERS[v.value(token)]
            self.bar_ticks = 48 * n // d
        elif token == BAR:
            self.bar += 1
            self.pos = None
            self.at_pos = 0
            self.bar_prev.append(self.prev_pitch)
            self.bar_notes.append([])
            self._find_echo()
        elif kind == "pos":
            self.pos = v.value(token)
            self.at_pos = 0
        elif kind == "chord":
            self.chord = v.value(token)
        elif kind == "pitch":
            self.prev_pitch = 1 + v.value(token)
            self.bar_prev[-1:] = [self.prev_pitch]
            if self.bar_notes and self.pos is not None:
                self.bar_notes[-1].append((self.pos, self.prev_pitch))
            self.at_pos += 1
        elif kind == "rep":
            k = v.value(token) + 1
            if 0 <= self.bar - k < len(self.bar_prev):
                # the repeated bar's last note sounds again; a bar without notes keeps the
                # note before it, which is the one before this bar too
                copied = self.bar_prev[self.bar - k]
                if copied:
                    self.prev_pitch = copied
                    self.bar_prev[-1] = copied
                self.bar_notes[-1] = list(self.bar_notes[self.bar - k])

    def _find_echo(self) -> None:
        b = self.bar
        back = self.echo[b] if b < len(self.echo) else 0
        if not 0 < back <= b:
            self.echo_back, self.echo_onsets, self.echo_pitches = 0, [], {}
            return
        self.echo_back = min(back, MAX_REPEAT + 1)
        pitches: dict[int, list[int]] = {}
        for pos, pitch in self.bar_notes[b - back]:
            pitches.setdefault(pos, []).append(pitch)
        self.echo_onsets, self.echo_pitches = sorted(pitches), pitches

    def features(self) -> tuple[int, ...]:
        pos = 0 if self.pos is None else self.pos + 1
        if self.bar < 0:
            left = 0
        elif self.total_bars is None:
            left = MAX_BARS_LEFT
        else:
            left = max(1, min(MAX_BARS_LEFT, self.total_bars - self.bar))
        form = self.form[self.bar] if 0 <= self.bar < len(self.form) else UNKNOWN_FORM
        if not self.echo_back:
            return (self.style, self.meter, self.chord, pos, left, *form, self.prev_pitch,
                    0, 0, 0)
        onsets = self.echo_onsets
        # pos - 1 is the current tick (-1 before the bar's first POS): the next onset after it
        i = bisect.bisect_left(onsets, pos)
        nxt = onsets[i] + 1 if i < len(onsets) else ECHO_NONE_LEFT
        pitch = 0
        if self.pos is not None:
            here = self.echo_pitches.get(self.pos, ())
            if self.at_pos < len(here):
                pitch = here[self.at_pos]
        return (self.style, self.meter, self.chord, pos, left, *form, self.prev_pitch,
                self.echo_back, nxt, pitch)


def sequence_features(tokens: list[int] | np.ndarray, vocab: Vocab,
                      form: FormRows | None = None, echo: Sequence[int] | None = None
                      ) -> np.ndarray:
    """(T, len(FEATURES)) int array: features after each token of a whole piece."""
    toks = [int(t) for t in tokens]
    tracker = Tracker(vocab, total_bars=sum(1 for t in toks if t == BAR), form=form, echo=echo)
    out = np.zeros((len(toks), len(FEATURES)), dtype=np.int64)
    for i, t in enumerate(toks):
        tracker.feed(t)
        out[i] = tracker.features()
    return out


@dataclass(frozen=True)
class ChordPlan:
    """Chord changes per bar: ``bars[b]`` lists (tick in bar, chord); the first is at tick 0."""

    bars: tuple[tuple[tuple[int, Chord | None], ...], ...]

    def __post_init__(self) -> None:
        for b, changes in enumerate(self.bars):
            if not changes or changes[0][0] != 0:
                raise ValueError(f"bar {b} of the chord plan needs a chord at tick 0")
            ticks = [t for t, _ in changes]
            if ticks != sorted(set(ticks)):
                raise ValueError(f"bar {b} of the chord plan has unordered changes")


# What a sequence may choose next, as plain ints: three half-open id ranges [a, b) (empty when
# a >= b), one more id to allow and one id to forbid (-1 for none), and a set of up to 62 ids
# from a base id as a bitmask (base, bits): bit k allows id base + k (the REP_k choices, which
# depend on which earlier bars share the current bar's chords; the chord grammar's tonic
# qualities that end a clip at rest). Every mask the grammar makes has this shape, so a batch
# of them is one (B, 10) array and one broadcast comparison.
MaskSpec = tuple[int, int, int, int, int, int, int, int, int, int]
BITSET_SPAN = 62


def masks(specs: Sequence[MaskSpec] | np.ndarray, size: int) -> np.ndarray:
    """(B, size) boolean masks from B MaskSpecs."""
    if isinstance(specs, np.ndarray):
        return _masks(specs.reshape(-1, 10), size)
    # A sampling step asks for one mask per row; the same few hundred specs come back all
    # through a clip (each phase and register has its own), so each is built once.
    rows = [_mask_row(tuple(spec), size) for spec in specs]
    return np.stack(rows) if len(rows) != 1 else rows[0][None].copy()


@functools.lru_cache(maxsize=16384)
def _mask_row(spec: MaskSpec, size: int) -> np.ndarray:
    row = _masks(np.asarray(spec, dtype=np.int64).reshape(1, 10), size)[0]
    row.setflags(write=False)  # shared by every later caller
    return row


def _masks(s: np.ndarray, size: int) -> np.ndarray:
    ids = np.arange(size)
    m = (ids >= s[:, 0:1]) & (ids < s[:, 1:2])
    m |= (ids >= s[:, 2:3]) & (ids < s[:, 3:4])
    m |= (ids >= s[:, 4:5]) & (ids < s[:, 5:6])
    m |= ids == s[:, 6:7]
    offset = ids - s[:, 8:9]
    inside = (offset >= 0) & (offset < BITSET_SPAN)
    m |= inside & (((s[:, 9:10] >> np.clip(offset, 0, BITSET_SPAN - 1)) & 1) == 1)
    m &= ids != s[:, 7:8]
    return m


class Constraint:
    """Grammar + chord plan + length for one sampled sequence.

    Phases: ``pre`` (preamble forced), ``barchord`` (after BAR, its chord is forced next), ``bar``
    (after BAR CHORD, no position yet), ``pos`` (after a
    POS that still needs a note), ``open`` (after a note or a mid-bar chord), ``vel`` (after VEL),
    ``pitch`` (DUR must follow), ``done``.

    In phase ``bar`` the model may also choose ``REP_k`` (this bar repeats the bar k back) when
    that bar has notes and either the plan gives both bars the same chords (a repeat that
    cannot clash) or that bar is this bar's echo (the form says this section restates it, over
    whatever harmony: a blues' second line restates the first over IV); the rest of a repeated
    bar (its mid-bar chords, the next BAR) is forced.
    ``repeats=False`` takes the choice away.
    """

    def __init__(
        self,
        vocab: Vocab,
        *,
        style: str,
        meter: tuple[int, int],
        plan: ChordPlan,
        prefix: list[int] | None = None,
        pitch_range: tuple[int, int] = (48, 91),
        max_poly: int = 1,
        form: FormRows | None = None,
        echo: Sequence[int] | None = None,
        repeats: bool = True,
    ) -> None:
        self.vocab = vocab
        self.plan = plan
        self.bars = len(plan.bars)
        if self.bars < 1:
            raise ValueError("a chord plan needs at least one bar")
        self.pitch_range = pitch_range
        self.max_poly = max_poly
        self.repeats = repeats
        self.tracker = Tracker(vocab, total_bars=self.bars, form=form, echo=echo)
        # per bar: velocity bucket of its last note (None: no notes), which a REP_k copies
        self.bar_last_vel: list[int | None] = [None] * self.bars
        self.repeated = False  # the current bar is a REP_k copy
        self.bar_ticks = bar_ticks(meter)
        self.forced_queue: list[int] = [BOS, vocab.style(style), vocab.meter(meter)]
        if prefix:
            pre = list(prefix)
            if pre[:1] == [BOS]:
                pre = pre[3:]  # the primer's own preamble is replaced by ours
            if pre and pre[-1] == EOS:
                pre = pre[:-1]
            self.forced_queue += pre
        self.phase = "pre"
        self.pos: int | None = None
        self.notes_at_pos = 0
        self.last_pitch = -1
        self.vel: int | None = None
        self.pending: list[tuple[int, Chord | None]] = []
        self.done = False
        self.tokens: list[int] = []

    @property
    def bar(self) -> int:
        return self.tracker.bar

    def forced(self) -> int | None:
        """The next token when the grammar or the plan leaves no choice, else None."""
        if self.done:
            return PAD
        if self.forced_queue:
            return self.forced_queue[0]
        if self.phase == "pos" and self.pending and self.pending[0][0] == self.pos:
            return self.vocab.chord(self.pending[0][1])
        if self.repeated:
            if self.pending:
                return self.vocab.pos(self.pending[0][0])
            return EOS if self.bar == self.bars - 1 else BAR
        return None

    def allowed(self) -> MaskSpec:
        """The tokens the model may choose now, as a MaskSpec (the sampler turns a whole
        batch of them into masks in one array operation)."""
        v = self.vocab
        ph = self.phase
        if ph == "pitch":
            return (v.dur0, v.rep0, 0, 0, 0, 0, -1, -1, 0, 0)
        pitches = vels = positions = (0, 0)
        include = exclude = -1
        if ph in ("pos", "open", "vel") and self.notes_at_pos < self.max_poly:
            lo = max(self.pitch_range[0], self.last_pitch + 1)
            hi = self.pitch_range[1]
            # canonical streams give the first note a VEL, and repeat no VEL
            if lo <= hi and (ph == "vel" or self.vel is not None):
                pitches = (v.pitch0 + lo - PITCH_MIN, v.pitch0 + hi - PITCH_MIN + 1)
            if ph != "vel":
                vels = (v.vel0, v.pitch0)
                if self.vel is not None:
                    exclude = v.vel(self.vel)
        if ph in ("bar", "open"):
            first = 0 if self.pos is None else self.pos + 1
            last = self.pending[0][0] if self.pending else self.bar_ticks - 1
            if first <= last:
                positions = (v.pos0 + first, v.pos0 + last + 1)
            if not self.pending:
                include = EOS if self.bar == self.bars - 1 else BAR
        rep_bits = 0
        if ph == "bar" and self.repeats:
            b = self.bar
            # the tracker found this bar's echo at its BAR (0: none, MAX_REPEAT + 1: too far)
            echo = self.tracker.echo_back
            for k in range(1, min(b, MAX_REPEAT) + 1):
                # the bar's echo may come back over other chords too (a blues' second line
                # over IV, a last A whose changes moved): the form says it restates that bar
                if self.bar_last_vel[b - k] is not None and (
                        k == echo or self.plan.bars[b - k] == self.plan.bars[b]):
                    rep_bits |= 1 << (k - 1)
        if pitches[0] >= pitches[1] and vels[0] >= vels[1] and positions[0] >= positions[1] \
                and include < 0 and not rep_bits:
            # cannot happen with a consistent plan; fail loudly rather than hang
            raise RuntimeError(f"grammar dead end in phase {ph} at bar {self.bar}")
        return (*pitches, *vels, *positions, include, exclude, v.rep0, rep_bits)

    def mask(self) -> np.ndarray:
        """Boolean mask of the tokens the model may choose now."""
        return masks([self.allowed()], len(self.vocab))[0]

    def feed(self, token: int) -> None:
        """Advance with the chosen (or forced) token."""
        if self.done:
            return
        v = self.vocab
        if self.forced_queue:
            expected = self.forced_queue.pop(0)
            if token != expected:
                raise ValueError(f"expected forced token {v.names[expected]}, got {v.names[token]}")
        self.tokens.append(token)
        self.tracker.feed(token)
        kind = v.kind(token)
        if token == EOS:
            self.done = True
            self.phase = "done"
        elif token == BAR:
            if self.bar >= self.bars:
                raise ValueError("more bars than planned")
            changes = self.plan.bars[self.bar]
            self.pending = list(changes[1:])
            self.repeated = False
            self.pos = None
            self.notes_at_pos = 0
            self.last_pitch = -1
            self.phase = "barchord"
            if not self.forced_queue:
                self.forced_queue.append(v.chord(changes[0][1]))
        elif kind == "chord":
            if self.phase == "barchord":
                self.phase = "bar"
            else:
                if self.pending and self.pending[0][0] == self.pos:
                    self.pending.pop(0)
                self.phase = "open"
        elif kind == "pos":
            self.pos = v.value(token)
            self.notes_at_pos = 0
            self.last_pitch = -1
            # a primer may place notes past planned changes; drop changes it skipped over
            while self.pending and self.pending[0][0] < self.pos:
                self.pending.pop(0)
            self.phase = "pos"
        elif kind == "vel":
            self.vel = v.value(token)
            self.phase = "vel"
        elif kind == "pitch":
            self.last_pitch = PITCH_MIN + v.value(token)
            self.phase = "pitch"
        elif kind == "dur":
            self.notes_at_pos += 1
            self.bar_last_vel[self.bar] = self.vel
            self.phase = "open"
        elif kind == "rep":
            k = v.value(token) + 1
            self.bar_last_vel[self.bar] = self.bar_last_vel[self.bar - k]
            self.vel = self.bar_last_vel[self.bar]
            self.repeated = True
            self.phase = "rep"
        if self.phase == "pre" and not self.forced_queue:
            self.forced_queue.append(BAR)  # preamble done and no primer: the first bar comes next

    def features(self) -> tuple[int, ...]:
        return self.tracker.features()


def changes_per_bar(chords: Sequence[tuple[int, Chord | None]], bars: int, bar_ticks: int
                    ) -> tuple[tuple[tuple[int, Chord | None], ...], ...]:
    """Per-bar (tick in bar, chord) changes from absolute ones: each bar restates its downbeat
    chord, a chord repeated is no change, and of two changes at one tick the later wins."""
    per_bar: list[list[tuple[int, Chord | None]]] = [[] for _ in range(bars)]
    current: Chord | None = None
    marks = sorted(chords, key=lambda c: c[0])
    j = 0
    for b in range(bars):
        start = b * bar_ticks
        while j < len(marks) and marks[j][0] <= start:
            current = marks[j][1]
            j += 1
        bar = per_bar[b]
        bar.append((0, current))
        while j < len(marks) and marks[j][0] < start + bar_ticks:
            tick, chord = marks[j]
            if chord != current:
                if bar[-1][0] == tick - start:
                    bar[-1] = (tick - start, chord)
                else:
                    bar.append((tick - start, chord))
                current = chord
            j += 1
    return tuple(tuple(x) for x in per_bar)


def plan_from_chords(
    chords: list[tuple[int, Chord | None]], bars: int, bar_ticks: int
) -> ChordPlan:
    """ChordPlan from absolute (tick, chord) changes; each bar restates its downbeat chord."""
    return ChordPlan(changes_per_bar(chords, bars, bar_ticks))


__all__ = [
    "FEATURES",
    "ChordPlan",
    "Constraint",
    "MaskSpec",
    "Tracker",
    "changes_per_bar",
    "chord_index",
    "feature_sizes",
    "masks",
    "plan_from_chords",
    "sequence_features",
]


class SkeletonConstraint(Constraint):
    """Re-sample only the pitches of an existing sequence: bars, positions, chords, velocities
    and durations (the harmony and rhythm skeleton) are forced from ``tokens``."""

    def __init__(self, vocab: Vocab, tokens: list[int], *, pitch_range: tuple[int, int] = (48, 91),
                 style: str | None = None, form: FormRows | None = None,
                 echo: Sequence[int] | None = None) -> None:
        toks = [t for t in tokens if t != PAD]
        if len(toks) < 3 or toks[0] != BOS:
            raise ValueError("a skeleton needs a whole token sequence (BOS STYLE METER ...)")
        meter = METERS[vocab.value(toks[2])]
        style_name = style or vocab.styles[vocab.value(toks[1])]
        bar_ticks = bar_ticks_of(meter)
        # the plan is the original's chords, so chord tokens stay exactly where they were
        from cadenza.music.tokens import decode

        original = decode(toks, vocab, strict=False)
        plan = plan_from_chords([(c.start, c.chord) for c in original.chords], original.bars,
                                bar_ticks)
        super().__init__(vocab, style=style_name, meter=meter, plan=plan,
                         pitch_range=pitch_range, max_poly=8, form=form, echo=echo)
        self.skeleton = [vocab.style(style_name) if vocab.kind(t) == "style" else t for t in toks]
        if self.skeleton[-1] != EOS:
            self.skeleton.append(EOS)
        self.forced_queue = []

    def forced(self) -> int | None:
        if self.done:
            return PAD
        tok = self.skeleton[len(self.tokens)]
        return None if self.vocab.kind(tok) == "pitch" else tok

    def allowed(self) -> MaskSpec:
        lo = max(self.pitch_range[0], self.last_pitch + 1)
        hi = self.pitch_range[1]
        # leave room above for the notes still to come at this position (chords ascend)
        pending = 0
        for t in self.skeleton[len(self.tokens) + 1 :]:
            kind = self.vocab.kind(t)
            if kind == "pitch":
                pending += 1
            elif kind not in ("dur", "vel"):
                break
        hi = max(lo, hi - pending)
        p0 = self.vocab.pitch0 - PITCH_MIN
        return (p0 + lo, p0 + hi + 1, 0, 0, 0, 0, -1, -1, 0, 0)

    def feed(self, token: int) -> None:
        if self.forced_queue:
            self.forced_queue.clear()
        super().feed(token)
        self.forced_queue.clear()  # the skeleton, not the plan, decides what comes next
