"""Waiting for the double's state to satisfy a condition, with failures that say what was seen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0


class Changes:
    """Wakes every waiter when the double records something; waiters re-check their condition."""

    def __init__(self, describe: Callable[[], str]) -> None:
        self._describe = describe
        self._event = asyncio.Event()

    def notify(self) -> None:
        # Swap in a fresh event so a waiter that wakes and re-checks cannot miss a later change.
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(
        self, check: Callable[[], T | None], *, timeout: float, what: str | Callable[[], str]
    ) -> T:
        """Returns check()'s first truthy result; `what` (or what() at timeout) names the wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            # Truthiness, so `lambda: some_list` waits until the list has something in it.
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                described = what() if callable(what) else what
                raise TimeoutError(
                    f"timed out after {timeout:g}s waiting for {described}\n{self._describe()}"
                )
            event = self._event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
