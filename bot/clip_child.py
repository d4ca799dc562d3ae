"""The render worker process: one FluidSynth soundfont loaded once, then clips rendered on request.

Runs in a child process started by ``cadenza.clip_pool`` (which owns the deadlines): it reads
tasks from its pipe and answers with the stage each one reaches, then its files or its error. A
child the pool kills loses nothing but the clip it was rendering; its files have temporary names
that the parent removes.

``CADENZA_INJECT_FAULT`` (read by the parent and passed with each task, for fault tests and
drills) makes a stage misbehave: ``<stage>:hang`` (never returns), ``:crash`` (the process
dies), ``:enospc`` (the disk is full) or ``:missing`` (a part it needs is not installed); a third
field limits it to clips whose title contains it (``encode:hang:seed 13``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cadenza.errors import ResourceError, UserError, write_error
from cadenza.leftovers import alive
from cadenza.music.score import Score

log = logging.getLogger(__name__)

FAULT_ENV = "CADENZA_INJECT_FAULT"
FAULTS = ("hang", "crash", "enospc", "missing")
RENDER_NICE = 10  # added to a render process's niceness (see _serve)


@dataclass(frozen=True)
class ClipTask:
    score: Score
    midi: bytes
    out_dir: str
    stem: str
    title: str | None
    fault: str | None = None  # "<stage>:<hang|crash|enospc>", see the module docstring


def parse_fault(spec: str | None) -> tuple[str, str] | None:
    if not spec or ":" not in spec:
        return None
    stage, _, rest = spec.strip().partition(":")
    kind = rest.partition(":")[0]
    return (stage, kind) if kind in FAULTS else None


def fault_for(spec: str | None, title: str | None) -> str | None:
    """The fault to inject into the clip titled ``title`` (see the module docstring)."""
    if parse_fault(spec) is None:
        return None
    assert spec is not None
    match = spec.strip().split(":", 2)[2:]
    if match and match[0] not in (title or ""):
        return None
    return spec


def _inject(fault: tuple[str, str] | None, stage: str) -> None:
    if fault is None or fault[0] != stage:
        return
    kind = fault[1]
    log.warning("injected fault: %s at %s", kind, stage)
    if kind == "hang":
        while True:
            time.sleep(3600)
    if kind == "crash":
        os._exit(70)
    if kind == "missing":
        raise ResourceError(f"injected fault: the {stage} stage is missing a part")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def main(conn: Connection, soundfont: str | None, bitrate: str, cores: int = 1,
         parent_pid: int | None = None) -> None:
    """The child's loop (the target of its ``multiprocessing.Process``); it ends quietly when
    the parent has gone, even in the middle of a clip (``parent_pid``: the bot's process)."""
    if parent_pid is not None:
        _exit_with(parent_pid)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, EOFError):
        _serve(conn, soundfont, bitrate, cores)


def _exit_with(pid: int) -> None:
    """End this process as soon as process ``pid`` ends. A bot killed with SIGKILL cannot stop
    its render children, and a child stuck in a stage would never read the closed pipe: it
    would live on, holding the forkserver too. (Its parent is the forkserver, so the kernel's
    parent-death signal cannot tell.)"""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or already gone
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])  # readable once the process has exited
        else:
            while alive(pid):
                time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="cadenza-render-parent-watch", daemon=True).start()

    return True


def _serve(conn: Connection, soundfont: str | None, bitrate: str, cores: int) -> None:
    # Its own process group, so the parent's kill reaches anything it starts; Ctrl-C in a
    # terminal goes to the parent, which stops the children itself.
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Rendering is batch work and the bot's event loop is not: with every core rendering, a
    # loop thread at the same priority waited its turn for up to 140-240 ms (no thread held
    # the GIL in those gaps: it was not scheduled). Niced, the renders take only what the
    # parent leaves idle, and an idle machine renders exactly as fast.
    os.nice(RENDER_NICE)
    from cadenza.service import Composer
    from cadenza.synth import get_synth

    font = Path(soundfont) if soundfont else None
    try:
        get_synth(font, cores=cores)  # the soundfont, loaded once
    except UserError as e:
        conn.send(("failed", str(e)))
        return
    except Exception:  # noqa: BLE001 - told to the parent, which logs it
        conn.send(("failed", "FluidSynth could not start: " + traceback.format_exc(limit=3)))
        return
    composer = Composer(None, soundfont=font, bitrate=bitrate, render_cores=cores)
    composer.prepare_render()  # the encoder and the piano roll's fonts too
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message is None:
            return
        task_id, task = message
        conn.send(_run(conn, composer, task_id, task))


def _run(conn: Connection, composer: Any, task_id: int, task: ClipTask) -> tuple:
    fault = parse_fault(task.fault)

    def stage(name: str) -> None:
        conn.send(("stage", task_id, name))
        _inject(fault, name)

    out = Path(task.out_dir)
    try:
        timings: dict[str, float] = {}
        files = composer.make_files(task.score, task.midi, out, task.stem, title=task.title,
                                timings=timings, stage=stage)
        return ("done", task_id, files, timings)
    except ResourceError as e:
        return ("error", task_id, "resource", str(e))
    except UserError as e:
        return ("error", task_id, "user", str(e))
    except OSError as e:  # a full disk, a folder removed meanwhile; else a bug
        error = write_error(e, f"the clip's files in {out}")
        if error is None:
            return ("error", task_id, "bug", traceback.format_exc())
        return ("error", task_id, "write", str(error))
    except Exception:  # noqa: BLE001 - the parent logs it under an error id
        return ("error", task_id, "bug", traceback.format_exc())
