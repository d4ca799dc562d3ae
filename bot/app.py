"""Application core shared by the console, the CLI and the Discord adapter: compose, store and
rate clips, charts and statistics; seeds and lineage live in ``bot.seeds`` (``Cadenza.seeds``),
whose public names are re-exported here, and the blind A/B arena in ``bot.arena``
(``Cadenza.arena``).

CPU-heavy work (sampling, arranging, rendering, encoding) runs in a thread pool so an asyncio
front end stays responsive; storage goes through ``bot.store`` (the only module with SQL).
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.arena import Arena
from bot.errors import ResourceError, UserError, write_error
from bot.midi_io import midi_to_score, score_to_midi
from bot.seeds import (
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
from bot.service import Composer, ComposeRequest, Composition, RenderedClip, Resolved
from bot.store import Clip, GroupStats, NewClip, Seed, SeedPage, Store, TopEntry
from models.errors import ModelError
from models.score import Score

log = logging.getLogger(__name__)

# Seeds and lineage moved to bot.seeds; these names stay importable from here.
__all__ = [
    "BLEND_MODEL", "CONSOLE_USER_ID", "DEFAULT_BLEND_BARS", "DEFAULT_CONTINUE_BARS",
    "EXPORT_COLUMNS", "EXPORT_FORMATS", "MAX_TREE_LINES", "MAX_UPLOAD_BYTES", "ORIGIN_KINDS",
    "PERIOD_DAYS", "PLAIN", "RELATION_WORDS", "STAGES", "Cadenza", "ClipResult", "Lineage",
    "Origin", "Progress", "RateResult", "SeedResult", "SeedTree", "SeedView", "Upload",
    "UserRef", "Where", "check_upload_size", "clean_filename", "format_ratings", "lineage_of",
    "node_text", "preview_score", "resolved_from_row",
]

CONSOLE_USER_ID = 0


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

    def summary(self) -> str:
        r = self.resolved
        bars = f"{r.total_bars} bars"
        if r.primer_bars:
            bars += f" ({r.primer_bars} from the seed + {r.bars} new)"
        form = f"form {r.form.upper()}, " if len(r.form) > 1 else ""
        return (f"clip #{self.clip_id}: {r.style}, {bars}, {r.tempo} bpm, key {r.key}, "
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
    """The application: one Composer, one Store, one worker pool."""

    def __init__(self, composer: Composer, store: Store, *, output_dir: Path,
                 workers: int = 1) -> None:
        self.composer = composer
        self.store = store
        self.output_dir = output_dir
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cadenza-gen")
        self.seeds = Seeds(self)
        self.arena = Arena(self)

    async def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def run_blocking(self, fn, *args):  # type: ignore[no-untyped-def]
        """``fn(*args)`` in the worker pool (generation, rendering)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

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
                comp = await self.run_blocking(self.composer.compose, resolved)
                await self.run_blocking(self._render, comp, Path(tmp), "warm-up", {})
        except Exception:  # the first /compose will report the problem to the member
            log.exception("warm-up failed")
        return time.perf_counter() - t0

    async def compose(self, req: ComposeRequest | Resolved, user: UserRef, where: Where = Where(),
                      *, origin: Origin = PLAIN, out_dir: Path | None = None,
                      stem: str | None = None, progress: Progress | None = None) -> ClipResult:
        """Generate, render and store a clip, built on ``origin`` (a seed, a clip, a blend pair).
        Files are written before the row is stored and the row and its lineage in one
        transaction, so a failure leaves nothing half-made.

        ``progress(stage)`` is called as each of ``STAGES`` begins, mostly from the worker
        thread: it must be thread-safe and quick (e.g. ``loop.call_soon_threadsafe``).
        """
        report = _Reporter(progress)
        resolved = req if isinstance(req, Resolved) else self.resolve(req)
        sources = await self.seeds.sources(origin)
        report("generate")
        comp, remarks = await self.run_blocking(self.seeds.generate, resolved, origin, sources)
        r = comp.resolved
        out = out_dir or self.output_dir
        tmp_stem = f".pending-{r.seed}-{time.monotonic_ns()}"
        stage_timings = _StageTimings(comp.timings, report)
        report("render")
        try:
            files = await self.run_blocking(self._render, comp, out, tmp_stem, stage_timings)
        except BaseException:
            _discard(out, tmp_stem)  # e.g. no MP3 encoder: the MIDI and PNG were already written
            raise
        timings = dict(stage_timings)
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
        files = _rename(files, stem or f"clip-{clip_id}")
        lineage = None if origin.plain else await self.lineage(clip_id)
        return ClipResult(clip_id, r, files, comp.model_style, comp.checkpoint_sha, timings,
                          author=user.name, origin=origin, lineage=lineage, remarks=remarks)

    def _render(self, comp: Composition, out: Path, stem: str,
                timings: dict[str, float]) -> RenderedClip:
        r = comp.resolved
        title = f"Cadenza — {r.style}, {r.key}, {r.tempo} bpm, seed {r.seed}"
        try:
            return self.composer.render(comp.score, comp.midi, out, stem, title=title,
                                        timings=timings)
        except OSError as e:  # a full disk, a folder gone: the operator can act on it
            raise write_error(e, f"the clip's files in {out}") or e from None

    # ---- stored clips
    async def clip(self, clip_id: int, *, viewer: UserRef | None = None,
                   out_dir: Path | None = None) -> ClipResult:
        """A stored clip's files, re-rendered from its MIDI when they are not on disk. A
        ``viewer`` is refused an arena clip whose models they have not revealed."""
        row = await self.store.get_clip(clip_id)
        if row is None:
            raise UserError(f"no clip #{clip_id}")
        await self.check_not_blind(clip_id, viewer)
        out = out_dir or self.output_dir
        stem = f"clip-{clip_id}"
        files = RenderedClip(out / f"{stem}.mp3", out / f"{stem}.mid", out / f"{stem}.png", 0, 0)
        # files on disk are reused only when they are this clip's: another database (a test
        # run, a fresh start) may have left a different clip under the same number
        if not all(p.exists() for p in (files.mp3, files.mid, files.png)) or \
                files.mid.read_bytes() != row.midi:
            files = await self.run_blocking(self._rerender, row, out, stem)
        else:
            files = RenderedClip(files.mp3, files.mid, files.png, row.duration_s,
                                 files.mp3.stat().st_size)
        origin = Origin.from_params(row.params.get("origin"))
        return ClipResult(clip_id, resolved_from_row(row), files,
                          str(row.params.get("model_style", row.style)), row.checkpoint_sha,
                          rating_count=row.rating_count, rating_mean=row.rating_mean,
                          author=row.user_name, origin=origin,
                          lineage=await self.lineage(clip_id))

    def _rerender(self, row: Clip, out: Path, stem: str) -> RenderedClip:
        score = midi_to_score(row.midi)
        title = f"Cadenza #{row.id} — {row.style}, {row.key}, {row.tempo:g} bpm, seed {row.seed}"
        return self.composer.render(score, row.midi, out, stem, title=title)

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

    async def rate(self, clip_id: int, user: UserRef, stars: int) -> RateResult:
        previous = await self.store.set_rating(clip_id, user.id, stars, user.name)
        row = await self.store.get_clip(clip_id)
        assert row is not None
        return RateResult(clip_id, stars, previous, row.rating_count, row.rating_mean,
                          own_clip=row.user_id == user.id)

    async def top(self, *, style: str | None = None, model: str | None = None,
                  period: str | None = None, limit: int = 10) -> list[TopEntry]:
        return await self.store.top(style=style, model=model, since=_since(period), limit=limit)

    async def stats(self, *, period: str | None = None) -> dict[str, list[GroupStats]]:
        """Per model and per style: clips, raters, MOS ± 95% CI (self-votes excluded)."""
        since = _since(period)
        return {by: await self.store.stats(by, since=since) for by in ("model", "style")}

    async def export_ratings(self, fmt: str) -> str:
        """Every rating with its clip's parameters as CSV or JSON text, for offline analysis."""
        if fmt not in EXPORT_FORMATS:
            raise UserError(f"unknown export format {fmt!r}: use csv or json")
        return format_ratings(await self.store.export_ratings(), fmt)

    def render_named(self, score: Score, out: Path, stem: str, *, title: str) -> RenderedClip:
        """Render ``score`` to ``stem``.mp3/.mid/.png under ``out`` (in the worker pool). Written
        under a temporary name and moved into place, so a failure leaves no files that a later
        request would take for finished ones."""
        tmp = f".pending-{stem}-{time.monotonic_ns()}"
        try:
            files = self.composer.render(score, score_to_midi(score), out, tmp, title=title)
        except BaseException:
            _discard(out, tmp)
            raise
        return _rename(files, stem)

    # ---- seeds and lineage: bot.seeds does the work
    async def lineage(self, clip_id: int) -> Lineage:
        """What the clip was built on, and the members to credit."""
        return await self.seeds.lineage(clip_id)

    async def check_sources(self, origin: Origin) -> None:
        """Refuse (UserError) a request whose seed or clip is gone, before it is queued."""
        await self.seeds.check_sources(origin)

    async def plan_compose(self, opts: Mapping[str, Any], user: UserRef,
                           where: Where = Where()) -> tuple[Resolved, Origin]:
        return await self.seeds.plan_compose(opts, user, where)

    # A new clip built on a clip names its model, so building on an unrevealed arena clip
    # is refused like showing it.
    async def plan_continue(self, clip_id: int, bars: int = DEFAULT_CONTINUE_BARS,
                            seed: int | None = None, *,
                            viewer: UserRef | None = None) -> tuple[Resolved, Origin]:
        await self.check_not_blind(clip_id, viewer)
        return await self.seeds.plan_continue(clip_id, bars, seed)

    async def plan_variation(self, clip_id: int, seed: int | None = None, *,
                             viewer: UserRef | None = None) -> tuple[Resolved, Origin]:
        await self.check_not_blind(clip_id, viewer)
        return await self.seeds.plan_variation(clip_id, seed)

    async def plan_blend(self, a: str, b: str, user: UserRef, where: Where = Where(), *,
                         bars: int | None = None, style: str | None = None,
                         seed: int | None = None) -> tuple[Resolved, Origin]:
        return await self.seeds.plan_blend(a, b, user, where, bars=bars, style=style, seed=seed)

    async def plan_reroll(self, clip_id: int, *,
                          viewer: UserRef | None = None) -> tuple[Resolved, Origin]:
        await self.check_not_blind(clip_id, viewer)
        return await self.seeds.plan_reroll(clip_id)

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


_NEXT_STAGE = {"render": "encode", "encode": "pianoroll"}


class _StageTimings(dict):
    """``Composer.render`` writes each stage's time into ``timings`` as the stage ends; noticing
    those writes tells us the next stage has begun, without reaching into the composer."""

    def __init__(self, initial: dict[str, float], report: _Reporter) -> None:
        super().__init__(initial)
        self._report = report

    def __setitem__(self, key: str, value: float) -> None:
        super().__setitem__(key, value)
        if key in _NEXT_STAGE:
            self._report(_NEXT_STAGE[key])


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
