"""The Ray Serve implementation of the worker interface (``cadenza.backends``), used when
``CADENZA_SERVE`` is set: an address of a Ray cluster where ``cadenza serve`` deployed
Cadenza's applications, or ``local`` to start a cluster in this process and deploy them there.

Generation goes to the deployment of the clip's model family, rendering to the render
deployment, whose stages stream back as they begin, so members still see them. Each stage keeps
its deadline (a request past it is cancelled on the replica); Serve's backpressure (every
replica busy and the queue full: ``BackPressureError``) becomes ``WorkersBusy``, which a member
reads as "busy, try again in a minute".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayError
from ray.serve.exceptions import BackPressureError

from cadenza.backends import Progress, WorkersBusy
from cadenza.config import Settings, cpu_count
from cadenza.deadlines import Deadlines, StageTimeout
from cadenza.errors import ResourceError, UserError, WriteError, shown, write_error
from cadenza.music.score import Score
from cadenza.origin import Origin
from cadenza.seeds import BLEND_MODEL, Sources
from cadenza.serve_app import GEN_PREFIX, RENDER_APP, Placement, WorkerConfig, deploy
from cadenza.service import ClipFiles, Composition, Resolved

log = logging.getLogger(__name__)

LOCAL = "local"
NAMESPACE = "cadenza"
# How long connecting may take: starting a local cluster and its replicas takes 15-40 s on a
# busy 2-core machine (each replica imports torch or loads the soundfont).
CONNECT_TIMEOUT = 300.0
CLOSE_TIMEOUT = 6.0
ENV = {
    "render_replicas": "CADENZA_SERVE_RENDER_REPLICAS",
    "gen_replicas": "CADENZA_SERVE_GEN_REPLICAS",
    "max_queued": "CADENZA_SERVE_MAX_QUEUED",
}


def placement_from_env(models: list[str], env: Mapping[str, str] | None = None) -> Placement:
    """Replica counts and sizes from ``CADENZA_SERVE_*`` (see docs/deploy.md); a bad value
    stops start-up with one line."""
    e = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, var in ENV.items():
        raw = (e.get(var) or "").strip()
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise UserError(f"{var} must be a whole number of at least 1 (got {shown(raw)})")
            values[name] = int(raw)
    raw = (e.get("CADENZA_SERVE_REPLICA_CPUS") or "").strip()
    if raw:
        try:
            values["replica_cpus"] = float(raw)
        except ValueError:
            values["replica_cpus"] = -1.0
        if not 0 < values["replica_cpus"] <= 64:
            raise UserError(f"CADENZA_SERVE_REPLICA_CPUS must be a number of CPUs above 0 "
                            f"(got {shown(raw)})")
    wanted = (e.get("CADENZA_SERVE_MODELS") or "").replace(",", " ").split()
    unknown = [m for m in wanted if m not in models]
    if unknown:
        raise UserError(f"CADENZA_SERVE_MODELS names models that are not installed: "
                        f"{', '.join(unknown)} (installed: {', '.join(models)})")
    return Placement(models=tuple(wanted or models), **values)


def worker_config(settings: Settings, soundfont: Path | None) -> WorkerConfig:
    return WorkerConfig(models=os.environ.get("CADENZA_MODELS") or None,
                        soundfont=str(soundfont) if soundfont else None,
                        bitrate=settings.mp3_bitrate, default_model=settings.default_model,
                        deadlines=settings.deadlines)


@dataclass
class Cluster:
    """This process's connection to Ray; ``owned`` when it started the cluster itself."""

    address: str
    owned: bool


def connect_cluster(address: str, *, cpus: int | None = None) -> Cluster:
    """Join the cluster at ``address`` or, for ``local``, start one here (blocking)."""
    # Ray reports usage to its makers unless told not to: a bot's cluster has no business
    # calling out (and CI has no route to it)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False,
                               "configure_logging": False}
    if address == LOCAL:
        context = ray.init(num_cpus=cpus or cpu_count(), include_dashboard=False, **options)
    else:
        try:
            context = ray.init(address=address, **options)
        except (ConnectionError, RayError, ValueError) as e:
            raise ResourceError(f"cannot reach the Ray cluster at {address} "
                                f"(CADENZA_SERVE): {str(e).splitlines()[0][:200]}") from None
    return Cluster(context.address_info["gcs_address"], owned=address == LOCAL)


