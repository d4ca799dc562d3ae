"""/party new and /party arena: listening parties in voice. A party composes its clips one at a
time through the job queue (its limits and fairness: the host's requests, one composing at a
time), queues each on the server's player as it is made, shows the clip being heard with its
rating stars (an arena pair: A then B, blind, with the arena's vote buttons) in one live
message, and posts the ranking once its last clip has played. Its settings, its clips and the
votes are stored: after a restart it composes what is missing and plays on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.arena import ArenaResult
from cadenza.discord import respond, specs
from cadenza.discord.cog_arena import vote_buttons
from cadenza.discord.cog_listen import now_playing_view
from cadenza.discord.present import member_ref, where_of
from cadenza.errors import UserError
from cadenza.jobs import Done, Failed, Job, Stage
from cadenza.listening import entry_line, ranking_lines
from cadenza.members import UserRef, Where
from cadenza.options import GROUPS, PARTY_BARS_DEFAULT, PARTY_COUNT_DEFAULT
from cadenza.service import DEFAULT_STYLE, ComposeRequest
from cadenza.store import StoreError
from cadenza.store_rows import Party, QueueEntry

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot
    from cadenza.discord.cog_listen import Listen

log = logging.getLogger(__name__)

New = specs.Options("party new")
Arena = specs.Options("party arena")
MAX_FAILURES = 2  # clips that could not be made before a party stops composing
ADMIT_RETRY = 5.0  # seconds between tries while the queue is full
ADMIT_PATIENCE = 600.0  # how long a party waits for room in the queue, in all


def party_head(party: Party) -> str:
    what = (f"{party.count} {party.style} clips of {party.bars} bar(s)" if party.kind == "compose"
            else f"an arena pair, {party.style}, {party.bars} bar(s): A then B, models hidden")
    return f"🎉 **Listening party #{party.id}** — {what}, hosted by {party.user_name}"


def party_view(party: Party, entry: QueueEntry) -> discord.ui.View:
    """The player's buttons; an arena party votes on its pair instead of rating the clip."""
    arena = party.kind == "arena" and party.pair_id is not None
    return now_playing_view(entry, vote_buttons(party.pair_id or 0) if arena else None)


