"""The compose queue: bounded, fair per member, persisted, reporting progress events (no Discord).

A front end admits a request (a Resolved and the Origin it is built on: a seed, a clip, a blend
pair; or, for the arena, a Matchup of two models; ``admit`` refuses at once, with a UserError,
when the queue or the member's share of it is full), acknowledges its member, then ``enqueue``s
the job, which writes it to the store. Workers run jobs through ``Cadenza.compose`` (an arena
job through ``Arena.compose_pair``: both clips, one after the other; generation and rendering
happen in the app's thread pool, never on the event loop) and every change is published to the
job's own event stream: ``Queued(position)``, ``Started``, ``Stage``, then one of ``Done``,
``Failed``, ``Cancelled`` or ``Interrupted``. Jobs still open when the process stops stay
'queued' or 'running' in the database; ``start`` marks them failed on the next start and hands
them back so their members can be told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cadenza.app import STAGES
from cadenza.arena import ArenaResult, Matchup
from cadenza.deadlines import StageTimeout
from cadenza.errors import ResourceError, UserError, WriteError, new_error_id
from cadenza.library import ClipResult
from cadenza.members import UserRef, Where
from cadenza.origin import PLAIN, Origin
from cadenza.service import Resolved
from cadenza.store import DEFAULT_LEASE, Store, StoreError
from cadenza.store_rows import JobRow

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 16
# Renew job leases this many times per lease: a missed renewal or two (a slow database) must
# not let another process take a live job.
RENEWALS_PER_LEASE = 3
DEFAULT_PER_MEMBER = 3  # one composing and two waiting
NOWHERE = Where()
# What a member is told when a stage fails for want of something on the server (a
# ResourceError: the MP3 encoder or FluidSynth missing, a corrupt checkpoint, no soundfont).
# The admin text goes to the log; the member learns what kind of problem it is, not the paths.
MISSING_PART = {
    None: "the server is missing something it needs to compose",
    "generate": "the server could not load {model}",
    "render": "the server is missing a part it needs to render audio",
    "encode": "the server is missing a part it needs to encode the MP3",
    "pianoroll": "the server could not draw the piano roll",
    "store": "the server could not save the clip",
}


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class Queued:
    position: int  # 1 = next to start


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Stage:
    name: str  # a key of cadenza.app.STAGES
    index: int  # 1-based, over every clip of the job
    total: int
    part: int = 0  # which clip (an arena job makes two: 0 is A)
    parts: int = 1

    @property
    def label(self) -> str:
        return STAGES[self.name]


@dataclass(frozen=True)
class Done:
    result: ClipResult | ArenaResult  # ArenaResult for an arena job


@dataclass(frozen=True)
class Failed:
    message: str  # fit to show the member
    error_id: str | None = None  # set for unexpected errors, whose traceback is in the log


@dataclass(frozen=True)
class Cancelled:
    by: UserRef


@dataclass(frozen=True)
class Interrupted:
    """The queue shut down before the job finished; the next start reports it as failed."""


JobEvent = Queued | Started | Stage | Done | Failed | Cancelled | Interrupted
TERMINAL = (Done, Failed, Cancelled, Interrupted)


class QueueFull(UserError):
    """Every waiting slot is taken."""


class MemberLimit(UserError):
    """The member already has as many jobs as one member may have."""


# Appended to an interrupted job's error once its Try again button has been used: the row is
# the only record that survives a restart (the button itself outlives the process).
RETRIED = "; tried again as request #"


def retried(row: JobRow) -> bool:
    return RETRIED in (row.error or "")


def origin_from_params(params: Mapping[str, Any]) -> Origin:
    """What the stored job was built on (a plain compose for jobs from before seeds)."""
    return Origin.from_params(params.get("origin"))


def matchup_from_params(params: Mapping[str, Any]) -> Matchup | None:
    """The arena matchup of a stored job; None for every other kind of job."""
    return Matchup.from_params(params.get("arena"))


def job_params(resolved: Resolved, origin: Origin,
               matchup: Matchup | None = None) -> dict[str, Any]:
    """What a job row keeps: the resolved request and, unless plain, its origin; an arena job
    its matchup."""
    params = resolved.params()
    if not origin.plain:
        params["origin"] = origin.to_params()
    if matchup is not None:
        params["arena"] = matchup.to_params()
    return params


# ---------------------------------------------------------------------------------------------
# Jobs


class Job:
    """One member's request; iterate ``events()`` (one consumer) to follow it to its end."""

    def __init__(self, resolved: Resolved, user: UserRef, where: Where,
                 origin: Origin = PLAIN, matchup: Matchup | None = None) -> None:
        self.id: int | None = None  # the database id, once enqueued
        self.resolved = resolved
        self.origin = origin
        self.matchup = matchup  # set for an arena job: two clips, one per model
        self.user = user
        self.where = where
        self.state = "admitted"  # queued, running, done, failed, cancelled, interrupted
        # Set by a follower that records the member's answer itself (Store.record_answer):
        # until then the job stays leased and unanswered, so if this process dies before the
        # answer is posted another one posts it. Otherwise finishing the job answers it.
        self.answer_recorded_by_follower = False
        self.message_id: int | None = None
        self.admitted_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.result: ClipResult | ArenaResult | None = None
        self.position: int | None = None
        self._pending: deque[JobEvent] = deque()
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.state} {self.resolved.style} by {self.user.name}>"

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled", "interrupted")

    def emit(self, event: JobEvent) -> None:
        self._pending.append(event)
        self._wake.set()

    async def events(self) -> AsyncIterator[JobEvent]:
        """Events in order until a terminal one. A position or stage already superseded by a
        newer one of the same kind is skipped, so a slow consumer shows only current state."""
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            event = self._pending.popleft()
            if isinstance(event, Queued | Stage) and self._pending and \
                    type(self._pending[0]) is type(event):
                continue
            yield event
            if isinstance(event, TERMINAL):
                return


