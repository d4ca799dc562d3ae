"""Threads for blocking Python work (generation, reading uploads), with deadlines and
cooperative cancellation.

A thread cannot be killed, so a job past its deadline is *cancelled*: its ``CancelToken`` is set,
and the code it runs checks the token between steps (the sampler checks it between tokens) and
stops with ``Cancelled``. A thread that does not stop within a short grace is abandoned: the pool
starts a replacement so the next job runs, and the old thread (a daemon) ends whenever its work
does, never holding up the process's exit. Render, encode and piano roll are killable and run in
child processes instead (``cadenza.clip_pool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cadenza.deadlines import StageTimeout

log = logging.getLogger(__name__)

# How long a cancelled job's thread has to notice before it is abandoned and replaced.
CANCEL_GRACE = 1.0


class Cancelled(Exception):
    """Raised in a worker thread whose job was cancelled (deadline or shutdown)."""


class CancelToken:
    """Set once by the pool; the running code asks ``token()`` or calls ``check()``."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        """Whether to stop: pass the token itself wherever a ``stop()`` callable is taken."""
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


NEVER = CancelToken()  # the token of code not run by a pool: never cancelled
_local = threading.local()


def current_token() -> CancelToken:
    """The token of the job this thread is running (``NEVER`` outside a pool)."""
    return getattr(_local, "token", NEVER)


@dataclass
class _Item:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[Any]
    started: asyncio.Future[None]
    token: CancelToken = field(default_factory=CancelToken)
    thread: threading.Thread | None = None


def _deliver(future: asyncio.Future[Any], value: Any = None,
             error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _post(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any = None,
          error: BaseException | None = None) -> None:
    """Hand a result to ``future`` on its loop; a loop closed meanwhile (its awaiting task
    gave up at shutdown) has nobody left to tell."""
    try:
        loop.call_soon_threadsafe(_deliver, future, value, error)
    except RuntimeError:
        log.debug("a worker finished after its event loop closed; result dropped")


class ThreadPool:
    """``size`` daemon threads running ``await pool.run(fn, *args, stage=..., timeout=...)``."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one thread")
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._closed = False
        self.abandoned = 0  # threads given up on past a deadline (for tests and the log)

    def _top_up(self) -> None:
        with self._lock:
            while len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self.name}-{next(self._numbers)}")
                self._threads.add(thread)
                thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            item = self._queue.get()
            if item is None:
                break
            if item.done.done():  # given up before it started (shutdown, a cancelled request)
                continue
            item.thread = me
            _post(item.loop, item.started)
            _local.token = item.token
            try:
                value = item.fn(*item.args)
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
                _post(item.loop, item.done, None, e)
            else:
                _post(item.loop, item.done, value)
            finally:
                _local.token = NEVER
                item = None  # type: ignore[assignment]  # drop references to big results
            with self._lock:
                if me not in self._threads:  # abandoned meanwhile: a replacement took its place
                    break
        with self._lock:
            self._threads.discard(me)

    async def run(self, fn: Callable[..., Any], *args: Any, stage: str,
                  timeout: float | None) -> Any:
        """``fn(*args)`` in a pool thread; past ``timeout`` seconds of running (not of waiting
        for a thread) it is cancelled and ``StageTimeout(stage)`` raised."""
        if self._closed:
            raise asyncio.CancelledError()
        loop = asyncio.get_running_loop()
        item = _Item(fn, args, loop, loop.create_future(), loop.create_future())
        self._top_up()
        self._queue.put(item)
        try:
            await asyncio.shield(item.started)
            if timeout is None:
                return await asyncio.shield(item.done)
            return await asyncio.wait_for(asyncio.shield(item.done), timeout)
        except TimeoutError:
            item.token.cancel()
            await self._stop(item)
            raise StageTimeout(stage, timeout) from None
        except asyncio.CancelledError:
            item.token.cancel()
            _deliver(item.done, None, asyncio.CancelledError())
            if item.started.done():
                self._give_up(item, wait=False)
            raise

    async def _stop(self, item: _Item) -> None:
        """Wait a moment for a cancelled job to stop; abandon its thread if it does not. A
        cancellation of the caller meanwhile (a shutdown) is passed on, not turned into the
        stage's timeout: a worker loop that took it for a failed job would wait for its next
        job for ever and hold the shutdown up."""
        try:
            with contextlib.suppress(Exception):  # the job's own error or the grace's timeout
                await asyncio.wait_for(asyncio.shield(item.done), CANCEL_GRACE)
        finally:
            if not item.done.done():
                _deliver(item.done, None, Cancelled())
                self._give_up(item, wait=True)

    def _give_up(self, item: _Item, *, wait: bool) -> None:
        """Replace the thread running ``item`` unless it has already finished with it."""
        thread = item.thread
        with self._lock:
            if thread is None or thread not in self._threads or not thread.is_alive():
                return
            if not wait and item.done.done() and not item.token.cancelled:
                return
            self._threads.discard(thread)
            self.abandoned += 1
        log.warning("abandoned thread %s: its cancelled job did not stop", thread.name)
        if not self._closed:
            self._top_up()

    def close(self) -> None:
        """Stop taking work; idle threads end now, busy ones when their job does. Nothing here
        waits: a stuck thread must not hold up shutdown (they are daemons)."""
        self._closed = True
        with self._lock:
            count = len(self._threads)
        for _ in range(count):
            self._queue.put(None)
