"""Pure encode/decode between a lead line with its chords and a REMI-style token sequence.

The sequence models see one melodic line (the lead) over a chord timeline, conditioned on a style
and a meter; the arranger builds the rest of the band from the chords. A piece encodes as::

    BOS STYLE_s METER_m  ( BAR CHORD_c  ( REP_k ( POS_p CHORD_c )*
                                         | ( POS_p [CHORD_c] ( [VEL_v] PITCH_k DUR_d )* )* ) )*  EOS

* every bar opens with ``BAR`` and the chord sounding on its downbeat (``CHORD_NC`` for none);
* ``POS_p`` moves to tick ``p`` of the bar (strictly increasing within a bar, ticks at GRID = 12
  per quarter note); a ``CHORD`` right after it is a mid-bar chord change;
* notes starting at the same position follow in ascending pitch; ``VEL`` appears only when the
  velocity bucket changes from the previous note (the first note always carries one);
* ``REP_k`` right after a bar's chord says the bar's notes are exactly those of the bar ``k``
  bars earlier (same positions, pitches, durations, velocities); only the bar's mid-bar chord
  changes follow it. Encoding uses it for every non-empty bar that equals an earlier one (the
  nearest), so the models learn when real tunes bring an idea back (see ``cadenza.music.form``).

Vocabulary layout (ids in this order; ``Vocab`` computes the offsets):

====================  =====================================================================
``PAD BOS EOS BAR``   ids 0-3
``STYLE_<name>``      one per style of the checkpoint (``Vocab.styles``)
``METER_<n>/<d>``     METERS: 2/4 3/4 4/4 6/8 9/8 12/8
``POS_<p>``           p = 0 .. MAX_BAR_TICKS-1 (72 = one bar of 12/8)
``CHORD_NC``          no chord
``CHORD_<root>:<q>``  12 roots x CORE_QUALITIES (10) = 120, root-major order
``VEL_<k>``           8 buckets, bucket k covers velocities [16k, 16k+15], decodes to 16k+8
``PITCH_<p>``         MIDI pitches 21-108 (piano range); encode folds others in by octaves
``DUR_<d>``           DURATIONS (ticks); encode snaps to the nearest
``REP_<k>``           k = 1 .. MAX_REPEAT: this bar repeats the bar k bars back
====================  =====================================================================

Round trip: ``decode(encode(score))`` equals the input exactly when the input is canonical: GRID
resolution, notes on the grid with durations from DURATIONS and velocities at bucket centres,
pitches in range, no duplicate (start, pitch), chords from CORE_QUALITIES that are merged when
consecutive and equal (``canonical_chords``), all inside the score's bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from cadenza.music.score import GRID, ChordEvent, Meter, Note, Score, Track
from cadenza.music.score import bar_ticks as bar_ticks_of
from cadenza.music.theory import CORE_QUALITIES, Chord, Key, fold_pitch

METERS: tuple[Meter, ...] = (Meter(2, 4), Meter(3, 4), Meter(4, 4), Meter(6, 8), Meter(9, 8),
                             Meter(12, 8))
# Meters the vocabulary has no token for, written in one it has: (meter, source bars per bar).
# Same bar length where one exists (2/2 is 4/4 in half-note beats, 6/4 two dotted halves like
# 12/8's four dotted quarters); a short bar is paired (two bars of 3/8 are one of 6/8).
METER_EQUIVALENTS: dict[Meter, tuple[Meter, int]] = {
    Meter(2, 2): (Meter(4, 4), 1), Meter(4, 8): (Meter(2, 4), 1), Meter(6, 4): (Meter(12, 8), 1),
    Meter(12, 16): (Meter(6, 8), 1), Meter(3, 8): (Meter(6, 8), 2), Meter(2, 8): (Meter(2, 4), 2),
    Meter(1, 4): (Meter(2, 4), 2), Meter(3, 16): (Meter(6, 8), 4),
}
MAX_BAR_TICKS = 72
PITCH_MIN, PITCH_MAX = 21, 108
VEL_BUCKETS = 8
DURATIONS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 21, 24, 27, 30, 32, 36, 42, 48, 54, 60, 72,
    84, 96,
)

MAX_REPEAT = 32  # REP_k reaches back up to four 8-bar sections (AABA's last A)

PAD, BOS, EOS, BAR = 0, 1, 2, 3
SPECIALS = ("PAD", "BOS", "EOS", "BAR")

DEFAULT_STYLES: tuple[str, ...] = ("classical", "folk", "celtic", "ragtime", "jazz", "blues")


def model_meter(meter: Meter) -> tuple[Meter, int] | None:
    """The meter of METERS that ``meter`` is written in, and how many of its bars make one bar
    there; None when there is none (5/4, 7/8 ...)."""
    meter = Meter.parse(meter)
    if meter in METERS:
        return meter, 1
    return METER_EQUIVALENTS.get(meter)


class TokenError(ValueError):
    """A token sequence that does not follow the grammar."""


def velocity_bucket(velocity: int) -> int:
    return min(VEL_BUCKETS - 1, max(0, velocity // 16))


def bucket_velocity(bucket: int) -> int:
    return bucket * 16 + 8


def snap_duration(ticks: int) -> int:
    """Nearest duration in DURATIONS (ties go to the shorter)."""
    return min(DURATIONS, key=lambda d: (abs(d - ticks), d))


def token_pitch(pitch: int) -> int:
    """A pitch moved by octaves into the vocabulary's range."""
    return fold_pitch(pitch, PITCH_MIN, PITCH_MAX)


