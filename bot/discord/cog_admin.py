"""Owner-only administration: /sync publishes the slash commands (never done on every start)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.discord import respond
from cadenza.discord.errors import NotOwner

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

SCOPES = {
    "guild": "in this server (shows at once)",
    "global": "everywhere (Discord may take up to an hour to show them)",
    "clear": "removed from this server (global commands stay)",
}


async def owner_only(interaction: discord.Interaction) -> bool:
    # CADENZA_OWNER_IDS when set, else the application's owner (or team) from Discord.
    if await interaction.client.is_owner(interaction.user):  # type: ignore[attr-defined]
        return True
    raise NotOwner()


class Admin(commands.Cog):
    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot

    @app_commands.command(name="sync", description="Owner only: publish Cadenza's slash commands")
    @app_commands.describe(scope="this server (instant), global (everywhere), or clear this "
                                 "server's copies")
    @app_commands.choices(scope=[app_commands.Choice(name=k, value=k) for k in SCOPES])
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @app_commands.check(owner_only)
    async def sync(self, interaction: discord.Interaction, scope: str = "guild") -> None:
        await respond.defer(interaction, ephemeral=True, thinking=True)
        assert interaction.guild_id is not None  # guild_only
        synced = await self.bot.sync_commands(scope, interaction.guild_id)
        log.info("user %s synced %d commands (%s)", interaction.user.id, len(synced), scope)
        names = ", ".join(f"/{c.name}" for c in synced) or "none"
        await respond.answer(interaction, f"{len(synced)} command(s) {SCOPES[scope]}: {names}",
                             ephemeral=True)


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Admin(bot))
