"""Looking back: /top (Bayesian-ranked chart), /clip (re-post a clip) and /stats (MOS ± 95% CI)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.app import publish_text
from cadenza.discord import respond, specs
from cadenza.discord.cog_compose import clip_view
from cadenza.discord.present import (
    clip_embed,
    clip_files,
    embed_title,
    member_ref,
    where_of,
)
from cadenza.store_rows import GroupStats, TopEntry

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

Top = specs.Options("top")
Clip = specs.Options("clip")
Publish = specs.Options("publish")
Stats = specs.Options("stats")
FIELD_LIMIT = 1024


def _period_text(period: str | None) -> str:
    return "" if not period or period == "all" else f" — last {period}"


def top_embed(rows: list[TopEntry], *, style: str | None, model: str | None,
              period: str | None) -> discord.Embed:
    filters = " · ".join(x for x in (style, model) if x)
    title = "Top clips" + (f" ({filters})" if filters else "") + _period_text(period)
    lines = []
    for e in rows:
        label = f"#{e.number}"
        if e.guild_id and e.channel_id and e.message_id:
            label = (f"[#{e.number}](https://discord.com/channels/{e.guild_id}/{e.channel_id}/"
                     f"{e.message_id})")
        lines.append(f"**{e.rank}.** {label} {e.style} · {e.model} · by {e.user_name} — "
                     f"**{e.score:.2f}** ({e.rating_mean:.2f}★ from {e.rating_count} vote(s))")
    embed = discord.Embed(title=embed_title(title), colour=0xF1C40F,
                          description="\n".join(lines) or "No rated clips yet: rate some with ⭐!")
    embed.set_footer(text="Ranked by a Bayesian average: each clip starts with 3 votes at the "
                          "overall mean, so a single 5★ vote does not top the chart. Votes on "
                          "one's own clip do not count.")
    return embed


def stats_table(rows: list[GroupStats], heading: str) -> str:
    """A monospace table: clips, raters, counted votes, MOS and its 95% CI half-width."""
    width = max([len(heading), *(len(g.group) for g in rows)])
    lines = [f"{heading:<{width}} clips raters votes  MOS  ±95%"]
    for g in rows:
        mos = f"{g.mos:4.2f}" if g.mos is not None else "   –"
        ci = f"{g.ci95:5.2f}" if g.ci95 is not None else "    –"
        lines.append(f"{g.group:<{width}} {g.clips:5d} {g.raters:6d} {g.votes:5d} {mos} {ci}")
    text = "\n".join(lines)
    while len(text) + 8 > FIELD_LIMIT and len(lines) > 2:
        lines.pop()
        text = "\n".join([*lines, "…"])
    return f"```\n{text}\n```"


def stats_embed(tables: dict[str, list[GroupStats]], period: str | None) -> discord.Embed:
    embed = discord.Embed(
        title="Listening-test statistics" + _period_text(period), colour=0x2ECC71,
        description="Mean opinion score (1–5★) with its 95% confidence interval (Student t "
                    "over the votes). Votes on one's own clip are stored but not counted.",
    )
    for by, rows in tables.items():
        value = stats_table(rows, by) if rows else "no clips yet"
        embed.add_field(name=f"By {by}", value=value, inline=False)
    return embed


class Charts(commands.Cog):
    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app

    @app_commands.command(name="top", description=specs.spec("top").description)
    @app_commands.describe(**specs.describe("top"))
    async def top(self, interaction: discord.Interaction, style: Top.style | None = None,
                  model: Top.model | None = None, period: Top.period | None = None) -> None:
        rows = await self.app.top(style=style, model=model, period=period,
                                  where=where_of(interaction))
        await respond.answer(interaction, embed=top_embed(rows, style=style, model=model,
                                                          period=period))

    @app_commands.command(name="clip", description=specs.spec("clip").description)
    @app_commands.describe(**specs.describe("clip"))
    async def clip(self, interaction: discord.Interaction, clip: Clip.clip) -> None:
        # Refuse unknown ids before acknowledging, so the answer can be ephemeral.
        viewer, where = member_ref(interaction.user), where_of(interaction)
        await self.app.library.visible_clip(clip, where, viewer)
        await respond.defer(interaction, thinking=True)
        result = await self.app.library.clip(clip, viewer=viewer, where=where)
        files, image, note = clip_files(result, interaction.filesize_limit)
        embed = clip_embed(result, image=image, requested_by=result.author)
        await respond.answer(interaction, note, embed=embed, files=files,
                             view=clip_view(result.number))

    @app_commands.command(name="publish", description=specs.spec("publish").description)
    @app_commands.describe(**specs.describe("publish"))
    async def publish(self, interaction: discord.Interaction, clip: Publish.clip,
                      withdraw: Publish.withdraw | None = None) -> None:
        await respond.defer(interaction, ephemeral=True, thinking=True)
        public_id = await self.app.publish(clip, member_ref(interaction.user),
                                           where_of(interaction), public=not withdraw)
        await respond.answer(interaction, publish_text(clip, public_id), ephemeral=True)

    @app_commands.command(name="stats", description=specs.spec("stats").description)
    @app_commands.describe(**specs.describe("stats"))
    async def stats(self, interaction: discord.Interaction,
                    period: Stats.period | None = None) -> None:
        tables = await self.app.stats(period=period, where=where_of(interaction))
        await respond.answer(interaction, embed=stats_embed(tables, period))


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Charts(bot))
