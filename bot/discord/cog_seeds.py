"""/seed share, list, show, delete, tree and blend: members' motifs, built on and credited."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from cadenza.discord import respond, specs
from cadenza.discord.cog_compose import seed_suggestions, seed_where
from cadenza.discord.present import (
    member_ref,
    rendered_files,
    seed_embed,
    seed_list_embed,
    shared_embed,
    tree_embed,
)
from cadenza.errors import UserError
from cadenza.options import GROUPS, parse_options
from cadenza.seeds import Upload, check_upload_size

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

ShareClipRange = specs.int_range("seed share", "clip")
PageRange = specs.int_range("seed list", "page")
BlendBarsRange = specs.int_range("seed blend", "bars")
SeedRange = specs.int_range("seed blend", "seed")


def _given(**raw: Any) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if v is not None}


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
    @app_commands.choices(meter=specs.choices("seed share", "meter"))
    async def share(self, interaction: discord.Interaction, name: str,
                    clip: ShareClipRange | None = None, bars: str | None = None,
                    file: discord.Attachment | None = None, notes: str | None = None,
                    meter: str | None = None, public: bool | None = None) -> None:
        upload = attachment_upload(file) if file is not None else None
        opts = parse_options("seed share", _given(name=name, clip=clip, bars=bars, file=upload,
                                                  notes=notes, meter=meter, public=public))
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
            upload=opts.get("file"), notes=opts.get("notes"), meter=opts.get("meter", (4, 4)),
            public=public)
        # notes and clips take milliseconds: answered at once (refusals stay ephemeral)
        await respond.answer(interaction, embed=shared_embed(result), ephemeral=not public)

    # -- list, show, tree ---------------------------------------------------------------------

    @app_commands.command(name="list", description=specs.spec("seed list").description)
    @app_commands.describe(**specs.describe("seed list"))
    async def list_seeds(self, interaction: discord.Interaction, query: str | None = None,
                         page: PageRange | None = None) -> None:
        opts = parse_options("seed list", _given(query=query, page=page))
        listing = await self.app.seeds.list_seeds(member_ref(interaction.user),
                                            seed_where(interaction), query=opts.get("query"),
                                            page=opts.get("page", 1))
        # Ephemeral: the list includes the member's private seeds.
        await respond.answer(interaction, embed=seed_list_embed(listing, opts.get("query")),
                             ephemeral=True)

    @app_commands.command(name="show", description=specs.spec("seed show").description)
    @app_commands.describe(**specs.describe("seed show"))
    async def show(self, interaction: discord.Interaction, name: str) -> None:
        opts = parse_options("seed show", {"name": name})
        where, user = seed_where(interaction), member_ref(interaction.user)
        seed = await self.app.seeds.visible_seed(opts["name"], user, where)
        await respond.defer(interaction, thinking=True, ephemeral=not seed.public)
        view = await self.app.seeds.show_seed(opts["name"], user, where)
        files, image, note = rendered_files(view.files, f"cadenza-seed-{view.seed.id}",
                                            interaction.filesize_limit)
        await respond.answer(interaction, note, embed=seed_embed(view, image=image), files=files,
                             ephemeral=not seed.public)

    @app_commands.command(name="tree", description=specs.spec("seed tree").description)
    @app_commands.describe(**specs.describe("seed tree"))
    async def tree(self, interaction: discord.Interaction, name: str) -> None:
        opts = parse_options("seed tree", {"name": name})
        tree = await self.app.seeds.seed_tree(opts["name"], member_ref(interaction.user),
                                        seed_where(interaction))
        await respond.answer(interaction, embed=tree_embed(tree), ephemeral=not tree.seed.public)

    # -- delete -------------------------------------------------------------------------------

    @app_commands.command(name="delete", description=specs.spec("seed delete").description)
    @app_commands.describe(**specs.describe("seed delete"))
    async def delete(self, interaction: discord.Interaction, name: str) -> None:
        opts = parse_options("seed delete", {"name": name})
        seed = await self.app.seeds.delete_seed(opts["name"], member_ref(interaction.user),
                                          seed_where(interaction),
                                          can_manage=interaction.permissions.manage_guild)
        await respond.answer(
            interaction, f"Deleted seed “{seed.name}” (shared by {seed.user_name}). Clips built "
            "on it keep it in their credits; the name is free again.", ephemeral=True)

    # -- blend --------------------------------------------------------------------------------

    @app_commands.command(name="blend", description=specs.spec("seed blend").description)
    @app_commands.describe(**specs.describe("seed blend"))
    @app_commands.choices(style=specs.choices("seed blend", "style"))
    async def blend(self, interaction: discord.Interaction, a: str, b: str,
                    bars: BlendBarsRange | None = None, style: str | None = None,
                    seed: SeedRange | None = None) -> None:
        opts = parse_options("seed blend", _given(a=a, b=b, bars=bars, style=style, seed=seed))
        resolved, origin = await self.app.seeds.plan_blend(
            opts["a"], opts["b"], member_ref(interaction.user), seed_where(interaction),
            bars=opts.get("bars"), style=opts.get("style"), seed=opts.get("seed"))
        compose = self.bot.get_cog("Compose")
        if compose is None:
            raise RuntimeError("the Compose cog is not loaded")
        await compose.start(interaction, resolved, origin)  # type: ignore[attr-defined]

    # -- autocomplete -------------------------------------------------------------------------

    @show.autocomplete("name")
    @tree.autocomplete("name")
    @delete.autocomplete("name")
    @blend.autocomplete("a")
    @blend.autocomplete("b")
    async def _names(self, interaction: discord.Interaction,
                     current: str) -> list[app_commands.Choice[str]]:
        return await seed_suggestions(interaction, current)


async def setup(bot: CadenzaBot) -> None:
    await bot.add_cog(Seeds(bot))
