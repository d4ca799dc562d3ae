"""Every benchmark script starts as the README runs it (``python bench/x.py``): its imports
resolve and it prints its usage. (A module the scripts import, such as load_members.py, has no
``__main__`` block and is not a script.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if 'if __name__ == "__main__":' in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_a_bench_script_starts_and_prints_its_usage(script: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_bot_load_runs_its_members_in_a_process_of_their_own(tmp_path: Path) -> None:
    """The load bench end to end at its smallest: the double and the members in their spawned
    process, the real bot here; every job done, every confirmed vote stored, nothing refused,
    and the double's CPU counted apart from the render pool's."""
    done = subprocess.run([sys.executable, str(BENCH / "bot_load.py"), "--members", "2",
                           "--clips", "1", "--bars", "1", "--timeout", "120"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "completed jobs: 2 in" in done.stdout
    assert "final stars equal: True" in done.stdout
    assert "requests refused by the double: 0" in done.stdout
    if sys.platform == "linux":
        assert "discord-double process" in done.stdout
