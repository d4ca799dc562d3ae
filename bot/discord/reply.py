"""Where a job's progress and result go: the interaction's reply while its token lives, then the
channel (interaction tokens expire after 15 minutes; a long queue can outlast one)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import discord

from cadenza.discord.errors import fit_content, send_private

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=15)
# Leave room for the upload of the finished clip to complete before the token dies.
DEFAULT_TOKEN_TTL = TOKEN_LIFETIME - timedelta(minutes=1)


class JobReply:
    """Edits the deferred reply (``message_id``) while the interaction token is usable; after
    ``ttl`` it edits that message through the channel and posts the result as a new message."""

    def __init__(self, interaction: discord.Interaction, message_id: int | None, *,
                 ttl: timedelta = DEFAULT_TOKEN_TTL, original: bool = True) -> None:
        self.interaction = interaction
        self.message_id = message_id
        # the interaction's original response, or a follow-up it sent (the watchdog had
        # already answered privately: cadenza.discord.respond.progress_message)
        self.original = original
        self.deadline = interaction.created_at + ttl
        client = interaction.client
        assert interaction.channel_id is not None
        self.channel = client.get_partial_messageable(
            interaction.channel_id, guild_id=interaction.guild_id)

    @property
    def token_alive(self) -> bool:
        return discord.utils.utcnow() < self.deadline

    @property
    def mention(self) -> str:
        return self.interaction.user.mention

    async def edit(self, **fields: Any) -> None:
        """Update the progress message (content, view ...)."""
        if self.token_alive:
            if self.original or self.message_id is None:
                await self.interaction.edit_original_response(**fields)
            else:
                await self.interaction.followup.edit_message(self.message_id, **fields)
        elif self.message_id is not None:
            await self.channel.get_partial_message(self.message_id).edit(**fields)

    async def finish(self, *, content: str | None, embed: discord.Embed,
                     files: list[discord.File], view: discord.ui.View,
                     what: str = "clip") -> discord.Message:
        """Turn the progress message into the clip (or the arena pair: ``what``), or post it
        when the token is gone."""
        if self.token_alive and (self.original or self.message_id is None):
            return await self.interaction.edit_original_response(
                content=content, embed=embed, attachments=files, view=view)
        if self.token_alive:
            return await self.interaction.followup.edit_message(
                self.message_id, content=content, embed=embed, attachments=files, view=view)
        text = f"{self.mention} your {what} is ready" + (f"\n{content}" if content else "")
        message = await self.channel.send(
            text, embed=embed, files=files, view=view,
            allowed_mentions=discord.AllowedMentions(users=True, roles=False, everyone=False))
        if self.message_id is not None:
            try:
                await self.channel.get_partial_message(self.message_id).edit(
                    content=f"✔ Done — {message.jump_url}", view=None)
            except discord.HTTPException:
                log.warning("could not update progress message %s", self.message_id)
        return message

    async def fail(self, text: str, public_text: str) -> None:
        """Tell the member privately while we can; afterwards the progress message says it."""
        if self.token_alive and not self.original and self.message_id is not None:
            # the public progress follow-up stays: it says the clip failed
            await self.edit(content=fit_content(public_text), view=None)
        if self.token_alive:
            await send_private(self.interaction, text)
        else:
            await self.edit(content=fit_content(public_text), view=None)
