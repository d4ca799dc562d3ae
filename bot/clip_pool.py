"""The clip pool: a clip's files (FluidSynth audio, MP3, piano roll) made in child processes,
each stage under its deadline.

A thread stuck in FluidSynth or an encoder cannot be stopped; a process can. The pool keeps up to
``size`` children (``cadenza.clip_child``), started on demand from a fork server that has already
imported the render code, each loading the soundfont once. A stage past its deadline, a cancelled
request (shutdown) or a child that dies costs that child: it is killed with its process group and
the next request starts a fresh one. ``close`` kills them all at once, so shutdown never waits
for a render.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cadenza.clip_child import FAULT_ENV, ClipTask, fault_for
from cadenza.clip_child import main as child_main
from cadenza.config import cpu_count
from cadenza.deadlines import Deadlines, StageTimeout
from cadenza.errors import ResourceError, UserError, WriteError
from cadenza.music.score import Score
from cadenza.service import ClipFiles

log = logging.getLogger(__name__)

# Imported once by the fork server, so a new child starts in milliseconds (plus its soundfont).
PRELOAD = ["cadenza.clip_child", "cadenza.synth", "cadenza.service", "cadenza.audio",
           "cadenza.pianoroll"]

Progress = Callable[[str], None]


class WorkerBug(Exception):
    """An unexpected exception in a render child; ``str(e)`` is the child's traceback."""


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _start_in_thread(process: multiprocessing.process.BaseProcess) -> asyncio.Future[None]:
    """``process.start()`` off the event loop (the first start launches the fork server: about
    a second of imports), in a daemon thread that cannot hold up the process's exit."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def start() -> None:
        try:
            process.start()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(_settle, done, e)
        else:
            loop.call_soon_threadsafe(_settle, done, None)

    threading.Thread(target=start, name="cadenza-render-start", daemon=True).start()
    return done


class _Running:
    """One task in a child: its future, and the deadline of the stage it is in."""

    def __init__(self, task_id: int, deadlines: Deadlines, progress: Progress | None,
                 on_expired: Callable[[], None]) -> None:
        self.id = task_id
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[tuple[ClipFiles, dict[str, float]]] = \
            self.loop.create_future()
        self.deadlines = deadlines
        self.progress = progress
        self.began: dict[str, float] = {}
        self.stage = "render"
        self.timer: asyncio.TimerHandle | None = None
        self._on_expired = on_expired

    def enter(self, stage: str) -> None:
        """The child began ``stage``: its deadline counts from now (from when it first began,
        should a stage be announced again)."""
        if stage not in self.began and self.progress is not None:
            try:
                self.progress(stage)
            except Exception:  # progress display must not cost the clip
                log.exception("progress callback failed at stage %s", stage)
        self.began.setdefault(stage, self.loop.time())
        self.stage = stage
        if self.timer is not None:
            self.timer.cancel()
        limit = self.deadlines.of(stage)
        self.timer = self.loop.call_at(self.began[stage] + limit, self._expire)

    def _expire(self) -> None:
        if self.future.done():
            return
        limit = self.deadlines.of(self.stage)
        self.future.set_exception(StageTimeout(self.stage, limit))
        self._on_expired()

    def finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class _Child:
    """A render process, the parent's end of its pipe and the task it is running."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection,
                 number: int) -> None:
        self.process = process
        self.conn = conn
        self.number = number
        self.loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[int] = self.loop.create_future()
        self.current: _Running | None = None
        self.broken = False
        self._reading = False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def watch(self) -> None:
        self.loop.add_reader(self.conn.fileno(), self._readable)
        self._reading = True

    def rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve another event loop (an idle child of a pool used by a new loop)."""
        self.stop_watching()
        self.loop = loop
        self.watch()

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                self._handle(self.conn.recv())
        except (EOFError, OSError):
            self._died()

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            if not self.ready.done():
                self.ready.set_result(message[1])
            return
        if kind == "failed":
            self.broken = True
            if not self.ready.done():
                self.ready.set_exception(ResourceError(message[1]))
            return
        running = self.current
        if running is None or message[1] != running.id:
            return  # an answer for a task already given up on
        if kind == "stage":
            running.enter(message[2])
        elif kind == "done" and not running.future.done():
            running.future.set_result((message[2], message[3]))
        elif kind == "error" and not running.future.done():
            what, text = message[2], message[3]
            error: Exception
            if what == "resource":
                error = ResourceError(text)
            elif what == "write":
                error = WriteError(text)
            elif what == "user":
                error = UserError(text)
            else:
                error = WorkerBug(text)
            running.future.set_exception(error)

    def _died(self) -> None:
        self.stop_watching()
        self.broken = True
        code = self.process.exitcode
        how = f" (exit code {code})" if code is not None else ""
        error = ResourceError(f"the render worker stopped unexpectedly{how}")
        if not self.ready.done():
            self.ready.set_exception(error)
        if self.current is not None and not self.current.future.done():
            self.current.future.set_exception(error)

    def stop_watching(self) -> None:
        if self._reading:
            self._reading = False
            if not self.loop.is_closed():
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(self.conn.fileno())

    def kill(self, reason: str = "the render worker was stopped") -> None:
        """SIGKILL the child and whatever it started (its process group); never blocks. A task
        still waiting on it fails with ``reason``."""
        self.broken = True
        self.stop_watching()
        if self.current is not None and not self.current.future.done():
            self.current.future.set_exception(ResourceError(reason))
        if not self.ready.done():
            self.ready.set_exception(ResourceError(reason))
            self.ready.exception()  # retrieved: nobody may be waiting for it any more
        pid = self.process.pid
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(Exception):
                    self.process.kill()
        with contextlib.suppress(Exception):
            self.conn.close()


class ClipPool:
    """Up to ``size`` child processes that make clips' files (audio rendered by FluidSynth,
    the MP3, the piano roll); ``await pool.make_files(...)`` writes one clip's."""

    def __init__(self, *, soundfont: Path | None = None, bitrate: str = "192k", size: int = 1,
                 deadlines: Deadlines | None = None, render_cores: int = 1) -> None:
        if size < 1:
            raise ValueError("a render pool needs at least one process")
        self.soundfont = soundfont
        self.bitrate = bitrate
        self.render_cores = render_cores  # FluidSynth threads in each child
        self.size = size
        self.deadlines = deadlines or Deadlines()
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._idle: list[_Child] = []
        self._children: set[_Child] = set()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._numbers = itertools.count(1)
        self._task_ids = itertools.count(1)
        self._closed = False
        self.started = 0  # children started, and killed (past a deadline, cancelled, closing)
        self.killed = 0

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self._children if c.pid is not None]

    def _semaphore(self) -> asyncio.Semaphore:
        """The slots, bound to the running loop: a pool outliving its loop (the process-wide
        one, across tests) keeps its idle children and starts afresh on the new loop."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.size)
            for child in list(self._children):
                if child in self._idle and child.current is None and not child.broken:
                    child.rebind(loop)
                else:
                    self._discard(child)
        return self._slots

    async def _spawn(self) -> _Child:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        number = next(self._numbers)
        process = self._ctx.Process(
            target=child_main, name=f"cadenza-render-{number}", daemon=True,
            args=(child_end, str(self.soundfont) if self.soundfont else None, self.bitrate,
                  self.render_cores, os.getpid()))
        child = _Child(process, parent_end, number)
        self._children.add(child)
        try:
            await _start_in_thread(process)
            child_end.close()
            child.watch()
            self.started += 1
            # Starting means loading the soundfont: the render stage's deadline covers it.
            await asyncio.wait_for(asyncio.shield(child.ready), self.deadlines.render)
        except TimeoutError:
            self._discard(child)
            raise StageTimeout("render", self.deadlines.render) from None
        except BaseException:
            self._discard(child)
            raise
        log.info("render worker %d started (pid %s)", number, child.pid)
        return child

    def _discard(self, child: _Child, reason: str = "the render worker was stopped") -> None:
        if child not in self._children:
            return
        if child.process.pid is not None and child.process.exitcode is None:
            self.killed += 1
        child.kill(reason)
        self._children.discard(child)
        if child in self._idle:
            self._idle.remove(child)

    async def warm_up(self) -> None:
        """Start one child (the soundfont loaded), so the first clip does not wait for it."""
        async with self._semaphore():
            if not self._idle and not self._closed:
                self._idle.append(await self._spawn())

    async def make_files(self, score: Score, midi: bytes, out_dir: Path, stem: str, *,
                     title: str | None = None, progress: Progress | None = None,
                     timings: dict[str, float] | None = None) -> ClipFiles:
        """Write ``stem``.mp3/.mid/.png under ``out_dir`` in a child process; ``progress(stage)``
        is called on the event loop as each of render, encode and pianoroll begins. Raises
        StageTimeout past a stage's deadline (the child is killed), ResourceError and UserError
        as the render does."""
        if self._closed:
            raise ResourceError("Cadenza is shutting down")
        task = ClipTask(score, midi, str(out_dir), stem, title,
                          fault=fault_for(os.environ.get(FAULT_ENV), title))
        async with self._semaphore():
            child = self._idle.pop() if self._idle else await self._spawn()
            running = _Running(next(self._task_ids), self.deadlines, progress,
                               on_expired=lambda: self._discard(child))
            child.current = running
            try:
                child.conn.send((running.id, task))
                running.enter("render")
                files, took = await running.future
            except (UserError, WorkerBug):  # the render failed, the child is fine (unless dead)
                if child.broken:
                    self._discard(child)
                raise
            except BaseException:  # past a deadline, cancelled mid-render: it cannot be reused
                self._discard(child)
                raise
            finally:
                running.finish()
                child.current = None
                if not child.broken and not self._closed and child in self._children:
                    self._idle.append(child)
                elif child in self._children:
                    self._discard(child)
        if timings is not None:
            timings.update(took)
        return files

    async def close(self) -> None:
        """Kill every child now (a render in progress is lost; its caller gets an error)."""
        self._closed = True
        for child in list(self._children):
            self._discard(child, "the render was stopped: Cadenza is shutting down")
        self._idle.clear()


_shared: dict[tuple[str, str], ClipPool] = {}


def shared_pool(soundfont: Path | None, bitrate: str) -> ClipPool:
    """The process-wide pool for a soundfont and bitrate (for an app built without one, as
    tests and benchmarks build it): its children outlive any one app, like ``get_synth``'s
    soundfont. They are daemons, stopped when the process exits."""
    key = (str(soundfont), bitrate)
    pool = _shared.get(key)
    if pool is None or pool._closed:
        pool = _shared[key] = ClipPool(soundfont=soundfont, bitrate=bitrate,
                                         size=cpu_count())
    return pool
