"""Batched sampling: array choices equal one-row choices, rows join and leave a running batch
without changing anyone's tokens, and one bad request fails alone."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.batching import MelodyBatcher
from cadenza.models.errors import ModelError
from cadenza.models.generate import MelodyRequest, generate_tokens, melody_row
from cadenza.models.grammar import masks, plan_from_chords
from cadenza.models.sample import Sampler, choose
from cadenza.music.theory import Chord
from cadenza.service import Composer, ComposeRequest


def test_masks_are_ranges_plus_one_id_minus_one_id_plus_a_bitset() -> None:
    m = masks([(2, 5, 0, 0, 8, 10, 0, -1, 0, 0), (0, 0, 3, 7, 0, 0, -1, 4, 0, 0),
               (0, 0, 0, 0, 0, 0, -1, -1, 8, 0b1011)], 12)
    assert np.flatnonzero(m[0]).tolist() == [0, 2, 3, 4, 8, 9]
    assert np.flatnonzero(m[1]).tolist() == [3, 5, 6]
    assert np.flatnonzero(m[2]).tolist() == [8, 9, 11]  # bits 0, 1 and 3 from id 8


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 12),
       top_k=st.sampled_from([0, 1, 3, 24, 500]), biased=st.booleans())
def test_a_batch_of_choices_equals_each_row_chosen_alone(seed: int, rows: int, top_k: int,
                                                         biased: bool) -> None:
    rng = np.random.default_rng(seed)
    size = 40
    logits = rng.standard_normal((rows, size)).astype(np.float32) * 3
    mask = rng.random((rows, size)) < 0.4
    mask[:, 0] = True  # never empty
    u = rng.random(rows)
    temperature = rng.choice([0.0, 0.05, 0.7, 1.0, 1.6], rows)
    ks = np.full(rows, top_k)
    bias = rng.standard_normal((rows, size)) if biased else None
    together = choose(logits, mask, u, temperature, ks, bias)
    for i in range(rows):
        alone = choose(logits[i:i + 1], mask[i:i + 1], u[i:i + 1], temperature[i:i + 1],
                       ks[i:i + 1], None if bias is None else bias[i:i + 1])
        assert together[i] == alone[0]
        assert mask[i, together[i]]


def _request(loaded, bars: int, seed: int, style: str = "jazz",  # type: ignore[no-untyped-def]
             guidance: float = 0.0) -> MelodyRequest:
    plan = plan_from_chords([(0, Chord(2, "m7")), (48, Chord(7, "7"))], bars, 48)
    return MelodyRequest(style=style, meter=(4, 4), plan=plan, seed=seed, guidance=guidance)


# style guidance adds a twin row to the batch for each guided row, joining and leaving with it
@pytest.mark.parametrize("guidance", [(0, 0, 0, 0, 0), (0.5, 0, 1.5, 0.5, 0), (1, 1, 1, 1, 1),
                                      (0, 0.5, 0, 0, 1)])  # the first twin joins late
def test_rows_joining_a_running_batch_get_the_tokens_they_get_alone(  # type: ignore[no-untyped-def]
        tiny_registry, guidance: tuple[float, ...]) -> None:
    loaded = tiny_registry.get("lstm")
    reqs = [_request(loaded, bars, seed, guidance=g)
            for (seed, bars), g in zip(enumerate((6, 1, 3, 2, 5)), guidance, strict=True)]
    alone = [generate_tokens(loaded, [r])[0] for r in reqs]
    sampler = Sampler(loaded.model, device=loaded.device)
    done: dict[int, list[int]] = {}
    order = []
    step = 0
    while len(done) < len(reqs):
        if step < len(reqs):  # a new request joins at every step
            sampler.add(melody_row(loaded, reqs[step], tag=step))
        for row in sampler.step():
            assert row.error is None
            done[row.tag] = row.tokens
            order.append(row.tag)
        step += 1
    assert [done[i] for i in range(len(reqs))] == alone
    assert order[0] == 1  # the one-bar melody was handed back first, the others went on
    assert order[-1] == max(range(len(reqs)), key=lambda i: len(alone[i]))  # the longest


def test_a_request_arriving_mid_batch_joins_it_and_leaves_first(  # type: ignore[no-untyped-def]
        tiny_registry, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = tiny_registry.get("lstm")
    batcher = MelodyBatcher(window_s=0.0)
    finished: list[str] = []
    started = threading.Event()
    original_step = Sampler.step

    def step(self: Sampler):  # type: ignore[no-untyped-def]
        started.set()
        return original_step(self)

    monkeypatch.setattr(Sampler, "step", step)
    try:
        with ThreadPoolExecutor(2) as pool:
            def long() -> None:
                batcher.submit(loaded, _request(loaded, 32, 1), melody_row)
                finished.append("long")

            first = pool.submit(long)
            assert started.wait(30)  # the long melody is being sampled
            short = batcher.submit(loaded, _request(loaded, 1, 2), melody_row)
            finished.append("short")
            first.result(60)
    finally:
        batcher.close()
    assert finished == ["short", "long"]
    assert short == generate_tokens(loaded, [_request(loaded, 1, 2)])[0]
    assert max(batcher.batches) == 2  # they shared steps


def test_one_bad_request_fails_alone(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    loaded = tiny_registry.get("lstm")
    batcher = MelodyBatcher(window_s=0.5)
    try:
        with ThreadPoolExecutor(3) as pool, batcher, batcher, batcher:  # three callers
            good = [pool.submit(batcher.submit, loaded, _request(loaded, 2, s),
                                 melody_row) for s in (1, 2)]
            bad = pool.submit(batcher.submit, loaded, _request(loaded, 2, 3, style="polka"),
                              melody_row)
            with pytest.raises(ModelError, match="does not know the style 'polka'"):
                bad.result(60)
            tokens = [g.result(60) for g in good]
    finally:
        batcher.close()
    assert tokens == [generate_tokens(loaded, [_request(loaded, 2, s)])[0] for s in (1, 2)]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(loaded, _request(loaded, 1, 1), melody_row)


def test_composer_results_do_not_depend_on_temperature_mix(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    """Rows with different temperatures share one batch (each keeps its own)."""
    plain = Composer(tiny_registry)
    batcher = MelodyBatcher(window_s=0.3)
    batched = Composer(tiny_registry, batcher=batcher)
    reqs = [plain.resolve(ComposeRequest(style="folk", bars=2, seed=i, temperature=t))
            for i, t in enumerate((0.1, 1.0, 1.8, 0.6))]
    try:
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(batched.compose, reqs))
    finally:
        batcher.close()
    assert [c.midi for c in together] == [plain.compose(r).midi for r in reqs]
    assert max(batcher.batches) > 1


def test_a_guided_row_samples_from_its_logits_pushed_from_the_average_style(  # type: ignore[no-untyped-def]
        tiny_registry) -> None:
    import torch

    loaded = tiny_registry.get("lstm")
    sampler = Sampler(loaded.model, device=loaded.device)
    sampler.add(melody_row(loaded, _request(loaded, 2, 0, guidance=1.5)))
    x, f = torch.from_numpy(sampler._tokens), torch.from_numpy(sampler._feats)
    own, _ = loaded.model.step(x, f)
    neutral, _ = loaded.model.step(x, f, None, torch.tensor([0]))
    want = (own + 1.5 * (own - neutral)).numpy()
    assert np.allclose(sampler._logits(), want, atol=1e-5)
    assert not np.allclose(want, own.numpy(), atol=1e-3)


def test_a_form_guided_row_is_pushed_from_its_twin_that_reads_no_echo(  # type: ignore[no-untyped-def]
        tiny_registry) -> None:
    from dataclasses import replace

    import torch

    from cadenza.models.grammar import ECHO_COL

    loaded = tiny_registry.get("lstm")
    req = replace(_request(loaded, 2, 0), echo=(0, 1), form_guidance=2.0)
    row = melody_row(loaded, req)
    assert (row.guidance, row.twin, row.width) == (2.0, "form", 2)
    # no return in the form, or style guidance already: no form twin
    assert melody_row(loaded, replace(req, echo=(0, 0))).width == 1
    assert melody_row(loaded, replace(req, guidance=0.5)).twin == "style"
    sampler = Sampler(loaded.model, device=loaded.device)
    sampler.add(row)
    while not row.constraint.tracker.echo_back:  # until the second bar, which has an echo
        sampler.step()
    # the row reads its echo from this step on; its twin, which differs only there, does not
    x, f = torch.from_numpy(sampler._tokens), torch.from_numpy(sampler._feats)
    assert f[0, ECHO_COL] == 1
    own, _ = loaded.model.step(x, f, sampler._state)
    f0 = f.clone()  # (f shares the sampler's array)
    f0[:, ECHO_COL:] = 0
    formless, _ = loaded.model.step(x, f0, sampler._state)
    want = (own + 2.0 * (own - formless)).numpy()
    assert np.allclose(sampler._logits(), want, atol=1e-5)
    assert not np.allclose(want, own.numpy(), atol=1e-3)


def test_a_guided_row_takes_two_places_and_is_not_overtaken(  # type: ignore[no-untyped-def]
        tiny_registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """max_batch bounds the model's batch, twins included; a guided request that does not fit
    keeps its place in the line: a later one-place request waits behind it."""
    loaded = tiny_registry.get("lstm")
    batcher = MelodyBatcher(window_s=0.0, max_batch=2)
    started, go = threading.Event(), threading.Event()
    original_step = Sampler.step

    finished: list[str] = []
    reqs = {"long": _request(loaded, 6, 1), "guided": _request(loaded, 1, 2, guidance=0.5),
            "short": _request(loaded, 1, 3)}

    def step(self: Sampler):  # type: ignore[no-untyped-def]
        started.set()
        assert go.wait(30)  # hold the batch until both later requests are queued
        ended = original_step(self)
        # the order the batcher finishes them (the callers' threads wake in any order)
        finished.extend(n for row in ended if row.tag is not None
                        for n, r in reqs.items() if r is row.tag.request)
        return ended

    monkeypatch.setattr(Sampler, "step", step)
    got: dict[str, list[int]] = {}

    def submit(name: str) -> None:
        got[name] = batcher.submit(loaded, reqs[name], melody_row)

    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(submit, "long")]
            assert started.wait(30)
            for name, queued in (("guided", 1), ("short", 2)):
                futures.append(pool.submit(submit, name))
                while batcher._queue.qsize() < queued:
                    threading.Event().wait(0.01)
            go.set()
            for f in futures:
                f.result(60)
    finally:
        batcher.close()
    assert finished == ["long", "guided", "short"]
    assert max(batcher.batches) == 2  # the guided row and its twin, never more
    assert got == {name: generate_tokens(loaded, [r])[0] for name, r in reqs.items()}


def test_the_default_batch_holds_sixteen_guided_requests(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    """Sixteen members composing a guided style at once share one step: 32 model rows, each
    request with its twin, and each gets the tokens it gets alone."""
    loaded = tiny_registry.get("lstm")
    reqs = [_request(loaded, 2, s, guidance=0.5) for s in range(16)]
    batcher = MelodyBatcher(window_s=5.0)  # waits for every caller counted below
    try:
        with ThreadPoolExecutor(16) as pool, contextlib.ExitStack() as callers:
            for _ in reqs:
                callers.enter_context(batcher)
            got = list(pool.map(lambda r: batcher.submit(loaded, r, melody_row), reqs))
    finally:
        batcher.close()
    assert batcher.batches[0] == 32
    assert got == [generate_tokens(loaded, [r])[0] for r in reqs]
