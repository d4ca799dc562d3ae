"""Application core shared by the console, the CLI and the Discord adapter: compose, store and
rate clips, charts and statistics; seeds and lineage live in ``cadenza.seeds`` (``Cadenza.seeds``),
whose public names are re-exported here, and the blind A/B arena in ``cadenza.arena``
(``Cadenza.arena``).

Blocking work never runs on the event loop, and every stage of it has a deadline
(``cadenza.deadlines``): sampling and arranging in threads that stop when cancelled
(``cadenza.workers``), rendering, encoding and the piano roll in child processes that are killed
(``cadenza.render_pool``). Storage goes through ``cadenza.store`` (the only module with SQL).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cadenza.arena import Arena
from cadenza.deadlines import Deadlines
from cadenza.errors import ResourceError, UserError
from cadenza.listening import Listening
from cadenza.midi_io import midi_to_score
from cadenza.models.errors import ModelError
from cadenza.models.score import Score
from cadenza.render_pool import RenderPool, shared_pool
from cadenza.seeds import (
    BLEND_MODEL,
    DEFAULT_BLEND_BARS,
    DEFAULT_CONTINUE_BARS,
    MAX_TREE_LINES,
    MAX_UPLOAD_BYTES,
    ORIGIN_KINDS,
    PLAIN,
    RELATION_WORDS,
    Lineage,
    Origin,
    SeedResult,
    Seeds,
    SeedTree,
    SeedView,
    Upload,
    check_upload_size,
    clean_filename,
    lineage_of,
    node_text,
    preview_score,
    resolved_from_row,
)
from cadenza.service import Composer, ComposeRequest, RenderedClip, Resolved
from cadenza.store import (
    Clip,
    GroupStats,
    NewClip,
    Seed,
    SeedPage,
    Store,
    TopEntry,
    scope_of,
)
from cadenza.workers import ThreadPool

log = logging.getLogger(__name__)

# Seeds and lineage moved to cadenza.seeds; these names stay importable from here.
__all__ = [
    "BLEND_MODEL", "CONSOLE_USER_ID", "DEFAULT_BLEND_BARS", "DEFAULT_CONTINUE_BARS",
    "EXPORT_COLUMNS", "EXPORT_FORMATS", "MAX_TREE_LINES", "MAX_UPLOAD_BYTES", "ORIGIN_KINDS",
    "PERIOD_DAYS", "PLAIN", "RELATION_WORDS", "STAGES", "Cadenza", "ClipResult", "Lineage",
    "Origin", "Progress", "RateResult", "SeedResult", "SeedTree", "SeedView", "Upload",
    "UserRef", "Where", "check_upload_size", "clean_filename", "format_ratings", "lineage_of",
    "node_text", "preview_score", "publish_text", "resolved_from_row",
]

CONSOLE_USER_ID = 0
QUICK_THREADS = 2  # for the short blocking steps of requests members wait on


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
EXPORT_FORMATS = ("csv", "json")
# Column order of the CSV export (the JSON export has the same keys, params as an object).
EXPORT_COLUMNS = (
    "clip_id", "user_id", "user_name", "stars", "rated_at", "updated_at", "self_vote", "style",
    "bars", "tempo", "key", "meter", "temperature", "seed", "model", "checkpoint_sha",
    "duration_s", "author_id", "clip_created_at", "params",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class UserRef:
    id: int
    name: str


@dataclass(frozen=True)
class Where:
    """Where a request came from (None outside Discord)."""

    guild_id: int | None = None
    channel_id: int | None = None

    @property
    def scope(self) -> int:
        """Where its clips are numbered and seen (``cadenza.store.scope_of``)."""
        return scope_of(self.guild_id, self.channel_id)


@dataclass
class ClipResult:
    clip_id: int
    resolved: Resolved
    files: RenderedClip
    model_style: str
    checkpoint_sha: str | None
    timings: dict[str, float] = field(default_factory=dict)
    rating_count: int = 0
    rating_mean: float | None = None
    author: str | None = None
    origin: Origin = field(default_factory=Origin)
    lineage: Lineage | None = None
    remarks: list[str] = field(default_factory=list)  # for the member, e.g. which bars continued
    ref: int | None = None  # what the member calls it: "#12" in their server (clip_id is ours)
    public_id: int | None = None  # set while its owner has it published

    @property
    def number(self) -> int:
        """The clip's number for the member it is shown to."""
        return self.ref if self.ref is not None else self.clip_id

    def summary(self) -> str:
        r = self.resolved
        bars = f"{r.total_bars} bars"
        if r.primer_bars:
            bars += f" ({r.primer_bars} from the seed + {r.bars} new)"
        form = f"form {r.form.upper()}, " if len(r.form) > 1 else ""
        return (f"clip #{self.number}: {r.style}, {bars}, {r.tempo} bpm, key {r.key}, "
                f"{r.meter_str}, {form}temperature {r.temperature:g}, seed {r.seed}, "
                f"model {r.model}")

    @property
    def built_on(self) -> str:
        return self.lineage.text() if self.lineage is not None else ""


