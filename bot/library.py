"""The stored clips as members see them: which clip "#12" means where they are, whether an
arena clip is still blind to them, its files (rendered again from its MIDI when gone) and its
lineage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cadenza.errors import UserError
from cadenza.members import UserRef, Where
from cadenza.music.midi_io import midi_to_score
from cadenza.origin import Lineage, Origin, lineage_of
from cadenza.runtime import Workers
from cadenza.service import ClipFiles, Resolved
from cadenza.store import Store
from cadenza.store_rows import Clip


@dataclass
class ClipResult:
    clip_id: int
    resolved: Resolved
    files: ClipFiles
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
                f"{r.meter}, {form}temperature {r.temperature:g}, seed {r.seed}, "
                f"model {r.model}")

    @property
    def built_on(self) -> str:
        return self.lineage.text() if self.lineage is not None else ""


def resolved_of(row: Clip) -> Resolved:
    """The clip's request: its row's columns over its stored params (``Resolved.params``);
    the row's ``bars`` are the whole clip, a seed's own bars included."""
    return Resolved.from_params(row.params, style=row.style, total_bars=row.bars,
                                tempo=int(row.tempo), key=row.key, meter=row.meter,
                                temperature=row.temperature, seed=row.seed, model=row.model)


class Library:
    """Stored clips for members: ``store`` holds them, ``workers`` render them again."""

    def __init__(self, store: Store, workers: Workers, output_dir: Path) -> None:
        self.store = store
        self.workers = workers
        self.output_dir = output_dir

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

    async def clip(self, ref: int, *, viewer: UserRef | None = None, where: Where = Where(),
                   out_dir: Path | None = None) -> ClipResult:
        """A stored clip's files (``ref`` as in ``visible_clip``), re-rendered from its MIDI
        when they are not on disk."""
        row = await self.visible_clip(ref, where, viewer)
        clip_id = row.id
        files = await self.clip_files(row, out_dir)
        origin = Origin.from_params(row.params.get("origin"))
        return ClipResult(clip_id, resolved_of(row), files,
                          str(row.params.get("model_style", row.style)), row.checkpoint_sha,
                          rating_count=row.rating_count, rating_mean=row.rating_mean,
                          author=row.user_name, origin=origin,
                          lineage=await self.lineage(clip_id, where.scope), ref=ref,
                          public_id=row.public_id)

    async def clip_files(self, row: Clip, out_dir: Path | None = None) -> ClipFiles:
        """A stored clip's files, rendered again from its MIDI when they are not on disk."""
        out = out_dir or self.output_dir
        stem = f"clip-{row.id}"
        files = ClipFiles(out / f"{stem}.mp3", out / f"{stem}.mid", out / f"{stem}.png", 0, 0)
        # files on disk are reused only when they are this clip's: another database (a test
        # run, a fresh start) may have left a different clip under the same number
        if not all(p.exists() for p in (files.mp3, files.mid, files.png)) or \
                files.mid.read_bytes() != row.midi:
            return await self._rerender(row, out, stem)
        return ClipFiles(files.mp3, files.mid, files.png, row.duration_s,
                            files.mp3.stat().st_size)

    async def _rerender(self, row: Clip, out: Path, stem: str) -> ClipFiles:
        score = await self.workers.run_quick(midi_to_score, row.midi, stage="upload")
        title = f"Cadenza #{row.id} — {row.style}, {row.key}, {row.tempo:g} bpm, seed {row.seed}"
        return await self.workers.make_files(score, row.midi, out, stem, title=title)

    async def by_id(self, clip_id: int) -> Clip | None:
        """The clip with our own id (not a member's number): for records that keep it."""
        return await self.store.get_clip(clip_id)

    async def set_message(self, clip_id: int, *, guild_id: int | None, channel_id: int | None,
                          message_id: int) -> None:
        """Where the clip was posted (so its buttons find it again)."""
        await self.store.set_clip_message(clip_id, guild_id=guild_id, channel_id=channel_id,
                                          message_id=message_id)

    async def lineage(self, clip_id: int, scope: int | None = None) -> Lineage:
        """What the clip was built on, and the members to credit (clips by their numbers in
        ``scope``)."""
        return lineage_of(await self.store.ancestors("clip", clip_id), scope)
