"""A deadline for every test (setup, body and teardown each): past it, the stacks of every
thread and every asyncio task are written to stderr and the test fails with a message, so
the suite never waits for ever (CI has 90 minutes). CADENZA_TEST_DEADLINE sets it (seconds).

An async test's phase is cancelled first, as Ctrl-C cancels ``asyncio.run``: its task (every
task of the loop for a fixture's phase) gets a CancelledError, so its ``finally`` blocks and
``async with`` exits run and the fixtures then tear down in order, with nothing of the test
still running. Only if that does not end the phase within GRACE (a task that swallows the
cancellation, a thread it waits on) is DeadlinePassed raised where the main thread is."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
from collections.abc import Iterator

import pytest

# Every test passes in well under a minute alone; a loaded 2-core machine makes them several
# times slower, and the end-to-end test takes ~1 min unloaded.
DEADLINE = float(os.environ.get("CADENZA_TEST_DEADLINE", "300"))
# If the main thread cannot even run the signal handler (C code holding the GIL), the
# process ends with every thread's stack this long after the deadline.
LAST_RESORT = 120.0
# How long a cancelled async phase has to unwind before DeadlinePassed is raised.
GRACE = 30.0


class DeadlinePassed(Exception):
    """Raised in the main thread when a test phase passes its deadline."""


def _dump(what: str) -> None:
    err = sys.__stderr__
    assert err is not None
    print(f"\n=== {what} passed its deadline of {DEADLINE:g} s: every thread's stack, then "
          "every asyncio task's ===", file=err, flush=True)
    faulthandler.dump_traceback(file=err, all_threads=True)
    loop = asyncio._get_running_loop()  # the handler runs on the main thread, in its loop
    if loop is not None:
        for task in asyncio.all_tasks(loop):
            print(f"--- {task!r}", file=err)
            task.print_stack(limit=12, file=err)
    err.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if DEADLINE <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    phase = {"name": "setup", "expired": None}

    def expired(signum: int, frame: object) -> None:
        what = f"{item.nodeid} ({phase['name']})"
        if phase["expired"] is None:
            _dump(what)
            phase["expired"] = what
            loop = asyncio._get_running_loop()  # the handler runs on the main thread
            if loop is not None:
                # woken through its self-pipe: the loop may be sleeping in select()
                loop.call_soon_threadsafe(_cancel, loop, item, phase["name"])
                signal.setitimer(signal.ITIMER_REAL, min(GRACE, DEADLINE))
                return
        raise DeadlinePassed(f"{what} passed its deadline of {DEADLINE:g} s "
                             "(CADENZA_TEST_DEADLINE); the stacks are on stderr")

    previous = signal.signal(signal.SIGALRM, expired)
    item.stash[_PHASE] = phase
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


_PHASE = pytest.StashKey[dict]()


def _cancel(loop: asyncio.AbstractEventLoop, item: pytest.Item, name: str) -> None:
    """Cancel the test's own task in its call phase (every task of the loop when it cannot be
    told apart, and in a fixture's phase)."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    test = getattr(getattr(item, "obj", None), "__name__", None)
    own = [t for t in tasks if name == "call" and test is not None
           and getattr(t.get_coro(), "__name__", None) == test]
    for task in own or tasks:
        task.cancel(f"{item.nodeid} passed its deadline")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    phase = item.stash.get(_PHASE, None)
    what = phase["expired"] if phase is not None else None
    if what is None:
        return
    report = outcome.get_result()
    note = (f"{what} passed its deadline of {DEADLINE:g} s (CADENZA_TEST_DEADLINE) and was "
            "cancelled; the stacks are on stderr")
    if report.passed:  # it swallowed the cancellation and returned: still a failure
        report.outcome = "failed"
        report.longrepr = note
    elif report.failed and "passed its deadline" not in str(report.longrepr):
        report.longrepr = f"{note}\n{report.longrepr}"


def _arm(item: pytest.Item, name: str) -> None:
    phase = item.stash.get(_PHASE, None)
    if phase is None:
        return
    phase["name"] = name
    phase["expired"] = None
    signal.setitimer(signal.ITIMER_REAL, DEADLINE)
    faulthandler.dump_traceback_later(DEADLINE + LAST_RESORT, exit=True, file=sys.__stderr__)


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _arm(item, "setup")
    try:
        yield
    finally:
        _disarm()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _arm(item, "call")
    try:
        yield
    finally:
        _disarm()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    _arm(item, "teardown")
    try:
        yield
    finally:
        _disarm()
