"""Constrained sampling grammar: plans are obeyed, primers kept verbatim, output decodes."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.models.grammar import (
    FEATURES,
    ChordPlan,
    Constraint,
    feature_sizes,
    plan_from_chords,
    sequence_features,
)
from cadenza.music.form import bar_features, lay_out
from cadenza.music.score import ChordEvent, Note, Score, Track
from cadenza.music.theory import Chord
from cadenza.music.tokens import BAR, EOS, Vocab, decode, encode

V = Vocab()
PLAN = ChordPlan((((0, Chord(2, "m7")), (24, Chord(7, "7"))), ((0, Chord(0, "maj7")),),
                  ((0, Chord(0, "maj7")),)))


def run_random(c: Constraint, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    while not c.done:
        tok = c.forced()
        if tok is None:
            tok = int(rng.choice(np.flatnonzero(c.mask())))
        c.feed(tok)
    return c.tokens


@pytest.mark.parametrize("seed", range(20))
def test_random_choices_within_the_mask_always_give_a_valid_planned_piece(seed: int) -> None:
    toks = run_random(Constraint(V, style="jazz", meter=(4, 4), plan=PLAN,
                                 pitch_range=(60, 72)), seed)
    score = decode(toks, V)  # strict: raises on any grammar error
    assert score.bars == 3 and toks[-1] == EOS
    assert [(c.start, c.chord) for c in score.chords] == [
        (0, Chord(2, "m7")), (24, Chord(7, "7")), (48, Chord(0, "maj7"))]
    assert all(60 <= n.pitch <= 72 for n in score.tracks[0].notes)
    starts = [n.start for n in score.tracks[0].notes]
    assert len(starts) == len(set(starts))  # monophonic (max_poly=1)
    assert encode(score, V) == toks  # canonical


def test_primer_is_kept_verbatim_and_continued_to_the_planned_length() -> None:
    primer = Score(tracks=(Track("Lead", notes=(Note(0, 12, 64, 88), Note(12, 36, 67, 88))),),
                   chords=(ChordEvent(0, 48, Chord(2, "m7")),), bars=1, style="jazz")
    ptoks = encode(primer, V)
    toks = run_random(Constraint(V, style="jazz", meter=(4, 4), plan=PLAN, prefix=ptoks), 3)
    assert toks[: len(ptoks) - 1] == ptoks[:-1]
    out = decode(toks, V)
    assert out.bars == 3
    assert out.tracks[0].notes[:2] == primer.tracks[0].notes


def test_plan_from_chords_restates_downbeats_and_keeps_changes() -> None:
    plan = plan_from_chords([(0, Chord(0, "maj")), (72, Chord(7, "7"))], bars=3, bar_ticks=48)
    assert plan.bars == (((0, Chord(0, "maj")),), ((0, Chord(0, "maj")), (24, Chord(7, "7"))),
                         ((0, Chord(7, "7")),))


def test_side_features_track_chord_position_and_bars_left() -> None:
    form = tuple(bar_features((*lay_out("ab", 2), (2, 1, "A")), 3))
    toks = run_random(Constraint(V, style="blues", meter=(4, 4), plan=PLAN, form=form), 1)
    f = sequence_features(toks, V, form=form)
    assert f.shape == (len(toks), len(FEATURES))
    bar_rows = [i for i, t in enumerate(toks) if t == BAR]
    assert [f[i, 4] for i in bar_rows] == [3, 2, 1]  # bars left
    assert f[-1, 0] == 1 + V.styles.index("blues")
    # form columns per bar: section letter, bar in section, bars left in it, repeat flag
    assert [tuple(f[i, 5:9]) for i in bar_rows] == [(1, 1, 1, 1), (2, 1, 1, 1), (1, 1, 1, 2)]
    assert tuple(f[0, 5:9]) == (0, 0, 0, 0)  # before the first bar: unknown


def test_skeleton_constraint_keeps_rhythm_chords_and_velocities_and_resamples_pitches() -> None:
    from cadenza.models.grammar import SkeletonConstraint

    original = run_random(Constraint(V, style="folk", meter=(3, 4), plan=ChordPlan(
        (((0, Chord(7, "maj")),), ((0, Chord(0, "maj")), (24, Chord(2, "7"))))),
        pitch_range=(60, 80)), 4)
    variations = [run_random(SkeletonConstraint(V, original, pitch_range=(60, 80)), s)
                  for s in range(5)]
    src = decode(original, V)
    for toks in variations:
        assert [V.kind(t) for t in toks] == [V.kind(t) for t in original]
        var = decode(toks, V)
        assert var.chords == src.chords and var.time_signature == (3, 4)
        assert [(n.start, n.duration, n.velocity) for n in var.tracks[0].notes] == [
            (n.start, n.duration, n.velocity) for n in src.tracks[0].notes]
    assert len({tuple(v) for v in variations}) > 1


@pytest.mark.parametrize(("echo", "offered"), [
    (None, [[], [1], [], [2, 3]]),
    # bar 2 (G7) restates bar 0 (C) in the form: its echo is offered over the other chord
    ((0, 0, 2, 0), [[], [1], [2], [2, 3]]),
])
def test_rep_is_offered_for_bars_with_notes_and_the_same_chords_or_the_echo(
        echo: tuple[int, ...] | None, offered: list[list[int]]) -> None:
    from cadenza.music.tokens import MAX_REPEAT

    plan = ChordPlan((((0, Chord(0, "maj")),), ((0, Chord(0, "maj")),), ((0, Chord(7, "7")),),
                      ((0, Chord(0, "maj")),)))
    c = Constraint(V, style="folk", meter=(4, 4), plan=plan, echo=echo)
    reps = []
    rng = np.random.default_rng(0)
    while not c.done:
        tok = c.forced()
        if tok is None:
            m = c.mask()
            if c.phase == "bar":
                reps.append(sorted(V.value(t) + 1 for t in np.flatnonzero(m)
                                   if V.kind(int(t)) == "rep"))
                # play a note in every bar, so every earlier bar can be repeated
                tok = next(int(t) for t in np.flatnonzero(m) if V.kind(int(t)) == "pos")
            else:
                tok = int(rng.choice([t for t in np.flatnonzero(m)
                                      if V.kind(int(t)) != "rep"]))
        c.feed(tok)
    # bar 0: nothing before; bar 1: bar 0 (both C); bar 2 (G7): no earlier G7 bar;
    # bar 3 (C): bars 1 and 0 (k = 2, 3), not bar 2 (G7); with the echo, bar 2 may repeat
    # bar 0 (k = 2) over its G7
    assert reps == offered
    assert MAX_REPEAT >= 32


@pytest.mark.parametrize("echo_back", [2, 1])
def test_an_echo_repeated_over_other_chords_keeps_its_own_chords_and_needs_notes(
        echo_back: int) -> None:
    # bar 0 C with notes, bar 1 empty (C), bar 2 F with a mid-bar G7, echoing bar 0 or bar 1
    plan = ChordPlan((((0, Chord(0, "maj")),), ((0, Chord(0, "maj")),),
                      ((0, Chord(5, "maj")), (24, Chord(7, "7")))))
    c = Constraint(V, style="folk", meter=(4, 4), plan=plan, echo=(0, 0, echo_back))
    rng = np.random.default_rng(3)
    while not c.done:
        tok = c.forced()
        if tok is None:
            m = c.mask()
            reps = [int(t) for t in np.flatnonzero(m) if V.kind(int(t)) == "rep"]
            if c.phase == "bar" and c.bar == 1:
                assert m[BAR]
                tok = BAR  # bar 1 stays empty
            elif c.phase == "bar" and c.bar == 2 and echo_back == 1:
                assert reps == []  # an empty echo has nothing to bring back
                return
            elif c.phase == "bar" and c.bar == 2:
                assert reps == [V.rep(2)]
                tok = V.rep(2)
            else:
                tok = int(rng.choice([t for t in np.flatnonzero(m) if V.kind(int(t)) != "rep"]))
        c.feed(int(tok))
    score = decode(c.tokens, V)
    notes = score.tracks[0].notes
    assert [(n.start, n.pitch) for n in notes if n.start < 48] == [
        (n.start - 96, n.pitch) for n in notes if n.start >= 96]
    assert [(ch.start, ch.chord) for ch in score.chords][-2:] == [(96, Chord(5, "maj")),
                                                                  (120, Chord(7, "7"))]


def test_a_sampled_rep_copies_the_bar_and_forces_the_rest_of_it() -> None:
    plan = ChordPlan((((0, Chord(0, "maj")),), ((0, Chord(0, "maj")), (24, Chord(7, "7")))))
    plan = ChordPlan((plan.bars[1], plan.bars[1]))
    c = Constraint(V, style="folk", meter=(4, 4), plan=plan)
    rng = np.random.default_rng(1)
    while not c.done:
        tok = c.forced()
        if tok is None:
            m = c.mask()
            if c.phase == "bar" and c.bar == 1:
                tok = V.rep(1)
            else:
                tok = int(rng.choice([t for t in np.flatnonzero(m)
                                      if V.kind(int(t)) != "rep"]))
        c.feed(tok)
    score = decode(c.tokens, V)
    notes = score.tracks[0].notes
    first = [(n.start, n.pitch, n.duration) for n in notes if n.start < 48]
    second = [(n.start - 48, n.pitch, n.duration) for n in notes if n.start >= 48]
    assert first and first == second
    assert [(ch.start, ch.chord) for ch in score.chords][-1] == (72, Chord(7, "7"))


def test_prev_pitch_feature_follows_the_last_note_across_bars_and_repeats() -> None:
    from cadenza.models.grammar import PREV_PITCH_COL
    from cadenza.music.tokens import PITCH_MIN

    # bar 1: D4 then A4; bar 2: G4; bar 3 repeats bar 1 (REP_2); same chord in every bar
    lead = Track("Lead", notes=(Note(0, 12, 62, 88), Note(24, 12, 69, 88), Note(48, 12, 67, 88),
                                Note(96, 12, 62, 88), Note(120, 12, 69, 88)))
    score = Score(tracks=(lead,), chords=(ChordEvent(0, 144, Chord(2, "m7")),), bars=3,
                  style="jazz")
    toks = encode(score, V)
    assert any(V.kind(t) == "rep" for t in toks)  # the third bar is written as a repeat
    f = sequence_features(toks, V)
    prev = [int(f[i, PREV_PITCH_COL]) for i in range(len(toks))]
    names = [V.names[t] for t in toks]
    assert prev[names.index("BAR")] == 0  # no note yet
    after_first = next(i for i, n in enumerate(names) if n == "PITCH_62")
    assert prev[after_first] == 1 + 62 - PITCH_MIN
    bars = [i for i, t in enumerate(toks) if t == BAR]
    assert prev[bars[1]] == 1 + 69 - PITCH_MIN  # carried over the bar line
    assert prev[bars[2]] == 1 + 67 - PITCH_MIN
    rep = next(i for i, t in enumerate(toks) if V.kind(t) == "rep")
    assert prev[rep] == 1 + 69 - PITCH_MIN  # the repeated bar ends on its A4 again
    assert f.shape[1] == len(feature_sizes(V)) and max(prev) < feature_sizes(V)[PREV_PITCH_COL]


def test_transposed_crops_shift_the_prev_pitch_feature_with_their_pitches() -> None:
    from cadenza.models.training.dataset import shift_prev_pitch

    col = np.array([0, 1, 42, 88])
    assert shift_prev_pitch(col, 3).tolist() == [0, 4, 45, 88]
    assert shift_prev_pitch(col, -2).tolist() == [0, 1, 40, 86]


def test_echo_features_tell_a_returning_bar_what_its_earlier_statement_played() -> None:
    from cadenza.models.grammar import ECHO_PITCH_COL
    from cadenza.music.form import echo_bars
    from cadenza.music.tokens import PITCH_MIN

    echo_back, echo_next = FEATURES.index("echo_back"), FEATURES.index("echo_next")
    # bar 1 (A): D4 at 0, A4 and C5 at 24; bar 2 (A again) plays D4 at 12 only
    lead = Track("Lead", notes=(Note(0, 12, 62, 88), Note(24, 12, 69, 88), Note(24, 12, 72, 88),
                                Note(60, 12, 62, 88)))
    score = Score(tracks=(lead,), chords=(ChordEvent(0, 96, Chord(2, "m7")),), bars=2,
                  style="jazz")
    toks = encode(score, V)
    echo = echo_bars(lay_out("aa", 2), 2)
    f = sequence_features(toks, V, echo=echo)
    names = [V.names[t] for t in toks]
    bars = [i for i, t in enumerate(toks) if t == BAR]
    assert f[bars[0]:bars[1], echo_back].max() == 0  # the first A has no echo
    assert f[:, echo_next][: bars[1]].max() == 0 and f[: bars[1], ECHO_PITCH_COL].max() == 0
    assert f[bars[1], echo_back] == 1  # the second A's echo is one bar back
    assert f[bars[1], echo_next] == 1 + 0  # before its first POS: the echo starts at tick 0
    pos12 = bars[1] + names[bars[1]:].index("POS_12")
    assert f[pos12, echo_next] == 1 + 24  # after tick 12 the echo's next onset is at 24
    assert f[pos12, ECHO_PITCH_COL] == 0  # the echo has no note at tick 12
    # the same tokens with the notes of bar 2 moved onto the echo's tick 24: both its pitches,
    # in order, then none left, and no onset after it
    moved = Score(tracks=(Track("Lead", notes=(*lead.notes[:3], Note(72, 12, 69, 88),
                                               Note(72, 12, 72, 88))),),
                  chords=score.chords, bars=2, style="jazz")
    toks = encode(moved, V, repeats=False)
    f = sequence_features(toks, V, echo=echo)
    names = [V.names[t] for t in toks]
    at24 = [i for i, n in enumerate(names) if n == "POS_24"][1]
    assert f[at24, ECHO_PITCH_COL] == 1 + 69 - PITCH_MIN
    first = at24 + names[at24:].index("PITCH_69")
    assert f[first, ECHO_PITCH_COL] == 1 + 72 - PITCH_MIN  # the echo's second note at 24
    second = at24 + names[at24:].index("PITCH_72")
    assert f[second, ECHO_PITCH_COL] == 0
    assert f[second, echo_next] == 1 + 72  # ECHO_NONE_LEFT: nothing after tick 24
    assert f.shape[1] == len(feature_sizes(V))
    assert (f.max(0) < np.array(feature_sizes(V))).all()


def test_a_repeated_bar_is_an_echo_with_the_notes_it_copied() -> None:
    from cadenza.models.grammar import ECHO_PITCH_COL, Tracker
    from cadenza.music.tokens import PITCH_MIN

    # bars 1 and 2 alike (bar 2 is written REP_1), bar 3 (empty) echoes bar 2: bar 1's notes
    notes = tuple(Note(48 * b + t, 12, p, 88) for b in (0, 1) for t, p in ((0, 64), (24, 67)))
    score = Score(tracks=(Track("Lead", notes=notes),), chords=(ChordEvent(0, 144,
                  Chord(0, "maj7")),), bars=3, style="folk")
    toks = encode(score, V, eos=False)
    assert sum(V.kind(t) == "rep" for t in toks) == 1 and toks[-2] == BAR
    tracker = Tracker(V, total_bars=3, echo=[0, 0, 1])
    for t in toks:
        tracker.feed(t)
    assert tracker.features()[FEATURES.index("echo_next")] == 1  # the copy's onset at tick 0
    tracker.feed(V.pos(0))
    assert tracker.features()[ECHO_PITCH_COL] == 1 + 64 - PITCH_MIN