def fit_local(placement: Placement, cpus: float) -> Placement:
    """On a cluster started here, share this machine's CPUs among the replicas when they ask
    for more than it has (Serve would wait forever for CPUs that never come)."""
    replicas = placement.render_replicas + placement.gen_replicas * len(placement.models)
    if replicas * placement.replica_cpus <= cpus:
        return placement
    # rounded down: 3 replicas of round(2 / 3, 3) = 0.667 would ask for 2.001 of 2 CPUs
    share = math.floor(cpus / replicas * 1000) / 1000
    log.info("%d replicas on %g CPUs: %g CPU each", replicas, cpus, share)
    return Placement(**{**placement.__dict__, "replica_cpus": share})


def gpus_per_generator() -> float:
    """One GPU per generator replica on a cluster that has GPUs; none otherwise."""
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def deploy_workers(config: WorkerConfig, placement: Placement) -> None:
    """Deploy on the connected cluster (blocking until every replica is ready)."""
    deploy(config, placement)


def disconnect(cluster: Cluster) -> None:
    """Leave the cluster; one this process started is stopped with its replicas."""
    if cluster.owned:
        with contextlib.suppress(Exception):
            serve.shutdown()
    ray.shutdown()


class ServeWorkers:
    """Generation and rendering through the Serve applications of a cluster."""

    def __init__(self, cluster: Cluster, deadlines: Deadlines) -> None:
        self.cluster = cluster
        self.deadlines = deadlines
        apps = serve.status().applications
        if RENDER_APP not in apps:
            raise ResourceError(f"no Cadenza workers on the Ray cluster at {cluster.address}: "
                                "start them with `cadenza serve` (see docs/deploy.md)")
        self.render_handle = serve.get_app_handle(RENDER_APP)
        self.generators = {name[len(GEN_PREFIX):]: serve.get_app_handle(name)
                           for name in apps if name.startswith(GEN_PREFIX)}
        self.render_pids: list[int] = []  # the replica of each clip rendered (benchmarks)
        self._closed = False

    @classmethod
    async def open(cls, settings: Settings, soundfont: Path | None,
                   models: list[str]) -> ServeWorkers:
        """Connect to ``settings.serve`` (deploying there first when it is ``local``)."""

        # On this thread, blocking: it runs before anything else does (the bot connects
        # after), and ray.init from another thread could not reach a cluster it started.
        cluster = connect_cluster(settings.serve or LOCAL)
        try:
            if cluster.owned:
                placement = fit_local(placement_from_env(models), cpu_count())
                if gpus_per_generator():
                    placement = Placement(**{**placement.__dict__, "gpus": 1.0})
                await _in_thread(
                    lambda: deploy_workers(worker_config(settings, soundfont), placement),
                    CONNECT_TIMEOUT, "deploying the Ray Serve workers")
            return cls(cluster, settings.deadlines)
        except BaseException:
            disconnect(cluster)
            raise

    # -- generation ---------------------------------------------------------------------------

    async def generate(self, r: Resolved, origin: Origin,
                       sources: Sources) -> tuple[Composition, list[str]]:
        model = BLEND_MODEL if origin.kind == "blend" else r.model
        handle = self.generators.get(model)
        if handle is None:
            raise ResourceError(f"the {model} model is not served by this cluster's workers "
                                f"(served: {', '.join(sorted(self.generators)) or 'none'})")
        limit = self.deadlines.of("generate")
        response = handle.remote(r, origin, sources)
        try:
            reply = await asyncio.wait_for(_result(response), limit)
        except TimeoutError:
            _cancel(response)
            raise StageTimeout("generate", limit) from None
        except asyncio.CancelledError:
            _cancel(response)
            raise
        if reply[0] == "done":
            return reply[1], reply[2]
        raise _error(reply)

    # -- rendering ----------------------------------------------------------------------------

    async def make_files(self, score: Score, midi: bytes, out_dir: Path, stem: str, *,
                     title: str | None = None, progress: Progress | None = None,
                     timings: dict[str, float] | None = None) -> ClipFiles:
        if self._closed:
            raise ResourceError("Cadenza is shutting down")
        stream = self.render_handle.options(stream=True).render.remote(score, midi, title)
        loop = asyncio.get_running_loop()
        stage, began = "render", loop.time()
        try:
            while True:
                left = began + self.deadlines.of(stage) - loop.time()
                try:
                    reply = await asyncio.wait_for(_next(stream), max(left, 0.001))
                except TimeoutError:
                    raise StageTimeout(stage, self.deadlines.of(stage)) from None
                if reply is None:
                    raise ResourceError("the render worker stopped unexpectedly")
                if reply[0] == "stage":
                    stage, began = reply[1], loop.time()
                    if progress is not None:
                        try:
                            progress(stage)
                        except Exception:  # progress display must not cost the clip
                            log.exception("progress callback failed at stage %s", stage)
                    continue
                if reply[0] != "done":
                    raise _error(reply)
                break
        except BaseException:
            _cancel(stream)
            raise
        _, mp3, mid, png, seconds, pid, took = reply
        self.render_pids.append(pid)
        if timings is not None:
            timings.update(took)
        return _write(out_dir, stem, mp3, mid, png, seconds)

    async def warm_up(self) -> None:
        """Nothing to start here: the replicas loaded their models and soundfont when they
        were deployed."""

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(TimeoutError, ResourceError):
            await _in_thread(lambda: disconnect(self.cluster), CLOSE_TIMEOUT,
                             "leaving the Ray cluster")


