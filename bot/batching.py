"""Continuous batching: concurrent requests for one model share each sampling step.

Worker threads call ``submit`` with a request and the function that makes its sampler row
(a melody, a chord plan) and block; one batching thread keeps a ``Sampler`` per model and
steps it (one RNN step serves every row, on CUDA when present). A request joins the running
batch at the next step instead of waiting for the batch to finish, and gets its tokens back as
soon as its own sequence ends, while the others go on. Each request keeps its own RNG, so
batching never changes a result.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the model code (and torch) load only when the first request is sampled
    from cadenza.models.sample import Row, Sampler

log = logging.getLogger(__name__)


MAX_BATCH = 32  # model rows per step: 16 requests, each with a guidance twin

# (loaded model, request, tag) -> its sampler row: cadenza.models.generate.melody_row,
# cadenza.models.chord_model.plan_row
RowFactory = Callable[[Any, Any, Any], "Row"]


@dataclass
class _Item:
    loaded: Any  # a cadenza.models.checkpoint.Loaded
    request: Any  # a cadenza.models.generate.MelodyRequest or chord_model.PlanRequest
    make_row: RowFactory
    future: Future = field(default_factory=Future)
    row: Row | None = None  # made on its first try to join, kept while it waits


class MelodyBatcher:
    """Samples concurrent requests together, at most ``max_batch`` rows per model step (a
    row with style or form guidance counts twice: its twin is stepped beside it).

    The default, 32, lets 16 guided requests share a step: folk, celtic and classical always
    have a twin, jazz, blues and ragtime in a form with a return. With 16 (8 guided requests),
    16 members composing folk at once got 1.91-2.52x one at a time's clips a minute, with 32
    2.50-2.85x (``bench/throughput.py --style folk``, its 16 and 16-held rows, three runs
    each, alternating, 2026-12-08); 8-bar jazz, which has no twin, is the same either way.

    From idle, the first request waits up to ``window_s`` for others while other callers are
    composing (they are about to submit), so a burst starts as one batch; later arrivals join
    between steps.
    """

    def __init__(self, *, window_s: float = 0.02, max_batch: int = MAX_BATCH) -> None:
        self.window_s = window_s
        self.max_batch = max_batch
        # callers currently composing: when the only one has submitted, nobody can join its
        # batch and waiting would only add latency
        self._active = 0
        self._active_lock = threading.Lock()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cadenza-batcher", daemon=True)
        self._thread.start()
        # the model's batch at each step (rows and their guidance twins), for benchmarks
        self.batches: list[int] = []

    def submit(self, loaded, request, make_row: RowFactory  # type: ignore[no-untyped-def]
               ) -> list[int]:
        """Tokens for one request, sampled from ``make_row(loaded, request, tag)`` (blocks
        until its sequence is done)."""
        if self._closed:
            raise RuntimeError("the melody batcher is closed")
        item = _Item(loaded, request, make_row)
        self._queue.put(item)
        return item.future.result()

    def __enter__(self) -> MelodyBatcher:
        """Count a caller that may submit soon (the Composer wraps each compose in this)."""
        with self._active_lock:
            self._active += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._active_lock:
            self._active -= 1

    def _expected(self) -> int:
        with self._active_lock:
            return max(1, self._active)

    def close(self) -> None:
        """Finish what was submitted, then stop the thread."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:

        samplers: dict[int, Sampler] = {}  # id(loaded) -> its running batch
        waiting: deque[_Item] = deque()  # arrived while their model's batch was full
        closing = False
        while True:
            busy = any(s.rows for s in samplers.values())
            arrived = self._arrivals(block=not busy and not waiting and not closing)
            closing = closing or None in arrived
            waiting.extend(a for a in arrived if a is not None)
            self._admit(samplers, waiting)
            for key, sampler in list(samplers.items()):
                if not sampler.rows:
                    del samplers[key]
                    continue
                self.batches.append(sampler.width)
                for row in sampler.step():
                    if row.error is not None:
                        row.tag.future.set_exception(row.error)
                    else:
                        row.tag.future.set_result(row.tokens)
            if closing and not samplers and not waiting and self._queue.empty():
                return

    def _arrivals(self, *, block: bool) -> list[_Item | None]:
        """What was submitted since the last step; from idle (``block``), wait for the first
        request and then up to ``window_s`` for the others composing at the same time."""
        items: list[_Item | None] = []
        if block:
            first = self._queue.get()
            items.append(first)
            deadline = time.monotonic() + self.window_s
            while first is not None and len(items) < self.max_batch:
                if len(items) >= self._expected():
                    break  # everyone composing has submitted: nobody else to wait for
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                items.append(nxt)
                if nxt is None:
                    break
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _admit(self, samplers: dict[int, Sampler], waiting: deque[_Item]) -> None:
        """Start waiting requests on their model's batch while it has room, in arrival order:
        once a request does not fit, the later ones for that model wait behind it (a guided
        row needing two places is not overtaken for ever by rows needing one)."""
        from cadenza.models.sample import Sampler

        kept: deque[_Item] = deque()
        full: set[int] = set()  # models whose batch turned a request away this time
        while waiting:
            item = waiting.popleft()
            loaded = item.loaded
            key = id(loaded)
            if key in full:
                kept.append(item)
                continue
            sampler = samplers.get(key)
            if sampler is None:
                sampler = samplers[key] = Sampler(loaded.model, device=loaded.device,
                                                  lock=loaded.lock)
            try:
                if item.row is None:
                    item.row = item.make_row(loaded, item.request, item)
            except BaseException as e:  # noqa: BLE001 - the caller gets its own error
                item.future.set_exception(e)
                continue
            if sampler.rows and sampler.width + item.row.width > self.max_batch:
                full.add(key)  # an empty batch takes any row, so max_batch 1 still serves
                kept.append(item)
                continue
            try:
                sampler.add(item.row)
            except BaseException as e:  # noqa: BLE001
                item.future.set_exception(e)
        waiting.extend(kept)
