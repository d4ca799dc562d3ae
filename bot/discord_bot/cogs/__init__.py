"""One cog per feature, loaded as extensions by ``CadenzaBot.setup_hook``."""

from __future__ import annotations

EXTENSIONS = (
    "bot.discord_bot.cogs.compose",
    "bot.discord_bot.cogs.seeds",
    "bot.discord_bot.cogs.ratings",
    "bot.discord_bot.cogs.charts",
    "bot.discord_bot.cogs.admin",
    "bot.discord_bot.cogs.help",
    "bot.discord_bot.cogs.arena",
)
