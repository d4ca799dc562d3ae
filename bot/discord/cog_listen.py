"""/play, /queue, /skip, /stop and the ▶ Play button: clips played in the member's voice
channel, one player per server (``cadenza.discord.player``) over a queue kept in the store; a
restart picks the queue up again where it was."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.discord import respond, specs
from cadenza.discord.buttons import ID, ButtonKind, Look, one_of, persistent_view
from cadenza.discord.cog_ratings import star_buttons
from cadenza.discord.player import GuildPlayer, voice_problem
from cadenza.discord.present import member_ref, where_of
from cadenza.errors import UserError
from cadenza.listening import IDLE_SECONDS, entry_line
from cadenza.store_rows import QueueEntry

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

Play = specs.Options("play")
QUEUE_SHOWN = 15
VoiceChannel = discord.VoiceChannel | discord.StageChannel
# ▶ under a clip: play it in the member's voice channel (or queue it there)
PLAY = ButtonKind("play", lambda clip: Look("Play", "▶️", discord.ButtonStyle.success, 1),
                  clip=ID)
# ⏭ Skip and ⏹ Stop under the now playing message (the server's player)
PLAYER_BUTTONS = {"skip": ("Skip", "⏭️"), "stop": ("Stop", "⏹️")}
PLAYER = ButtonKind("player", lambda action: Look(*PLAYER_BUTTONS[action], row=1),
                    action=one_of(*PLAYER_BUTTONS))


def now_playing_view(entry: QueueEntry,
                     votes: list[discord.ui.DynamicItem[discord.ui.Button]] | None = None,
                     ) -> discord.ui.View:
    """The stars of the clip being heard, or an arena pair's ``votes`` (row 0); Skip and Stop
    (row 1)."""
    return persistent_view(*(star_buttons(entry.number) if votes is None else votes),
                           *(PLAYER.item(action) for action in PLAYER_BUTTONS))


def queue_text(entries: list[QueueEntry], playing: QueueEntry | None, voice: str | None) -> str:
    if not entries:
        return "Nothing is playing or queued. `/play` plays this channel's newest clip."
    lines = []
    for n, entry in enumerate(entries[:QUEUE_SHOWN], start=1):
        mark = "▶" if playing is not None and entry.id == playing.id else f"{n}."
        party = f" · party #{entry.party_id}" if entry.party_id else ""
        lines.append(f"{mark} {entry_line(entry)} — {entry.user_name}{party}")
    if len(entries) > QUEUE_SHOWN:
        lines.append(f"… and {len(entries) - QUEUE_SHOWN} more")
    where = f" in 🔊 {voice}" if voice else " (waiting: `/play` to resume)"
    return f"**Queue**{where}\n" + "\n".join(lines)


class Listen(commands.Cog):
    """The server's players; ``idle`` is how long one stays in voice with nothing to play."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app
        self.idle = IDLE_SECONDS
        self.players: dict[int, GuildPlayer] = {}
        self._resumed = False

    async def cog_load(self) -> None:
        PLAY.handle(self.bot, self.play_clip)
        PLAYER.handle(self.bot, self.player_button)

    async def cog_unload(self) -> None:
        PLAY.release(self.bot)
        PLAYER.release(self.bot)
        for player in self.players.values():
            await player.close()

    def shut(self) -> None:
        for player in self.players.values():
            player.shut()

    def player(self, guild_id: int) -> GuildPlayer:
        player = self.players.get(guild_id)
        if player is None:
            party = self.bot.get_cog("Party")
            player = self.players[guild_id] = GuildPlayer(
                self.bot, guild_id, idle=self.idle,
                on_finished=party.entry_finished,  # type: ignore[union-attr]
                show_party=party.show,  # type: ignore[union-attr]
                view=now_playing_view)
        player.idle = self.idle
        return player

    # -- where to play ----------------------------------------------------------------------

    async def target(self, interaction: discord.Interaction) -> VoiceChannel:
        """The member's voice channel, if Cadenza can play there now; else a UserError that
        says why (answered ephemerally, before anything is acknowledged)."""
        guild = self.bot.get_guild(interaction.guild_id) if interaction.guild_id else None
        if guild is None:
            raise UserError("voice needs a server: use this in a server's text channel")
        problem = voice_problem()
        if problem is not None:
            raise UserError(problem)
        state = getattr(interaction.user, "voice", None)
        channel = state.channel if state is not None else None
        if not isinstance(channel, VoiceChannel):
            raise UserError("join a voice channel first: I play in the one you are in")
        allowed = channel.permissions_for(guild.me)
        for flag, name in (("connect", "Connect"), ("speak", "Speak")):
            if not getattr(allowed, flag):
                raise UserError(f"I may not {flag} in 🔊 {channel.name}: a server admin can "
                                f"give Cadenza the {name} permission there")
        player = self.players.get(guild.id)
        current = player.channel if player is not None else None
        if current is not None and current.id != channel.id and (
                player.busy or await self.app.listening.queue(guild.id)):  # type: ignore[union-attr]
            raise UserError(f"I'm already playing in 🔊 {current.name}: join it there, or "
                            "/stop first")
        return channel

    # -- /play and ▶ ------------------------------------------------------------------------

    @app_commands.command(name="play", description=specs.spec("play").description)
    @app_commands.describe(**specs.describe("play"))
    async def play(self, interaction: discord.Interaction,
                   clip: Play.clip | None = None) -> None:
        await self.play_clip(interaction, clip)

    async def play_clip(self, interaction: discord.Interaction, ref: int | None) -> None:
        """Join the member's channel and play (or queue) clip ``ref`` (None: the newest)."""
        channel = await self.target(interaction)
        member = member_ref(interaction.user)
        row = await self.app.listening.clip_to_play(ref, where_of(interaction), member)
        await respond.defer(interaction, thinking=True)
        assert interaction.guild_id is not None
        player = self.player(interaction.guild_id)
        await player.connect(channel)
        entry = await self.app.listening.enqueue(row, member, interaction.guild_id)
        if not player.busy or player.text_channel_id is None:
            player.text_channel_id = interaction.channel_id
        position = len(await self.app.listening.queue(interaction.guild_id))
        player.kick()
        if position <= 1:
            text = f"▶ Playing {entry.label} in 🔊 {channel.name}."
        else:
            text = (f"➕ Queued {entry.label} in 🔊 {channel.name}: {position - 1} ahead "
                    "of it. `/queue` shows them.")
        await respond.answer(interaction, text)

    # -- /queue, /skip, /stop ---------------------------------------------------------------

    @app_commands.command(name="queue", description=specs.spec("queue").description)
    async def queue(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise UserError("voice needs a server: use this in a server's text channel")
        entries = await self.app.listening.queue(interaction.guild_id)
        player = self.players.get(interaction.guild_id)
        channel = player.channel if player is not None else None
        await respond.answer(interaction, queue_text(
            entries, player.current if player else None, getattr(channel, "name", None)),
            ephemeral=True)

    @app_commands.command(name="skip", description=specs.spec("skip").description)
    async def skip(self, interaction: discord.Interaction) -> None:
        await self.skip_current(interaction)

    @app_commands.command(name="stop", description=specs.spec("stop").description)
    async def stop(self, interaction: discord.Interaction) -> None:
        await self.stop_playing(interaction)

    def _listening_player(self, interaction: discord.Interaction) -> GuildPlayer:
        """The server's player, for a member who hears it (in its voice channel)."""
        player = self.players.get(interaction.guild_id or 0)
        channel = player.channel if player is not None else None
        if player is None or channel is None:
            raise UserError("nothing is playing in voice here")
        state = getattr(interaction.user, "voice", None)
        if state is None or state.channel is None or state.channel.id != channel.id:
            raise UserError(f"only members in 🔊 {channel.name} can do that")
        return player

    async def player_button(self, interaction: discord.Interaction, action: str) -> None:
        await (self.skip_current if action == "skip" else self.stop_playing)(interaction)

    async def skip_current(self, interaction: discord.Interaction) -> None:
        player = self._listening_player(interaction)
        current = player.current
        if current is None or not player.skip():
            raise UserError("nothing is playing right now")
        await respond.answer(interaction, f"⏭ Skipped {current.label}.")

    async def stop_playing(self, interaction: discord.Interaction) -> None:
        player = self._listening_player(interaction)
        await respond.defer(interaction, thinking=True)
        parties = await self.app.listening.open_parties(player.guild_id)
        dropped = await self.app.listening.stop(player.guild_id)
        await player.leave("⏹ Stopped: the queue is empty and I left voice.")
        party = self.bot.get_cog("Party")
        if party is not None:
            await party.stopped(parties)  # type: ignore[attr-defined]
        await respond.answer(interaction, f"⏹ Stopped by {member_ref(interaction.user).name}: "
                             f"{dropped} clip(s) dropped from the queue, and I left voice.")

    # -- after a restart --------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        if self._resumed:
            return
        self._resumed = True
        for guild_id in await self.app.listening.queued_guilds():
            # READY can come after the first interactions: a player started meanwhile plays.
            if guild_id not in self.players:
                self.bot.spawn(self.resume(guild_id))

    async def resume(self, guild_id: int) -> None:
        """Play a queue a previous run left: in the same voice channel if anyone is there."""
        saved = await self.app.listening.player(guild_id)
        guild = self.bot.get_guild(guild_id)
        if saved is None or guild is None or saved.voice_channel_id is None:
            return
        channel = guild.get_channel(saved.voice_channel_id)
        if not isinstance(channel, VoiceChannel):
            return
        listeners = [uid for uid in channel.voice_states if uid != self.bot.application_id]
        player = self.player(guild_id)
        player.text_channel_id, player.message_id = saved.text_channel_id, saved.message_id
        if not listeners or voice_problem() is not None:
            log.info("guild %s: queue kept for /play (nobody in voice)", guild_id)
            return
        try:
            await player.connect(channel)
        except Exception:  # the queue stays stored; /play resumes it
            log.exception("guild %s: could not rejoin voice after a restart", guild_id)
            return
        player.kick()


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Listen(bot))
