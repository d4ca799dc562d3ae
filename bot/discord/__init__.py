"""The Discord adapter: the only package that imports discord.py (bot client, cogs, buttons)."""

from __future__ import annotations

from cadenza.discord.client import CadenzaBot

__all__ = ["CadenzaBot"]
