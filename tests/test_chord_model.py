"""The chord-progression model: tokens on literal progressions, a sampling grammar that always
gives a valid plan, plans from a tiny random model for every style and length, tiny training."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cadenza.models.chord_model import (
    BAR,
    EOS,
    ChordConstraint,
    ChordSeq,
    ChordTokenError,
    ChordVocab,
    PlanRequest,
    bar_units,
    bars_from_changes,
    choruses,
    decode,
    encode,
    plan_from_tokens,
    plan_parts,
    plan_row,
    sample_plans,
)
from cadenza.music.form import form_for
from cadenza.music.theory import Chord, Key
from tests.test_grammar import run_random

V = ChordVocab()
F = Key(5)


def test_a_literal_progression_encodes_relative_to_the_tonic_and_round_trips() -> None:
    # F: | Gm7 C7 | Fmaj7 | Gm7 C7 | F6 NC |
    bars = [((0, Chord(7, "m7")), (24, Chord(0, "7"))), ((0, Chord(5, "maj7")),),
            ((0, Chord(7, "m7")), (24, Chord(0, "7"))), ((0, Chord(5, "6")), (36, None))]
    toks = encode(bars, V, style="jazz", meter=(4, 4), key=F)
    assert V.names[toks[0]] == "BOS" and V.names[toks[3]] == "MODE_major"
    names = " ".join(V.names[t] for t in toks[4:])
    assert names == ("BAR CH_2:m7 LEN_2 CH_7:7 LEN_2 BAR CH_0:maj7 LEN_4 BAR REP_2 "
                     "BAR CH_0:6 LEN_3 CH_NC LEN_1 EOS")
    assert decode(toks, V, key=F, meter=(4, 4)) == bars
    # the same degrees in another key are the same tokens
    in_bb = [tuple((t, c.transpose(5) if c else None) for t, c in bar) for bar in bars]
    assert encode(in_bb, V, style="jazz", meter=(4, 4), key=Key(10)) == toks


def test_changes_move_to_beats_and_bars_restate_their_chord() -> None:
    bars = bars_from_changes([(0, Chord(0, "maj")), (30, Chord(7, "7"))], 3, (4, 4))
    assert bars == [((0, Chord(0, "maj")), (24, Chord(7, "7"))), ((0, Chord(7, "7")),),
                    ((0, Chord(7, "7")),)]
    assert bar_units((6, 8)) == 6 and bar_units((2, 4)) == 2


def test_grammar_errors_are_reported() -> None:
    with pytest.raises(ChordTokenError, match="REP_1 must open a bar"):
        decode([1, V.style("jazz"), V.meter((4, 4)), V.mode("major"), BAR, V.rep(1), EOS], V,
               key=F, meter=(4, 4))
    with pytest.raises(ChordTokenError, match="off the beat"):
        encode([((0, Chord(0, "maj")), (5, Chord(7, "7")))], V, style="jazz", meter=(4, 4),
               key=F)


@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (2, 4), (6, 8), (12, 8)])
def test_any_choice_the_grammar_allows_gives_a_whole_plan_ending_on_the_tonic(
        meter: tuple[int, int]) -> None:
    moved = 0
    for bars in (1, 2, 7, 12, 32):
        for seed in range(3):
            key = Key(seed * 5 % 12, "minor" if seed == 1 else "major")
            toks = run_random(ChordConstraint(V, style="blues", meter=meter, key=key,
                                               bars=bars), seed)
            out = decode(toks, V, key=key, meter=meter)
            assert len(out) == bars and toks[-1] == EOS
            last = out[-1]
            assert last[0][0] == 0 and last[0][1] is not None
            # home on the last downbeat and to the end: no turnaround rings out a clip
            assert all(c is not None and c.root == key.tonic for _, c in last)
            # in the key's mode (a blues may end on I7)
            third = 4 if key.mode == "major" else 3
            assert all(third in c.intervals for _, c in last)
            moved += len(last) > 1
    assert moved  # the last bar may still change chords on the tonic (I6 to Imaj7)


@pytest.mark.parametrize(("style", "mode", "home", "away"), [
    ("jazz", "major", {"maj", "6", "maj7", "69"}, {"7", "13", "min", "m7", "dim7", "sus4"}),
    ("ragtime", "major", {"maj", "6"}, {"7", "9", "aug", "dim"}),
    ("blues", "major", {"7", "9", "13", "7#9", "maj", "6"},
     {"m7", "7sus4", "7alt", "7b9", "13#11", "dim7"}),
    ("jazz", "minor", {"min", "m6", "m7", "mmaj7"}, {"maj", "7", "m7b5", "dim"}),
])
def test_a_last_bar_offers_the_tonic_in_qualities_that_rest(style: str, mode: str,
                                                           home: set, away: set) -> None:
    """No turnaround by quality either: I7 leads on to IV (but is a blues' home chord)."""
    from cadenza.models.chord_model import QUALITIES
    from cadenza.models.grammar import BITSET_SPAN

    assert len(QUALITIES) <= BITSET_SPAN  # the tonic's qualities fit one MaskSpec bitset
    c = ChordConstraint(V, style=style, meter=(4, 4), key=Key(2, mode), bars=1)
    while c.forced() is not None:
        c.feed(c.forced())
    offered = {V.chord_of(t, 2).quality for t in np.flatnonzero(c.mask())}
    assert {V.chord_of(t, 2).root for t in np.flatnonzero(c.mask())} == {2}
    assert home <= offered and not offered & away


def _tiny_chord_checkpoint(path: Path) -> Path:
    import torch

    from cadenza.models.checkpoint import FORMAT, save_payload
    from cadenza.models.chord_model import feature_sizes
    from cadenza.models.rnn import RNNConfig, SequenceModel

    torch.manual_seed(0)
    cfg = RNNConfig(len(V), feature_sizes(V), n_layer=1, n_embd=8, n_hidden=16, dropout=0.0)
    save_payload(path, {"format": FORMAT, "kind": "chords", "config": cfg.to_dict(),
                        "styles": list(V.styles), "meta": {"name": "chords"},
                        "state_dict": SequenceModel(cfg).state_dict()})
    return path


@pytest.mark.parametrize("style", ["jazz", "blues", "ragtime"])
def test_plans_from_a_model_are_valid_for_every_bar_count(style: str, tmp_path: Path) -> None:
    from cadenza.models.families import load

    loaded = load(_tiny_chord_checkpoint(tmp_path / "model.pt"))
    meter = (2, 4) if style == "ragtime" else (4, 4)
    bar = 48 * meter[0] // meter[1]
    reqs = [PlanRequest(style, Key(7), meter, bars, seed=bars, sections=form_for(style, bars))
            for bars in range(1, 33)]
    plans = sample_plans(loaded, reqs)
    for r, plan in zip(reqs, plans, strict=True):
        assert plan[0][0] == 0 and all(isinstance(c, Chord) for _, c in plan)
        ticks = [t for t, _ in plan]
        assert ticks == sorted(set(ticks)) and ticks[-1] < r.bars * bar
        assert all(t % 12 == 0 for t in ticks)  # on the beat
        last_bar = [c for t, c in plan if t >= (r.bars - 1) * bar]
        sounding_at_last_bar = [c for t, c in plan if t <= (r.bars - 1) * bar][-1]
        # G: the clip ends at home, and stays there to its end
        assert all(c.root == 7 for c in [sounding_at_last_bar, *last_bar])
    # batching never changes a plan
    assert sample_plans(loaded, reqs[11:12])[0] == plans[11]


def test_a_blues_of_whole_choruses_is_planned_a_chorus_at_a_time(tmp_path: Path) -> None:
    """The blues charts are single 12-bar choruses: 24 bars of blues in its lyric form are two
    12-bar plans, the first from the request's seed, one after the other; only the last must
    end home (the first may turn around into the second)."""
    from cadenza.models.families import load
    from cadenza.models.generate import generate_tokens

    req = PlanRequest("blues", Key(5), (4, 4), 24, seed=3, sections=form_for("blues", 24))
    parts = choruses(req)
    assert [(p.bars, p.sections, p.ends_home) for p in parts] == [
        (12, form_for("blues", 12), False), (12, form_for("blues", 12), True)]
    assert parts[0].seed == 3 and parts[1].seed != 3
    for other in (replace(req, style="jazz"), replace(req, bars=12,
                                                      sections=form_for("blues", 12)),
                  replace(req, sections=form_for("blues", 24, "AABA")),
                  replace(req, bars=32, sections=form_for("blues", 32))):
        assert choruses(other) == [other]
    loaded = load(_tiny_chord_checkpoint(tmp_path / "model.pt"))
    plan = sample_plans(loaded, [req])[0]
    tokens = generate_tokens(loaded, parts, plan_row)
    assert plan == plan_parts(tokens, loaded.vocab, parts)
    first = plan_from_tokens(tokens[0], loaded.vocab, parts[0])
    second = plan_from_tokens(tokens[1], loaded.vocab, parts[1], first[-1][1])
    assert plan[:len(first)] == first
    assert [(t - 12 * 48, c) for t, c in plan[len(first):]] == \
        [(t, c) for t, c in second if t > 0 or c != first[-1][1]]
    # a chorus another follows may leave home in its last bar; the clip's last may not
    inner = plan_row(loaded, parts[0]).constraint
    while inner.bar < 11 or inner.forced() is not None:
        tok = inner.forced()
        inner.feed(tok if tok is not None else int(np.flatnonzero(inner.mask())[0]))
    last = plan_row(loaded, replace(parts[0], ends_home=True)).constraint
    while last.bar < 11 or last.forced() is not None:
        tok = last.forced()
        last.feed(tok if tok is not None else int(np.flatnonzero(last.mask())[0]))
    assert last.mask().sum() < inner.mask().sum()


def test_plans_sampled_through_the_batcher_share_steps_and_equal_the_plans_alone(
        tmp_path: Path) -> None:
    """Concurrent composes send their chord plans through the process's batcher: they share
    the chord model's steps, and each plan is the one sampled alone."""
    from cadenza.batching import MelodyBatcher
    from cadenza.models.chord_model import plan_from_tokens, plan_row
    from cadenza.models.families import load

    loaded = load(_tiny_chord_checkpoint(tmp_path / "model.pt"))
    reqs = [PlanRequest(style, Key(k), (4, 4), bars, seed=k, sections=form_for(style, bars))
            for k, (style, bars) in enumerate([("jazz", 8), ("blues", 12), ("jazz", 32),
                                               ("blues", 4)])]
    batcher = MelodyBatcher(window_s=0.5)
    try:
        with ThreadPoolExecutor(len(reqs)) as pool, batcher, batcher, batcher, batcher:
            tokens = list(pool.map(lambda r: batcher.submit(loaded, r, plan_row), reqs))
    finally:
        batcher.close()
    assert [plan_from_tokens(t, loaded.vocab, r) for t, r in zip(tokens, reqs, strict=True)] \
        == [sample_plans(loaded, [r])[0] for r in reqs]
    assert max(batcher.batches) > 1


def test_tiny_training_on_a_few_progressions_saves_a_loadable_model(tmp_path: Path) -> None:
    from cadenza.models.families import load
    from cadenza.models.training.train_chords import ChordTrainOptions, train_chords

    ii_v = ((0, Chord(2, "m7")), (24, Chord(7, "7")))
    seqs = [ChordSeq(f"test:{i}", style, (4, 4), Key(i), (ii_v, ((0, Chord(0, "maj7")),)) * 4,
                     form_for(style, 8))
            for i, style in enumerate(["jazz", "jazz", "blues", "blues", "jazz", "ragtime"])]
    seqs = [ChordSeq(s.source, s.style, s.meter, s.key,
                     tuple(tuple((t, c.transpose(s.key.tonic)) for t, c in bar)
                           for bar in s.bars), s.sections) for s in seqs]
    out = tmp_path / "chords" / "model.pt"
    best = train_chords(ChordTrainOptions(out=out, steps=6, eval_every=3, batch=4, block=64,
                                          n_layer=1, n_embd=8, n_hidden=16), seqs)
    assert np.isfinite(best["nll"]) and set(best["per_style"]) <= {"jazz", "blues", "ragtime"}
    loaded = load(out)
    assert loaded.kind == "chords" and loaded.meta["styles"] == ["jazz", "blues", "ragtime"]
    plan = sample_plans(loaded, [PlanRequest("jazz", Key(0), (4, 4), 8, seed=1)])[0]
    assert plan[0][0] == 0


def test_a_returning_section_restates_its_first_changes_but_its_last_bar() -> None:
    from cadenza.models.chord_model import section_returns
    from cadenza.music.form import lay_out

    assert section_returns(lay_out("aaba", 16)) == {4: 0, 5: 1, 6: 2, 12: 0, 13: 1, 14: 2}
    assert section_returns(lay_out("abab", 8)) == {4: 0, 6: 2}
    c = ChordConstraint(V, style="jazz", meter=(4, 4), key=F, bars=16,
                        returns=section_returns(lay_out("aaba", 16)))
    bars = decode(run_random(c, 4), V, key=F, meter=(4, 4))
    assert bars[4:7] == bars[0:3] and bars[12:15] == bars[0:3]


@pytest.mark.parametrize("style", ["jazz", "ragtime"])
def test_model_plans_bring_a_sections_back(style: str, tmp_path: Path) -> None:
    from cadenza.models.families import load

    loaded = load(_tiny_chord_checkpoint(tmp_path / "model.pt"))
    plan = sample_plans(loaded, [PlanRequest(style, Key(0), (4, 4), 32, seed=2,
                                             sections=form_for(style, 32))])[0]
    bars = bars_from_changes(plan, 32, (4, 4))
    assert bars[8:15] == bars[0:7]  # the second A (or strain) restates the first


def test_training_crops_draw_a_boosted_style_that_much_more_often() -> None:
    from cadenza.models.training.train_chords import _Crops, _Seq

    def seqs(style: str, n: int, length: int) -> list[_Seq]:
        return [_Seq(style, f"{style}{i}", np.zeros(length, np.int64),
                     np.zeros((length, 3), np.int64)) for i in range(n)]

    data = seqs("jazz", 9, 100) + seqs("blues", 2, 50)  # 900 tokens against 100
    assert np.allclose(_Crops.of(data, 1.0).p, [0.1, 0.9])  # styles in sorted order
    assert np.allclose(_Crops.of(data, 1.0, {"blues": 9.0}).p, [0.5, 0.5])
    assert np.allclose(_Crops.of(data, 0.5, {"blues": 3.0}).p, [0.5, 0.5])


@pytest.mark.parametrize("batched", [False, True])
def test_a_composed_blues_gets_the_plan_sample_plans_gives(tiny_registry, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          batched: bool) -> None:
    """/compose plans a 24-bar blues chorus by chorus as the evaluation does, through the
    batcher or alone: the same plan."""
    from cadenza.batching import MelodyBatcher
    from cadenza.models.families import load
    from cadenza.service import Composer, ComposeRequest

    ckpt = _tiny_chord_checkpoint(tmp_path / "model.pt")
    batcher = MelodyBatcher(window_s=0.0) if batched else None
    composer = Composer(tiny_registry, chord_model=ckpt, batcher=batcher)
    try:
        r = composer.resolve(ComposeRequest(style="blues", bars=24, seed=5))
        plan = composer._new_chords(r, Key.parse(r.key), np.random.default_rng(0))
    finally:
        if batcher is not None:
            batcher.close()
    seed = int(np.random.default_rng(0).integers(2**63))
    req = PlanRequest("blues", Key.parse(r.key), r.meter, 24, seed, r.sections)
    assert len(choruses(req)) == 2
    assert plan == sample_plans(load(ckpt), [req])[0]
