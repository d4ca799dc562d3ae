"""/seed share, list, show, delete, tree and blend: members' motifs, built on and credited."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.discord import respond, specs
from cadenza.discord.cog_compose import seed_where
from cadenza.discord.present import (
    member_ref,
    rendered_files,
    seed_embed,
    seed_list_embed,
    shared_embed,
    tree_embed,
)
from cadenza.errors import UserError
from cadenza.music.score import Meter
from cadenza.options import GROUPS, given
from cadenza.seeds import Upload, check_upload_size

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

Share = specs.Options("seed share")
Listing = specs.Options("seed list")
Show = specs.Options("seed show")
Tree = specs.Options("seed tree")
Delete = specs.Options("seed delete")
Blend = specs.Options("seed blend")


def attachment_upload(attachment: discord.Attachment) -> Upload:
    """The attachment as the application's Upload: its size is known before downloading."""

    async def read() -> bytes:
        try:
            return await attachment.read()
        except discord.HTTPException as e:
            raise UserError(f"could not download {attachment.filename} from Discord "
                            f"({e.status}): try again") from None

    return Upload(attachment.filename, attachment.size, read)


class Seeds(commands.GroupCog, group_name="seed", group_description=GROUPS["seed"]):
    """Seeds live in a server: names are unique there, members see their own and public ones."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.app = bot.app
        super().__init__()

    # -- share --------------------------------------------------------------------------------

    @app_commands.command(name="share", description=specs.spec("seed share").description)
    @app_commands.describe(**specs.describe("seed share"))
    async def share(self, interaction: discord.Interaction, name: Share.name,
                    clip: Share.clip | None = None, bars: Share.bars | None = None,
                    file: Share.file | None = None, notes: Share.notes | None = None,
                    meter: Share.meter | None = None, public: Share.public | None = None,
                    ) -> None:
        upload = attachment_upload(file) if file is not None else None
        opts = given("seed share", name=name, clip=clip, bars=bars, file=upload, notes=notes,
                     meter=meter, public=public)
        where, user = seed_where(interaction), member_ref(interaction.user)
        # Everything that needs no download is refused before acknowledging, ephemerally;
        # a file over the limit is never downloaded.
        await self.app.seeds.check_seed_name(opts["name"], where)
        if upload is not None:
            check_upload_size(upload.size)
        public = bool(opts.get("public", False))
        if upload is not None:
            # Downloading and reading a file can take a moment: acknowledge first.
            await respond.defer(interaction, thinking=True, ephemeral=not public)
        result = await self.app.seeds.share_seed(
            opts["name"], user, where, clip_id=opts.get("clip"), bar_range=opts.get("bars"),
            upload=opts.get("file"), notes=opts.get("notes"), meter=opts.get("meter", Meter(4, 4)),
            public=public)
        # notes and clips take milliseconds: answered at once (refusals stay ephemeral)
        await respond.answer(interaction, embed=shared_embed(result), ephemeral=not public)

    # -- list, show, tree ---------------------------------------------------------------------

    @app_commands.command(name="list", description=specs.spec("seed list").description)
    @app_commands.describe(**specs.describe("seed list"))
    async def list_seeds(self, interaction: discord.Interaction,
                         query: Listing.query | None = None,
                         page: Listing.page | None = None) -> None:
        listing = await self.app.seeds.list_seeds(member_ref(interaction.user),
                                                  seed_where(interaction), query=query,
                                                  page=1 if page is None else page)
        # Ephemeral: the list includes the member's private seeds.
        await respond.answer(interaction, embed=seed_list_embed(listing, query), ephemeral=True)

    @app_commands.command(name="show", description=specs.spec("seed show").description)
    @app_commands.describe(**specs.describe("seed show"))
    async def show(self, interaction: discord.Interaction, name: Show.name) -> None:
        where, user = seed_where(interaction), member_ref(interaction.user)
        seed = await self.app.seeds.visible_seed(name, user, where)
        await respond.defer(interaction, thinking=True, ephemeral=not seed.public)
        view = await self.app.seeds.show_seed(name, user, where)
        files, image, note = rendered_files(view.files, f"cadenza-seed-{view.seed.id}",
                                            interaction.filesize_limit)
        await respond.answer(interaction, note, embed=seed_embed(view, image=image), files=files,
                             ephemeral=not seed.public)

    @app_commands.command(name="tree", description=specs.spec("seed tree").description)
    @app_commands.describe(**specs.describe("seed tree"))
    async def tree(self, interaction: discord.Interaction, name: Tree.name) -> None:
        tree = await self.app.seeds.seed_tree(name, member_ref(interaction.user),
                                              seed_where(interaction))
        await respond.answer(interaction, embed=tree_embed(tree), ephemeral=not tree.seed.public)

    # -- delete -------------------------------------------------------------------------------

    @app_commands.command(name="delete", description=specs.spec("seed delete").description)
    @app_commands.describe(**specs.describe("seed delete"))
    async def delete(self, interaction: discord.Interaction, name: Delete.name) -> None:
        seed = await self.app.seeds.delete_seed(name, member_ref(interaction.user),
                                                seed_where(interaction),
                                                can_manage=interaction.permissions.manage_guild)
        await respond.answer(
            interaction, f"Deleted seed “{seed.name}” (shared by {seed.user_name}). Clips built "
            "on it keep it in their credits; the name is free again.", ephemeral=True)

    # -- blend --------------------------------------------------------------------------------

    @app_commands.command(name="blend", description=specs.spec("seed blend").description)
    @app_commands.describe(**specs.describe("seed blend"))
    async def blend(self, interaction: discord.Interaction, a: Blend.a, b: Blend.b,
                    bars: Blend.bars | None = None, style: Blend.style | None = None,
                    seed: Blend.seed | None = None) -> None:
        given("seed blend", a=a, b=b)  # two different seeds
        resolved, origin = await self.app.seeds.plan_blend(
            a, b, member_ref(interaction.user), seed_where(interaction), bars=bars, style=style,
            seed=seed)
        compose = self.bot.get_cog("Compose")
        if compose is None:
            raise RuntimeError("the Compose cog is not loaded")
        await compose.start(interaction, resolved, origin)  # type: ignore[attr-defined]


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Seeds(bot))
