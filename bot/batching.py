"""Dynamic batching: concurrent melody requests for one model are sampled as one batch.

Worker threads call ``submit`` and block; a single batching thread waits a short window for more
requests of the same model, then samples them together (one RNN step serves the whole batch, on
CUDA when present). Each request keeps its own RNG, so batching never changes a result.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class _Item:
    loaded: object
    request: object
    future: Future = field(default_factory=Future)


class MelodyBatcher:
    """Collects requests for ``window_s`` (or until ``max_batch``) and samples them together."""

    def __init__(self, *, window_s: float = 0.02, max_batch: int = 16) -> None:
        self.window_s = window_s
        self.max_batch = max_batch
        # callers currently composing: when the only one has submitted, nobody can join its
        # batch and waiting would only add latency
        self._active = 0
        self._active_lock = threading.Lock()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cadenza-batcher", daemon=True)
        self._thread.start()
        self.batches: list[int] = []  # sizes, for benchmarks

    def submit(self, loaded, request) -> list[int]:  # type: ignore[no-untyped-def]
        """Tokens for one MelodyRequest (blocks until its batch is done)."""
        item = _Item(loaded, request)
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
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from models.generate import generate_tokens

        pending: list[_Item] = []
        while True:
            item = self._queue.get() if not pending else None
            if item is None and not pending:
                return  # closed
            if item is not None:
                pending.append(item)
            deadline = time.monotonic() + self.window_s
            while len(pending) < self.max_batch:
                if len(pending) == 1 and self._expected() == 1:
                    break  # a lone caller: nobody can join its batch, so do not wait
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                pending.append(nxt)
            # one batch per model; the rest wait for the next round
            model = pending[0].loaded
            batch = [p for p in pending if p.loaded is model]
            pending = [p for p in pending if p.loaded is not model]
            self.batches.append(len(batch))
            try:
                results = generate_tokens(model, [b.request for b in batch])
            except BaseException as e:  # noqa: BLE001 - hand every waiter its error
                for b in batch:
                    b.future.set_exception(e)
                continue
            for b, r in zip(batch, results, strict=True):
                b.future.set_result(r)
