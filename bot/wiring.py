"""The composition root: builds the application (store, models, composer, workers, app) for
every entry point — the CLI, the console, the Discord bot and the benches — and closes it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from cadenza.config import Settings, cpu_count

if TYPE_CHECKING:
    from cadenza.app import Cadenza
    from cadenza.backends import ClipMaker
    from cadenza.jobs import JobQueue
    from cadenza.models.registry import ModelRegistry

log = logging.getLogger(__name__)

# Two OpenMP threads halve a lone row's sampling step on 2 cores; measured with no more than 2
SAMPLING_THREADS_CAP = 4


def serving_threads(workers: int) -> int:
    """torch's CPU threads for a process with ``workers`` generation workers. With one (``cadenza
    compose``, the console, a one-worker bot), every torch op runs in that worker's thread and
    several threads split each step's weights between the cores' caches (an 8-bar jazz line in
    70 ms instead of 95 here). With more, one thread: their requests share each step through
    the batcher, and a second thread issuing torch ops would make OpenMP stop spin-waiting and
    every step slower (see ``ModelRegistry``)."""
    return min(cpu_count(), SAMPLING_THREADS_CAP) if workers <= 1 else 1


@contextlib.asynccontextmanager
async def open_app(settings: Settings, *,
                   registry: ModelRegistry | None = None) -> AsyncIterator[Cadenza]:
    """The application wired from ``settings``: the model registry (the installed models, or
    ``registry``), one composer with its batcher, the store, the generation threads and the
    render processes. On exit everything is closed in reverse, bounded whatever a worker is
    doing: the threads, the render children (killed: nothing waits for a render), the
    batcher's thread, the store."""
    # imported here, not at the top: `cadenza --help` and `cadenza db` must stay light
    from cadenza.app import Cadenza
    from cadenza.batching import MelodyBatcher
    from cadenza.clip_pool import ClipPool
    from cadenza.models.registry import ModelRegistry
    from cadenza.service import Composer
    from cadenza.store import Store
    from cadenza.synth import find_soundfont

    soundfont = find_soundfont(settings.soundfont)  # fail early with a clear message
    registry = registry or ModelRegistry.discover(threads=serving_threads(settings.workers))
    # FluidSynth spreads a render over the cores the workers leave idle (all of them for a
    # one-shot compose): the same samples, sooner
    render_cores = max(1, cpu_count() // settings.workers)
    async with contextlib.AsyncExitStack() as stack:
        # One batcher for the process: requests composing at the same time (CADENZA_WORKERS > 1)
        # share each sampling step. A lone request is not delayed: the batcher only waits for
        # company while another caller is composing. One worker has no company to wait for, and
        # samples in its own thread (the only one running torch: see serving_threads).
        batcher = None
        if settings.workers > 1:
            batcher = MelodyBatcher()
            stack.callback(batcher.close)
        composer = Composer(registry, soundfont=soundfont, bitrate=settings.mp3_bitrate,
                            default_model=settings.default_model, batcher=batcher,
                            render_cores=render_cores)
        store = await Store.open(settings.db_path, wait=settings.deadlines.store,
                                 patient_wait=settings.deadlines.store_background)
        stack.push_async_callback(store.close)
        generator = None
        clip_pool: ClipMaker
        if settings.serve:
            # Ray Serve replicas generate and render (cadenza.serve_workers); this process
            # keeps the queue, the store and the members. Imported only then: ray is large.
            from cadenza.serve_workers import ServeWorkers

            clip_pool = generator = await ServeWorkers.open(settings, soundfont,
                                                            registry.names())
        else:
            # Clip processes start on demand (warm-up starts the first): one per worker and
            # per CPU at most (more processes than cores would only take turns, each holding
            # its own copy of the soundfont), each spreading its render over the cores the
            # workers leave idle.
            clip_pool = ClipPool(soundfont=soundfont, bitrate=settings.mp3_bitrate,
                                 size=min(settings.workers, cpu_count()),
                                 deadlines=settings.deadlines, render_cores=render_cores)
        stack.push_async_callback(clip_pool.close)
        app = Cadenza(composer, store, output_dir=settings.output_dir, workers=settings.workers,
                      deadlines=settings.deadlines, clip_pool=clip_pool, generator=generator)
        stack.push_async_callback(app.close)
        yield app


def job_queue(app: Cadenza, **options: Any) -> JobQueue:
    """The compose queue over ``app``'s parts: its store keeps the job rows, ``Cadenza.compose``
    makes a job's clip and ``Arena.compose_pair`` an arena pair. ``options``: capacity,
    per_member, workers, lease, owner (``JobQueue``)."""
    from cadenza.jobs import JobQueue

    return JobQueue(app.store, compose=app.compose, compose_pair=app.arena.compose_pair,
                    **options)
