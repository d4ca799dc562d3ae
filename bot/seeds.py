"""Seeds and lineage: what a clip is built on (Origin), sharing motifs as named seeds, the
requests that continue, vary, blend or reroll, and the lineage that credits members.

``Seeds`` is the service behind those commands; ``cadenza.app.Cadenza`` owns one and delegates to
it, so front ends keep calling the application. Storage goes through ``cadenza.store``.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cadenza.arrange import unswing
from cadenza.errors import ResourceError, UserError, new_error_id
from cadenza.library import Library, resolved_of
from cadenza.members import UserRef, Where
from cadenza.music.midi_import import TEMPO_WARNING, extract_melody, import_midi, size_refusal
from cadenza.music.midi_io import midi_to_score, score_to_midi
from cadenza.music.midi_parse import MidiError
from cadenza.music.motif import (
    MAX_LINE_BARS,
    MAX_MOTIF_BARS,
    TEMPO_NOTE,
    Motif,
    MotifError,
    fit_meter,
)
from cadenza.music.notation import NotationError, format_notes, parse_notes
from cadenza.music.score import COMMON_TIME, GRID, Meter, Note, Score, Track
from cadenza.options import SEED_MAX, parse_seed_name
from cadenza.origin import PLAIN, PRIVATE_LABEL, Lineage, Origin, lineage_of, node_text
from cadenza.runtime import Workers
from cadenza.service import (
    DEFAULT_STYLE,
    ClipFiles,
    Composer,
    ComposeRequest,
    Composition,
    Resolved,
)
from cadenza.store import Store
from cadenza.store_rows import Clip, Link, NewSeed, Node, Parent, Seed, SeedPage
from cadenza.styles import STYLES

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 1 << 20  # 1 MiB: a seed is a few bars; bigger files are refused unread
# A seed keeps 16 bars, so a long piece is fine to read (its size is already capped); the
# limit only stops absurd lengths (a delta time of 259 days).
MAX_UPLOAD_SECONDS = 3600.0
BLEND_MODEL = "vae"  # the checkpoint /seed blend interpolates with
DEFAULT_CONTINUE_BARS = 4
DEFAULT_BLEND_BARS = 8
MAX_TREE_LINES = 40

@dataclass(frozen=True)
class Upload:
    """A MIDI file a member hands over: its name, its size when known before reading it (Discord
    says it up front, so a big file is refused without downloading it), and how to read it."""

    filename: str
    size: int | None
    read: Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class SeedResult:
    seed: Seed
    motif: Motif
    warnings: list[str]  # what was repaired or trimmed on the way, one line each


@dataclass(frozen=True)
class SeedView:
    """A seed ready to post: its files (MP3, MIDI, piano roll of a light arrangement), its notes
    in the inline syntax, and what it was cut from."""

    seed: Seed
    motif: Motif
    files: ClipFiles
    notes: str
    lineage: Lineage


@dataclass(frozen=True)
class SeedTree:
    seed: Seed
    links: list[Link]
    scope: int | None = None  # whose numbers the clips are shown by (None: their own)

    def lines(self, limit: int = MAX_TREE_LINES) -> list[str]:
        """An indented tree of everything built on the seed ('├─ clip #3 (jazz) by bob —
        continues'); a clip with two parents hangs under the more specific one."""
        children: dict[tuple[str, int], list[tuple[str, int]]] = {}
        primary: dict[tuple[str, int], Link] = {}
        extra: dict[tuple[str, int], list[Link]] = {}
        depth = {("seed", self.seed.id): 0}
        for link in self.links:
            depth.setdefault((link.child.kind, link.child.id), link.depth)
        for link in self.links:
            key = (link.child.kind, link.child.id)
            best = primary.get(key)
            parent_depth = depth.get((link.parent.kind, link.parent.id), 0)
            if best is None or parent_depth > depth.get((best.parent.kind, best.parent.id), 0):
                if best is not None:
                    extra.setdefault(key, []).append(best)
                primary[key] = link
            else:
                extra.setdefault(key, []).append(link)
        for key, link in sorted(primary.items()):  # clips before seeds, oldest first
            children.setdefault((link.parent.kind, link.parent.id), []).append(key)
        owner = self.seed.user_name
        lines = [f"🌱 seed “{self.seed.name}” by {owner}"]

        def walk(key: tuple[str, int], prefix: str) -> None:
            kids = children.get(key, [])
            for i, kid in enumerate(kids):
                last = i == len(kids) - 1
                link = primary[kid]
                text = f"{node_text(link.child, self.scope)} — {_tree_relation(link)}"
                for other in extra.get(kid, []):
                    text += (f"; also {_tree_relation(other)} "
                             f"{node_text(other.parent, self.scope)}")
                lines.append(f"{prefix}{'└─' if last else '├─'} {text}")
                walk(kid, prefix + ("   " if last else "│  "))

        walk(("seed", self.seed.id), "")
        if len(lines) > limit:
            hidden = len(lines) - limit + 1
            lines = [*lines[:limit - 1], f"… and {hidden} more"]
        return lines


def _tree_relation(link: Link) -> str:
    if link.relation == "blends":
        return f"blends (as {link.role.upper() if link.role else '?'})"
    return {"varies": "varies", "rerolls": "rerolls", "shares": "cut from it"}.get(
        link.relation, link.relation)


def check_upload_size(size: int | None) -> None:
    """Refuse a file over ``MAX_UPLOAD_BYTES``, before it is downloaded when its size is known."""
    too_big = size_refusal(size, MAX_UPLOAD_BYTES) if size is not None else None
    if too_big is not None:
        raise UserError(f"{too_big} for a seed's MIDI file")


def clean_filename(name: str) -> str:
    """An uploaded file's name fit to store and show: no folders, no control characters."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return base[:100] or "upload.mid"


def random_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one when the member gave none."""
    return seed if seed is not None else secrets.randbelow(SEED_MAX + 1)


def _first_melody_bar(score: Score, *, guessed_lead: bool = False) -> int:
    lead = extract_melody(score, guessed_lead=guessed_lead)
    if not lead.notes:
        return 1
    return min(n.start for n in lead.notes) // score.bar_ticks + 1


def _straight(row: Clip) -> Score:
    """A stored clip's score, unswung when its style swings (the motif is kept straight; the
    arrangement swings it again)."""
    score = midi_to_score(row.midi)
    spec = STYLES.get(row.style)
    return unswing(score) if spec is not None and spec.swing else score


def _motif_from_clip(row: Clip, bar_range: tuple[int, int] | None) -> tuple[Motif, list[str], int]:
    score = _straight(row)
    if bar_range is None:
        # from the first bar with melody, as far as a seed goes (a longer clip is trimmed)
        bar_range = (_first_melody_bar(score), 10**6)
    try:
        motif, warnings = Motif.from_score(score, bar_range)
    except MotifError as e:
        raise UserError(f"clip #{row.id}: {e}") from None
    return motif, warnings, bar_range[0]


def _motif_to_continue(row: Clip) -> tuple[Motif, list[str]]:
    """The clip's music as a motif: all of it, or its last 16 bars when it is longer (said in
    the returned notes)."""
    score = _straight(row)
    total = score.bars or row.bars
    first = max(1, total - MAX_MOTIF_BARS + 1)
    try:
        motif, _ = Motif.from_score(score, (first, total))
    except MotifError as e:
        raise UserError(f"cannot continue clip #{row.id}: {e}") from None
    remarks = []
    if first > 1:
        remarks.append(f"continued from bars {first}-{total} of clip #{row.id} (a seed holds at "
                       f"most {MAX_MOTIF_BARS} bars)")
    return motif, remarks


def _motif_from_upload(data: bytes, filename: str) -> tuple[Motif, list[str]]:
    try:
        imported = import_midi(data, max_bytes=MAX_UPLOAD_BYTES, max_seconds=MAX_UPLOAD_SECONDS,
                               meter_bars=MAX_MOTIF_BARS)
        score, fitted = fit_meter(imported.score)
        # the importer guessed which part is the lead: where it barely plays, take the tune
        # from all the parts
        motif, trimmed = Motif.from_score(score, (_first_melody_bar(score, guessed_lead=True),
                                                  10**6), guessed_lead=True)
    except (MidiError, MotifError) as e:
        raise UserError(f"cannot use {filename}: {e}") from None
    except Exception:  # a hostile file must cost the member a message, never the bot
        error_id = new_error_id()
        log.exception("unexpected failure turning upload %r into a seed (error id %s)", filename,
                      error_id)
        raise UserError(f"cannot use {filename}: its music could not be read (error id "
                        f"{error_id})") from None
    if any(w.startswith(TEMPO_NOTE) for w in trimmed):
        # one line about the tempo: the seed's, not the importer's intermediate one
        return motif, [*(w for w in imported.warnings if not w.startswith(TEMPO_WARNING)),
                       *fitted, *trimmed]
    return motif, [*imported.warnings, *fitted, *trimmed]


def _motif_from_notes(text: str, meter: Meter) -> tuple[Motif, list[str]]:
    warnings: list[str] = []
    try:
        score = parse_notes(text, meter=meter, max_bars=MAX_MOTIF_BARS, warnings=warnings)
        motif, trimmed = Motif.from_score(score)
    except (NotationError, MotifError) as e:
        raise UserError(f"cannot read the notes: {e}") from None
    return motif, [*warnings, *trimmed]


def preview_score(motif: Motif) -> Score:
    """The seed as it sounds on /seed show: its line on a piano over soft block chords."""
    lead = motif.to_score()
    end = motif.bars * motif.bar_ticks
    chord_notes = []
    for event in lead.chords:
        root = 48 + event.chord.root  # C3-B3
        for interval in event.chord.intervals[:4]:
            chord_notes.append(Note(event.start, min(event.duration, end - event.start),
                                    root + interval, 52))
    tracks = (Track("Seed", role="lead", program=0, notes=motif.notes),
              Track("Chords", role="chords", program=0, notes=tuple(chord_notes), volume=80))
    return Score(tracks=tracks, chords=lead.chords, resolution=GRID, tempo=motif.tempo,
                 time_signature=motif.meter, key=motif.key, bars=motif.bars)


@dataclass
class Sources:
    """The stored parents an origin names, fetched before generation."""

    seed: Seed | None = None
    seed_b: Seed | None = None
    clip: Clip | None = None


def generate_music(composer: Composer, r: Resolved, origin: Origin,
                   sources: Sources) -> tuple[Composition, list[str]]:
    """The composer call for the origin, wherever generation runs (a worker thread here, a
    Ray Serve replica: ``cadenza.serve_app``); returns remarks for the member (e.g. which bars
    of a long clip were continued)."""
    if origin.kind == "blend":
        assert sources.seed is not None and sources.seed_b is not None
        a, b = Motif.from_json(sources.seed.motif_json), Motif.from_json(
            sources.seed_b.motif_json)
        return composer.blend(a, b, r, vae_name=BLEND_MODEL), []
    if origin.kind == "seed":
        assert sources.seed is not None
        return composer.compose(r, Motif.from_json(sources.seed.motif_json)), []
    if origin.kind == "continue":
        assert sources.clip is not None
        motif, remarks = _motif_to_continue(sources.clip)
        return composer.compose(r, motif), remarks
    if origin.kind == "vary":
        assert sources.clip is not None
        return composer.variation(midi_to_score(sources.clip.midi), r), []
    return composer.compose(r), []


@dataclass
class Seeds:
    """Seeds, and clips built on seeds and clips (``Cadenza.seeds``)."""

    store: Store  # keeps seeds, clips and their lineage
    composer: Composer  # makes the music
    workers: Workers  # runs its blocking steps
    library: Library  # finds the clips members name

    def generate(self, r: Resolved, origin: Origin,
                 sources: Sources) -> tuple[Composition, list[str]]:
        """The composer call for the origin (``generate_music``, in a worker thread)."""
        return generate_music(self.composer, r, origin, sources)

    async def check_sources(self, origin: Origin) -> None:
        """Refuse (UserError) a request whose seed or clip is gone, before it is queued."""
        await self.sources(origin)

    async def sources(self, origin: Origin) -> Sources:
        """The stored seeds and clip an origin names; a UserError if one is gone."""
        sources = Sources()
        if origin.kind in ("seed", "blend"):
            sources.seed = await self._live_seed_by_id(origin.seed_id, origin.label)
        if origin.kind == "blend":
            sources.seed_b = await self._live_seed_by_id(origin.seed_b, origin.label)
        if origin.kind in ("continue", "vary"):
            if origin.clip_id is None or (clip := await self.store.get_clip(origin.clip_id)) \
                    is None:
                raise UserError(f"clip #{origin.clip_id} no longer exists")
            if origin.kind == "vary" and clip.bars > MAX_LINE_BARS:
                raise UserError(f"variations work on clips of up to {MAX_LINE_BARS} bars (clip "
                                f"#{clip.id} has {clip.bars}): continue it, or share a part "
                                "of it as a seed")
            sources.clip = clip
        return sources

    async def _live_seed_by_id(self, seed_id: int | None, label: str) -> Seed:
        seed = await self.store.get_seed(seed_id) if seed_id is not None else None
        if seed is None:
            raise UserError(f"the seed of this request ({label or seed_id}) no longer exists")
        if seed.deleted:
            raise UserError(f"seed “{seed.name}” was deleted, so nothing new can be built on it")
        return seed

    # ---- requests built on seeds and clips (each returns what to queue: Resolved + Origin)
    async def plan_compose(self, opts: Mapping[str, Any], user: UserRef,
                           where: Where) -> tuple[Resolved, Origin]:
        """``/compose`` options (from ``parse_options``), with or without ``motif``."""
        req = ComposeRequest.from_options({k: v for k, v in opts.items() if k != "motif"})
        resolved = self.composer.resolve_installed(req)
        if "motif" not in opts:
            return resolved, PLAIN
        if not await self.workers.run_quick(self.composer.writes_lines, resolved.model,
                                           stage="generate"):
            blend = ": use /seed blend, or" if resolved.model == BLEND_MODEL else ": use"
            raise UserError(f"the {resolved.model} model continues no seeds{blend} model "
                            f"{self.composer.default_model}")
        seed = await self.visible_seed(opts["motif"], user, where)
        return resolved, Origin("seed", seed_id=seed.id, label=f"seed “{seed.name}”")

    # A new clip built on a clip names its model, so building on an unrevealed arena clip
    # is refused like showing it (``viewer``).
    async def plan_continue(self, ref: int, bars: int = DEFAULT_CONTINUE_BARS,
                            seed: int | None = None, *, viewer: UserRef | None = None,
                            where: Where = Where()) -> tuple[Resolved, Origin]:
        """``bars`` new bars after the end of the clip the member calls #``ref`` (its last
        bars open the new clip)."""
        row = await self.library.visible_clip(ref, where, viewer)
        origin = Origin("continue", clip_id=row.id, label=f"clip #{ref}")
        await self.sources(origin)
        await self.workers.run_quick(_motif_to_continue, row)  # refuse now rather than in the queue
        req = ComposeRequest(style=row.style, bars=bars, temperature=row.temperature,
                             seed=random_seed(seed), model=await self._melody_model(row))
        return self.composer.resolve_installed(req), origin

    async def plan_variation(self, ref: int, seed: int | None = None, *,
                             viewer: UserRef | None = None,
                             where: Where = Where()) -> tuple[Resolved, Origin]:
        row = await self.library.visible_clip(ref, where, viewer)
        origin = Origin("vary", clip_id=row.id, label=f"clip #{ref}")
        await self.sources(origin)
        resolved = resolved_of(row).with_seed(random_seed(seed))
        return replace(resolved, model=await self._melody_model(row)), origin

    async def plan_blend(self, a: str, b: str, user: UserRef, where: Where, *,
                         bars: int | None = None, style: str | None = None,
                         seed: int | None = None) -> tuple[Resolved, Origin]:
        """Seed A morphing into seed B over ``bars`` 4/4 bars, through the VAE."""
        if BLEND_MODEL not in self.composer.model_names():
            raise ResourceError(f"blends need the {BLEND_MODEL} model, which is not installed "
                                f"(installed: {', '.join(self.composer.model_names()) or 'none'})")
        first = await self.visible_seed(a, user, where)
        second = await self.visible_seed(b, user, where)
        if first.id == second.id:
            raise UserError("a blend needs two different seeds")
        req = ComposeRequest(style=style or DEFAULT_STYLE,
                             bars=bars or DEFAULT_BLEND_BARS, seed=seed, model=BLEND_MODEL)
        origin = Origin("blend", seed_id=first.id, seed_b=second.id,
                        label=f"seed “{first.name}” → seed “{second.name}”")
        return self.composer.resolve_installed(req), origin

    async def plan_reroll(self, ref: int, *, viewer: UserRef | None = None,
                          where: Where = Where()) -> tuple[Resolved, Origin]:
        """The clip's request with a new random seed, built on what the clip was built on."""
        row = await self.library.visible_clip(ref, where, viewer)
        origin = Origin.from_params(row.params.get("origin")).rerolled(row.id, ref)
        await self.sources(origin)
        return resolved_of(row).with_seed(secrets.randbelow(SEED_MAX + 1)), origin

    async def _melody_model(self, row: Clip) -> str:
        """The clip's model when it can continue and vary melodies, else the default (a blend,
        a VAE or a GAN clip continues and varies with the sequence model)."""
        if row.params.get("model_style") == "vae" or row.model not in self.composer.model_names() \
                or not await self.workers.run_quick(self.composer.writes_lines, row.model,
                                                    stage="generate"):
            return self.composer.default_model
        return row.model

    # ---- seeds
    async def share_seed(self, name: str, user: UserRef, where: Where, *,
                         clip_id: int | None = None, bar_range: tuple[int, int] | None = None,
                         upload: Upload | None = None, notes: str | None = None,
                         meter: Meter = COMMON_TIME, public: bool = False) -> SeedResult:
        """Make a seed from exactly one of a clip (optionally bars ``bar_range``), an uploaded
        MIDI file or typed notes, and store it with its lineage. Anything refused raises a
        UserError and stores nothing."""
        name = parse_seed_name(name)
        if sum(x is not None for x in (clip_id, upload, notes)) != 1:
            raise UserError("a seed takes its music from one of a clip, a file or notes")
        await self.check_seed_name(name, where)
        parents: tuple[Parent, ...] = ()
        if clip_id is not None:
            row = await self.library.visible_clip(clip_id, where, user)
            motif, warnings, first = await self.workers.run_quick(_motif_from_clip, row, bar_range)
            source_kind, parents = "clip", (Parent("clip", clip_id, "shares"),)
            source_ref = f"clip #{clip_id}, bars {first}-{first + motif.bars - 1}"
        elif upload is not None:
            filename = clean_filename(upload.filename)
            check_upload_size(upload.size)
            data = await upload.read()
            check_upload_size(len(data))
            motif, warnings = await self.workers.run_quick(_motif_from_upload, data, filename)
            source_kind, source_ref = "upload", filename
        else:
            assert notes is not None
            motif, warnings = await self.workers.run_quick(_motif_from_notes, notes, meter)
            source_kind, source_ref = "notes", " ".join(notes.split())
        seed_id = await self.store.add_seed(NewSeed(
            name=name, user_id=user.id, user_name=user.name, guild_id=where.guild_id,
            public=public, source_kind=source_kind, source_ref=source_ref,
            motif_json=motif.to_json(), parents=parents))
        seed = await self.store.get_seed(seed_id)
        assert seed is not None
        log.info("%s shared seed #%d %r from %s (%d bars)", user.name, seed_id, name, source_kind,
                 motif.bars)
        return SeedResult(seed, motif, warnings)

    async def check_seed_name(self, name: str, where: Where) -> None:
        """Refuse a name already taken here (front ends ask before downloading anything)."""
        taken = await self.store.find_seed(where.guild_id, parse_seed_name(name))
        if taken is not None:
            raise UserError(f"there is already a seed named “{taken.name}” here (by "
                            f"{taken.user_name}): pick another name")

    async def visible_seed(self, name: str, user: UserRef, where: Where) -> Seed:
        """The seed ``name`` if this member may use it here (theirs, or public)."""
        seed = await self.store.find_seed(where.guild_id, parse_seed_name(name))
        if seed is None:
            raise UserError(f"no seed named “{name}” here: /seed list shows the ones you can use")
        if not seed.public and seed.user_id != user.id:
            raise UserError(f"seed “{seed.name}” is private to {seed.user_name}")
        return seed

    async def list_seeds(self, user: UserRef, where: Where, *,
                         query: str | None = None, page: int = 1,
                         per_page: int = 10) -> SeedPage:
        listing = await self.store.list_seeds(where.guild_id, user.id, query=query, page=page,
                                              per_page=per_page)
        if page > listing.pages and listing.total:
            raise UserError(f"there are only {listing.pages} page(s) of seeds")
        return listing

    async def seed_names(self, user: UserRef, where: Where, typed: str = "") -> list[str]:
        return await self.store.seed_names(where.guild_id, user.id, typed)

    async def show_seed(self, name: str, user: UserRef, where: Where, *,
                        out_dir: Path | None = None) -> SeedView:
        """The seed's audio and piano roll (lead over block chords), rendered once and kept."""
        seed = await self.visible_seed(name, user, where)
        motif = Motif.from_json(seed.motif_json)
        out = out_dir or self.library.output_dir
        stem = f"seed-{seed.id}"
        files = ClipFiles(out / f"{stem}.mp3", out / f"{stem}.mid", out / f"{stem}.png", 0, 0)
        if all(p.exists() for p in (files.mp3, files.mid, files.png)):
            files = replace(files, mp3_bytes=files.mp3.stat().st_size)
        else:
            preview = preview_score(motif)
            files = await self.workers.make_files(preview, score_to_midi(preview), out, stem,
                                              title=f"Cadenza seed “{seed.name}” by "
                                                    f"{seed.user_name}")
        lead = motif.to_score().tracks[0]
        try:
            notes = format_notes(lead, meter=motif.meter)
        except NotationError:  # cannot happen for GRID motifs; the preview still stands
            notes = ""
        lineage = lineage_of(await self.store.ancestors("seed", seed.id), where.scope)
        return SeedView(seed, motif, files, notes, lineage)

    async def delete_seed(self, name: str, user: UserRef, where: Where, *,
                          can_manage: bool = False) -> Seed:
        """Delete a seed: its owner may, and so may members who manage the server
        (``can_manage``). Clips built on it keep it in their lineage and credits."""
        seed = await self.store.find_seed(where.guild_id, parse_seed_name(name))
        if seed is None:
            raise UserError(f"no seed named “{name}” here")
        if seed.user_id != user.id and not can_manage:
            raise UserError(f"only {seed.user_name}, who shared “{seed.name}”, or a member with "
                            "Manage Server can delete it")
        await self.store.delete_seed(seed.id, by_user_id=user.id, by_user_name=user.name)
        log.info("%s deleted seed #%d %r", user.name, seed.id, seed.name)
        return seed

    async def seed_tree(self, name: str, user: UserRef, where: Where) -> SeedTree:
        seed = await self.visible_seed(name, user, where)
        links = await self.store.descendants("seed", seed.id)
        # other members' private seeds cut from this tree keep their place, not their names
        hidden = set()
        for node_id in {n.id for link in links for n in (link.child, link.parent)
                        if n.kind == "seed" and n.user_id != user.id}:
            other = await self.store.get_seed(node_id)
            if other is not None and not other.public:
                hidden.add(node_id)

        def shown(node: Node) -> Node:
            return replace(node, label=PRIVATE_LABEL) if node.kind == "seed" and \
                node.id in hidden else node

        return SeedTree(seed, [replace(link, child=shown(link.child), parent=shown(link.parent))
                               for link in links], where.scope)
