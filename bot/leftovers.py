"""Temporary names of clip files being written, and the sweep of those a dead process left.

A clip's files are written under a temporary name and moved into place when complete; a
process killed mid-clip (SIGKILL, power loss) leaves them behind. Each name carries the writing
process's id, so a process starting up removes only files whose writer is gone, never those of
another process sharing the folder.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

PENDING = ".pending-"  # a clip's files while they are rendered (cadenza.app)
ENCODING = ".encode-"  # an MP3 while it is written (cadenza.audio)


def pending_stem(what: object) -> str:
    """A temporary stem for a clip's files: '.pending-<pid>-<what>-<ns>'."""
    return f"{PENDING}{os.getpid()}-{what}-{time.monotonic_ns()}"


def encoding_prefix() -> str:
    """The prefix of a temporary MP3 (mkstemp adds a random part): '.encode-<pid>-'."""
    return f"{ENCODING}{os.getpid()}-"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: it exists
        return True
    return True


def sweep(folder: Path) -> int:
    """Remove the temporary files in ``folder`` whose writer is no longer running; returns how
    many. Names without a process id (older versions) are left alone."""
    removed = 0
    try:
        names = [p for p in folder.iterdir() if p.name.startswith((PENDING, ENCODING))]
    except OSError:  # no folder yet: nothing to sweep
        return 0
    for path in names:
        pid = path.name.split("-", 2)[1]
        if not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue
        try:
            path.unlink()
            removed += 1
        except OSError as e:
            log.warning("cannot remove %s, left by a stopped process: %s", path, e)
    if removed:
        log.info("removed %d unfinished file(s) a stopped process left in %s", removed, folder)
    return removed