def chord_index(chord: Chord | None) -> int:
    """0 for no chord, else 1 + root * len(CORE_QUALITIES) + quality (used as a model feature)."""
    if chord is None:
        return 0
    red = chord.reduced()
    return 1 + red.root * len(CORE_QUALITIES) + CORE_QUALITIES.index(red.quality)


def index_chord(index: int) -> Chord | None:
    if index == 0:
        return None
    root, q = divmod(index - 1, len(CORE_QUALITIES))
    return Chord(root, CORE_QUALITIES[q])


N_CHORD_CLASSES = 1 + 12 * len(CORE_QUALITIES)


@dataclass(frozen=True)
class Vocab:
    """Token <-> id mapping for one checkpoint (its style list is part of the vocabulary)."""

    styles: tuple[str, ...] = DEFAULT_STYLES
    names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.styles)) != len(self.styles) or not self.styles:
            raise TokenError(f"styles must be unique and non-empty: {self.styles}")
        names = list(SPECIALS)
        names += [f"STYLE_{s}" for s in self.styles]
        names += [f"METER_{n}/{d}" for n, d in METERS]
        names += [f"POS_{p}" for p in range(MAX_BAR_TICKS)]
        names += ["CHORD_NC"] + [f"CHORD_{r}:{q}" for r in range(12) for q in CORE_QUALITIES]
        names += [f"VEL_{k}" for k in range(VEL_BUCKETS)]
        names += [f"PITCH_{p}" for p in range(PITCH_MIN, PITCH_MAX + 1)]
        names += [f"DUR_{d}" for d in DURATIONS]
        names += [f"REP_{k}" for k in range(1, MAX_REPEAT + 1)]
        object.__setattr__(self, "names", tuple(names))

    # offsets of each block (computed once: the sampler asks for them at every token)
    @cached_property
    def style0(self) -> int:
        return len(SPECIALS)

    @cached_property
    def meter0(self) -> int:
        return self.style0 + len(self.styles)

    @cached_property
    def pos0(self) -> int:
        return self.meter0 + len(METERS)

    @cached_property
    def chord0(self) -> int:
        return self.pos0 + MAX_BAR_TICKS

    @cached_property
    def vel0(self) -> int:
        return self.chord0 + N_CHORD_CLASSES

    @cached_property
    def pitch0(self) -> int:
        return self.vel0 + VEL_BUCKETS

    @cached_property
    def dur0(self) -> int:
        return self.pitch0 + (PITCH_MAX - PITCH_MIN + 1)

    @cached_property
    def rep0(self) -> int:
        """Id of REP_1 (REP_k is rep0 + k - 1)."""
        return self.dur0 + len(DURATIONS)

    def __len__(self) -> int:
        return len(self.names)

    def style(self, name: str) -> int:
        try:
            return self.style0 + self.styles.index(name)
        except ValueError:
            raise TokenError(f"style {name!r} is not in this vocabulary {self.styles}") from None

    def meter(self, ts: Meter) -> int:
        try:
            return self.meter0 + METERS.index(ts)
        except ValueError:
            raise TokenError(f"meter {ts[0]}/{ts[1]} is not supported") from None

    def pos(self, p: int) -> int:
        if not 0 <= p < MAX_BAR_TICKS:
            raise TokenError(f"position {p} outside a bar")
        return self.pos0 + p

    def chord(self, chord: Chord | None) -> int:
        return self.chord0 + chord_index(chord)

    def vel(self, bucket: int) -> int:
        return self.vel0 + bucket

    def pitch(self, p: int) -> int:
        return self.pitch0 + token_pitch(p) - PITCH_MIN

    def dur(self, d: int) -> int:
        return self.dur0 + DURATIONS.index(snap_duration(d))

    def rep(self, k: int) -> int:
        if not 1 <= k <= MAX_REPEAT:
            raise TokenError(f"a repeat reaches back 1-{MAX_REPEAT} bars, not {k}")
        return self.rep0 + k - 1

    def kind(self, token: int) -> str:
        """Block name of a token id: special/style/meter/pos/chord/vel/pitch/dur/rep."""
        if not 0 <= token < len(self.names):
            raise TokenError(f"token id {token} outside the vocabulary of {len(self)}")
        return self._kinds[token]

    def value(self, token: int) -> int:
        """Index of a token inside its block (style index, meter index, tick, ...)."""
        return self._values[token] if 0 <= token < len(self.names) else token

    def _blocks(self) -> tuple[tuple[str, int, int], ...]:
        return (
            ("special", 0, self.style0),
            ("style", self.style0, self.meter0),
            ("meter", self.meter0, self.pos0),
            ("pos", self.pos0, self.chord0),
            ("chord", self.chord0, self.vel0),
            ("vel", self.vel0, self.pitch0),
            ("pitch", self.pitch0, self.dur0),
            ("dur", self.dur0, self.rep0),
            ("rep", self.rep0, len(self)),
        )

    @cached_property
    def _kinds(self) -> tuple[str, ...]:
        return tuple(name for name, lo, hi in self._blocks() for _ in range(lo, hi))

    @cached_property
    def _values(self) -> tuple[int, ...]:
        """A special token's value is its id, as before blocks were tabled."""
        return tuple(t if name == "special" else t - lo
                     for name, lo, hi in self._blocks() for t in range(lo, hi))

    def to_strings(self, tokens: list[int]) -> list[str]:
        return [self.names[t] for t in tokens]

    def from_strings(self, names: list[str]) -> list[int]:
        lookup = {n: i for i, n in enumerate(self.names)}
        try:
            return [lookup[n] for n in names]
        except KeyError as e:
            raise TokenError(f"unknown token {e.args[0]!r}") from None


