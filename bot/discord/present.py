"""What members see: progress lines, the clip embed and its attachments, and the seed embeds
(shared, list, show, tree). The buttons live beside the cogs that answer them."""

from __future__ import annotations

import logging
from pathlib import Path

import discord

from cadenza.arena import Matchup
from cadenza.jobs import Job, Stage
from cadenza.library import ClipResult
from cadenza.members import UserRef, Where
from cadenza.music.motif import Motif
from cadenza.origin import Lineage, Origin
from cadenza.seeds import SeedResult, SeedTree, SeedView
from cadenza.service import ClipFiles, Resolved
from cadenza.store_rows import Seed, SeedPage

log = logging.getLogger(__name__)

STYLE_COLOURS = {
    "jazz": 0x3B6EA8, "blues": 0x1F3A93, "folk": 0x6B8E23, "celtic": 0x2E8B57,
    "classical": 0x8B5A2B, "ragtime": 0xC0392B,
}
MIB = 1024 * 1024
SEED_COLOUR = 0x27AE60
FIELD_LIMIT = 1024
DESCRIPTION_LIMIT = 4096
TITLE_LIMIT = 256  # an embed's title; Discord refuses the whole message beyond it


def member_ref(user: discord.abc.User) -> UserRef:
    return UserRef(user.id, user.display_name or user.name)


def where_of(interaction: discord.Interaction) -> Where:
    return Where(interaction.guild_id, interaction.channel_id)


def stars_text(stars: int) -> str:
    return "★" * stars + "☆" * (5 - stars)


def size_text(n: int) -> str:
    return f"{n / MIB:.1f} MB"


def request_line(r: Resolved, origin: Origin | None = None,
                 matchup: Matchup | None = None) -> str:
    """'jazz · 8 bars · F · 140 bpm · 4/4 · seed 7 · lstm @ 1'; an arena request (``matchup``)
    keeps its models hidden."""
    bars = "bar" if r.bars == 1 else "bars"
    line = f"{r.style} · {r.bars} {bars} · {r.key} · {r.tempo} bpm · {r.meter}"
    if len(r.form) > 1:  # a one-section form says nothing
        line += f" · {r.form.upper()}"
    line += f" · seed {r.seed}"
    if matchup is not None:
        return f"{line} · two hidden models"
    line += f" · {r.model} @ {r.temperature:g}"
    what = origin.describe() if origin is not None else ""
    return f"{line} · {what}" if what else line


def job_line(job: Job) -> str:
    return request_line(job.resolved, job.origin, job.matchup)


def queued_text(line: str, position: int) -> str:
    ahead = "next up" if position == 1 else f"{position - 1} ahead of you"
    return f"⏳ Queued — position {position} ({ahead})\n{line}"


def stage_text(line: str, stage: Stage) -> str:
    bar = "▰" * stage.index + "▱" * (stage.total - stage.index)
    what = "Composing" if stage.parts == 1 else f"Composing clip {'AB'[stage.part]}"
    return f"🎼 {what} — {stage.label} ({stage.index}/{stage.total})\n`{bar}` {line}"


def cancelled_text(line: str) -> str:
    return f"✖ Cancelled\n{line}"


def failed_text(line: str, message: str, what: str = "clip") -> str:
    return f"✖ This {what} could not be made: {message}\n{line}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def embed_title(text: str) -> str:
    """A title within Discord's limit: titles that echo member input (a search, a filter) can
    be longer than Discord takes."""
    return _clip(text, TITLE_LIMIT)


def built_on_text(lineage: Lineage) -> str:
    """'continues seed “riff” by alice' lines, then the members credited."""
    lines = [f"↳ {p}" for p in lineage.phrases()]
    lines.append("Credits: " + ", ".join(lineage.credits))
    return _clip("\n".join(lines), FIELD_LIMIT)


def clip_embed(result: ClipResult, *, image: str | None, requested_by: str | None) -> discord.Embed:
    r = result.resolved
    embed = discord.Embed(
        title=f"Clip #{result.number} — {r.style}",
        description="Rate it with the stars below · 🔁 Reroll: same options, new seed · "
                    "➕ Continue: more bars · 🎲 Variation: new notes, same harmony and rhythm · "
                    "▶️ Play: hear it in your voice channel",
        colour=STYLE_COLOURS.get(r.style, 0x5865F2),
    )
    bars = str(r.total_bars) if not r.primer_bars else \
        f"{r.total_bars} ({r.primer_bars} seed + {r.bars} new)"
    fields = [("Style", r.style), ("Key", r.key), ("Tempo", f"{r.tempo} bpm"),
              ("Meter", str(r.meter)), ("Bars", bars), ("Seed", str(r.seed)),
              ("Model", r.model), ("Temperature", f"{r.temperature:g}")]
    if len(r.form) > 1:
        fields.append(("Form", r.form.upper()))
    for name, value in fields:
        embed.add_field(name=name, value=value, inline=True)
    if result.lineage is not None and result.lineage.parents:
        embed.add_field(name="Built on", value=built_on_text(result.lineage), inline=False)
    if result.remarks:
        embed.add_field(name="Note", value=_clip("\n".join(result.remarks), FIELD_LIMIT),
                        inline=False)
    if image is not None:
        embed.set_image(url=f"attachment://{image}")
    footer = []
    if requested_by:
        footer.append(f"Requested by {requested_by}")
    if result.rating_count:
        footer.append(f"★ {result.rating_mean:.2f} from {result.rating_count} vote(s)")
    if result.files.audio_seconds:
        footer.append(f"{result.files.audio_seconds:.0f} s of audio")
    if footer:
        embed.set_footer(text=" · ".join(footer))
    return embed


