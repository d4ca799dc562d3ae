"""Monophonic melodies as fixed sixteenth-note step classes (MusicVAE-style), pure functions.

Layout of one step's class (``N_CLASSES`` = 2 + number of pitches):

* ``0`` REST: silence from this step (a sounding note stops);
* ``1`` HOLD: nothing new happens (a sounding note continues, silence stays silent);
* ``2 + (p - PITCH_LO)``: a new note of MIDI pitch ``p`` starts, ending the previous one.

A segment is ``SEG_STEPS`` = 32 sixteenths (two 4/4 bars). Melodies are on the GRID (12 ticks per
quarter): onsets snap to the nearest sixteenth (3 ticks), so triplets are approximated. Pitches
outside [PITCH_LO, PITCH_HI] are folded in by octaves.

Chords beside the steps (``chords_to_steps``): ``CHORD_FEATURES`` = 24 numbers per step, the
pitch classes of the chord sounding at the step (C = 0 .. B = 11) as 0/1, then its root one-hot;
all zero where no chord sounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cadenza.music.score import Note
from cadenza.music.theory import Chord, fold_pitch

STEP_TICKS = 3  # a sixteenth at GRID = 12
SEG_STEPS = 32
PITCH_LO, PITCH_HI = 36, 96
N_PITCHES = PITCH_HI - PITCH_LO + 1
REST, HOLD = 0, 1
N_CLASSES = 2 + N_PITCHES
CHORD_FEATURES = 24  # per step: the chord's pitch classes (12), then its root (12, one-hot)


def notes_to_steps(notes: Sequence[Note], n_steps: int, offset: int = 0) -> np.ndarray:
    """Step classes for notes (GRID ticks) in [offset, offset + n_steps * STEP_TICKS)."""
    out = np.full(n_steps, HOLD, dtype=np.int64)
    onset_class: dict[int, int] = {}
    end_step: dict[int, int] = {}
    for n in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        s = round((n.start - offset) / STEP_TICKS)
        if s < 0 or s >= n_steps or s in onset_class:
            continue  # outside, or a second onset in one step: keep the highest
        onset_class[s] = 2 + fold_pitch(n.pitch, PITCH_LO, PITCH_HI) - PITCH_LO
        end_step[s] = max(round((n.end - offset) / STEP_TICKS), s + 1)
    onsets = sorted(onset_class)
    for i, s in enumerate(onsets):
        out[s] = onset_class[s]
        nxt = onsets[i + 1] if i + 1 < len(onsets) else n_steps
        if end_step[s] < nxt:
            out[end_step[s]] = REST  # the note ends before the next one starts
    if n_steps and (not onsets or onsets[0] > 0):
        out[0] = REST  # silence before the first note is explicit
    return out


def steps_to_notes(steps: Sequence[int], offset: int = 0, velocity: int = 88) -> list[Note]:
    """Notes (GRID ticks) from step classes; HOLD before any note is silence."""
    notes: list[Note] = []
    start = pitch = None
    for i, c in enumerate([*list(steps), REST]):
        c = int(c)
        if c == HOLD:
            continue
        if start is not None and pitch is not None:
            notes.append(Note(offset + start * STEP_TICKS, (i - start) * STEP_TICKS, pitch,
                              velocity))
        start = pitch = None
        if c >= 2:
            start, pitch = i, PITCH_LO + c - 2
    return notes


def chords_to_steps(chords: Sequence[tuple[int, Chord | None]], n_steps: int,
                    offset: int = 0) -> np.ndarray:
    """(n_steps, CHORD_FEATURES) float32: the chord sounding at each step of
    [offset, offset + n_steps * STEP_TICKS), from changes (tick, chord or None for no chord)."""
    changes = sorted(chords, key=lambda c: c[0])
    # row 0: before the first change; row i + 1: change i (of two at one tick, the later)
    rows = np.zeros((len(changes) + 1, CHORD_FEATURES), dtype=np.float32)
    for i, (_, chord) in enumerate(changes):
        if chord is not None:
            rows[i + 1, [*chord.pitch_classes, 12 + chord.root]] = 1.0
    ticks = offset + np.arange(n_steps) * STEP_TICKS
    starts = np.array([t for t, _ in changes], dtype=np.int64)
    return rows[np.searchsorted(starts, ticks, side="right")]


def chord_tone_signs(feats: np.ndarray) -> np.ndarray:
    """(T, N_CLASSES) from chord features (``chords_to_steps``): per step +1 for a note class
    whose pitch class the sounding chord holds, -1 for the other note classes, 0 for REST and
    HOLD and at steps where no chord sounds."""
    holds = feats[:, :12][:, np.arange(PITCH_LO, PITCH_HI + 1) % 12] > 0  # (T, N_PITCHES)
    out = np.zeros((len(feats), N_CLASSES), dtype=np.float32)
    out[:, 2:] = np.where(holds, 1.0, -1.0)
    out[~feats[:, :12].any(axis=1)] = 0.0
    return out


def transpose_chord_steps(feats: np.ndarray, semitones: int) -> np.ndarray:
    """Chord features (..., CHORD_FEATURES) moved by ``semitones``."""
    return np.concatenate([np.roll(feats[..., :12], semitones, axis=-1),
                           np.roll(feats[..., 12:], semitones, axis=-1)], axis=-1)


def window_starts(total_ticks: int, hop_steps: int = 16) -> range:
    """First steps of the SEG_STEPS windows of a line ``total_ticks`` long, ``hop_steps`` apart
    (one 4/4 bar by default): ``windows`` and the chords beside them use the same ones."""
    n = total_ticks // STEP_TICKS
    return range(0, n - SEG_STEPS + 1, hop_steps) if n >= SEG_STEPS else range(0)


def windows(notes: Sequence[Note], total_ticks: int, hop_steps: int = 16) -> list[np.ndarray]:
    """Every SEG_STEPS window of a melody, hopping by ``hop_steps`` (one 4/4 bar by default)."""
    n = total_ticks // STEP_TICKS
    steps = notes_to_steps(notes, n)
    out = []
    for s in window_starts(total_ticks, hop_steps):
        w = steps[s : s + SEG_STEPS].copy()
        if w[0] == HOLD:
            # a note sounding from before the window: restate it so the window stands alone
            prev = [c for c in steps[:s][::-1] if c != HOLD]
            w[0] = prev[0] if prev else REST
        out.append(w)
    return out


def transpose_steps(steps: np.ndarray, semitones: int) -> np.ndarray | None:
    """Shift note classes; None when a note would leave the range."""
    out = steps.copy()
    notes = out >= 2
    shifted = out[notes] + semitones
    if (shifted < 2).any() or (shifted >= N_CLASSES).any():
        return None
    out[notes] = shifted
    return out
