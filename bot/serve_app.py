"""Cadenza's Ray Serve deployments: a generator per model family and a render/encode deployment.

Each is its own Serve application (``cadenza-gen-<model>``, ``cadenza-render``), so a gateway
takes a handle to exactly the ones it calls and a cluster can grow one without redeploying the
others. The generator batches with ``@serve.batch``: the requests of one batch are composed
side by side in threads that share the replica's ``MelodyBatcher``, so their melodies are
sampled together, one model step for every row (on the GPU when the replica has one). The
render deployment wraps the same render pool as in-process serving (FluidSynth, LAME and the
piano roll in a killable child, each stage under its deadline) and streams the stages it
reaches, then the files' bytes: a replica on another machine shares no disk with the gateway.

Replies are plain tuples, never exceptions: ``("stage", name)``, ``("done", ...)`` or
``("error", kind, text[, stage, seconds])``, which ``cadenza.serve_workers`` turns back into
Cadenza's errors.
Only this module and ``cadenza.serve_workers`` import ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import traceback
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import serve

from cadenza.batching import MelodyBatcher
from cadenza.clip_pool import ClipPool
from cadenza.deadlines import Deadlines, StageTimeout
from cadenza.errors import ResourceError, UserError, WriteError
from cadenza.models.errors import ModelError
from cadenza.models.registry import ModelRegistry
from cadenza.seeds import generate_music
from cadenza.service import Composer

log = logging.getLogger(__name__)

RENDER_APP = "cadenza-render"
GEN_PREFIX = "cadenza-gen-"
MAX_BATCH = 16  # requests a replica composes together (a guided one takes two model rows)
BATCH_WAIT_S = 0.02  # how long the first request of a batch waits for company


WORK_PREFIX = "cadenza-serve-"  # + the replica's pid: a render's working folder


def _sweep_work_dirs() -> None:
    """Remove the working folders of render replicas that died mid-render: a replica killed
    (its cluster stopped, a node lost) never leaves its ``with`` block."""
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{WORK_PREFIX}*-*"):
        pid = path.name[len(WORK_PREFIX):].split("-", 1)[0]
        if pid.isdecimal() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def gen_app(model: str) -> str:
    return f"{GEN_PREFIX}{model}"


@dataclass(frozen=True)
class WorkerConfig:
    """What a replica needs to build its part of Cadenza (it shares no environment with the
    gateway that deployed it)."""

    models: str | None = None  # CADENZA_MODELS (extra checkpoint folders)
    soundfont: str | None = None
    bitrate: str = "192k"
    default_model: str = "lstm"
    deadlines: Deadlines = field(default_factory=Deadlines)
    device: str | None = None  # "cuda" on GPU replicas


@dataclass(frozen=True)
class Placement:
    """How many replicas, on what, and how much each takes before Serve pushes back."""

    models: tuple[str, ...]
    render_replicas: int = 2
    gen_replicas: int = 1
    replica_cpus: float = 1.0
    gpus: float = 0.0  # per generator replica; 0 on a cluster without GPUs
    max_ongoing: int = MAX_BATCH  # per generator replica: one batch in flight
    # Requests one caller (a gateway) may have waiting for a replica, beyond which Serve
    # raises BackPressureError: for rendering (one clip per replica at a time) and generation
    max_queued: int = 64
    gen_max_queued: int = 256


def _error(e: BaseException) -> tuple[str, ...]:
    if isinstance(e, StageTimeout):
        return ("error", "timeout", str(e), e.stage, e.seconds)
    if isinstance(e, WriteError):
        return ("error", "write", str(e))
    if isinstance(e, ResourceError | ModelError):
        return ("error", "resource", str(e))
    if isinstance(e, UserError):
        return ("error", "user", str(e))
    return ("error", "bug", "".join(traceback.format_exception(e)))


@serve.deployment
class Generate:
    """Writes clips' music with one model family; ``@serve.batch`` gathers concurrent requests
    so their sampling steps are shared."""

    def __init__(self, config: WorkerConfig, model: str) -> None:
        if config.models:
            os.environ["CADENZA_MODELS"] = config.models
        self.model = model
        registry = ModelRegistry.discover(device=config.device, threads=1)
        self.batcher = MelodyBatcher(max_batch=2 * MAX_BATCH)
        self.composer = Composer(registry, default_model=config.default_model,
                                 batcher=self.batcher)
        self.deadlines = config.deadlines
        self.threads = ThreadPoolExecutor(MAX_BATCH, thread_name_prefix=f"cadenza-{model}")
        self.batch_sizes: list[int] = []

    def _one(self, request: tuple[Any, Any, Any]) -> tuple[Any, ...]:
        r, origin, sources = request
        try:
            comp, remarks = generate_music(self.composer, r, origin, sources)
        except BaseException as e:  # noqa: BLE001 - handed back to the gateway
            return _error(e)
        return ("done", comp, remarks)

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def generate(self, requests: list[tuple[Any, Any, Any]]) -> list[tuple[Any, ...]]:
        self.batch_sizes.append(len(requests))
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(
            *(loop.run_in_executor(self.threads, self._one, req) for req in requests)))

    async def __call__(self, r: Any, origin: Any, sources: Any) -> tuple[Any, ...]:
        return await self.generate((r, origin, sources))

    def stats(self) -> dict[str, Any]:
        """Requests per @serve.batch call and rows per sampling step, for the benchmark."""
        return {"pid": os.getpid(), "batches": list(self.batch_sizes),
                "steps": list(self.batcher.batches)}


@serve.deployment
class Render:
    """Renders, encodes and draws one clip at a time per render child, streaming its stages."""

    def __init__(self, config: WorkerConfig) -> None:
        _sweep_work_dirs()
        self.pool = ClipPool(soundfont=Path(config.soundfont) if config.soundfont else None,
                             bitrate=config.bitrate, size=1, deadlines=config.deadlines)

    async def warm_up(self) -> int:
        await self.pool.warm_up()
        return os.getpid()

    async def render(self, score: Any, midi: bytes, title: str | None) -> AsyncIterator[tuple]:
        stages: asyncio.Queue[str] = asyncio.Queue()
        timings: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-") as tmp:
            job = asyncio.ensure_future(self.pool.make_files(
                score, midi, Path(tmp), "clip", title=title, progress=stages.put_nowait,
                timings=timings))
            try:
                while not job.done() or not stages.empty():
                    getter = asyncio.ensure_future(stages.get())
                    await asyncio.wait({job, getter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield ("stage", getter.result())
                    else:
                        getter.cancel()
                try:
                    files = job.result()
                except BaseException as e:  # noqa: BLE001 - handed back to the gateway
                    yield _error(e)
                    return
                yield ("done", files.mp3.read_bytes(), files.mid.read_bytes(),
                       files.png.read_bytes(), files.audio_seconds, os.getpid(), timings)
            finally:
                if not job.done():  # the gateway gave up (deadline, shutdown): stop the child
                    job.cancel()
                    with contextlib.suppress(BaseException):
                        await job


def deploy(config: WorkerConfig, placement: Placement) -> None:
    """Run (or update) every Cadenza application on the connected cluster and wait until each
    is ready."""
    # Members reach the workers through handles from the gateway, never over HTTP: no proxy
    # actor (a process of its own, and a port open on every node). On a cluster where Serve
    # already runs this is a no-op.
    serve.start(proxy_location="Disabled")
    cpu = {"num_cpus": placement.replica_cpus}
    serve.run(Render.options(num_replicas=placement.render_replicas, ray_actor_options=cpu,
                             max_ongoing_requests=1,
                             max_queued_requests=placement.max_queued).bind(config),
              name=RENDER_APP, route_prefix=None)
    gen_options = {**cpu, "num_gpus": placement.gpus} if placement.gpus else cpu
    gen_config = config if not placement.gpus else WorkerConfig(
        config.models, config.soundfont, config.bitrate, config.default_model,
        config.deadlines, device="cuda")
    for model in placement.models:
        serve.run(Generate.options(num_replicas=placement.gen_replicas,
                                   ray_actor_options=gen_options,
                                   max_ongoing_requests=placement.max_ongoing,
                                   max_queued_requests=placement.gen_max_queued)
                  .bind(gen_config, model),
                  name=gen_app(model), route_prefix=None)