class PartyCog(commands.GroupCog, name="Party", group_name="party",
               group_description=GROUPS["party"]):

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app
        self.jobs = bot.jobs
        self._composing: dict[int, asyncio.Task[None]] = {}
        self._resumed = False
        self._closing = False
        super().__init__()

    def shut(self) -> None:
        """The bot is closing: composing loops end at their next step (see client.close)."""
        self._closing = True
        for task in self._composing.values():
            task.cancel()

    def _listen(self) -> Listen:
        cog = self.bot.get_cog("Listen")
        if cog is None:
            raise RuntimeError("the Listen cog is not loaded")
        return cog  # type: ignore[return-value]

    # -- starting ---------------------------------------------------------------------------

    @app_commands.command(name="new", description=specs.spec("party new").description)
    @app_commands.describe(**specs.describe("party new"))
    async def new(self, interaction: discord.Interaction, style: New.style | None = None,
                  count: New.count | None = None, bars: New.bars | None = None) -> None:
        bars = PARTY_BARS_DEFAULT if bars is None else bars
        resolved = self.app.composer.resolve_installed(ComposeRequest(
            style=style or DEFAULT_STYLE, bars=bars))
        await self._start(interaction, "compose", resolved.style, bars,
                          PARTY_COUNT_DEFAULT if count is None else count, resolved)

    @app_commands.command(name="arena", description=specs.spec("party arena").description)
    @app_commands.describe(**specs.describe("party arena"))
    async def arena(self, interaction: discord.Interaction, style: Arena.style | None = None,
                    bars: Arena.bars | None = None) -> None:
        resolved, matchup = await self.app.arena.plan(style, bars)
        await self._start(interaction, "arena", resolved.style, resolved.bars, 2, resolved,
                          matchup)

    async def _start(self, interaction: discord.Interaction, kind: str, style: str, bars: int,
                     count: int, resolved: Any, matchup: Any = None) -> None:
        channel = await self._listen().target(interaction)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        if await self.app.listening.open_parties(interaction.guild_id):
            raise UserError("a listening party is already on in this server: /stop ends it")
        host = member_ref(interaction.user)
        # The first clip is admitted before anything is acknowledged: a full queue, or a host
        # with requests enough already, is refused at once.
        job = self.jobs.admit(resolved, host, where_of(interaction), matchup=matchup)
        party = None
        try:
            await respond.defer(interaction, thinking=True)
            party = await self.app.listening.add_party(
                guild_id=interaction.guild_id, channel_id=interaction.channel_id,
                voice_channel_id=channel.id, user=host, kind=kind, style=style, bars=bars,
                count=count)
            await respond.answer(interaction, f"{party_head(party)}\n🎼 Composing the first "
                                 f"clip; it plays in 🔊 {channel.name} as soon as it is ready.")
            message = await interaction.original_response()
            await self.app.listening.update_party(party.id, message_id=message.id)
            player = self._listen().player(interaction.guild_id)
            await player.connect(channel)
            if not player.busy or player.text_channel_id is None:
                player.text_channel_id = interaction.channel_id
        except BaseException:
            self.jobs.abandon(job)
            if party is not None:
                # nothing will compose it: left open, it would refuse every later /party
                with contextlib.suppress(StoreError):
                    await asyncio.shield(self.app.listening.update_party(party.id,
                                                                         status="stopped"))
            raise
        self._composing[party.id] = self.bot.spawn(self.compose(party.id, job))

    # -- composing --------------------------------------------------------------------------

    async def compose(self, party_id: int, job: Job | None = None) -> None:
        """Compose the party's missing clips one after another, queueing each as it is made."""
        failures = 0
        try:
            while not self._closing and \
                    (party := await self.app.listening.party(party_id)) is not None and \
                    party.status == "open" and party.composed < party.count and \
                    failures < MAX_FAILURES:
                if party.kind == "arena" and party.pair_id is not None:
                    break  # the pair is made and queued
                if job is None:
                    job = await self._admit(party)
                    if job is None:
                        break
                # One transaction stores the request and links it to its party, or the next start
                # could offer it to the host as "Try again" (claim_party_jobs).
                await self.jobs.enqueue(job, party_id=party.id)
                made = await self._follow(party, job)
                job = None
                if made is None:
                    failures += 1
                    continue
                await self._queue(party, made)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("party #%s stopped composing", party_id)
        finally:
            if job is not None:
                self.jobs.abandon(job)
            self._composing.pop(party_id, None)
        if not self._closing:
            await self.maybe_finish(party_id)

    def _host(self, party: Party) -> UserRef:
        return UserRef(party.user_id, party.user_name)

    def _where(self, party: Party) -> Where:
        return Where(party.guild_id, party.channel_id)

    async def _admit(self, party: Party) -> Job | None:
        """The next clip's job, waiting while the queue (or the host's share) is full."""
        waited = 0.0
        while not self._closing:
            try:
                if party.kind == "arena":
                    resolved, matchup = await self.app.arena.plan(party.style, party.bars)
                    return self.jobs.admit(resolved, self._host(party), self._where(party),
                                           matchup=matchup)
                return self.jobs.admit(self.app.listening.plan_party_clip(party),
                                       self._host(party), self._where(party))
            except UserError as e:
                if waited >= ADMIT_PATIENCE:
                    await self._edit(party, f"{party_head(party)}\n⚠️ {e}: the party stops "
                                     "composing here.", None)
                    return None
            await asyncio.sleep(ADMIT_RETRY)
            waited += ADMIT_RETRY
        return None

    async def _follow(self, party: Party, job: Job) -> Any:
        """The job's result, or None if it failed; progress shows while nothing plays."""
        number = party.composed + 1
        async for event in job.events():
            if isinstance(event, Stage) and not self._listen().player(party.guild_id).busy:
                await self._edit(party, f"{party_head(party)}\n🎼 Composing clip {number} of "
                                 f"{party.count} — {event.label}…", None)
            elif isinstance(event, Done):
                return event.result
            elif isinstance(event, Failed):
                await self._send(party, f"⚠️ Party #{party.id}: clip {number} could not be made "
                                 f"({event.message}).")
                return None
        return None  # cancelled, or interrupted by a shutdown

    async def _queue(self, party: Party, made: Any) -> None:
        host = self._host(party)
        if isinstance(made, ArenaResult):
            await self.app.listening.update_party(party.id, pair_id=made.pair_id)
            clips = [made.a.clip_id, made.b.clip_id]
        else:
            clips = [made.clip_id]
        for clip_id in clips:
            clip = await self.app.library.by_id(clip_id)
            assert clip is not None
            await self.app.listening.enqueue(clip, host, party.guild_id, party_id=party.id)
        self._listen().player(party.guild_id).kick()

    # -- playing (called by the player) -----------------------------------------------------

    async def show(self, entry: QueueEntry, upcoming: list[QueueEntry]) -> None:
        """The party's message shows the clip being heard, with its buttons."""
        party = await self.app.listening.party(entry.party_id or 0)
        if party is None:
            return
        entries = await self.app.listening.party_entries(party.id)
        position = next((n for n, e in enumerate(entries, start=1) if e.id == entry.id), 1)
        if party.kind == "arena":
            now = (f"▶ **Now playing {'AB'[position - 1] if position <= 2 else '?'}** of "
                   f"arena #{party.pair_id}. Listen to both, then vote below; the models are "
                   "revealed after you vote.")
        else:
            now = (f"▶ **Now playing clip {position} of {party.count}**: {entry_line(entry)}\n"
                   "Rate it with the stars while it plays; the ranking comes at the end.")
        await self._edit(party, f"{party_head(party)}\n{now}", party_view(party, entry))

    async def entry_finished(self, entry: QueueEntry, status: str) -> None:
        if entry.party_id is not None:
            await self.maybe_finish(entry.party_id)

    async def maybe_finish(self, party_id: int) -> None:
        """Post the ranking once the party has composed and played everything."""
        if party_id in self._composing:
            return
        party = await self.app.listening.party(party_id)
        if party is None or party.status != "open":
            return
        entries = await self.app.listening.party_entries(party_id)
        if any(e.status in ("queued", "playing") for e in entries):
            return
        await self.app.listening.update_party(party_id, status="done")
        await self.finish(party, stopped=False)

    async def stopped(self, parties: list[Party]) -> None:
        """/stop ended these parties (the store marked them stopped): say what was heard."""
        for party in parties:
            task = self._composing.pop(party.id, None)
            if task is not None:
                task.cancel()
            await self.finish(party, stopped=True)

    async def finish(self, party: Party, *, stopped: bool) -> None:
        if party.kind == "arena":
            pair = party.pair_id
            text = (f"🏁 Arena #{pair} has been heard: vote with the buttons on the party "
                    f"message (or `/arena vote pair:{pair}`), then reveal the models."
                    if pair is not None else f"🏁 Party #{party.id} ended before its pair "
                    "was made.")
            await self._send(party, text)
            return
        ranks = await self.app.listening.ranking(party.id)
        ended = "stopped" if stopped else "is over"
        lines = ranking_lines(ranks) or ["no clip was played"]
        votes = sum(r.votes for r in ranks)
        text = (f"🏆 **Listening party #{party.id} {ended}** — {len(ranks)} clip(s), {votes} "
                "vote(s) counted (a clip's own maker's vote is not)\n" + "\n".join(lines))
        await self._edit(party, f"{party_head(party)}\n✔ The party {ended}: the ranking is "
                         "below.", None)
        await self._send(party, text)

    # -- messages ---------------------------------------------------------------------------

    async def _edit(self, party: Party, content: str, view: discord.ui.View | None) -> None:
        if party.message_id is None:
            fresh = await self.app.listening.party(party.id)
            if fresh is None or fresh.message_id is None:
                return
            party = fresh
        channel = self.bot.get_partial_messageable(party.channel_id, guild_id=party.guild_id)
        try:
            await channel.get_partial_message(party.message_id).edit(  # type: ignore[arg-type]
                content=content, view=view)
        except discord.HTTPException:
            log.warning("could not update party #%s's message", party.id, exc_info=True)

    async def _send(self, party: Party, content: str) -> None:
        channel = self.bot.get_partial_messageable(party.channel_id, guild_id=party.guild_id)
        try:
            await channel.send(content)
        except discord.HTTPException:
            log.warning("could not post in party #%s's channel", party.id, exc_info=True)

    # -- after a restart --------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        if self._resumed:
            return
        self._resumed = True
        try:
            parties = await self.app.listening.open_parties()
        except StoreError:
            log.exception("could not read the open parties")
            return
        for party in parties:
            # READY can come after the first interactions: a party started meanwhile is
            # composing already.
            if party.id not in self._composing:
                self._composing[party.id] = self.bot.spawn(self.compose(party.id))


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(PartyCog(bot))