def clip_files(result: ClipResult, limit: int) -> tuple[list[discord.File], str | None, str | None]:
    """(files, piano-roll filename or None, note for the member) within ``limit`` bytes.

    The MP3 is the big one: when everything together would pass the upload limit it is left out
    and the note says so; the MIDI and the piano roll are small enough for any server.
    """
    return rendered_files(result.files, f"cadenza-{result.number}", limit)


def rendered_files(rendered: ClipFiles, base: str,
                   limit: int) -> tuple[list[discord.File], str | None, str | None]:
    """``clip_files`` for any rendered MP3/MIDI/PNG trio, named ``base``.mp3 and so on."""
    mp3, mid, png = rendered.mp3, rendered.mid, rendered.png
    sizes = {p: p.stat().st_size for p in (mp3, mid, png)}
    names = {mp3: f"{base}.mp3", mid: f"{base}.mid", png: f"{base}.png"}
    chosen: list[Path] = [mp3, mid, png]
    note = None
    if sum(sizes.values()) > limit:
        chosen = [mid, png]
        note = (f"⚠️ The MP3 ({size_text(sizes[mp3])}) is too large for this server's "
                f"{size_text(limit)} upload limit, so only the MIDI file and the piano roll are "
                "attached. Try fewer bars for an MP3.")
        if sum(sizes[p] for p in chosen) > limit:
            chosen = [mid] if sizes[mid] <= limit else []
            note += " (The piano roll did not fit either.)"
    files = [discord.File(p, filename=names[p]) for p in chosen]
    image = names[png] if png in chosen else None
    return files, image, note


# ---------------------------------------------------------------------------------------------
# Seeds


def motif_line(motif: Motif) -> str:
    bars = "bar" if motif.bars == 1 else "bars"
    return (f"{motif.bars} {bars} · {motif.key.name} · {motif.meter[0]}/{motif.meter[1]} · "
            f"{motif.tempo:.0f} bpm")


def _source(seed: Seed) -> str:
    kind = {"clip": "from", "upload": "from the file", "notes": "typed as"}[seed.source_kind]
    ref = seed.source_ref if seed.source_kind != "notes" else f"`{seed.source_ref}`"
    return _clip(f"{kind} {ref}", 300)


def _visibility(seed: Seed) -> str:
    return "🌍 public" if seed.public else "🔒 only its owner"


def shared_embed(result: SeedResult) -> discord.Embed:
    seed = result.seed
    embed = discord.Embed(
        title=embed_title(f"🌱 Seed “{seed.name}” shared"),
        description=f"{motif_line(result.motif)} · {_visibility(seed)}\n{_source(seed)}\n"
                    f"Build on it: `/compose motif:{seed.name}` · hear it: "
                    f"`/seed show name:{seed.name}`",
        colour=SEED_COLOUR,
    )
    if result.warnings:
        embed.add_field(name="Note", value=_clip("\n".join(f"• {w}" for w in result.warnings),
                                                 FIELD_LIMIT), inline=False)
    embed.set_footer(text=f"by {seed.user_name}")
    return embed


def seed_list_embed(page: SeedPage, query: str | None) -> discord.Embed:
    lines = []
    for seed in page.seeds:
        motif = Motif.from_json(seed.motif_json)
        lock = "" if seed.public else " · 🔒"
        lines.append(f"**{seed.name}** by {seed.user_name} — {motif_line(motif)}{lock}")
    title = "Seeds" + (f" matching “{query}”" if query else "")
    empty = "No seeds match." if query else "No seeds yet: share one with `/seed share`."
    embed = discord.Embed(title=embed_title(title), colour=SEED_COLOUR,
                          description=_clip("\n".join(lines), DESCRIPTION_LIMIT) or empty)
    footer = f"Page {page.page} of {page.pages} · {page.total} seed(s)"
    if page.page < page.pages:
        footer += f" · next: /seed list page:{page.page + 1}"
        if query:
            footer += f" query:{query}"
    embed.set_footer(text=footer)
    return embed


def seed_embed(view: SeedView, *, image: str | None) -> discord.Embed:
    seed = view.seed
    embed = discord.Embed(title=embed_title(f"🌱 Seed “{seed.name}”"), colour=SEED_COLOUR,
                          description=f"{motif_line(view.motif)} · {_visibility(seed)}\n"
                                      f"{_source(seed)}")
    if view.notes:
        embed.add_field(name="Notes", value=_clip(f"`{view.notes}`", FIELD_LIMIT), inline=False)
    if view.lineage.parents:
        embed.add_field(name="Built on", value=built_on_text(view.lineage), inline=False)
    if image is not None:
        embed.set_image(url=f"attachment://{image}")
    embed.set_footer(text=f"Shared by {seed.user_name} · build on it: /compose motif:"
                          f"{seed.name} · /seed tree name:{seed.name}")
    return embed


def tree_embed(tree: SeedTree) -> discord.Embed:
    lines = tree.lines()
    if not tree.links:
        lines.append(f"(nothing yet: /compose motif:{tree.seed.name})")
    text = "\n".join(lines)
    while len(text) + 8 > DESCRIPTION_LIMIT and len(lines) > 2:
        lines = [*lines[:-2], "…"]
        text = "\n".join(lines)
    members = sorted({link.child.user_name for link in tree.links})
    embed = discord.Embed(title=embed_title(f"What grew from “{tree.seed.name}”"),
                          colour=SEED_COLOUR,
                          description=f"```\n{text}\n```")
    if members:
        embed.set_footer(text="Built on it by " + ", ".join(members))
    return embed
