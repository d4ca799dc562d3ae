"""The worker interface: where a clip's music is generated and its files rendered.

Two implementations sit behind it, and the application above (``Cadenza.compose``, the job
queue, the Discord and console front ends) is the same for both:

- in-process (the default): generation in this process's threads (``ThreadGenerator``, over
  ``cadenza.workers.ThreadPool``), rendering in its child processes
  (``cadenza.clip_pool.ClipPool``);
- Ray Serve, when ``CADENZA_SERVE`` is set: ``cadenza.serve_workers.ServeWorkers`` sends both to
  deployments on a Ray cluster (``cadenza.serve_app``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cadenza.errors import UserError

if TYPE_CHECKING:
    from cadenza.music.score import Score
    from cadenza.origin import Origin
    from cadenza.service import ClipFiles, Composition, Resolved

Progress = Callable[[str], None]

BUSY = "Cadenza is busy right now: try again in a minute"


class WorkersBusy(UserError):
    """The workers turned the request away (every replica busy and their queues full)."""

    def __init__(self, message: str = BUSY) -> None:
        super().__init__(message)


class Generator(Protocol):
    async def generate(self, r: Resolved, origin: Origin,
                       sources: Any) -> tuple[Composition, list[str]]:
        """The clip's score and MIDI (``cadenza.seeds.generate_music``; ``sources`` are the
        stored parents a ``cadenza.seeds.Sources`` names), under the generate stage's
        deadline; remarks for the member beside it."""
        ...


class ClipMaker(Protocol):
    async def make_files(self, score: Score, midi: bytes, out_dir: Path, stem: str, *,
                     title: str | None = None, progress: Progress | None = None,
                     timings: dict[str, float] | None = None) -> ClipFiles:
        """``stem``.mp3/.mid/.png written under ``out_dir``; ``progress(stage)`` on the event
        loop as render, encode and pianoroll begin; each stage under its deadline."""
        ...

    async def warm_up(self) -> None: ...

    async def close(self) -> None: ...


class ThreadGenerator:
    """Generation in this process: ``generate`` (``Seeds.generate``) in a generation thread
    (``run``: ``Workers.run_blocking``), cancelled at its deadline."""

    def __init__(self, run: Callable[..., Awaitable[Any]],
                 generate: Callable[..., tuple[Composition, list[str]]]) -> None:
        self._run = run
        self._generate = generate

    async def generate(self, r: Resolved, origin: Origin,
                       sources: Any) -> tuple[Composition, list[str]]:
        return await self._run(self._generate, r, origin, sources, stage="generate")
