"""/compose and its buttons (Reroll, Cancel, Try again): queue, progress edits, the posted clip."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import resolved_from_row
from bot.discord_bot import specs
from bot.discord_bot.buttons import CancelButton, RerollButton, RetryButton
from bot.discord_bot.present import (
    cancel_view,
    cancelled_text,
    clip_embed,
    clip_files,
    clip_view,
    failed_text,
    member_ref,
    queued_text,
    request_line,
    retry_view,
    stage_text,
    where_of,
)
from bot.discord_bot.reply import JobReply
from bot.errors import UserError
from bot.jobs import Cancelled, Done, Failed, Interrupted, Job, Queued, Stage, resolved_from_params
from bot.options import KEY_CHOICES, SEED_MAX, parse_options
from bot.service import ComposeRequest, Resolved
from bot.store import JobRow, StoreError

if TYPE_CHECKING:
    from bot.discord_bot.client import CadenzaBot

log = logging.getLogger(__name__)

BarsRange = specs.int_range("compose", "bars")
TempoRange = specs.int_range("compose", "tempo")
TemperatureRange = specs.float_range("compose", "temperature")
SeedRange = specs.int_range("compose", "seed")


class Compose(commands.Cog):
    """Admits requests into the job queue and follows each job to its posted clip."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app
        self.jobs = bot.jobs

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(RerollButton, CancelButton, RetryButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RerollButton, CancelButton, RetryButton)

    # -- /compose ---------------------------------------------------------------------------

    @app_commands.command(name="compose", description=specs.spec("compose").description)
    @app_commands.describe(**specs.describe("compose"))
    @app_commands.choices(style=specs.choices("compose", "style"))
    async def compose(
        self,
        interaction: discord.Interaction,
        style: str | None = None,
        bars: BarsRange | None = None,
        tempo: TempoRange | None = None,
        key: str | None = None,
        temperature: TemperatureRange | None = None,
        seed: SeedRange | None = None,
        model: str | None = None,
    ) -> None:
        raw = {"style": style, "bars": bars, "tempo": tempo, "key": key,
               "temperature": temperature, "seed": seed, "model": model}
        opts = parse_options("compose", {k: v for k, v in raw.items() if v is not None})
        await self.start(interaction, self.app.resolve(ComposeRequest.from_options(opts)))

    @compose.autocomplete("key")
    async def _key(self, interaction: discord.Interaction,
                   current: str) -> list[app_commands.Choice[str]]:
        return specs.suggest(KEY_CHOICES, current)

    @compose.autocomplete("model")
    async def _model(self, interaction: discord.Interaction,
                     current: str) -> list[app_commands.Choice[str]]:
        return specs.suggest(self.app.model_names(), current)

    # -- buttons ----------------------------------------------------------------------------

    async def reroll(self, interaction: discord.Interaction, clip_id: int) -> None:
        row = await self.app.store.get_clip(clip_id)
        if row is None:
            raise UserError(f"clip #{clip_id} no longer exists")
        resolved = resolved_from_row(row).with_seed(secrets.randbelow(SEED_MAX + 1))
        await self.start(interaction, resolved)

    async def retry(self, interaction: discord.Interaction, job_id: int) -> None:
        row = await self.app.store.get_job(job_id)
        if row is None:
            raise UserError(f"there is no request #{job_id} to try again")
        await self.start(interaction, resolved_from_params(row.params))

    async def cancel(self, interaction: discord.Interaction, job_id: int) -> None:
        job = await self.jobs.cancel(job_id, member_ref(interaction.user))
        # Answer by updating the message the button is on: the member sees it at once.
        await interaction.response.edit_message(content=cancelled_text(job.resolved), view=None)

    # -- running a job ----------------------------------------------------------------------

    async def start(self, interaction: discord.Interaction, resolved: Resolved) -> None:
        """Admit (or refuse, ephemerally, before acknowledging), defer, queue, then follow."""
        job = self.jobs.admit(resolved, member_ref(interaction.user), where_of(interaction))
        try:
            callback = await interaction.response.defer(thinking=True)
            await self.jobs.enqueue(job)
        except BaseException:
            self.jobs.abandon(job)
            raise
        message_id = callback.message_id if callback is not None else None
        if message_id is None:
            message_id = (await interaction.original_response()).id
        await self.jobs.set_message(job, message_id)
        reply = JobReply(interaction, message_id, ttl=self.bot.token_ttl)
        await self.follow(job, reply)

    async def follow(self, job: Job, reply: JobReply) -> None:
        """Mirror the job's events in its message until it ends."""
        r = job.resolved
        async for event in job.events():
            try:
                if isinstance(event, Queued):
                    assert job.id is not None
                    await reply.edit(content=queued_text(r, event.position),
                                     view=cancel_view(job.id))
                elif isinstance(event, Stage):
                    await reply.edit(content=stage_text(r, event), view=None)
                elif isinstance(event, Done):
                    await self.post(reply, event, job)
                elif isinstance(event, Failed):
                    await reply.fail(f"Sorry — this clip could not be made: {event.message}",
                                     failed_text(r, event.message))
                elif isinstance(event, Cancelled):
                    await reply.edit(content=cancelled_text(r), view=None)
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

    async def post(self, reply: JobReply, done: Done, job: Job) -> None:
        result = done.result
        limit = reply.interaction.filesize_limit
        files, image, note = clip_files(result, limit)
        embed = clip_embed(result, image=image, requested_by=job.user.name)
        message = await reply.finish(content=note, embed=embed, files=files,
                                     view=clip_view(result.clip_id))
        try:
            await self.app.store.set_clip_message(
                result.clip_id, guild_id=reply.interaction.guild_id,
                channel_id=message.channel.id, message_id=message.id)
        except StoreError:
            log.exception("could not record where clip #%d was posted", result.clip_id)

    async def _post_failed(self, reply: JobReply, done: Done, error: Exception) -> None:
        clip_id = done.result.clip_id
        reason = f" ({error.status})" if isinstance(error, discord.HTTPException) else ""
        text = (f"clip #{clip_id} was made and saved, but Discord would not take the post"
                f"{reason}: `/clip {clip_id}` shows it again")
        try:
            await reply.fail(f"Sorry — {text}", f"✖ {text[:1].upper()}{text[1:]}")
        except discord.HTTPException:
            log.warning("could not tell the member about clip #%d", clip_id, exc_info=True)

    # -- restart notices --------------------------------------------------------------------

    async def notify_interrupted(self, rows: list[JobRow]) -> None:
        """Tell each member whose request died with the previous process; record who was told."""
        for row in rows:
            if row.channel_id is None:
                await self.jobs.mark_notified(row.id)
                continue
            channel = self.bot.get_partial_messageable(row.channel_id, guild_id=row.guild_id)
            what = request_line(resolved_from_params(row.params))
            try:
                if row.message_id is not None:
                    # A deleted progress message is fine: the notice below is what matters.
                    with contextlib.suppress(discord.NotFound):
                        await channel.get_partial_message(row.message_id).edit(
                            content=f"✖ Interrupted — Cadenza restarted before this clip was "
                                    f"finished.\n{what}", view=None)
                await channel.send(
                    f"<@{row.user_id}> sorry — your /compose was interrupted when Cadenza "
                    f"restarted, so the clip was not made ({what}). Press **Try again** to queue "
                    "it once more with the same options and seed.",
                    view=retry_view(row.id),
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


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Compose(bot))