def _write(out_dir: Path, stem: str, mp3: bytes, mid: bytes, png: bytes,
           seconds: float) -> ClipFiles:
    """The replica's files, written where the gateway keeps clips."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}{suffix}" for suffix in (".mp3", ".mid", ".png")]
    try:
        for path, data in zip(paths, (mp3, mid, png), strict=True):
            path.write_bytes(data)
    except OSError as e:
        for path in paths:
            path.unlink(missing_ok=True)
        error = write_error(e, f"the clip's files in {out_dir}")
        if error is None:
            raise
        raise error from None
    return ClipFiles(paths[0], paths[1], paths[2], seconds, len(mp3))


def _cancel(response: Any) -> None:
    """Cancel a Serve request on its replica. Ray's ``cancel`` waits for the request to have
    been assigned (blocking): a daemon thread does it, off the event loop."""

    def cancel() -> None:
        with contextlib.suppress(Exception):
            response.cancel()

    threading.Thread(target=cancel, name="cadenza-serve-cancel", daemon=True).start()


async def _result(response: Any) -> Any:
    try:
        return await response
    except BackPressureError:
        raise WorkersBusy() from None
    except RayError as e:
        log.error("a Serve worker failed: %s", e)
        raise ResourceError("a worker stopped unexpectedly") from None


async def _next(stream: Any) -> Any:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
    except BackPressureError:
        raise WorkersBusy() from None
    except RayError as e:
        log.error("a Serve render worker failed: %s", e)
        raise ResourceError("the render worker stopped unexpectedly") from None


def _error(reply: tuple[Any, ...]) -> Exception:
    kind, text = reply[1], reply[2]
    if kind == "timeout":
        return StageTimeout(reply[3], reply[4])
    if kind == "write":
        return WriteError(text)
    if kind == "resource":
        return ResourceError(text)
    if kind == "user":
        return UserError(text)
    return RuntimeError(f"a Serve worker failed:\n{text}")


async def _in_thread(fn: Any, timeout: float, what: str) -> Any:
    """``fn()`` in a daemon thread (Ray's calls block), given up on after ``timeout``."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)

    def run() -> None:
        try:
            value = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, e)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=run, name="cadenza-serve", daemon=True).start()
    try:
        return await asyncio.wait_for(done, timeout)
    except TimeoutError:
        raise ResourceError(f"{what} took longer than {timeout:g} s") from None


async def run_workers(settings: Settings, soundfont: Path | None, models: list[str]) -> int:
    """``cadenza serve``: deploy the workers to ``settings.serve``; with ``local``, start the
    cluster here, print its address for the gateways' ``CADENZA_SERVE`` and keep it up until
    SIGTERM or Ctrl-C."""
    address = settings.serve or LOCAL
    cluster = connect_cluster(address)  # on this thread (see ServeWorkers.open)
    try:
        placement = placement_from_env(models)
        if cluster.owned:
            placement = fit_local(placement, cpu_count())
        if gpus_per_generator():
            placement = Placement(**{**placement.__dict__, "gpus": 1.0})
        await _in_thread(lambda: deploy_workers(worker_config(settings, soundfont), placement),
                         CONNECT_TIMEOUT, "deploying the workers (if the cluster lacks the CPUs "
                         "or GPUs the replicas ask for, Serve waits for them: see "
                         "CADENZA_SERVE_REPLICA_CPUS)")
        log.info("deployed %d render replica(s) and generators for %s (%g GPU each)",
                 placement.render_replicas, ", ".join(placement.models), placement.gpus)
        print(cluster.address, flush=True)  # what gateways set CADENZA_SERVE to
        if cluster.owned:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    finally:
        with contextlib.suppress(TimeoutError, ResourceError):
            await _in_thread(lambda: disconnect(cluster), CLOSE_TIMEOUT * 2,
                             "stopping the workers")
    return 0
