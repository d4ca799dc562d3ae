"""What members see: progress lines, the clip embed, its attachments and its buttons."""

from __future__ import annotations

import logging
from pathlib import Path

import discord

from bot.app import ClipResult, UserRef, Where
from bot.discord_bot.buttons import CancelButton, RateButton, RerollButton, RetryButton
from bot.jobs import Stage
from bot.service import Resolved

log = logging.getLogger(__name__)

STYLE_COLOURS = {
    "jazz": 0x3B6EA8, "blues": 0x1F3A93, "folk": 0x6B8E23, "celtic": 0x2E8B57,
    "classical": 0x8B5A2B, "ragtime": 0xC0392B,
}
MIB = 1024 * 1024


def member_ref(user: discord.abc.User) -> UserRef:
    return UserRef(user.id, user.display_name or user.name)


def where_of(interaction: discord.Interaction) -> Where:
    return Where(interaction.guild_id, interaction.channel_id)


def stars_text(stars: int) -> str:
    return "★" * stars + "☆" * (5 - stars)


def size_text(n: int) -> str:
    return f"{n / MIB:.1f} MB"


def request_line(r: Resolved) -> str:
    bars = "bar" if r.bars == 1 else "bars"
    return (f"{r.style} · {r.bars} {bars} · {r.key} · {r.tempo} bpm · {r.meter_str} · "
            f"seed {r.seed} · {r.model} @ {r.temperature:g}")


def queued_text(r: Resolved, position: int) -> str:
    ahead = "next up" if position == 1 else f"{position - 1} ahead of you"
    return f"⏳ Queued — position {position} ({ahead})\n{request_line(r)}"


def stage_text(r: Resolved, stage: Stage) -> str:
    bar = "▰" * stage.index + "▱" * (stage.total - stage.index)
    return f"🎼 Composing — {stage.label} ({stage.index}/{stage.total})\n`{bar}` {request_line(r)}"


def cancelled_text(r: Resolved) -> str:
    return f"✖ Cancelled\n{request_line(r)}"


def failed_text(r: Resolved, message: str) -> str:
    return f"✖ This clip could not be made: {message}\n{request_line(r)}"


def clip_embed(result: ClipResult, *, image: str | None, requested_by: str | None) -> discord.Embed:
    r = result.resolved
    embed = discord.Embed(
        title=f"Clip #{result.clip_id} — {r.style}",
        description="Rate it with the stars below · 🔁 Reroll: same options, new seed",
        colour=STYLE_COLOURS.get(r.style, 0x5865F2),
    )
    fields = [("Style", r.style), ("Key", r.key), ("Tempo", f"{r.tempo} bpm"),
              ("Meter", r.meter_str), ("Bars", str(r.bars)), ("Seed", str(r.seed)),
              ("Model", r.model), ("Temperature", f"{r.temperature:g}")]
    for name, value in fields:
        embed.add_field(name=name, value=value, inline=True)
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
    cid = result.clip_id
    mp3, mid, png = result.files.mp3, result.files.mid, result.files.png
    sizes = {p: p.stat().st_size for p in (mp3, mid, png)}
    names = {mp3: f"cadenza-{cid}.mp3", mid: f"cadenza-{cid}.mid", png: f"cadenza-{cid}.png"}
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


def clip_view(clip_id: int) -> discord.ui.View:
    """Rating stars 1-5 and Reroll; persistent through their custom_ids alone."""
    view = discord.ui.View(timeout=None)
    for stars in range(1, 6):
        view.add_item(RateButton(clip_id, stars))
    view.add_item(RerollButton(clip_id))
    return view


def cancel_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def retry_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id))
    return view