def canonical_chords(chords: tuple[ChordEvent, ...] | list[ChordEvent], end: int) -> tuple[
    ChordEvent, ...
]:
    """Reduce to core qualities, clip to [0, end), extend each to the next change, merge repeats."""
    out: list[ChordEvent] = []
    evs = sorted((c for c in chords if c.start < end), key=lambda c: c.start)
    for i, ev in enumerate(evs):
        stop = evs[i + 1].start if i + 1 < len(evs) else end
        if stop <= ev.start:
            continue
        chord = ev.chord.reduced()
        if out and out[-1].chord == chord and out[-1].end == ev.start:
            prev = out.pop()
            out.append(ChordEvent(prev.start, stop - prev.start, chord))
        else:
            out.append(ChordEvent(ev.start, stop - ev.start, chord))
    return tuple(out)


def encode(score: Score, vocab: Vocab, *, style: str | None = None, eos: bool = True,
           repeats: bool = True) -> list[int]:
    """Tokens for the score's lead track and chords (see the module docstring for the grammar);
    ``repeats=False`` writes repeated bars out note by note instead of as ``REP_k``."""
    if score.resolution != GRID:
        raise TokenError(f"encode needs resolution {GRID}, got {score.resolution}")
    bar_ticks = score.bar_ticks
    if bar_ticks > MAX_BAR_TICKS:
        raise TokenError(f"bars of {bar_ticks} ticks are longer than {MAX_BAR_TICKS}")
    style_name = style or score.style
    if style_name is None:
        raise TokenError("encode needs a style")
    lead = score.track("lead")
    notes = lead.notes if lead else ()
    end = score.bars * bar_ticks
    chords = canonical_chords(score.chords, end)

    # index notes and chord changes by (bar, pos)
    by_bar: dict[int, dict[int, list[Note]]] = {}
    seen: set[tuple[int, int]] = set()
    # longest first, so a duplicate onset of the same pitch keeps the longest note
    for n in sorted(notes, key=lambda n: (n.start, n.pitch, -n.duration)):
        if n.start >= end:
            continue
        pitch = token_pitch(n.pitch)
        if (n.start, pitch) in seen:
            continue
        seen.add((n.start, pitch))
        bar, pos = divmod(n.start, bar_ticks)
        by_bar.setdefault(bar, {}).setdefault(pos, []).append(n)
    changes: dict[int, dict[int, Chord]] = {}
    for ev in chords:
        bar, pos = divmod(ev.start, bar_ticks)
        changes.setdefault(bar, {})[pos] = ev.chord

    out = [BOS, vocab.style(style_name), vocab.meter(score.time_signature)]
    current: Chord | None = None
    last_vel: int | None = None
    seen_bars: dict[tuple, int] = {}  # a bar's canonical notes -> the latest bar holding them
    for bar in range(score.bars):
        bar_changes = changes.get(bar, {})
        if 0 in bar_changes:
            current = bar_changes[0]
        out += [BAR, vocab.chord(current)]
        bar_notes = by_bar.get(bar, {})
        signature = _bar_signature(bar_notes)
        earlier = seen_bars.get(signature) if signature and repeats else None
        if signature:
            seen_bars[signature] = bar
        if earlier is not None and bar - earlier <= MAX_REPEAT:
            out.append(vocab.rep(bar - earlier))
            for pos in sorted(set(bar_changes) - {0}):
                if bar_changes[pos] != current:
                    current = bar_changes[pos]
                    out += [vocab.pos(pos), vocab.chord(current)]
            last_vel = signature[-1][3]
            continue
        for pos in sorted(set(bar_notes) | (set(bar_changes) - {0})):
            out.append(vocab.pos(pos))
            if pos in bar_changes and pos != 0 and bar_changes[pos] != current:
                current = bar_changes[pos]
                out.append(vocab.chord(current))
            for n in sorted(bar_notes.get(pos, []), key=lambda n: token_pitch(n.pitch)):
                vb = velocity_bucket(n.velocity)
                if vb != last_vel:
                    out.append(vocab.vel(vb))
                    last_vel = vb
                out += [vocab.pitch(n.pitch), vocab.dur(n.duration)]
    if eos:
        out.append(EOS)
    return out


