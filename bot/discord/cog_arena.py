"""/arena new, vote, reveal and leaderboard: the blind A/B arena. A pair goes through the job
queue like /compose (the Compose cog follows it) and is posted here as A and B with four vote
buttons; every vote and reveal is answered ephemerally."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.arena import CHOICE_WORDS, ArenaResult, Leaderboard, Reveal, VoteResult
from cadenza.discord import respond, specs
from cadenza.discord.buttons import ID, ButtonKind, Look, one_of, persistent_view
from cadenza.discord.present import (
    DESCRIPTION_LIMIT,
    STYLE_COLOURS,
    embed_title,
    member_ref,
    size_text,
    where_of,
)
from cadenza.discord.reply import JobReply
from cadenza.jobs import Job
from cadenza.options import ARENA_CHOICES, GROUPS
from cadenza.origin import PLAIN
from cadenza.store import StoreError

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

New = specs.Options("arena new")
Vote = specs.Options("arena vote")
RevealOptions = specs.Options("arena reveal")
Board = specs.Options("arena leaderboard")
ARENA_COLOUR = 0xE67E22


def arena_embed(result: ArenaResult, *, requested_by: str) -> discord.Embed:
    """The pair as members see it: the shared prompt, never the models."""
    r = result.resolved
    embed = discord.Embed(
        title=f"Arena #{result.pair_id} — {r.style}",
        description="Two models, one prompt. Listen to **A** and **B**, then vote below. Which "
                    "model made which stays hidden until you have voted; `/arena leaderboard` "
                    "shows the standings.",
        colour=STYLE_COLOURS.get(r.style, ARENA_COLOUR),
    )
    for name, value in (("Style", r.style), ("Key", r.key), ("Tempo", f"{r.tempo} bpm"),
                        ("Meter", str(r.meter)), ("Bars", str(r.bars)), ("Seed", str(r.seed))):
        embed.add_field(name=name, value=value, inline=True)
    embed.set_footer(text=f"Requested by {requested_by}")
    return embed


def arena_files(result: ArenaResult, limit: int) -> tuple[list[discord.File], str | None]:
    """A's and B's MP3 (named by letter only, so nothing in a file name gives a model away),
    or their MIDI files when the MP3s do not fit the upload limit, and a note saying so."""
    base = f"arena-{result.pair_id}"
    mp3s = [(result.a.files.mp3, f"{base}-A.mp3"), (result.b.files.mp3, f"{base}-B.mp3")]
    mids = [(result.a.files.mid, f"{base}-A.mid"), (result.b.files.mid, f"{base}-B.mid")]
    size = sum(path.stat().st_size for path, _ in mp3s)
    chosen, note = mp3s, None
    if size > limit:
        chosen = mids
        note = (f"⚠️ The two MP3s ({size_text(size)}) are too large for this server's "
                f"{size_text(limit)} upload limit, so the MIDI files are attached instead. Try "
                "fewer bars for MP3s.")
    return [discord.File(path, filename=name) for path, name in chosen], note


ARENA_BUTTONS: dict[str, tuple[str, str | None, discord.ButtonStyle]] = {
    "a": ("A better", None, discord.ButtonStyle.primary),
    "b": ("B better", None, discord.ButtonStyle.primary),
    "tie": ("Tie", "🤝", discord.ButtonStyle.secondary),
    "bad": ("Both bad", "👎", discord.ButtonStyle.secondary),
    "reveal": ("Reveal the models", "👀", discord.ButtonStyle.secondary),
}
# A vote on an arena pair, or (``reveal``) the models behind A and B for a member who voted
ARENA = ButtonKind("arena", lambda pair, choice: Look(*ARENA_BUTTONS[choice], row=0),
                   pair=ID, choice=one_of(*ARENA_BUTTONS))


def vote_buttons(pair_id: int) -> list[discord.ui.DynamicItem[discord.ui.Button]]:
    """A better, B better, Tie, Both bad."""
    return [ARENA.item(pair_id, choice) for choice in ARENA_CHOICES]


def arena_view(pair_id: int) -> discord.ui.View:
    """The vote buttons, persistent through their custom_ids alone."""
    return persistent_view(*vote_buttons(pair_id))


def vote_text(v: VoteResult) -> str:
    """'Your vote on arena #3: **A better** (was tie). 4 votes so far: A 3 · B 1 · ...'."""
    word = CHOICE_WORDS[v.choice]
    text = f"Your vote on arena #{v.pair_id}: **{word[:1].upper()}{word[1:]}**"
    if v.previous == v.choice:
        text += " (unchanged)"
    elif v.previous is not None:
        text += f" (was {CHOICE_WORDS[v.previous]})"
    return (f"{text}. {v.votes} vote(s) so far: {v.tally_text()}.\n"
            "Press **Reveal the models** to see which model made A and which B; your vote is "
            "final then.")


def reveal_text(reveal: Reveal) -> str:
    winner = f" ({reveal.winner})" if reveal.winner else ""
    return (f"Arena #{reveal.pair_id}: **A** was **{reveal.model_a}**, **B** was "
            f"**{reveal.model_b}**. Your vote: {CHOICE_WORDS[reveal.choice]}{winner} — final.")


def leaderboard_embed(board: Leaderboard) -> discord.Embed:
    title = "Arena leaderboard" + (f" — {board.style}" if board.style else "")
    lines = board.lines(markdown=True)
    description = "\n".join(lines) or "No arena votes yet: start a pair with `/arena new`."
    embed = discord.Embed(title=embed_title(title), colour=ARENA_COLOUR,
                          description=description[:DESCRIPTION_LIMIT])
    embed.set_footer(text=board.footnote())
    return embed


class ArenaCog(commands.GroupCog, name="Arena", group_name="arena",
               group_description=GROUPS["arena"]):
    """Pairs are made by the job queue (through the Compose cog) and posted by ``post``."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app
        super().__init__()

    async def cog_load(self) -> None:
        ARENA.handle(self.bot, self.pressed)

    async def cog_unload(self) -> None:
        ARENA.release(self.bot)

    # -- a new pair ---------------------------------------------------------------------------

    @app_commands.command(name="new", description=specs.spec("arena new").description)
    @app_commands.describe(**specs.describe("arena new"))
    async def new(self, interaction: discord.Interaction, style: New.style | None = None,
                  bars: New.bars | None = None) -> None:
        # Picked before acknowledging: a style no two models can play is refused ephemerally.
        resolved, matchup = await self.app.arena.plan(style, bars)
        compose = self.bot.get_cog("Compose")
        if compose is None:
            raise RuntimeError("the Compose cog is not loaded")
        await compose.start(interaction, resolved, PLAIN, matchup)  # type: ignore[attr-defined]

    async def post(self, reply: JobReply, result: ArenaResult, job: Job) -> None:
        """Turn the progress message into the pair: A and B, the prompt and four buttons."""
        files, note = arena_files(result, reply.interaction.filesize_limit)
        message = await reply.finish(
            content=note, embed=arena_embed(result, requested_by=job.user.name), files=files,
            view=arena_view(result.pair_id), what="arena pair")
        try:
            await self.app.arena.set_message(
                result.pair_id, guild_id=reply.interaction.guild_id,
                channel_id=message.channel.id, message_id=message.id)
        except StoreError:
            log.exception("could not record where arena #%d was posted", result.pair_id)

    # -- votes (also the buttons) -------------------------------------------------------------

    @app_commands.command(name="vote", description=specs.spec("arena vote").description)
    @app_commands.describe(**specs.describe("arena vote"))
    async def vote_command(self, interaction: discord.Interaction, pair: Vote.pair,
                           choice: Vote.choice) -> None:
        await self.vote(interaction, pair, choice)

    async def pressed(self, interaction: discord.Interaction, pair_id: int, choice: str) -> None:
        if choice == "reveal":
            await self.reveal(interaction, pair_id)
        else:
            await self.vote(interaction, pair_id, choice)

    async def vote(self, interaction: discord.Interaction, pair_id: int, choice: str) -> None:
        # A vote is written: acknowledged first, so a busy database costs no answer.
        await respond.defer(interaction, ephemeral=True, thinking=True)
        result = await self.app.arena.vote(pair_id, member_ref(interaction.user), choice,
                                           where_of(interaction))
        await respond.answer(interaction, vote_text(result),
                             view=persistent_view(ARENA.item(pair_id, "reveal")), ephemeral=True)

    @app_commands.command(name="reveal", description=specs.spec("arena reveal").description)
    @app_commands.describe(**specs.describe("arena reveal"))
    async def reveal_command(self, interaction: discord.Interaction,
                             pair: RevealOptions.pair) -> None:
        await self.reveal(interaction, pair)

    async def reveal(self, interaction: discord.Interaction, pair_id: int) -> None:
        await respond.defer(interaction, ephemeral=True, thinking=True)
        reveal = await self.app.arena.reveal(pair_id, member_ref(interaction.user))
        await respond.answer(interaction, reveal_text(reveal), ephemeral=True)

    # -- standings ----------------------------------------------------------------------------

    @app_commands.command(name="leaderboard",
                          description=specs.spec("arena leaderboard").description)
    @app_commands.describe(**specs.describe("arena leaderboard"))
    async def leaderboard(self, interaction: discord.Interaction,
                          style: Board.style | None = None) -> None:
        board = await self.app.arena.leaderboard(style)
        await respond.answer(interaction, embed=leaderboard_embed(board))


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(ArenaCog(bot))