class JobQueue:
    """Bounded FIFO of compose jobs with a per-member limit, run by ``workers`` tasks.

    ``per_member`` counts a member's jobs waiting or running; at most one of them runs at a
    time, so the default of 3 means "one composing and two waiting".
    """

    def __init__(self, store: Store, *, compose: Callable[..., Awaitable[ClipResult]],
                 compose_pair: Callable[..., Awaitable[ArenaResult]],
                 capacity: int = DEFAULT_CAPACITY, per_member: int = DEFAULT_PER_MEMBER,
                 workers: int = 1, lease: float | None = None,
                 owner: str | None = None) -> None:
        """``compose`` makes a job's clip (``Cadenza.compose``), ``compose_pair`` an arena
        pair (``Arena.compose_pair``); the job rows live in ``store``."""
        if capacity < 1 or per_member < 1 or workers < 1:
            raise ValueError("capacity, per_member and workers must be at least 1")
        self.store = store
        self.compose = compose
        self.compose_pair = compose_pair
        # Jobs are this process's in the store while it renews their leases. A SQLite file has
        # one process: lease 0, so a restart takes its jobs at once. PostgreSQL may be shared
        # by several gateway processes: a dead one's jobs are taken once its leases run out.
        if lease is None:
            lease = DEFAULT_LEASE if getattr(store, "backend", "sqlite") == "postgresql" \
                else 0.0
        self.lease = lease
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # Called with the jobs taken over from a dead process while this one runs (the start's
        # are returned by start()); the Discord client tells their members.
        self.on_takeover: Callable[[list[JobRow]], Awaitable[None]] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.capacity = capacity
        self.per_member = per_member
        self.workers = workers
        self._admitted: list[Job] = []  # acknowledged, not yet written to the store
        self._waiting: list[Job] = []
        self._running: list[Job] = []
        self._by_id: dict[int, Job] = {}
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.completed = 0
        self.failed = 0

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> list[JobRow]:
        """Close jobs a previous process left open and start the workers.

        Returns every interrupted job whose member has not been told yet (this start's and
        any an earlier start could not report); call ``mark_notified`` once told.
        """
        pending = await self.store.interrupt_open_jobs(self.owner, self.lease)
        self._tasks = [asyncio.create_task(self._worker(), name=f"cadenza-job-worker-{n}")
                       for n in range(self.workers)]
        if self.lease > 0:
            self._keeper = asyncio.create_task(self._keep_leases(), name="cadenza-job-leases")
        return pending

    async def _keep_leases(self) -> None:
        """Renew this process's leases, and take over the jobs of a process that died."""
        while True:
            await asyncio.sleep(self.lease / RENEWALS_PER_LEASE)
            try:
                await self.store.renew_leases(self.owner, self.lease)
                # Our own jobs' leases were just renewed: only a dead process's are taken.
                taken = await self.store.interrupt_open_jobs(self.owner, self.lease)
            except StoreError:
                log.warning("could not renew the job leases of %s", self.owner, exc_info=True)
                continue
            if taken and self.on_takeover is not None:
                try:
                    await self.on_takeover(taken)
                except Exception:
                    log.exception("could not answer the jobs taken over: %s",
                                  [j.id for j in taken])

    async def mark_notified(self, job_id: int, message_id: int | None = None) -> None:
        await self.store.mark_job_notified(job_id, message_id)

    async def stored(self, job_id: int) -> JobRow | None:
        """A job's row, this run's or an earlier one's (e.g. to retry an interrupted one)."""
        return await self.store.get_job(job_id)

    async def record_retry(self, row: JobRow, retry: Job) -> None:
        """Close an interrupted job's row as tried again by ``retry`` (once queued)."""
        await self.store.finish_job(
            row.id, "failed", error=f"{row.error or 'interrupted'}{RETRIED}{retry.id}")

    async def close(self) -> None:
        """Stop the workers; open jobs end with ``Interrupted`` here and stay open in the store,
        so the next ``start`` reports them."""
        self._closed = True
        tasks = [*self._tasks, *([self._keeper] if self._keeper is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._keeper = [], None
        if self.lease > 0:
            # The next process takes the open jobs at once, not after the lease.
            try:
                await self.store.release_leases(self.owner)
            except StoreError:
                log.warning("could not release the job leases of %s", self.owner,
                            exc_info=True)
        # _by_id holds every enqueued job not yet finished, wherever a worker left it.
        for job in [*self._admitted, *self._by_id.values()]:
            self._interrupt(job)
        self._admitted.clear()
        self._waiting.clear()
        self._running.clear()

    # -- admission ----------------------------------------------------------------------------

    def admit(self, resolved: Resolved, user: UserRef, where: Where = NOWHERE,
              origin: Origin = PLAIN, matchup: Matchup | None = None) -> Job:
        """Reserve a place (no I/O, so a front end can answer within its deadline) or raise
        ``MemberLimit`` / ``QueueFull`` with the message to show."""
        if self._closed:
            raise UserError("Cadenza is restarting: try again in a minute")
        mine = [j for j in (*self._admitted, *self._waiting, *self._running)
                if j.user.id == user.id]
        # One of a member's jobs may run; the rest wait (a member with per_member 1 may still
        # wait behind other members).
        waiting_slots = max(1, self.per_member - 1)
        mine_waiting = [j for j in mine if j.state != "running"]
        if len(mine) >= self.per_member or len(mine_waiting) >= waiting_slots:
            raise MemberLimit(
                f"you already have {len(mine)} clip(s) in the queue (at most one composing and "
                f"{waiting_slots} waiting per member): wait for one to finish or cancel one, "
                "then try again"
            )
        if len(self._admitted) + len(self._waiting) >= self.capacity:
            raise QueueFull(f"the queue is full ({self.capacity} clips waiting): try again in a "
                            "moment")
        job = Job(resolved, user, where, origin, matchup)
        self._admitted.append(job)
        return job

    def abandon(self, job: Job) -> None:
        """Give back an admitted job's place (its member could not be acknowledged)."""
        if job in self._admitted:
            self._admitted.remove(job)
            job.state = "interrupted"

    async def enqueue(self, job: Job, party_id: int | None = None) -> Job:
        """Write the admitted job to the store (for ``party_id``, as that party's) and queue it."""
        if job not in self._admitted:
            raise ValueError(f"{job!r} was not admitted")
        try:
            job.id = await self.store.add_job(
                user_id=job.user.id, user_name=job.user.name,
                params=job_params(job.resolved, job.origin, job.matchup),
                guild_id=job.where.guild_id, channel_id=job.where.channel_id,
                party_id=party_id, owner=self.owner, lease=self.lease,
            )
        except BaseException:
            self.abandon(job)
            raise
        if job not in self._admitted:
            # The queue closed meanwhile (close() already ended the job with Interrupted); the
            # row just written stays 'queued', so the next start reports it.
            return job
        self._admitted.remove(job)
        job.state = "queued"
        self._waiting.append(job)
        self._by_id[job.id] = job
        self._update_positions()
        self._changed.set()
        log.info("queued job %d for %s (%d waiting)", job.id, job.user.name, len(self._waiting))
        return job

    async def submit(self, resolved: Resolved, user: UserRef, where: Where = NOWHERE,
                     origin: Origin = PLAIN, matchup: Matchup | None = None) -> Job:
        return await self.enqueue(self.admit(resolved, user, where, origin, matchup))

    async def set_message(self, job: Job, message_id: int) -> None:
        """Remember where the job's progress is shown, for the restart notice."""
        job.message_id = message_id
        if job.id is not None:
            try:
                await self.store.set_job_message(job.id, message_id)
            except StoreError:
                log.exception("could not record the message of job %s", job.id)

    # -- inspection ---------------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        return self._by_id.get(job_id)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    # -- cancelling ---------------------------------------------------------------------------

    async def cancel(self, job_id: int, user: UserRef) -> Job:
        """Cancel a waiting job of ``user``'s; running and finished jobs cannot be cancelled."""
        job = self._by_id.get(job_id)
        if job is None or job.finished:
            raise UserError("that clip is no longer waiting in the queue")
        if job.user.id != user.id:
            raise UserError(f"only {job.user.name}, who asked for this clip, can cancel it")
        if job.state == "running":
            raise UserError("too late to cancel: this clip is already being composed")
        self._waiting.remove(job)
        job.state = "cancelled"  # out of the queue now; the record follows
        self._update_positions()
        await self._conclude(job, "cancelled", Cancelled(user))
        return job

    # -- running ------------------------------------------------------------------------------

    def _next_runnable(self) -> Job | None:
        busy = {j.user.id for j in self._running}
        return next((j for j in self._waiting if j.user.id not in busy), None)

    async def _worker(self) -> None:
        while not self._closed:  # also ends a worker whose cancellation a job's code lost
            job = self._next_runnable()
            if job is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            self._waiting.remove(job)
            self._running.append(job)
            self._update_positions()
            try:
                await self._run(job)
            except Exception:
                # A bug here must cost one job, not the worker (and with it the whole queue).
                error_id = new_error_id()
                log.exception("worker failed on job %s (error id %s)", job.id, error_id)
                if not job.finished:
                    self._finish(job, "failed", Failed(
                        f"something went wrong while composing (error id {error_id})", error_id))
            finally:
                if job in self._running:
                    self._running.remove(job)
                self._changed.set()

    async def _run(self, job: Job) -> None:
        assert job.id is not None
        job.state = "running"
        job.position = None
        job.started_at = time.monotonic()
        job.emit(Started())
        try:
            await self.store.start_job(job.id)
        except StoreError:
            log.exception("could not mark job %d running", job.id)
        loop = asyncio.get_running_loop()
        names = list(STAGES)
        parts = 1 if job.matchup is None else 2
        reached: list[str] = []  # the stages begun: where a failure happened

        def progress(stage: str, part: int = 0) -> None:
            # Called on the loop (the app reports stages as its pools report them); the
            # threadsafe hand-over keeps that true of any caller.
            reached.append(stage)
            event = Stage(stage, part * len(names) + names.index(stage) + 1, parts * len(names),
                          part, parts)
            loop.call_soon_threadsafe(job.emit, event)

        try:
            result: ClipResult | ArenaResult
            if job.matchup is not None:
                result = await self.compose_pair(
                    job.resolved, job.matchup, job.user, job.where, progress=progress)
            else:
                result = await self.compose(job.resolved, job.user, job.where,
                                                origin=job.origin, progress=progress)
        except asyncio.CancelledError:
            self._interrupt(job)
            raise
        except StageTimeout as e:
            # Stopped past its deadline (the render child killed, the sampler cancelled): the
            # member hears which stage and that it was stopped; the next job runs at once.
            error_id = new_error_id()
            log.error("job %d: %s (error id %s)", job.id, e, error_id)
            message = f"{e}; the admins have been told (error id {error_id})"
            self.failed += 1
            await self._conclude(job, "failed", Failed(message, error_id), error=message)
        except WriteError as e:
            error_id = new_error_id()
            log.error("job %d failed: %s (error id %s)", job.id, e, error_id)
            message = ("the server could not save the clip's files (its disk may be full); the "
                       f"admins have been told (error id {error_id})")
            self.failed += 1
            await self._conclude(job, "failed", Failed(message, error_id), error=message)
        except ResourceError as e:
            # A problem with the server, not the request: the admins need the details (at
            # error level, so it is seen), the member a short apology they can quote.
            error_id = new_error_id()
            stage = reached[-1] if reached else None
            log.error("job %d failed at %s: %s (error id %s)", job.id, stage or "the start", e,
                      error_id)
            # An arena pair's models stay hidden until the member has voted.
            model = ("one of the models" if job.matchup is not None
                     else f"the {job.resolved.model} model")
            what = MISSING_PART.get(stage, MISSING_PART[None]).format(model=model)
            message = f"{what}; the admins have been told (error id {error_id})"
            self.failed += 1
            await self._conclude(job, "failed", Failed(message, error_id), error=message)
        except UserError as e:
            self.failed += 1
            await self._conclude(job, "failed", Failed(str(e)), error=str(e))
        except Exception:
            error_id = new_error_id()
            log.exception("job %d failed (error id %s)", job.id, error_id)
            message = f"something went wrong while composing (error id {error_id})"
            self.failed += 1
            await self._conclude(job, "failed", Failed(message, error_id), error=message)
        else:
            job.result = result
            self.completed += 1
            # The jobs row names one clip; an arena job's is A (the pair row names both).
            clip_id = result.a.clip_id if isinstance(result, ArenaResult) else result.clip_id
            await self._conclude(job, "done", Done(result), clip_id=clip_id)

    async def _conclude(self, job: Job, status: str, event: JobEvent, *,
                        clip_id: int | None = None, error: str | None = None) -> None:
        """Record the outcome, then tell the follower: a member who got their clip must never
        hear after a restart that it was interrupted."""
        assert job.id is not None
        write = asyncio.ensure_future(self._record_end(job, status, clip_id, error))
        try:
            # Shielded: a shutdown arriving now must not cut the write (milliseconds) short.
            await asyncio.shield(write)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await write
            self._finish(job, status, event)
            raise
        except StoreError:
            # The member gets their answer; the row stays open and the next start closes it.
            log.exception("could not record the end of job %d", job.id)
        self._finish(job, status, event)

    async def _record_end(self, job: Job, status: str, clip_id: int | None,
                          error: str | None) -> None:
        assert job.id is not None
        await self.store.finish_job(job.id, status, clip_id=clip_id, error=error,
                                        owner=self.owner)
        if status != "cancelled" and not job.answer_recorded_by_follower:
            # Nobody posts an answer to record: the event itself is the answer.
            await self.store.record_answer(job.id, None)

    async def claim_answer(self, job: Job) -> bool:
        """Before posting a job's answer: False when another process has taken the job over
        (this one's lease ran out) and answers it; True otherwise, also when the store cannot
        be reached (better the member hears twice than never)."""
        if job.id is None:
            return True
        try:
            return await self.store.claim_answer(job.id, self.owner)
        except StoreError:
            log.warning("could not claim the answer of job %d; answering", job.id, exc_info=True)
            return True

    async def record_answer(self, job: Job, message_id: int | None) -> None:
        if job.id is None:
            return
        try:
            await self.store.record_answer(job.id, message_id)
        except StoreError:
            log.exception("could not record the answer of job %d", job.id)

    def _finish(self, job: Job, state: str, event: JobEvent) -> None:
        job.state = state
        job.finished_at = time.monotonic()
        job.position = None
        if job.id is not None:
            self._by_id.pop(job.id, None)
        job.emit(event)

    def _interrupt(self, job: Job) -> None:
        if not job.finished:
            self._finish(job, "interrupted", Interrupted())

    def _update_positions(self) -> None:
        for index, job in enumerate(self._waiting, start=1):
            if job.position != index:
                job.position = index
                job.emit(Queued(index))
