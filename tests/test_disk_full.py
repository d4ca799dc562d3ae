"""A full disk is one ``error:`` line and exit status 2, never a traceback: the CLI composing onto
a 64 KiB tmpfs. The mount needs a private mount namespace (``unshare``, as root or with user
namespaces); where there is none the test skips."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=8k tmpfs /mnt "
                            "2>/dev/null || mount -t tmpfs -o size=8k tmpfs /tmp"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


needs_unshare = pytest.mark.skipif(not _unshare_works(),
                                   reason="no private mount namespace (unshare) here")


@pytest.fixture()
def cli_env(tmp_path: Path, tiny_models: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update({"CADENZA_MODELS": str(tiny_models), "CADENZA_DB": str(tmp_path / "c.db"),
                "CI": "true"})
    env.pop("CADENZA_TOKEN", None)
    return env


@needs_unshare
def test_cli_compose_onto_a_full_disk_is_one_error_line(tmp_path: Path,
                                                        cli_env: dict[str, str]) -> None:
    small = tmp_path / "small"
    small.mkdir()
    # 64 KiB: the MIDI fits, the piano roll or the MP3 does not
    script = (f"mount -t tmpfs -o size=64k tmpfs {small} && exec {sys.executable} -m cadenza "
              f"compose --bars 8 --seed 3 -o {small}/clip.mp3")
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                         env=cli_env, cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert lines[0] == f"error: cannot write the clip's files in {small}: No space left on device"
    # nothing stored half-way
    assert sqlite3.connect(cli_env["CADENZA_DB"]).execute(
        "select count(*) from clips").fetchone() == (0,)
