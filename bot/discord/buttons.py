"""Persistent buttons: their custom_id carries all their state, so they work after a restart.

Under every clip: row 0 holds the five rating stars, row 1 Reroll, Continue +4, Continue +8,
Variation and Play (Discord allows five buttons a row). Under the now playing message: the
stars of the clip being heard, Skip and Stop. Under an arena pair: A better, B better, Tie and
Both bad; under a vote's confirmation: Reveal the models.

Each ``DynamicItem`` parses its custom_id and hands the press to the cog that owns the feature;
errors go to the same handler as slash commands.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from cadenza.discord.errors import report_error

log = logging.getLogger(__name__)

ID = r"[0-9]{1,19}"  # a positive 64-bit integer; larger values cannot name a row


async def _guarded(interaction: discord.Interaction,
                   action: Callable[[], Awaitable[None]]) -> None:
    # discord.py sends errors in dynamic items to a throwaway View's on_error, which only logs:
    # route them to the tree-wide handler instead, so members always get an answer.
    try:
        await action()
    except Exception as error:  # noqa: BLE001 - report_error logs unexpected ones with a trace
        await report_error(interaction, error)


def _cog(interaction: discord.Interaction, name: str) -> Any:
    cog = interaction.client.get_cog(name)  # type: ignore[attr-defined]
    if cog is None:
        raise RuntimeError(f"the {name} cog is not loaded")
    return cog


class RateButton(discord.ui.DynamicItem[discord.ui.Button],
                 template=rf"rate:(?P<clip>{ID}):(?P<stars>[1-5])"):
    def __init__(self, clip_id: int, stars: int) -> None:
        super().__init__(discord.ui.Button(
            label=str(stars), emoji="⭐", style=discord.ButtonStyle.secondary,
            custom_id=f"rate:{clip_id}:{stars}", row=0,
        ))
        self.clip_id = clip_id
        self.stars = stars

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> RateButton:
        return cls(int(match["clip"]), int(match["stars"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction, lambda: _cog(interaction, "Ratings").rate(
            interaction, self.clip_id, self.stars))


class RerollButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"reroll:(?P<clip>{ID})"):
    def __init__(self, clip_id: int) -> None:
        super().__init__(discord.ui.Button(
            label="Reroll", emoji="🔁", style=discord.ButtonStyle.primary,
            custom_id=f"reroll:{clip_id}", row=1,
        ))
        self.clip_id = clip_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> RerollButton:
        return cls(int(match["clip"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction,
                       lambda: _cog(interaction, "Compose").reroll(interaction, self.clip_id))


class CancelButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"cancel:(?P<job>{ID})"):
    def __init__(self, job_id: int) -> None:
        super().__init__(discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"cancel:{job_id}",
        ))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> CancelButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction,
                       lambda: _cog(interaction, "Compose").cancel(interaction, self.job_id))


class RetryButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"retry:(?P<job>{ID})"):
    """Under a restart notice: queue the interrupted request again, same seed."""

    def __init__(self, job_id: int) -> None:
        super().__init__(discord.ui.Button(
            label="Try again", emoji="🔁", style=discord.ButtonStyle.primary,
            custom_id=f"retry:{job_id}",
        ))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> RetryButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction,
                       lambda: _cog(interaction, "Compose").retry(interaction, self.job_id))


class ContinueButton(discord.ui.DynamicItem[discord.ui.Button],
                     template=rf"continue:(?P<clip>{ID}):(?P<bars>[0-9]{{1,2}})"):
    """➕ under a clip: compose ``bars`` more bars after its end (the clip opens the new one)."""

    def __init__(self, clip_id: int, bars: int) -> None:
        super().__init__(discord.ui.Button(
            label=f"+{bars} bars", emoji="➕", style=discord.ButtonStyle.secondary,
            custom_id=f"continue:{clip_id}:{bars}", row=1,
        ))
        self.clip_id = clip_id
        self.bars = bars

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> ContinueButton:
        return cls(int(match["clip"]), int(match["bars"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction, lambda: _cog(interaction, "Compose").continue_clip(
            interaction, self.clip_id, self.bars))


class VariationButton(discord.ui.DynamicItem[discord.ui.Button],
                      template=rf"vary:(?P<clip>{ID})"):
    """🎲 under a clip: new notes over its harmony and rhythm."""

    def __init__(self, clip_id: int) -> None:
        super().__init__(discord.ui.Button(
            label="Variation", emoji="🎲", style=discord.ButtonStyle.secondary,
            custom_id=f"vary:{clip_id}", row=1,
        ))
        self.clip_id = clip_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> VariationButton:
        return cls(int(match["clip"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction,
                       lambda: _cog(interaction, "Compose").vary(interaction, self.clip_id))


ARENA_BUTTONS: dict[str, tuple[str, str | None, discord.ButtonStyle]] = {
    "a": ("A better", None, discord.ButtonStyle.primary),
    "b": ("B better", None, discord.ButtonStyle.primary),
    "tie": ("Tie", "🤝", discord.ButtonStyle.secondary),
    "bad": ("Both bad", "👎", discord.ButtonStyle.secondary),
    "reveal": ("Reveal the models", "👀", discord.ButtonStyle.secondary),
}


class ArenaButton(discord.ui.DynamicItem[discord.ui.Button],
                  template=rf"arena:(?P<pair>{ID}):(?P<choice>a|b|tie|bad|reveal)"):
    """A vote on an arena pair, or (``reveal``) the models behind A and B for a member who
    voted."""

    def __init__(self, pair_id: int, choice: str) -> None:
        label, emoji, style = ARENA_BUTTONS[choice]
        super().__init__(discord.ui.Button(
            label=label, emoji=emoji, style=style, custom_id=f"arena:{pair_id}:{choice}", row=0,
        ))
        self.pair_id = pair_id
        self.choice = choice

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> ArenaButton:
        return cls(int(match["pair"]), match["choice"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = _cog(interaction, "Arena")
        if self.choice == "reveal":
            await _guarded(interaction, lambda: cog.reveal(interaction, self.pair_id))
        else:
            await _guarded(interaction, lambda: cog.vote(interaction, self.pair_id, self.choice))


class PlayButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"play:(?P<clip>{ID})"):
    """▶ under a clip: play it in the member's voice channel (or queue it there)."""

    def __init__(self, clip_id: int) -> None:
        super().__init__(discord.ui.Button(
            label="Play", emoji="▶️", style=discord.ButtonStyle.success,
            custom_id=f"play:{clip_id}", row=1,
        ))
        self.clip_id = clip_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> PlayButton:
        return cls(int(match["clip"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction,
                       lambda: _cog(interaction, "Listen").play_clip(interaction, self.clip_id))


PLAYER_BUTTONS = {"skip": ("Skip", "⏭️"), "stop": ("Stop", "⏹️")}


class PlayerButton(discord.ui.DynamicItem[discord.ui.Button],
                   template=r"player:(?P<action>skip|stop)"):
    """⏭ Skip and ⏹ Stop under the now playing message (the server's player)."""

    def __init__(self, action: str) -> None:
        label, emoji = PLAYER_BUTTONS[action]
        super().__init__(discord.ui.Button(
            label=label, emoji=emoji, style=discord.ButtonStyle.secondary,
            custom_id=f"player:{action}", row=1,
        ))
        self.action = action

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> PlayerButton:
        return cls(match["action"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = _cog(interaction, "Listen")
        action = cog.skip_current if self.action == "skip" else cog.stop_playing
        await _guarded(interaction, lambda: action(interaction))
