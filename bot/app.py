"""Application core shared by the console, the CLI and the Discord adapter: compose, store, rate.

CPU-heavy work (sampling, arranging, rendering, encoding) runs in a thread pool so an asyncio
front end stays responsive; storage goes through ``bot.store`` (the only module with SQL).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.errors import UserError
from bot.midi_io import midi_to_score
from bot.service import Composer, ComposeRequest, Composition, RenderedClip, Resolved
from bot.store import Clip, NewClip, Store, TopEntry

log = logging.getLogger(__name__)

CONSOLE_USER_ID = 0


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

    def summary(self) -> str:
        r = self.resolved
        return (f"clip #{self.clip_id}: {r.style}, {r.bars} bars, {r.tempo} bpm, key {r.key}, "
                f"{r.meter_str}, temperature {r.temperature:g}, seed {r.seed}, model {r.model}")


@dataclass(frozen=True)
class RateResult:
    clip_id: int
    stars: int
    previous: int | None
    count: int
    mean: float | None


class Cadenza:
    """The application: one Composer, one Store, one worker pool."""

    def __init__(self, composer: Composer, store: Store, *, output_dir: Path,
                 workers: int = 1) -> None:
        self.composer = composer
        self.store = store
        self.output_dir = output_dir
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cadenza-gen")

    async def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # ---- compose
    def resolve(self, req: ComposeRequest) -> Resolved:
        return self.composer.resolve(req)

    async def compose(self, req: ComposeRequest | Resolved, user: UserRef, where: Where = Where(),
                      *, out_dir: Path | None = None, stem: str | None = None) -> ClipResult:
        """Generate, render and store a clip. Files are written before the row is stored and
        the row in one transaction, so a failure leaves nothing half-made."""
        resolved = req if isinstance(req, Resolved) else self.resolve(req)
        comp: Composition = await self._run(self.composer.compose, resolved)
        out = out_dir or self.output_dir
        tmp_stem = f".pending-{resolved.seed}-{time.monotonic_ns()}"
        timings = dict(comp.timings)
        files = await self._run(self._render, comp, out, tmp_stem, timings)
        t0 = time.perf_counter()
        try:
            clip_id = await self.store.add_clip(NewClip(
                style=resolved.style, bars=resolved.bars, tempo=float(resolved.tempo),
                key=resolved.key, meter=resolved.meter_str, temperature=resolved.temperature,
                seed=resolved.seed, model=resolved.model, midi=comp.midi,
                duration_s=comp.duration_s, user_id=user.id, user_name=user.name,
                params={**resolved.params(), "model_style": comp.model_style},
                checkpoint_sha=comp.checkpoint_sha, guild_id=where.guild_id,
                channel_id=where.channel_id,
            ))
        except BaseException:
            for p in (files.mp3, files.mid, files.png):
                p.unlink(missing_ok=True)
            raise
        timings["store"] = time.perf_counter() - t0
        files = _rename(files, stem or f"clip-{clip_id}")
        return ClipResult(clip_id, resolved, files, comp.model_style, comp.checkpoint_sha,
                          timings, author=user.name)

    def _render(self, comp: Composition, out: Path, stem: str,
                timings: dict[str, float]) -> RenderedClip:
        r = comp.resolved
        title = f"Cadenza — {r.style}, {r.key}, {r.tempo} bpm, seed {r.seed}"
        return self.composer.render(comp.score, comp.midi, out, stem, title=title,
                                    timings=timings)

    # ---- stored clips
    async def clip(self, clip_id: int, *, out_dir: Path | None = None) -> ClipResult:
        """A stored clip's files, re-rendered from its MIDI when they are not on disk."""
        row = await self.store.get_clip(clip_id)
        if row is None:
            raise UserError(f"no clip #{clip_id}")
        out = out_dir or self.output_dir
        stem = f"clip-{clip_id}"
        files = RenderedClip(out / f"{stem}.mp3", out / f"{stem}.mid", out / f"{stem}.png", 0, 0)
        if not all(p.exists() for p in (files.mp3, files.mid, files.png)):
            files = await self._run(self._rerender, row, out, stem)
        else:
            files = RenderedClip(files.mp3, files.mid, files.png, row.duration_s,
                                 files.mp3.stat().st_size)
        return ClipResult(clip_id, resolved_from_row(row), files,
                          str(row.params.get("model_style", row.style)), row.checkpoint_sha,
                          rating_count=row.rating_count, rating_mean=row.rating_mean,
                          author=row.user_name)

    def _rerender(self, row: Clip, out: Path, stem: str) -> RenderedClip:
        score = midi_to_score(row.midi)
        title = f"Cadenza #{row.id} — {row.style}, {row.key}, {row.tempo:g} bpm, seed {row.seed}"
        return self.composer.render(score, row.midi, out, stem, title=title)

    async def rate(self, clip_id: int, user: UserRef, stars: int) -> RateResult:
        previous = await self.store.set_rating(clip_id, user.id, stars, user.name)
        row = await self.store.get_clip(clip_id)
        assert row is not None
        return RateResult(clip_id, stars, previous, row.rating_count, row.rating_mean)

    async def top(self, *, style: str | None = None, model: str | None = None,
                  period: str | None = None, limit: int = 10) -> list[TopEntry]:
        since = None
        if period and period != "all":
            days = {"day": 1, "week": 7, "month": 30}[period]
            since = datetime.now(UTC) - timedelta(days=days)
        return await self.store.top(style=style, model=model, since=since, limit=limit)


def resolved_from_row(row: Clip) -> Resolved:
    p = row.params
    num, den = (int(x) for x in row.meter.split("/"))
    return Resolved(row.style, row.bars, int(row.tempo), row.key, (num, den), row.temperature,
                    row.seed, row.model, bool(p.get("tempo_given")), bool(p.get("key_given")))


def _rename(files: RenderedClip, stem: str) -> RenderedClip:
    moved = []
    for p in (files.mp3, files.mid, files.png):
        target = p.with_name(stem + p.suffix)
        p.replace(target)
        moved.append(target)
    return RenderedClip(moved[0], moved[1], moved[2], files.audio_seconds, files.mp3_bytes)
