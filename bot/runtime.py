"""Where blocking work runs: generation threads and quick threads (``cadenza.workers``) and
the render processes (``cadenza.clip_pool``), each stage under its deadline. The services
(the application, seeds, the arena, listening) are handed one ``Workers``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cadenza.backends import ClipMaker
from cadenza.deadlines import Deadlines
from cadenza.leftovers import pending_stem
from cadenza.music.score import Score
from cadenza.service import ClipFiles
from cadenza.workers import ThreadPool

QUICK_THREADS = 2  # for the short blocking steps of requests members wait on

Progress = Callable[[str], None]


class Workers:
    """Generation threads, quick threads and what makes clips' files (the clip pool, or the Ray
    Serve workers: ``cadenza.backends``), with the stages' deadlines."""

    def __init__(self, clip_pool: ClipMaker, *, workers: int = 1,
                 deadlines: Deadlines | None = None) -> None:
        self.deadlines = deadlines or Deadlines()
        self.generation = ThreadPool(workers, "cadenza-gen")
        # Short blocking steps of a member's request (reading an upload, probing a checkpoint)
        # get their own threads: they must not queue behind a minute of composing.
        self.quick = ThreadPool(QUICK_THREADS, "cadenza-quick")
        self.clip_pool = clip_pool

    def close(self) -> None:
        """Stop the threads (without waiting for a stuck one: they are daemons); the render
        pool belongs to whoever made it."""
        self.generation.close()
        self.quick.close()

    async def run_blocking(self, fn: Callable[..., Any], *args: Any,
                           stage: str = "generate") -> Any:
        """``fn(*args)`` in a generation thread, under ``stage``'s deadline (StageTimeout)."""
        return await self.generation.run(fn, *args, stage=stage,
                                         timeout=self.deadlines.of(stage))

    async def run_quick(self, fn: Callable[..., Any], *args: Any, stage: str = "upload") -> Any:
        """``fn(*args)`` for a member waiting on their answer (parsing, checkpoint probing)."""
        return await self.quick.run(fn, *args, stage=stage, timeout=self.deadlines.of(stage))

    async def make_files(self, score: Score, midi: bytes, out: Path, stem: str, *,
                     title: str | None = None, progress: Progress | None = None,
                     timings: dict[str, float] | None = None) -> ClipFiles:
        """The clip's files under ``stem`` in ``out``, written under a temporary name and moved
        into place: a failure (a stage past its deadline included) leaves nothing that a later
        request would take for finished files."""
        tmp = pending_stem(stem)
        try:
            files = await self.clip_pool.make_files(score, midi, out, tmp, title=title,
                                               progress=progress, timings=timings)
        except BaseException:
            discard(out, tmp)
            raise
        return rename(files, stem)


def discard(out: Path, stem: str) -> None:
    """Remove what a failed render left under ``stem`` (a temporary name)."""
    for p in out.glob(f"{stem}.*"):
        p.unlink(missing_ok=True)


def rename(files: ClipFiles, stem: str) -> ClipFiles:
    moved = []
    for p in (files.mp3, files.mid, files.png):
        target = p.with_name(stem + p.suffix)
        p.replace(target)
        moved.append(target)
    return ClipFiles(moved[0], moved[1], moved[2], files.audio_seconds, files.mp3_bytes)
