"""/compose (optionally from a seed), /continue, /vary, /reroll and the buttons (Reroll, Continue,
Variation, Cancel, Try again): queue, progress edits, the posted clip. Arena pairs go through
the same queue (``start`` with a matchup); the Arena cog posts them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.arena import ArenaResult, Matchup
from cadenza.discord import respond, specs
from cadenza.discord.buttons import ID, ButtonKind, Field, Look, persistent_view
from cadenza.discord.cog_listen import PLAY
from cadenza.discord.cog_ratings import star_buttons
from cadenza.discord.present import (
    cancelled_text,
    clip_embed,
    clip_files,
    failed_text,
    job_line,
    member_ref,
    queued_text,
    request_line,
    stage_text,
    where_of,
)
from cadenza.discord.reply import JobReply
from cadenza.errors import UserError
from cadenza.jobs import (
    Cancelled,
    Done,
    Failed,
    Interrupted,
    Job,
    Queued,
    Stage,
    matchup_from_params,
    origin_from_params,
    retried,
)
from cadenza.members import UserRef, Where
from cadenza.options import given, parse_options
from cadenza.origin import PLAIN, Origin
from cadenza.seeds import DEFAULT_CONTINUE_BARS
from cadenza.service import Resolved
from cadenza.store import StoreError
from cadenza.store_rows import JobRow

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

ComposeOptions = specs.Options("compose")
ContinueOptions = specs.Options("continue")
VaryOptions = specs.Options("vary")
RerollOptions = specs.Options("reroll")
CONTINUE_BARS = (4, 8)  # bars added by the ➕ buttons
# Under every clip (row 1, after the stars): 🔁 Reroll, ➕ +4 / +8 bars, 🎲 Variation
REROLL = ButtonKind("reroll", lambda clip: Look("Reroll", "🔁", discord.ButtonStyle.primary, 1),
                    clip=ID)
CONTINUE = ButtonKind("continue", lambda clip, bars: Look(f"+{bars} bars", "➕", row=1),
                      clip=ID, bars=Field("[0-9]{1,2}", int))
VARY = ButtonKind("vary", lambda clip: Look("Variation", "🎲", row=1), clip=ID)
# Under a job's progress message, and under a restart notice (the same request, same seed)
CANCEL = ButtonKind("cancel", lambda job: Look("Cancel", style=discord.ButtonStyle.danger),
                    job=ID)
RETRY = ButtonKind("retry", lambda job: Look("Try again", "🔁", discord.ButtonStyle.primary),
                   job=ID)


def clip_view(number: int) -> discord.ui.View:
    """Rating stars 1-5 (row 0); Reroll, Continue +4, Continue +8, Variation and Play in voice
    (row 1); persistent through their custom_ids alone."""
    return persistent_view(*star_buttons(number), REROLL.item(number),
                           *(CONTINUE.item(number, bars) for bars in CONTINUE_BARS),
                           VARY.item(number), PLAY.item(number))


def seed_where(interaction: discord.Interaction) -> Where:
    """Seeds belong to a server; in a DM there are none to use."""
    if interaction.guild_id is None:
        raise UserError("seeds belong to a server: use them in one of its channels")
    return where_of(interaction)


class Compose(commands.Cog):
    """Admits requests into the job queue and follows each job to its posted clip."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app
        self.jobs = bot.jobs
        # Interrupted jobs whose Try again is being handled: two quick presses must not both
        # get past the check before the first one's retry is recorded.
        self._retrying: set[int] = set()

    def _buttons(self) -> dict[ButtonKind, Callable[..., Awaitable[None]]]:
        return {REROLL: self.reroll, CONTINUE: self.continue_clip, VARY: self.vary,
                CANCEL: self.cancel, RETRY: self.retry}

    async def cog_load(self) -> None:
        for kind, handler in self._buttons().items():
            kind.handle(self.bot, handler)

    async def cog_unload(self) -> None:
        for kind in self._buttons():
            kind.release(self.bot)

    # -- /compose ---------------------------------------------------------------------------

    @app_commands.command(name="compose", description=specs.spec("compose").description)
    @app_commands.describe(**specs.describe("compose"))
    async def compose(
        self,
        interaction: discord.Interaction,
        style: ComposeOptions.style | None = None,
        bars: ComposeOptions.bars | None = None,
        tempo: ComposeOptions.tempo | None = None,
        key: ComposeOptions.key | None = None,
        temperature: ComposeOptions.temperature | None = None,
        seed: ComposeOptions.seed | None = None,
        model: ComposeOptions.model | None = None,
        motif: ComposeOptions.motif | None = None,
        form: ComposeOptions.form | None = None,
    ) -> None:
        opts = given("compose", style=style, bars=bars, tempo=tempo, key=key,
                     temperature=temperature, seed=seed, model=model, motif=motif, form=form)
        where = seed_where(interaction) if "motif" in opts else where_of(interaction)
        resolved, origin = await self.app.seeds.plan_compose(opts, member_ref(interaction.user),
                                                             where)
        await self.start(interaction, resolved, origin)

    # -- /continue, /vary, /reroll: what the buttons do, typed ------------------------------

    @app_commands.command(name="continue", description=specs.spec("continue").description)
    @app_commands.describe(**specs.describe("continue"))
    async def continue_command(self, interaction: discord.Interaction,
                               clip: ContinueOptions.clip,
                               bars: ContinueOptions.bars | None = None,
                               seed: ContinueOptions.seed | None = None) -> None:
        await self.start(interaction, *await self.app.seeds.plan_continue(
            clip, DEFAULT_CONTINUE_BARS if bars is None else bars, seed,
            viewer=member_ref(interaction.user), where=where_of(interaction)))

    @app_commands.command(name="vary", description=specs.spec("vary").description)
    @app_commands.describe(**specs.describe("vary"))
    async def vary_command(self, interaction: discord.Interaction, clip: VaryOptions.clip,
                           seed: VaryOptions.seed | None = None) -> None:
        await self.start(interaction, *await self.app.seeds.plan_variation(
            clip, seed, viewer=member_ref(interaction.user), where=where_of(interaction)))

    @app_commands.command(name="reroll", description=specs.spec("reroll").description)
    @app_commands.describe(**specs.describe("reroll"))
    async def reroll_command(self, interaction: discord.Interaction,
                             clip: RerollOptions.clip) -> None:
        await self.reroll(interaction, clip)

    # -- buttons ----------------------------------------------------------------------------

    async def reroll(self, interaction: discord.Interaction, clip_id: int) -> None:
        """Same request, new random seed; a clip built on a seed or a clip stays built on it."""
        await self.start(interaction, *await self.app.seeds.plan_reroll(
            clip_id, viewer=member_ref(interaction.user), where=where_of(interaction)))

    async def continue_clip(self, interaction: discord.Interaction, clip_id: int,
                            bars: int) -> None:
        opts = parse_options("continue", {"clip": clip_id, "bars": bars})
        await self.start(interaction, *await self.app.seeds.plan_continue(
            opts["clip"], opts["bars"], viewer=member_ref(interaction.user),
            where=where_of(interaction)))

    async def vary(self, interaction: discord.Interaction, clip_id: int) -> None:
        opts = parse_options("vary", {"clip": clip_id})
        await self.start(interaction, *await self.app.seeds.plan_variation(
            opts["clip"], viewer=member_ref(interaction.user), where=where_of(interaction)))

    async def retry(self, interaction: discord.Interaction, job_id: int) -> None:
        """Try again, under a restart notice: for the member whose request it was, once."""
        row = await self.jobs.stored(job_id)
        if row is None or not row.interrupted:
            raise UserError(f"there is no interrupted request #{job_id} to try again")
        if interaction.user.id != row.user_id:
            raise UserError(f"only {row.user_name}, whose request this was, can try it again")
        if job_id in self._retrying or retried(row):
            raise UserError("this request has already been tried again")
        self._retrying.add(job_id)
        try:
            origin, matchup = origin_from_params(row.params), matchup_from_params(row.params)
            await self.app.seeds.check_sources(origin)  # a seed deleted meanwhile is refused now
            if matchup is not None:
                self.app.arena.check(matchup)  # so is a model uninstalled meanwhile
            await self.start(interaction, Resolved.from_params(row.params), origin, matchup,
                             queued=lambda job: self._retried(interaction, row, job))
        finally:
            self._retrying.discard(job_id)

    async def _retried(self, interaction: discord.Interaction, row: JobRow, job: Job) -> None:
        """Record that the interrupted job was queued again and take its button away. Only
        once queued: a refused retry (queue full) leaves the button for a later press."""
        try:
            await self.jobs.record_retry(row, job)
        except StoreError:
            log.exception("could not record that job %d was tried again", row.id)
        if interaction.message is None:
            return
        try:
            await interaction.message.edit(
                content=f"{interaction.message.content}\n🔁 Tried again (request #{job.id}).",
                view=None)
        except discord.HTTPException:
            # Cosmetic: the row refuses further presses either way.
            log.warning("could not remove the Try again button of job %d", row.id, exc_info=True)

    async def cancel(self, interaction: discord.Interaction, job_id: int) -> None:
        job = await self.jobs.cancel(job_id, member_ref(interaction.user))
        # Answer by updating the message the button is on: the member sees it at once.
        await respond.update(interaction, content=cancelled_text(job_line(job)), view=None)

    # -- running a job ----------------------------------------------------------------------

    async def start(self, interaction: discord.Interaction, resolved: Resolved,
                    origin: Origin = PLAIN, matchup: Matchup | None = None, *,
                    queued: Callable[[Job], Awaitable[None]] | None = None) -> None:
        """Admit (or refuse, ephemerally, before acknowledging), defer, queue, then follow.
        With a ``matchup`` the job makes an arena pair instead of one clip; ``queued`` is
        awaited once the job is in the queue, before it is followed."""
        job = self.jobs.admit(resolved, member_ref(interaction.user), where_of(interaction),
                              origin, matchup)
        # follow() records the answer once posted; should this process die first, another
        # one posts it (JobQueue's leases).
        job.answer_recorded_by_follower = True
        try:
            message_id, original = await respond.progress_message(interaction)
            await self.jobs.enqueue(job)
        except BaseException:
            self.jobs.abandon(job)
            raise
        await self.jobs.set_message(job, message_id)
        if queued is not None:
            await queued(job)
        reply = JobReply(interaction, message_id, ttl=self.bot.token_ttl, original=original)
        await self.follow(job, reply)

    async def follow(self, job: Job, reply: JobReply) -> None:
        """Mirror the job's events in its message until it ends."""
        line = job_line(job)
        what = "clip" if job.matchup is None else "arena pair"
        async for event in job.events():
            try:
                if isinstance(event, Queued):
                    assert job.id is not None
                    await reply.edit(content=queued_text(line, event.position),
                                     view=persistent_view(CANCEL.item(job.id)))
                elif isinstance(event, Stage):
                    await reply.edit(content=stage_text(line, event), view=None)
                elif isinstance(event, Done | Failed) and not await self.jobs.claim_answer(job):
                    # This process's lease ran out and another one took the job: it answers.
                    log.warning("job %s was taken over by another process", job.id)
                elif isinstance(event, Done) and isinstance(event.result, ArenaResult):
                    await self._arena().post(reply, event.result, job)
                    await self._answered(job, reply.message_id)
                elif isinstance(event, Done):
                    await self.post(reply, event, job)  # records the answer once posted
                elif isinstance(event, Failed):
                    await reply.fail(f"Sorry — this {what} could not be made: {event.message}",
                                     failed_text(line, event.message, what))
                    await self._answered(job, reply.message_id)
                elif isinstance(event, Cancelled):
                    await reply.edit(content=cancelled_text(line), view=None)
                elif isinstance(event, Interrupted):
                    log.info("job %s interrupted by shutdown; the next start reports it", job.id)
            except Exception as error:
                # Nothing may escape to the command's error handler: it would delete the reply,
                # which by now may be the posted clip. Progress is cosmetic; a clip that could
                # not be posted is stored, and the member is told how to get it.
                log.warning("could not show %s for job %s", type(event).__name__, job.id,
                            exc_info=True)
                if isinstance(event, Done):
                    await self._post_failed(reply, event, error)
                if isinstance(event, Done | Failed):
                    await self._answered(job, reply.message_id)

    def _arena(self):  # type: ignore[no-untyped-def]
        cog = self.bot.get_cog("Arena")
        if cog is None:
            raise RuntimeError("the Arena cog is not loaded")
        return cog

    async def post(self, reply: JobReply, done: Done, job: Job) -> None:
        result = done.result
        assert not isinstance(result, ArenaResult)
        limit = reply.interaction.filesize_limit
        files, image, note = clip_files(result, limit)
        embed = clip_embed(result, image=image, requested_by=job.user.name)
        message = await reply.finish(content=note, embed=embed, files=files,
                                     view=clip_view(result.number))
        # Both records in one shielded step: a shutdown now must not lose either.
        await asyncio.shield(self._posted(job, result.clip_id, reply.interaction.guild_id,
                                          message))

    async def _posted(self, job: Job, clip_id: int, guild_id: int | None,
                      message: discord.Message) -> None:
        try:
            await self.app.library.set_message(
                clip_id, guild_id=guild_id, channel_id=message.channel.id, message_id=message.id)
        except StoreError:
            log.exception("could not record where clip #%d was posted", clip_id)
        await self.jobs.record_answer(job, message.id)

    async def _answered(self, job: Job, message_id: int | None) -> None:
        """Record that the member has the job's answer, right after posting it: shielded, so
        a shutdown arriving now cannot leave it posted but unrecorded (the next gateway would
        post it again)."""
        await asyncio.shield(self.jobs.record_answer(job, message_id))

    async def _post_failed(self, reply: JobReply, done: Done, error: Exception) -> None:
        reason = f" ({error.status})" if isinstance(error, discord.HTTPException) else ""
        if isinstance(done.result, ArenaResult):
            made = f"arena #{done.result.pair_id}"
            text = (f"{made} was made and saved, but Discord would not take the post{reason}: "
                    "try `/arena new` again")
        else:
            made = f"clip #{done.result.clip_id}"
            text = (f"{made} was made and saved, but Discord would not take the post{reason}: "
                    f"`/clip {done.result.number}` shows it again")
        try:
            await reply.fail(f"Sorry — {text}", f"✖ {text[:1].upper()}{text[1:]}")
        except discord.HTTPException:
            log.warning("could not tell the member about %s", made, exc_info=True)

    # -- restart notices --------------------------------------------------------------------

    async def notify_interrupted(self, rows: list[JobRow]) -> None:
        """Tell each member whose request died with the previous process; record who was told."""
        for row in rows:
            if row.channel_id is None:
                await self.jobs.mark_notified(row.id)
                continue
            if row.status == "done" or not row.interrupted:
                await self._answer_taken_over(row)
                continue
            channel = self.bot.get_partial_messageable(row.channel_id, guild_id=row.guild_id)
            try:
                matchup = matchup_from_params(row.params)
                what = request_line(Resolved.from_params(row.params),
                                    origin_from_params(row.params), matchup)
            except UserError:  # stored by a Cadenza that knew more kinds of request
                await self.jobs.mark_notified(row.id)
                continue
            command, made = ("/compose", "clip") if matchup is None else ("/arena new",
                                                                          "arena pair")
            try:
                if row.message_id is not None:
                    # A deleted progress message is fine: the notice below is what matters.
                    with contextlib.suppress(discord.NotFound):
                        await channel.get_partial_message(row.message_id).edit(
                            content=f"✖ Interrupted — Cadenza restarted before this {made} was "
                                    f"finished.\n{what}", view=None)
                await channel.send(
                    f"<@{row.user_id}> sorry — your {command} was interrupted when Cadenza "
                    f"restarted, so the {made} was not made ({what}). Press **Try again** to "
                    "queue it once more with the same options and seed.",
                    view=persistent_view(RETRY.item(row.id)),
                    allowed_mentions=discord.AllowedMentions(users=True, roles=False,
                                                             everyone=False),
                )
            except (discord.Forbidden, discord.NotFound):
                log.warning("cannot reach channel %s to report interrupted job %d",
                            row.channel_id, row.id)
            except discord.HTTPException:
                log.warning("could not report interrupted job %d; will retry next start",
                            row.id, exc_info=True)
                continue
            await self.jobs.mark_notified(row.id)


    async def _answer_taken_over(self, row: JobRow) -> None:
        """A job whose process died after it finished but before its member heard: its clip
        (files, piano roll and buttons, as it would have been posted) or its failure is posted
        once, from here."""
        channel = self.bot.get_partial_messageable(row.channel_id or 0, guild_id=row.guild_id)
        where = Where(guild_id=row.guild_id, channel_id=row.channel_id)
        mention = f"<@{row.user_id}>"
        fields: dict[str, Any] = {}
        if row.status == "done" and row.message_id is not None and \
                await self._already_posted(row.channel_id or 0, row.message_id):
            # The dead process posted the clip into its progress message but did not live to
            # record it: record it now, post nothing.
            await self.jobs.mark_notified(row.id, row.message_id)
            return
        if row.status == "done" and row.clip_id is not None and "arena" not in row.params:
            clip = await self.app.library.by_id(row.clip_id)
            number = (clip.ref_in(where.scope) or clip.number) if clip is not None else None
            try:
                result = await self.app.library.clip(
                    number or row.clip_id, viewer=UserRef(row.user_id, row.user_name),
                    where=where)
            except UserError:
                result = None
            if result is not None:
                guild = self.bot.get_guild(row.guild_id) if row.guild_id else None
                limit = guild.filesize_limit if guild is not None else \
                    discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
                files, image, note = clip_files(result, limit)
                text = f"{mention} here is your clip (made just before Cadenza restarted)."
                fields = {"embed": clip_embed(result, image=image, requested_by=row.user_name),
                          "files": files, "view": clip_view(result.number)}
                if note:
                    text += f"\n{note}"
            else:
                text = (f"{mention} your clip #{number or row.clip_id} was made just before "
                        f"Cadenza restarted: `/clip {number or row.clip_id}` shows it.")
        elif row.status == "done":
            text = (f"{mention} your arena pair was made just before Cadenza restarted: "
                    "`/arena new` makes another.")
        else:
            text = f"{mention} sorry — your request could not be made: {row.error or 'it failed'}"
        try:
            message = await channel.send(text, allowed_mentions=discord.AllowedMentions(
                users=True, roles=False, everyone=False), **fields)
        except discord.HTTPException:
            log.warning("could not answer taken-over job %d; will retry", row.id, exc_info=True)
            return
        await self.jobs.mark_notified(row.id, message.id)


    async def _already_posted(self, channel_id: int, message_id: int) -> bool:
        """Whether the progress message already carries the result (an embed)."""
        channel = self.bot.get_partial_messageable(channel_id)
        try:
            message = await channel.fetch_message(message_id)
        except discord.HTTPException:
            return False
        return bool(message.embeds)


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Compose(bot))