@dataclass(frozen=True)
class RateResult:
    clip_id: int
    stars: int
    previous: int | None
    count: int
    mean: float | None
    own_clip: bool = False  # stored, but not counted in charts and stats


class Cadenza:
    """The application: one Composer, one Store, generation threads and render processes.

    ``renderer`` is the render pool (the composition root makes one and closes it); without
    one, the process-wide pool for the composer's soundfont is used.
    """

    def __init__(self, composer: Composer, store: Store, *, output_dir: Path,
                 workers: int = 1, deadlines: Deadlines | None = None,
                 renderer: RenderPool | None = None) -> None:
        self.composer = composer
        self.store = store
        self.output_dir = output_dir
        self.deadlines = deadlines or Deadlines()
        self.generation = ThreadPool(workers, "cadenza-gen")
        # Short blocking steps of a member's request (reading an upload, probing a checkpoint)
        # get their own threads: they must not queue behind a minute of composing.
        self.quick = ThreadPool(QUICK_THREADS, "cadenza-quick")
        self.renderer = renderer or shared_pool(composer.soundfont, composer.bitrate)
        self.seeds = Seeds(self)
        self.arena = Arena(self)
        self.listening = Listening(self)

    async def close(self) -> None:
        """Stop the threads (without waiting for a stuck one: they are daemons); the render
        pool belongs to whoever made it."""
        self.generation.close()
        self.quick.close()

    async def run_blocking(self, fn, *args, stage: str = "generate"):  # type: ignore[no-untyped-def]
        """``fn(*args)`` in a generation thread, under ``stage``'s deadline (StageTimeout)."""
        return await self.generation.run(fn, *args, stage=stage,
                                         timeout=self.deadlines.of(stage))

    async def run_quick(self, fn, *args, stage: str = "upload"):  # type: ignore[no-untyped-def]
        """``fn(*args)`` for a member waiting on their answer (parsing, checkpoint probing)."""
        return await self.quick.run(fn, *args, stage=stage, timeout=self.deadlines.of(stage))

    async def render(self, score: Score, midi: bytes, out: Path, stem: str, *,
                     title: str | None = None, progress: Progress | None = None,
                     timings: dict[str, float] | None = None) -> RenderedClip:
        """The clip's files under ``stem`` in ``out``, written under a temporary name and moved
        into place: a failure (a stage past its deadline included) leaves nothing that a later
        request would take for finished files."""
        tmp = f".pending-{stem}-{time.monotonic_ns()}"
        try:
            files = await self.renderer.render(score, midi, out, tmp, title=title,
                                               progress=progress, timings=timings)
        except BaseException:
            _discard(out, tmp)
            raise
        return _rename(files, stem)

    # ---- compose
    def resolve(self, req: ComposeRequest) -> Resolved:
        """Fix every parameter; an unknown model is refused here, before any work is queued."""
        resolved = self.composer.resolve(req)
        self.check_model(resolved.model)
        return resolved

    def model_names(self) -> list[str]:
        return list(self.composer.registry.names())

    def check_model(self, name: str) -> None:
        try:
            self.composer.registry.entry(name)
        except ModelError as e:
            raise ResourceError(str(e)) from None

    async def warm_up(self, model: str | None = None) -> float:
        """Compose and render one short clip in the worker pool (nothing is stored), so the
        first member's request does not pay for importing torch, loading the checkpoint and the
        soundfont, and building matplotlib's caches; those hold the GIL for hundreds of ms and
        would stall an event loop running beside them. Returns the seconds it took."""
        t0 = time.perf_counter()
        try:
            resolved = self.composer.resolve(ComposeRequest(bars=1, seed=0, model=model))
            with tempfile.TemporaryDirectory(prefix="cadenza-warm-up-") as tmp:
                rendering = asyncio.ensure_future(self.renderer.warm_up())  # beside the model
                comp = await self.run_blocking(self.composer.compose, resolved)
                await rendering
                await self.render(comp.score, comp.midi, Path(tmp), "warm-up")
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
        resolved = req if isinstance(req, Resolved) else self.resolve(req)
        sources = await self.seeds.sources(origin)
        report("generate")
        comp, remarks = await self.run_blocking(self.seeds.generate, resolved, origin, sources)
        r = comp.resolved
        out = out_dir or self.output_dir
        tmp_stem = f".pending-{r.seed}-{time.monotonic_ns()}"
        timings = dict(comp.timings)
        title = f"Cadenza — {r.style}, {r.key}, {r.tempo} bpm, seed {r.seed}"
        try:
            files = await self.renderer.render(comp.score, comp.midi, out, tmp_stem, title=title,
                                               progress=report, timings=timings)
        except BaseException:
            _discard(out, tmp_stem)  # e.g. a full disk: the MIDI and PNG were already written
            raise
        report("store")
        t0 = time.perf_counter()
        params: dict[str, Any] = {**r.params(), "model_style": comp.model_style}
        if not origin.plain:
            params["origin"] = origin.to_params()
        try:
            clip_id = await self.store.add_clip(NewClip(
                style=r.style, bars=r.total_bars, tempo=float(r.tempo), key=r.key,
                meter=r.meter_str, temperature=r.temperature, seed=r.seed, model=r.model,
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
        files = _rename(files, stem or f"clip-{clip_id}")
        stored = await self.store.get_clip(clip_id)
        lineage = None if origin.plain else await self.lineage(clip_id, where.scope)
        return ClipResult(clip_id, r, files, comp.model_style, comp.checkpoint_sha, timings,
                          author=user.name, origin=origin, lineage=lineage, remarks=remarks,
                          ref=stored.number if stored is not None else None)

    # ---- stored clips
    async def visible_clip(self, ref: int, where: Where = Where(),
                           viewer: UserRef | None = None) -> Clip:
        """The clip a member in ``where`` means by "#``ref``": one of that server's (or DM's,
        or the console's), or a clip published anywhere. Another server's clips answer like
        clips that do not exist. A ``viewer`` is refused an arena clip whose models they have
        not revealed."""
        row = await self.store.find_clip(where.scope, ref)
        if row is None:
            raise UserError(f"no clip #{ref}")
        await self.check_not_blind(row.id, viewer)
        return row

    async def clip(self, ref: int, *, viewer: UserRef | None = None, where: Where = Where(),
                   out_dir: Path | None = None) -> ClipResult:
        """A stored clip's files (``ref`` as in ``visible_clip``), re-rendered from its MIDI
        when they are not on disk."""
        row = await self.visible_clip(ref, where, viewer)
        clip_id = row.id
        out = out_dir or self.output_dir
        stem = f"clip-{clip_id}"
        files = RenderedClip(out / f"{stem}.mp3", out / f"{stem}.mid", out / f"{stem}.png", 0, 0)
        # files on disk are reused only when they are this clip's: another database (a test
        # run, a fresh start) may have left a different clip under the same number
        if not all(p.exists() for p in (files.mp3, files.mid, files.png)) or \
                files.mid.read_bytes() != row.midi:
            files = await self._rerender(row, out, stem)
        else:
            files = RenderedClip(files.mp3, files.mid, files.png, row.duration_s,
                                 files.mp3.stat().st_size)
        origin = Origin.from_params(row.params.get("origin"))
        return ClipResult(clip_id, resolved_from_row(row), files,
                          str(row.params.get("model_style", row.style)), row.checkpoint_sha,
                          rating_count=row.rating_count, rating_mean=row.rating_mean,
                          author=row.user_name, origin=origin,
                          lineage=await self.lineage(clip_id, where.scope), ref=ref,
                          public_id=row.public_id)

    async def _rerender(self, row: Clip, out: Path, stem: str) -> RenderedClip:
        score = await self.run_quick(midi_to_score, row.midi, stage="upload")
        title = f"Cadenza #{row.id} — {row.style}, {row.key}, {row.tempo:g} bpm, seed {row.seed}"
        return await self.render(score, row.midi, out, stem, title=title)

    async def check_not_blind(self, clip_id: int, viewer: UserRef | None) -> None:
        """Refuse (UserError) to show ``viewer`` an arena clip, or build on one, before they
        have revealed its pair: the clip's model would unblind their vote. ``None`` (no
        member: exports, tests) is not checked."""
        if viewer is None:
            return
        hidden = await self.store.hidden_arena_clip(clip_id, viewer.id)
        if hidden is not None:
            pair_id, side = hidden
            raise UserError(f"clip #{clip_id} is {side} of arena #{pair_id}: its model stays "
                            "hidden until you have voted on the pair and revealed it")

    async def rate(self, ref: int, user: UserRef, stars: int,
                   where: Where = Where()) -> RateResult:
        """Rate the clip ``ref`` names in ``where`` (as ``visible_clip``)."""
        row = await self.visible_clip(ref, where)
        previous = await self.store.set_rating(row.id, user.id, stars, user.name)
        row = await self.store.get_clip(row.id)
        assert row is not None
        return RateResult(ref, stars, previous, row.rating_count, row.rating_mean,
                          own_clip=row.user_id == user.id)

    async def publish(self, ref: int, user: UserRef, where: Where = Where(), *,
                      public: bool = True) -> int | None:
        """Publish the member's own clip (a public id that names it in every server) or
        withdraw it; returns its public id (None once withdrawn)."""
        row = await self.visible_clip(ref, where, user)
        if row.user_id != user.id:
            raise UserError(f"only {row.user_name}, who made clip #{ref}, can "
                            f"{'publish' if public else 'withdraw'} it")
        if row.scope != where.scope:
            raise UserError(f"clip #{ref} was made in another server: publish it from there")
        return await self.store.set_public(row.id, public)

    async def top(self, *, style: str | None = None, model: str | None = None,
                  period: str | None = None, limit: int = 10,
                  where: Where | None = None) -> list[TopEntry]:
        """The chart of ``where``'s clips (None: every clip, for tools and exports)."""
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

    # ---- seeds and lineage: cadenza.seeds does the work
    async def lineage(self, clip_id: int, scope: int | None = None) -> Lineage:
        """What the clip was built on, and the members to credit (clips by their numbers in
        ``scope``)."""
        return await self.seeds.lineage(clip_id, scope)

    async def check_sources(self, origin: Origin) -> None:
        """Refuse (UserError) a request whose seed or clip is gone, before it is queued."""
        await self.seeds.check_sources(origin)

    async def plan_compose(self, opts: Mapping[str, Any], user: UserRef,
                           where: Where = Where()) -> tuple[Resolved, Origin]:
        return await self.seeds.plan_compose(opts, user, where)

    # A new clip built on a clip names its model, so building on an unrevealed arena clip
    # is refused like showing it.
    async def plan_continue(self, ref: int, bars: int = DEFAULT_CONTINUE_BARS,
                            seed: int | None = None, *, viewer: UserRef | None = None,
                            where: Where = Where()) -> tuple[Resolved, Origin]:
        row = await self.visible_clip(ref, where, viewer)
        return await self.seeds.plan_continue(row, ref, bars, seed)

    async def plan_variation(self, ref: int, seed: int | None = None, *,
                             viewer: UserRef | None = None,
                             where: Where = Where()) -> tuple[Resolved, Origin]:
        row = await self.visible_clip(ref, where, viewer)
        return await self.seeds.plan_variation(row, ref, seed)

    async def plan_blend(self, a: str, b: str, user: UserRef, where: Where = Where(), *,
                         bars: int | None = None, style: str | None = None,
                         seed: int | None = None) -> tuple[Resolved, Origin]:
        return await self.seeds.plan_blend(a, b, user, where, bars=bars, style=style, seed=seed)

    async def plan_reroll(self, ref: int, *, viewer: UserRef | None = None,
                          where: Where = Where()) -> tuple[Resolved, Origin]:
        row = await self.visible_clip(ref, where, viewer)
        return await self.seeds.plan_reroll(row, ref)

    async def share_seed(self, name: str, user: UserRef, where: Where = Where(), *,
                         clip_id: int | None = None, bar_range: tuple[int, int] | None = None,
                         upload: Upload | None = None, notes: str | None = None,
                         meter: tuple[int, int] = (4, 4), public: bool = False) -> SeedResult:
        return await self.seeds.share_seed(name, user, where, clip_id=clip_id,
                                           bar_range=bar_range, upload=upload, notes=notes,
                                           meter=meter, public=public)

    async def check_seed_name(self, name: str, where: Where = Where()) -> None:
        await self.seeds.check_seed_name(name, where)

    async def visible_seed(self, name: str, user: UserRef, where: Where = Where()) -> Seed:
        return await self.seeds.visible_seed(name, user, where)

    async def list_seeds(self, user: UserRef, where: Where = Where(), *,
                         query: str | None = None, page: int = 1,
                         per_page: int = 10) -> SeedPage:
        return await self.seeds.list_seeds(user, where, query=query, page=page,
                                           per_page=per_page)

    async def seed_names(self, user: UserRef, where: Where = Where(), typed: str = "") -> list[str]:
        return await self.seeds.seed_names(user, where, typed)

    async def show_seed(self, name: str, user: UserRef, where: Where = Where(), *,
                        out_dir: Path | None = None) -> SeedView:
        return await self.seeds.show_seed(name, user, where, out_dir=out_dir)

    async def delete_seed(self, name: str, user: UserRef, where: Where = Where(), *,
                          can_manage: bool = False) -> Seed:
        return await self.seeds.delete_seed(name, user, where, can_manage=can_manage)

    async def seed_tree(self, name: str, user: UserRef, where: Where = Where()) -> SeedTree:
        return await self.seeds.seed_tree(name, user, where)


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


def format_rows(rows: list[dict], fmt: str, columns: Sequence[str],
                flatten: Callable[[dict], dict] | None = None) -> str:
    """Export rows as a JSON array, or as CSV with ``columns`` (``flatten`` turns a row's
    nested values into cells)."""
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {k: row[k] for k in columns}
        writer.writerow(flatten(flat) if flatten else flat)
    return buffer.getvalue()


def format_ratings(rows: list[dict], fmt: str) -> str:
    """Rows from ``Store.export_ratings`` as CSV (params as a JSON column) or a JSON array."""

    def flatten(flat: dict) -> dict:
        flat["params"] = json.dumps(flat["params"], sort_keys=True, separators=(",", ":"))
        flat["self_vote"] = int(flat["self_vote"])
        return flat

    return format_rows(rows, fmt, EXPORT_COLUMNS, flatten)


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


def _discard(out: Path, stem: str) -> None:
    """Remove what a failed render left under ``stem`` (a temporary name)."""
    for p in out.glob(f"{stem}.*"):
        p.unlink(missing_ok=True)


def _rename(files: RenderedClip, stem: str) -> RenderedClip:
    moved = []
    for p in (files.mp3, files.mid, files.png):
        target = p.with_name(stem + p.suffix)
        p.replace(target)
        moved.append(target)
    return RenderedClip(moved[0], moved[1], moved[2], files.audio_seconds, files.mp3_bytes)
