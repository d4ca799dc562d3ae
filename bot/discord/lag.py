"""Event-loop lag monitor: how late a short sleep wakes up is how long the loop was blocked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

log = logging.getLogger(__name__)

WARN_AFTER = 0.1  # the bot promises members that nothing blocks the loop for longer


class LagMonitor:
    """Sleeps ``interval`` seconds in a loop and records how much later than asked it woke.

    Lag near zero means the loop is free; a spike means something ran on the loop for that
    long (a blocking call, heavy CPU work outside the thread pool) or that the loop's thread
    was waiting for a CPU or for the GIL. ``max_busy`` separates the two: the most CPU time the
    loop's own thread used in one sampling window, i.e. the work actually done on the loop.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.max_lag = 0.0
        self.max_busy = 0.0
        self.samples = 0
        self.total_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="cadenza-lag-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def reset(self) -> None:
        self.max_lag, self.max_busy, self.samples, self.total_lag = 0.0, 0.0, 0, 0.0

    @property
    def mean_lag(self) -> float:
        return self.total_lag / self.samples if self.samples else 0.0

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before, cpu_before = loop.time(), time.thread_time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - before - self.interval)
            self.max_busy = max(self.max_busy, time.thread_time() - cpu_before)
            self.samples += 1
            self.total_lag += lag
            if lag > self.max_lag:
                self.max_lag = lag
            if lag > WARN_AFTER:
                log.warning("event loop was blocked for %.0f ms", lag * 1000)
