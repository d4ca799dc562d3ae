"""The suite's deadline (tests/deadline.py) on a stuck async test: cancelled, unwound, failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

STUCK = '''
import asyncio
import pytest

def log(folder, line):
    with open(folder / "log", "a") as f:
        f.write(line + "\\n")

@pytest.fixture
async def resource(tmp_path):
    yield tmp_path
    log(tmp_path, "fixture closed")

@pytest.mark.asyncio
async def test_stuck(resource):
    try:
        await asyncio.Event().wait()
    finally:
        log(resource, "test unwound")

@pytest.mark.asyncio
async def test_swallows(resource):
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        return  # a test that loses the cancellation still fails

@pytest.mark.asyncio
async def test_deaf(resource):
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # deaf to every cancellation: DeadlinePassed after the grace

def test_quick():
    pass
'''


def run_stuck(tmp_path: Path, *names: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_stuck.py").write_text(STUCK)
    env = {**os.environ, "CADENZA_TEST_DEADLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "pytest", "-p", "deadline", "-p", "no:cacheprovider", "-q",
           "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
           "--basetemp", str(tmp_path / "base"), *(f"test_stuck.py::{n}" for n in names)]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_stuck_async_test_is_cancelled_unwinds_and_fails_with_the_deadline(
        tmp_path: Path) -> None:
    out = run_stuck(tmp_path, "test_stuck", "test_swallows", "test_quick")
    assert "2 failed, 1 passed" in out.stdout, out.stdout + out.stderr
    assert "test_stuck.py::test_stuck (call) passed its deadline of 1 s" in out.stdout
    assert "test_stuck.py::test_swallows (call) passed its deadline" in out.stdout
    assert "every thread's stack" in out.stdout + out.stderr  # for whoever reads the log
    logs = sorted(p.read_text() for p in (tmp_path / "base").rglob("log"))
    # the test's own task was cancelled in its call phase, so it unwound before its fixtures
    # tore down (left pending, it would run its finally only when the loop closes, after them)
    assert logs == ["fixture closed\n", "test unwound\nfixture closed\n"]


def test_a_test_deaf_to_cancellation_fails_after_the_grace(tmp_path: Path) -> None:
    import deadline

    out = run_stuck(tmp_path, "test_deaf", "test_quick")
    assert "1 failed, 1 passed" in out.stdout, out.stdout + out.stderr
    assert "DeadlinePassed" in out.stdout
    assert deadline.GRACE >= 1  # min(GRACE, DEADLINE) = 1 s here