def _bar_signature(bar_notes: dict[int, list[Note]]) -> tuple:
    """A bar's notes as tokens see them, in stream order: (pos, pitch, duration, vel bucket)."""
    return tuple(
        (pos, token_pitch(n.pitch), snap_duration(n.duration), velocity_bucket(n.velocity))
        for pos in sorted(bar_notes)
        for n in sorted(bar_notes[pos], key=lambda n: token_pitch(n.pitch))
    )


def decode(
    tokens: list[int],
    vocab: Vocab,
    *,
    tempo: float = 120.0,
    key: Key | None = None,
    program: int = 0,
    strict: bool = True,
) -> Score:
    """Score (lead track + chords) from tokens. ``strict`` raises TokenError on grammar errors;
    otherwise stray tokens are skipped so a truncated sample still decodes."""
    style: str | None = None
    meter = Meter(4, 4)
    notes: list[Note] = []
    chord_marks: list[tuple[int, Chord | None]] = []
    bar = -1
    pos: int | None = None
    vel = bucket_velocity(5)
    pending_pitch: int | None = None
    last_pitch_at_pos = -1
    repeated = False  # the current bar is a REP_k copy: only chord changes may follow
    bar_ticks = GRID * 4

    def fail(msg: str, i: int) -> None:
        if strict:
            raise TokenError(f"token {i} ({vocab.names[tokens[i]]}): {msg}")

    i0 = 1 if tokens and tokens[0] == BOS else 0
    for i in range(i0, len(tokens)):
        t = tokens[i]
        kind = vocab.kind(t)
        val = vocab.value(t)
        if pending_pitch is not None and kind != "dur":
            fail("a PITCH must be followed by a DUR", i)
            pending_pitch = None
        if t == EOS:
            break
        if t in (PAD, BOS):
            fail("unexpected PAD/BOS", i)
        elif kind == "style":
            style = vocab.styles[val]
        elif kind == "meter":
            meter = METERS[val]
            bar_ticks = bar_ticks_of(meter)
        elif t == BAR:
            bar += 1
            pos = None
            last_pitch_at_pos = -1
            repeated = False
        elif bar < 0:
            fail("music before the first BAR", i)
        elif kind == "pos":
            if val >= bar_ticks or (pos is not None and val <= pos):
                fail(f"position {val} out of order in a {meter[0]}/{meter[1]} bar", i)
                continue
            pos = val
            last_pitch_at_pos = -1
        elif kind == "chord":
            at = bar * bar_ticks + (pos or 0)
            chord_marks.append((at, index_chord(val)))
        elif kind == "vel":
            vel = bucket_velocity(val)
        elif kind == "pitch":
            p = PITCH_MIN + val
            if repeated:
                fail("notes in a bar that repeats another", i)
                continue
            if pos is None:
                pos = 0
            if p <= last_pitch_at_pos:
                fail("pitches at one position must ascend", i)
                continue
            pending_pitch = p
            last_pitch_at_pos = p
        elif kind == "dur":
            if pending_pitch is None:
                fail("a DUR without a PITCH", i)
                continue
            if repeated:
                fail("notes in a bar that repeats another", i)
                continue
            notes.append(Note(bar * bar_ticks + (pos or 0), DURATIONS[val], pending_pitch, vel))
            pending_pitch = None
        elif kind == "rep":
            k = val + 1
            if bar - k < 0 or repeated or pos is not None:
                fail(f"REP_{k} must open a bar at least {k} bars in", i)
                continue
            lo, hi = (bar - k) * bar_ticks, (bar - k + 1) * bar_ticks
            copied = [n for n in notes if lo <= n.start < hi]
            notes += [Note(n.start + k * bar_ticks, n.duration, n.pitch, n.velocity)
                      for n in copied]
            if copied:
                vel = copied[-1].velocity
            repeated = True
    bars = bar + 1
    end = bars * bar_ticks
    events: list[ChordEvent] = []
    # chord marks -> events lasting to the next mark; NC ends a chord without starting one
    marks = sorted(chord_marks, key=lambda m: m[0])
    for j, (at, chord) in enumerate(marks):
        stop = marks[j + 1][0] if j + 1 < len(marks) else end
        if chord is not None and stop > at:
            events.append(ChordEvent(at, stop - at, chord))
    track = Track("Lead", role="lead", program=program, notes=tuple(notes))
    return Score(
        tracks=(track,),
        chords=canonical_chords(events, end),
        resolution=GRID,
        tempo=tempo,
        time_signature=meter,
        key=key or Key(0),
        bars=max(bars, 0),
        style=style,
    )
