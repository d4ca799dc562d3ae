"""Application core shared by the console, the CLI and the Discord adapter: compose, store and
rate clips, charts and statistics. Its parts are attributes, each given what it uses:
``workers`` (threads and render processes), ``library`` (stored clips as members name them),
``seeds`` (seeds and clips built on them), ``arena`` (blind A/B votes) and ``listening``.

Blocking work never runs on the event loop, and every stage of it has a deadline
(``cadenza.deadlines``): sampling and arranging in threads that stop when cancelled
(``cadenza.workers``), rendering, encoding and the piano roll in child processes that are killed
(``cadenza.clip_pool``). Storage goes through ``cadenza.store`` (the only module with SQL).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cadenza.arena import Arena
from cadenza.backends import ClipMaker, Generator, ThreadGenerator
from cadenza.clip_pool import shared_pool
from cadenza.deadlines import Deadlines
from cadenza.errors import UserError, shown
from cadenza.exports import EXPORT_FORMATS, format_ratings
from cadenza.leftovers import pending_stem
from cadenza.leftovers import sweep as sweep_leftovers
from cadenza.library import ClipResult, Library
from cadenza.listening import Listening
from cadenza.members import UserRef, Where
from cadenza.origin import PLAIN, Origin
from cadenza.runtime import Progress, Workers, discard, rename
from cadenza.seeds import Seeds, Sources
from cadenza.service import Composer, ComposeRequest, Resolved
from cadenza.store import Store
from cadenza.store_rows import GroupStats, NewClip, TopEntry

log = logging.getLogger(__name__)

# The stages ``Cadenza.compose`` reports through its ``progress`` callback, in order, with the
# words a member sees.
STAGES: dict[str, str] = {
    "generate": "writing the melody and arrangement",
    "render": "rendering the audio",
    "encode": "encoding the MP3",
    "pianoroll": "drawing the piano roll",
    "store": "saving the clip",
}
PERIOD_DAYS = {"day": 1, "week": 7, "month": 30}


@dataclass(frozen=True)
class RateResult:
    clip_id: int
    stars: int
    previous: int | None
    count: int
    mean: float | None
    own_clip: bool = False  # stored, but not counted in charts and stats


class Cadenza:
    """The application: one Composer, one Store, and the workers (``cadenza.backends``) that
    generate and render its clips.

    ``clip_pool`` makes clips' files: the clip pool's child processes, or the Ray Serve
    workers (the composition root makes it and closes it); without one, the process-wide pool
    for the composer's soundfont is used.
    ``generator`` writes the music: without one, this app's generation threads.
    """

    def __init__(self, composer: Composer, store: Store, *, output_dir: Path,
                 workers: int = 1, deadlines: Deadlines | None = None,
                 clip_pool: ClipMaker | None = None,
                 generator: Generator | None = None) -> None:
        self.composer = composer
        self.store = store
        self.output_dir = output_dir
        self.workers = Workers(clip_pool or shared_pool(composer.soundfont, composer.bitrate),
                               workers=workers, deadlines=deadlines)
        self.library = Library(store, self.workers, output_dir)
        self.seeds = Seeds(store, composer, self.workers, self.library)
        self.arena = Arena(store, composer, self.workers, self.compose)
        self.listening = Listening(store, composer, self.workers, self.library)
        self.generator: Generator = generator or ThreadGenerator(self.workers.run_blocking,
                                                                 self.seeds.generate)

    async def close(self) -> None:
        """Stop the threads (without waiting for a stuck one: they are daemons); the render
        pool belongs to whoever made it."""
        self.workers.close()

    async def warm_up(self, model: str | None = None) -> float:
        """Compose and render one short clip in the worker pool (nothing is stored), so the
        first member's request does not pay for importing torch, loading the checkpoint and the
        soundfont; those hold the GIL for hundreds of ms and would stall an event loop running
        beside them. Returns the seconds it took."""
        t0 = time.perf_counter()
        # files a killed process was writing (never those of one still running)
        await asyncio.to_thread(sweep_leftovers, self.output_dir)
        try:
            resolved = self.composer.resolve(ComposeRequest(bars=1, seed=0, model=model))
            with tempfile.TemporaryDirectory(prefix="cadenza-warm-up-") as tmp:
                # the render process starts beside the model
                rendering = asyncio.ensure_future(self.workers.clip_pool.warm_up())
                comp, _ = await self.generator.generate(resolved, PLAIN, Sources())
                await rendering
                await self.workers.make_files(comp.score, comp.midi, Path(tmp), "warm-up")
        except asyncio.CancelledError:
            raise
        except Exception:  # the first /compose will report the problem to the member
            log.exception("warm-up failed")
        return time.perf_counter() - t0

    async def compose(self, req: ComposeRequest | Resolved, user: UserRef, where: Where = Where(),
                      *, origin: Origin = PLAIN, out_dir: Path | None = None,
                      stem: str | None = None, progress: Progress | None = None) -> ClipResult:
        """Generate, render and store a clip, built on ``origin`` (a seed, a clip, a blend pair).
        Files are written before the row is stored and the row and its lineage in one
        transaction, so a failure leaves nothing half-made.

        ``progress(stage)`` is called on the event loop as each of ``STAGES`` begins; it must
        be quick.
        """
        report = _Reporter(progress)
        resolved = req if isinstance(req, Resolved) else self.composer.resolve_installed(req)
        sources = await self.seeds.sources(origin)
        report("generate")
        comp, remarks = await self.generator.generate(resolved, origin, sources)
        r = comp.resolved
        out = out_dir or self.output_dir
        tmp_stem = pending_stem(r.seed)
        timings = dict(comp.timings)
        title = f"Cadenza — {r.style}, {r.key}, {r.tempo} bpm, seed {r.seed}"
        try:
            files = await self.workers.clip_pool.make_files(comp.score, comp.midi, out, tmp_stem,
                                                            title=title, progress=report,
                                                            timings=timings)
        except BaseException:
            discard(out, tmp_stem)  # e.g. a full disk: the MIDI and PNG were already written
            raise
        report("store")
        t0 = time.perf_counter()
        params: dict[str, Any] = {**r.params(), "model_style": comp.model_style}
        if not origin.plain:
            params["origin"] = origin.to_params()
        try:
            clip_id = await self.store.add_clip(NewClip(
                style=r.style, bars=r.total_bars, tempo=float(r.tempo), key=r.key,
                meter=str(r.meter), temperature=r.temperature, seed=r.seed, model=r.model,
                midi=comp.midi, duration_s=comp.duration_s, user_id=user.id, user_name=user.name,
                params=params, checkpoint_sha=comp.checkpoint_sha, guild_id=where.guild_id,
                channel_id=where.channel_id, parents=origin.parents(),
            ))
        except BaseException:
            for p in (files.mp3, files.mid, files.png):
                p.unlink(missing_ok=True)
            raise
        timings["store"] = time.perf_counter() - t0
        # on disk by our id: servers share the output folder, and each numbers from 1
        files = rename(files, stem or f"clip-{clip_id}")
        stored = await self.store.get_clip(clip_id)
        lineage = None if origin.plain else await self.library.lineage(clip_id, where.scope)
        return ClipResult(clip_id, r, files, comp.model_style, comp.checkpoint_sha, timings,
                          author=user.name, origin=origin, lineage=lineage, remarks=remarks,
                          ref=stored.number if stored is not None else None)

    async def rate(self, ref: int, user: UserRef, stars: int,
                   where: Where = Where()) -> RateResult:
        """Rate the clip ``ref`` names in ``where`` (as ``visible_clip``)."""
        row = await self.library.visible_clip(ref, where)
        previous = await self.store.set_rating(row.id, user.id, stars, user.name)
        row = await self.store.get_clip(row.id)
        assert row is not None
        return RateResult(ref, stars, previous, row.rating_count, row.rating_mean,
                          own_clip=row.user_id == user.id)

    async def publish(self, ref: int, user: UserRef, where: Where = Where(), *,
                      public: bool = True) -> int | None:
        """Publish the member's own clip (a public id that names it in every server) or
        withdraw it; returns its public id (None once withdrawn)."""
        row = await self.library.visible_clip(ref, where, user)
        if row.user_id != user.id:
            raise UserError(f"only {row.user_name}, who made clip #{ref}, can "
                            f"{'publish' if public else 'withdraw'} it")
        if row.scope != where.scope:
            raise UserError(f"clip #{ref} was made in another server: publish it from there")
        return await self.store.set_public(row.id, public)

    async def top(self, *, style: str | None = None, model: str | None = None,
                  period: str | None = None, limit: int = 10,
                  where: Where | None = None) -> list[TopEntry]:
        """The chart of ``where``'s clips (None: every clip, for tools and exports); a model
        no clip can have is refused (an empty chart would say nobody rated it)."""
        if model is not None and model not in (names := self.composer.model_names()):
            raise UserError(f"unknown model {shown(model)}: choose one of {', '.join(names)}")
        return await self.store.top(style=style, model=model, since=_since(period), limit=limit,
                                    scope=where.scope if where is not None else None)

    async def stats(self, *, period: str | None = None,
                    where: Where | None = None) -> dict[str, list[GroupStats]]:
        """Per model and per style: clips, raters, MOS ± 95% CI (self-votes excluded), over
        ``where``'s clips (None: all)."""
        since = _since(period)
        scope = where.scope if where is not None else None
        return {by: await self.store.stats(by, since=since, scope=scope)
                for by in ("model", "style")}

    async def export_ratings(self, fmt: str) -> str:
        """Every rating with its clip's parameters as CSV or JSON text, for offline analysis."""
        if fmt not in EXPORT_FORMATS:
            raise UserError(f"unknown export format {fmt!r}: use csv or json")
        return format_ratings(await self.store.export_ratings(), fmt)

def publish_text(ref: int, public_id: int | None) -> str:
    """What a member hears after /publish (on Discord and in the console)."""
    if public_id is None:
        return (f"Clip #{ref} is this server's alone again: its public number no longer works "
                "elsewhere.")
    return (f"Clip #{ref} is public: anyone in any server with Cadenza can play, rate and build "
            f"on it as /clip {public_id}. /publish clip:{ref} withdraw:true takes it back.")


def _since(period: str | None) -> datetime | None:
    if not period or period == "all":
        return None
    if period not in PERIOD_DAYS:
        raise UserError(f"unknown period {period!r}: use day, week, month or all")
    return datetime.now(UTC) - timedelta(days=PERIOD_DAYS[period])


class _Reporter:
    """Calls the progress callback; a failing callback is logged, never fails the clip."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def __call__(self, stage: str) -> None:
        if self._progress is None:
            return
        try:
            self._progress(stage)
        except Exception:  # progress display must never cost the member the clip
            log.exception("progress callback failed at stage %s", stage)
