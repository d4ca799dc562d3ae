"""Temporary clip files carry their writer's process id; a start-up sweep removes those whose
writer is gone and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cadenza.leftovers import encoding_prefix, pending_stem, sweep


def test_the_sweep_removes_only_what_a_stopped_process_left(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(gone.stdout)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as running:
        try:
            files = {
                "dead_pending": f".pending-{dead}-clip-3-99.mp3",
                "dead_encoding": f".encode-{dead}-k2j4.mp3",
                "running": f".pending-{running.pid}-7-12.mid",
                "ours": pending_stem("clip-1") + ".png",
                "ours_encoding": encoding_prefix() + "x.mp3",
                "old_format": ".pending-clip-4-123.mid",  # no pid: left alone
                "clip": "clip-3.mp3",
            }
            for name in files.values():
                (tmp_path / name).write_bytes(b"x")
            assert sweep(tmp_path) == 2
        finally:
            running.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        files[k] for k in ("running", "ours", "ours_encoding", "old_format", "clip"))
    assert files["ours"].startswith(f".pending-{os.getpid()}-clip-1-")
    assert sweep(tmp_path / "missing") == 0
