"""Multi-track bar-level piano rolls: pure numpy encode/decode between band Scores and arrays.

Layout
------
A band roll is a boolean array of shape ``(bars, TRACKS, STEPS, PITCHES)`` = ``(bars, 4, 48, 84)``:

* axis 1, the track lane, in ``ROLES`` order: 0 lead, 1 chords, 2 bass, 3 drums;
* axis 2, time: ``STEPS`` = 48 steps per bar, one step per GRID tick (12 per quarter note), so
  sixteenths (3 steps) and eighth-note triplets (4 steps) are both exact and swung eighths land
  on the grid;
* axis 3, pitch: MIDI ``LOWEST`` (24, C1) to ``LOWEST + PITCHES - 1`` (107, B7), seven octaves as
  in MuseGAN. Pitched notes outside are folded in by octaves; drum keys (GM 35-81) fit as they are.

A pitched note is a run of active steps from its onset to its end. Runs cannot show where one
note ends and a re-struck note of the same pitch begins, so ``encode`` shortens a note by one step
when the same pitch starts again right where (or before) it ends; ``decode`` turns every run back
into one note. A drum hit is a single active step at its onset (drum lengths carry no music);
``decode`` gives each hit ``DRUM_STEPS`` steps (a sixteenth).

Round trip: ``decode(encode(score))`` gives the input back exactly when it is canonical: GRID
resolution, notes on the grid and inside the bars, pitches in range, same-pitch notes of a track
at least one step apart, drum hits ``DRUM_STEPS`` long and at least two steps apart, velocities
as ``decode`` writes them (``VELOCITY`` per role), one track per role, and bars of 48 steps.

Meters: 4/4 bars fill the 48 steps. Any meter whose bar is at most 48 GRID ticks (2/4, 3/4, 6/8)
is encoded left-aligned with silent padding after the bar; ``decode`` is told the meter and drops
the padding, so ties across bar lines survive. Longer bars (9/8, 12/8) do not fit and raise
``RollError``. A model trained on one meter's rolls writes that meter (``cadenza.models.gan`` keeps
the meter in its config); ``cadenza.models.training.gan_data`` filters a corpus by meter.

Data sources (what becomes rolls): the offline corpus has melodies with chord symbols, arranged
into full bands by ``cadenza.arrange`` (the caller does that; ``models`` never imports ``bot``);
Bach chorales have four real voices (soprano -> lead, alto + tenor -> chords, bass -> bass, no
drums); users' MIDI folders give whatever tracks they have, tagged by role.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from cadenza.music.score import GRID, Note, Score, Track, bar_ticks
from cadenza.music.theory import fold_pitch

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("lead", "chords", "bass", "drums")
TRACKS = len(ROLES)
LEAD, CHORDS, BASS, DRUMS = range(TRACKS)
STEPS = 4 * GRID  # steps per bar lane: one 4/4 bar at GRID resolution
STEPS_PER_BEAT = GRID  # steps per quarter note
LOWEST = 24  # MIDI pitch of pitch index 0 (C1)
PITCHES = 84  # C1..B7
DRUM_STEPS = GRID // 4  # length given to decoded drum hits: a sixteenth

VELOCITY: dict[str, int] = {"lead": 96, "chords": 72, "bass": 90, "drums": 90}
NAMES: dict[str, str] = {"lead": "Lead", "chords": "Chords", "bass": "Bass", "drums": "Drums"}
PROGRAMS: dict[str, int] = {"lead": 0, "chords": 0, "bass": 33, "drums": 0}


class RollError(ValueError):
    """A score or array that cannot be expressed in (or read from) the roll layout."""


def bar_steps(meter: tuple[int, int]) -> int:
    """Steps a bar of ``meter`` occupies in its 48-step lane (the rest is padding)."""
    num, den = meter
    n = bar_ticks((num, den))
    if n > STEPS:
        raise RollError(f"a {num}/{den} bar is {n} steps long; the piano roll holds {STEPS} "
                        f"(4/4, 3/4, 2/4 and 6/8 fit)")
    return n


def _to_step(tick: int, resolution: int) -> int:
    """Nearest GRID step, ties going down (so a strum's half-step stagger stays together)."""
    return int(np.ceil(tick * GRID / resolution - 0.5))


def _lane(track: Track) -> int | None:
    if track.is_drum or track.role == "drums":
        return DRUMS
    return ROLES.index(track.role) if track.role in ROLES else None


def encode(score: Score) -> np.ndarray:
    """A band Score (any resolution) -> bool roll ``(bars, 4, 48, 84)``; see the module doc.

    Tracks sharing a role are merged into its lane; tracks with role 'other' are left out.
    """
    per_bar = bar_steps(score.time_signature)
    res = score.resolution
    ends = [_to_step(n.end, res) for t in score.tracks for n in t.notes]
    bars = score.bars or (-(-max(ends) // per_bar) if ends else 0)
    total = bars * per_bar
    flat = np.zeros((TRACKS, total, PITCHES), dtype=bool)
    for track in score.tracks:
        lane = _lane(track)
        if lane is None:
            continue
        if lane == DRUMS:
            for n in track.notes:
                s, k = _to_step(n.start, res), n.pitch - LOWEST
                if 0 <= k < PITCHES and s < total:
                    flat[DRUMS, s, k] = True
            continue
        # per pitch, sorted onsets: a note ends at the latest one step before the next onset
        spans: dict[int, list[tuple[int, int]]] = {}
        for n in track.notes:
            s = _to_step(n.start, res)
            e = max(s + 1, _to_step(n.end, res))
            if s < total:
                row = fold_pitch(n.pitch, LOWEST, LOWEST + PITCHES - 1) - LOWEST
                spans.setdefault(row, []).append((s, min(e, total)))
        for k, items in spans.items():
            items.sort()
            for i, (s, e) in enumerate(items):
                nxt = items[i + 1][0] if i + 1 < len(items) else total + 1
                if nxt == s:
                    continue  # the same pitch struck twice at once: the later entry covers it
                if nxt <= e:
                    e = max(s + 1, nxt - 1)  # leave a one-step gap before the re-strike
                flat[lane, s:e, k] = True
    # (tracks, bars*per_bar, pitches) -> (bars, tracks, STEPS, pitches), padding after each bar
    out = np.zeros((bars, TRACKS, STEPS, PITCHES), dtype=bool)
    out[:, :, :per_bar] = flat.reshape(TRACKS, bars, per_bar, PITCHES).transpose(1, 0, 2, 3)
    return out


def timeline(rolls: np.ndarray, meter: tuple[int, int] = (4, 4)) -> np.ndarray:
    """``(bars, tracks, 48, pitches)`` -> ``(tracks, bars * bar_steps, pitches)``, no padding."""
    if rolls.ndim != 4:
        raise RollError(f"expected a (bars, tracks, steps, pitches) roll, got shape {rolls.shape}")
    per_bar = bar_steps(meter)
    bars, tracks, _, pitches = rolls.shape
    return rolls[:, :, :per_bar].transpose(1, 0, 2, 3).reshape(tracks, bars * per_bar, pitches)


def runs(lane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of active steps in a bool ``(steps, pitches)`` array: (starts, ends, pitch indices)."""
    a = np.zeros((lane.shape[1], lane.shape[0] + 2), dtype=np.int8)
    a[:, 1:-1] = np.asarray(lane, dtype=bool).T
    d = np.diff(a, axis=1)  # per pitch: +1 where a run starts, -1 one past where it ends
    k, starts = np.nonzero(d == 1)  # row-major: sorted by pitch, then time, so ends pair up
    _, ends = np.nonzero(d == -1)
    return starts, ends, k


def skyline(lane: np.ndarray, highest: bool = True) -> np.ndarray:
    """Keep one pitch per step (the highest, or the lowest): a monophonic line."""
    lane = np.asarray(lane, dtype=bool)
    out = np.zeros_like(lane)
    on = lane.any(axis=1)
    if highest:
        idx = lane.shape[1] - 1 - np.argmax(lane[:, ::-1], axis=1)
    else:
        idx = np.argmax(lane, axis=1)
    t = np.nonzero(on)[0]
    out[t, idx[t]] = True
    return out


def drop_short(lane: np.ndarray, min_steps: int) -> np.ndarray:
    """Remove runs shorter than ``min_steps`` (the speckle a generator leaves behind)."""
    out = np.array(lane, dtype=bool, copy=True)
    if min_steps <= 1:
        return out
    starts, ends, pitches = runs(out)
    for s, e, k in zip(starts, ends, pitches, strict=True):
        if e - s < min_steps:
            out[s:e, k] = False
    return out


def onset_counts(lane: np.ndarray) -> np.ndarray:
    """Attacks of a bool ``(steps, pitches)`` lane on each step of the beat: ``(STEPS_PER_BEAT,)``
    counts. An attack is a step where notes start and none started the step before: the later
    voices of a strum (the arranger staggers a guitar chord's voices by a step or two) and the
    voices of a block chord belong to their chord's one attack."""
    starts = np.unique(runs(lane)[0])
    attacks = starts[~np.isin(starts - 1, starts)]
    return np.bincount(attacks % STEPS_PER_BEAT, minlength=STEPS_PER_BEAT)


def beat_positions(counts: np.ndarray, min_share: float = 0.01) -> tuple[int, ...]:
    """The steps of the beat on which at least ``min_share`` of the attacks fall, from
    ``onset_counts``: the rhythmic grid a style's data uses (straight sixteenths are 0, 3, 6,
    9; swung eighths 0, 8). No notes: every step."""
    counts = np.asarray(counts, dtype=float)
    if counts.sum() <= 0:
        return tuple(range(STEPS_PER_BEAT))
    return tuple(int(p) for p in np.nonzero(counts / counts.sum() >= min_share)[0])


def snap_onsets(lane: np.ndarray, positions: tuple[int, ...] | list[int],
                monophonic: bool | None = None) -> np.ndarray:
    """Move each note of a bool ``(steps, pitches)`` lane to start on the nearest of
    ``positions`` within its beat (the earlier one on a tie), keeping its length.

    ``monophonic`` True / False: a one-voice lane (lead / bass), where a note that now starts
    inside the one before cuts it short (on the same step the highest / lowest pitch wins), as
    a player moving on would. None: voices overlap freely (chords, drums). A pitch struck again
    keeps the roll's one-step gap. A note never moves past either end of the lane. No
    positions, or all of them: the lane as it is.
    """
    lane = np.asarray(lane, dtype=bool)
    grid = np.array(sorted(set(positions)), dtype=np.int64)
    if not len(grid) or len(grid) >= STEPS_PER_BEAT:
        return lane.copy()
    starts, ends, pitches = runs(lane)
    # the nearest grid step may be the last of the beat before or the first of the next
    cand = np.concatenate([[grid[-1] - STEPS_PER_BEAT], grid, [grid[0] + STEPS_PER_BEAT]])
    beat, pos = np.divmod(starts, STEPS_PER_BEAT)
    above = np.searchsorted(cand, pos)  # cand[above - 1] < pos <= cand[above]
    lo, hi = cand[above - 1], cand[above]
    n = len(lane)
    hi_step = beat * STEPS_PER_BEAT + hi
    # nearest, the earlier on a tie, and never past the lane's end
    up = (hi - pos < pos - lo) & (hi_step < n) | (hi == pos)
    new = np.where(up, hi_step, beat * STEPS_PER_BEAT + lo)
    new_starts, new_ends = np.clip(new, 0, n), np.clip(ends + (new - starts), 0, n)
    if monophonic is None:  # per pitch in time order: a re-struck pitch ends a step before
        order = np.lexsort((new_starts, pitches))
        cut = pitches[order][1:] == pitches[order][:-1]
    else:  # in onset order, the preferred pitch last on a tie: a note ends where the next starts
        order = np.lexsort((pitches if monophonic else -pitches, new_starts))
        cut = np.ones(len(order) - 1 if len(order) else 0, dtype=bool)
    s_, e_, k_ = new_starts[order], new_ends[order], pitches[order]
    # the roll's rule (see the module docstring): a pitch struck again leaves a one-step gap
    nxt = s_[1:] - (k_[1:] == k_[:-1])
    e_[:-1] = np.where(cut, np.minimum(e_[:-1], nxt), e_[:-1])
    out = np.zeros_like(lane)
    for s, e, k in zip(s_, e_, k_, strict=True):
        out[s:e, k] = True
    return out


def decode(
    rolls: np.ndarray,
    *,
    meter: tuple[int, int] = (4, 4),
    threshold: float = 0.5,
    resolution: int = GRID,
    tempo: float = 120.0,
    style: str | None = None,
    velocities: Mapping[str, int] | None = None,
    programs: Mapping[str, int] | None = None,
    names: Mapping[str, str] | None = None,
    **score_fields: object,
) -> Score:
    """A roll ``(bars, 4, 48, 84)`` (bool, or values compared with ``> threshold``) -> Score.

    Tracks come out in ROLES order at ``resolution`` ticks per quarter (a multiple of GRID);
    ``score_fields`` (key, chords) pass through to the Score.
    """
    if rolls.ndim != 4 or rolls.shape[1:] != (TRACKS, STEPS, PITCHES):
        raise RollError(f"expected a roll of shape (bars, {TRACKS}, {STEPS}, {PITCHES}), "
                        f"got {tuple(rolls.shape)}")
    if resolution % GRID:
        raise RollError(f"resolution must be a multiple of {GRID}, got {resolution}")
    scale = resolution // GRID
    active = rolls if rolls.dtype == bool else rolls > threshold
    flat = timeline(active, meter)
    vel = {**VELOCITY, **(velocities or {})}
    prog = {**PROGRAMS, **(programs or {})}
    nm = {**NAMES, **(names or {})}
    tracks = []
    for lane, role in enumerate(ROLES):
        starts, ends, pitches = runs(flat[lane])
        if role == "drums":
            ends = starts + DRUM_STEPS
        notes = tuple(
            Note(int(s) * scale, int(e - s) * scale, int(k) + LOWEST, vel[role])
            for s, e, k in zip(starts, ends, pitches, strict=True)
        )
        tracks.append(Track(nm[role], role=role, program=prog[role], is_drum=role == "drums",
                            notes=notes))
    return Score(tracks=tuple(tracks), resolution=resolution, tempo=tempo, time_signature=meter,
                 bars=int(rolls.shape[0]), style=style, **score_fields)  # type: ignore[arg-type]


def transpose(rolls: np.ndarray, semitones: int) -> np.ndarray:
    """Shift the pitched lanes (not drums) by semitones; notes pushed off the range are lost."""
    out = np.zeros_like(rolls)
    pitched = slice(0, DRUMS)
    if semitones >= 0:
        out[..., pitched, :, semitones:] = rolls[..., pitched, :, : PITCHES - semitones]
    else:
        out[..., pitched, :, :semitones] = rolls[..., pitched, :, -semitones:]
    out[..., DRUMS, :, :] = rolls[..., DRUMS, :, :]
    return out
