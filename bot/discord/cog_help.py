"""/help: the commands, styles and the typed-notes syntax, from the same specs the commands are
built from."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.discord import respond, specs
from cadenza.options import COMMANDS, NOTES_HELP, VOICE_COMMANDS
from cadenza.styles import STYLES

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)


def help_embed() -> discord.Embed:
    embed = discord.Embed(
        title="Cadenza composes music on command",
        description="`/compose` queues a clip; you get an MP3, the MIDI file and a piano roll, "
                    "with ⭐ buttons to rate it, 🔁 to reroll it with a new seed, ➕ to continue "
                    "it and 🎲 for a variation. Share a motif with `/seed share` and build on "
                    "each other's: every clip credits what it was built on. `/arena new` plays "
                    "you two hidden models on one prompt: vote which is better. `/play` plays a "
                    "clip in your voice channel; `/party new` is a listening party.",
        colour=0x5865F2,
    )
    voice = []
    for spec in COMMANDS.values():
        options = " ".join(f"`{o.name}`" if o.required else f"[`{o.name}`]"
                           for o in spec.options)
        if spec.name in VOICE_COMMANDS:
            # one field for them all: an embed holds at most 25 fields
            voice.append(f"**/{spec.name}** {options} — {spec.description}".replace("  ", " "))
            continue
        embed.add_field(name=f"/{spec.name}", value=f"{spec.description} {options}".strip(),
                        inline=False)
    embed.add_field(name="Listening together (in your voice channel)",
                    value="\n".join(voice)[:1024], inline=False)
    embed.add_field(name="Styles", value="\n".join(
        f"**{s.name}** — {s.description}" for s in STYLES.values())[:1024], inline=False)
    embed.add_field(name="Seeds from typed notes", value=NOTES_HELP[:1024], inline=False)
    embed.set_footer(text="Example: /compose style:blues bars:12 tempo:96 key:E seed:7")
    return embed


class Help(commands.Cog):
    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description=specs.spec("help").description)
    async def help(self, interaction: discord.Interaction) -> None:
        await respond.answer(interaction, embed=help_embed(), ephemeral=True)


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Help(bot))
