"""The Discord adapter: the only package that imports discord.py (bot client, cogs, buttons).

The bot is ``cadenza.discord.client.CadenzaBot``; this package re-exports nothing, so its
modules can import each other through it without an import cycle."""
