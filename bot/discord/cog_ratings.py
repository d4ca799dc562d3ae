"""Rating clips: the persistent star buttons under every clip, and /rate for typing it out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.app import RateResult
from cadenza.discord import respond, specs
from cadenza.discord.buttons import ID, ButtonKind, Field, Look
from cadenza.discord.present import member_ref, stars_text, where_of

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

Rate = specs.Options("rate")
# ⭐ 1-5 under every clip and under the clip being heard in voice
RATE = ButtonKind("rate", lambda clip, stars: Look(str(stars), "⭐", row=0),
                  clip=ID, stars=Field("[1-5]", int))


def star_buttons(number: int | None) -> list[discord.ui.DynamicItem[discord.ui.Button]]:
    """Clip ``number``'s five stars; none for a clip that cannot be named here (withdrawn)."""
    return [] if number is None else [RATE.item(number, stars) for stars in range(1, 6)]


def confirmation(r: RateResult) -> str:
    """The ephemeral answer to a vote, e.g. "You rated clip #12 ★★★★☆ (was ★★★☆☆)."."""
    text = f"You rated clip #{r.clip_id} {stars_text(r.stars)}"
    if r.previous is not None and r.previous != r.stars:
        text += f" (was {stars_text(r.previous)})"
    elif r.previous == r.stars:
        text += " (unchanged)"
    text += "."
    if r.own_clip:
        return text + (" It's your own clip, so the vote is stored but not counted in "
                       "/top or /stats.")
    mean = f", average {r.mean:.2f}" if r.mean is not None else ""
    return text + f" The clip now has {r.count} vote(s){mean}."


class Ratings(commands.Cog):
    """One rating per member per clip, changeable; every answer is ephemeral."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app

    async def cog_load(self) -> None:
        RATE.handle(self.bot, self.rate)

    async def cog_unload(self) -> None:
        RATE.release(self.bot)

    async def rate(self, interaction: discord.Interaction, clip_id: int, stars: int) -> None:
        # Acknowledged before the vote is written: with the database busy elsewhere the write
        # may wait (bounded, cadenza.store), and the member must hear either way. Refused votes
        # (StoreBusy) are said to be not stored; stored ones are confirmed.
        await respond.defer(interaction, ephemeral=True, thinking=True)
        result = await self.app.rate(clip_id, member_ref(interaction.user), stars,
                                     where_of(interaction))
        await respond.answer(interaction, confirmation(result), ephemeral=True)

    @app_commands.command(name="rate", description=specs.spec("rate").description)
    @app_commands.describe(**specs.describe("rate"))
    async def rate_command(self, interaction: discord.Interaction, clip: Rate.clip,
                           stars: Rate.stars) -> None:
        await self.rate(interaction, clip, stars)


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Ratings(bot))
