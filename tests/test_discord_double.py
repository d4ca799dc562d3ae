"""Proves the Discord double by driving a real discord.py 2.7 commands.Bot through loopback."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import socket
import struct
import zlib
from typing import Literal

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands
from discord.ext import commands
from discord_double import ClientWouldRefuse, DiscordDouble

# A few bytes of a real Standard MIDI File header; the double must hand them back unchanged.
MIDI = b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0" + bytes(range(256)) * 4


def tiny_png(width: int, height: int) -> bytes:
    """A valid RGB PNG, so the double can report its size the way Discord does."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PREVIEW = tiny_png(6, 4)


class RateButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"rate:(?P<clip>[0-9]+):(?P<stars>[1-5])"
):
    """A persistent rating button; it must survive a bot restart by custom_id alone."""

    def __init__(self, clip: int, stars: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="★" * stars,
                style=discord.ButtonStyle.secondary,
                custom_id=f"rate:{clip}:{stars}",
            )
        )
        self.clip = clip
        self.stars = stars

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> RateButton:
        return cls(int(match["clip"]), int(match["stars"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"Rated clip {self.clip}: {self.stars}/5", ephemeral=True
        )


class Boom(Exception):
    pass


def make_bot(guild_id: int, *, sync: bool = True) -> commands.Bot:
    """A small slash-command bot like Cadenza's will be: defer, progress edits, file + buttons."""
    bot = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.default())
    guild = discord.Object(guild_id)

    @bot.tree.command(description="Compose a clip")
    @app_commands.describe(style="Musical style", bars="Length in bars")
    async def compose(
        interaction: discord.Interaction,
        style: Literal["jazz", "rock", "folk"],
        bars: app_commands.Range[int, 1, 32],
    ) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content=f"Composing {style}... 1/2")
        # A multipart PATCH of @original: progress with a piano-roll preview attached.
        await interaction.edit_original_response(
            content=f"Composing {style}... 2/2",
            attachments=[discord.File(io.BytesIO(PREVIEW), filename="preview.png")],
        )
        view = discord.ui.View(timeout=None)
        for stars in range(1, 6):
            view.add_item(RateButton(7, stars))
        await interaction.edit_original_response(content=f"Done: {bars} bars of {style}")
        await interaction.followup.send(
            f"Clip 7 ({style}, {bars} bars)",
            file=discord.File(io.BytesIO(MIDI), filename="clip 7.mid"),
            view=view,
        )

    @bot.tree.command(description="Always fails")
    async def fail(interaction: discord.Interaction) -> None:
        raise Boom("the synthesizer caught fire")

    seed = app_commands.Group(name="seed", description="Seed files")

    @seed.command(name="share", description="Share a seed file")
    async def share(
        interaction: discord.Interaction, file: discord.Attachment, note: str | None = None
    ) -> None:
        data = await file.read()
        digest = hashlib.sha256(data).hexdigest()[:12]
        await interaction.response.send_message(
            f"{file.filename} {len(data)} bytes sha={digest} limit={interaction.filesize_limit}"
            f" note={note}"
        )

    @bot.tree.command(description="Uploads a file of the given size")
    async def upload(interaction: discord.Interaction, size: int) -> None:
        await interaction.response.defer(ephemeral=True)
        try:
            await interaction.followup.send(file=discord.File(io.BytesIO(b"x" * size), "blob.bin"))
        except discord.HTTPException as exc:
            await interaction.followup.send(f"upload refused: {exc.status} {exc.code}")

    bot.tree.add_command(seed)

    @bot.tree.error
    async def on_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        cause = getattr(error, "original", error)
        await interaction.response.send_message(f"Sorry: {cause}", ephemeral=True)

    async def setup_hook() -> None:
        bot.add_dynamic_items(RateButton)
        if sync:
            bot.tree.copy_global_to(guild=guild)
            await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook
    return bot


class TitleForm(discord.ui.Modal, title="Name your clip"):
    name = discord.ui.TextInput(label="Title", custom_id="form:title", max_length=40)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Titled: {self.name.value}", ephemeral=True)


class PickView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.select(
        custom_id="pick:style",
        options=[discord.SelectOption(label=s.title(), value=s) for s in ("jazz", "rock")],
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        # UPDATE_MESSAGE (type 7): the message holding the menu is edited in place.
        await interaction.response.edit_message(content=f"Picked {select.values[0]}")

    @discord.ui.button(label="Close", custom_id="pick:close")
    async def close(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer()  # DEFERRED_UPDATE_MESSAGE: @original is the menu
        await interaction.delete_original_response()

    @discord.ui.button(label="Name it", custom_id="pick:name")
    async def name(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_modal(TitleForm())


def make_widget_bot(guild_id: int, seen: list[str]) -> commands.Bot:
    """Selects, modals, autocomplete, channel posts and a slow command, on a non-persistent view."""
    bot = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.default())
    guild = discord.Object(guild_id)

    @bot.tree.command(description="Pick a style")
    async def pick(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Pick one", view=PickView())

    async def styles(interaction: discord.Interaction, current: str) -> list:
        names = ["jazz", "jazz-funk", "rock"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    @bot.tree.command(description="Search styles")
    @app_commands.autocomplete(style=styles)
    async def search(interaction: discord.Interaction, style: str) -> None:
        await interaction.response.send_message(style)

    @bot.tree.command(description="Post in the channel")
    async def announce(interaction: discord.Interaction, text: str) -> None:
        assert interaction.channel is not None
        await interaction.channel.send(text, file=discord.File(io.BytesIO(b"ID3"), "a.mp3"))
        await interaction.response.send_message("Posted", ephemeral=True)

    @bot.tree.command(description="Too slow to answer")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            seen.append(f"callback refused: {exc.code}")

    @bot.event
    async def on_message(message: discord.Message) -> None:
        seen.append(f"MESSAGE_CREATE {message.content!r} by {message.author.id}")

    async def setup_hook() -> None:
        bot.tree.copy_global_to(guild=guild)
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook
    return bot


@pytest.fixture
async def api():
    async with DiscordDouble() as double:
        yield double


async def test_compose_progress_file_and_persistent_button_survive_restart(api: DiscordDouble):
    async with api.running(make_bot(api.guild_id)):
        # setup_hook synced the guild commands through the guild route, with Discord's shapes.
        synced = api.requests_to("PUT /applications/{application_id}/guilds/{guild_id}/commands")
        assert len(synced) == 1 and synced[0].status == 200
        compose = next(c for c in api.guild_commands if c["name"] == "compose")
        options = {o["name"]: o for o in compose["options"]}
        assert [c["value"] for c in options["style"]["choices"]] == ["jazz", "rock", "folk"]
        assert (options["bars"]["type"], options["bars"]["min_value"]) == (4, 1)
        assert options["bars"]["max_value"] == 32

        inter = await api.slash("compose", {"style": "jazz", "bars": 8})
        response = await inter.wait_response()
        assert response.type == 5 and not response.ephemeral

        done = await inter.wait_original(lambda m: m.content.startswith("Done"))
        followup = await inter.wait_followup()

        critic = api.add_member(name="critic")
        click = await api.click(followup, "rate:7:1", user=critic)
        first = await click.wait_original()
        assert first.content == "Rated clip 7: 1/5" and first.ephemeral
        assert click.payload["member"]["user"]["username"] == "critic"
        assert click.payload["message"]["id"] == str(followup.id)

    # The placeholder, then each progress edit in order, then the final text.
    states = [m.content for m in inter.original_history]
    assert states == ["", "Composing jazz... 1/2", "Composing jazz... 2/2", "Done: 8 bars of jazz"]
    assert inter.original_history[0].loading
    assert [m.filenames for m in inter.original_history] == [
        [],
        [],
        ["preview.png"],
        ["preview.png"],
    ]
    preview = done.attachments[0]
    assert (preview["width"], preview["height"], preview["content_type"]) == (6, 4, "image/png")
    assert done.file("preview.png") == PREVIEW
    patch = api.requests_to("PATCH /webhooks/{application_id}/{token}/messages/{message_id}")[1]
    assert patch.json["attachments"] == [{"id": 0, "filename": "preview.png"}]
    assert [(f.field, f.filename) for f in patch.files] == [("files[0]", "preview.png")]
    assert not done.loading and not done.ephemeral and done.edited
    assert done.interaction_metadata["name"] == "compose"

    assert followup.content == "Clip 7 (jazz, 8 bars)"
    assert followup.filenames == ["clip_7.mid"]  # Discord replaces spaces in filenames
    assert followup.file("clip_7.mid") == MIDI
    assert followup.attachments[0]["size"] == len(MIDI)
    assert followup.attachments[0]["content_type"] == "audio/midi"
    assert followup.custom_ids == [f"rate:7:{stars}" for stars in range(1, 6)]
    assert followup.interaction_metadata["original_response_message_id"] == str(done.id)
    assert [m.id for m in api.channel_messages()] == [done.id, followup.id]

    # The first bot is gone; the button still reaches a fresh one, via DynamicItem alone.
    # discord.py 2.7's close races its own reader, which sends 4000 first, so Discord would keep
    # the session resumable; the restarted bot identifies afresh all the same.
    assert not api.sessions[0].open and api.sessions[0].close_codes[-1] in (1000, 4000)
    async with api.running(make_bot(api.guild_id, sync=False)):
        click = await api.click(followup, "rate:7:4")
        answer = await click.wait_response()
        assert answer.type == 4 and answer.ephemeral
        reply = await click.wait_original()
        assert reply.content == "Rated clip 7: 4/5"
        assert reply.ephemeral
        assert reply.interaction_metadata["interacted_message_id"] == str(followup.id)
    assert len(api.sessions) == 2
    api.assert_no_errors()


async def test_tree_error_handler_sends_an_ephemeral_error(api: DiscordDouble):
    async with api.running(make_bot(api.guild_id)):
        inter = await api.slash("fail")
        response = await inter.wait_response()
    assert response.type == 4 and response.ephemeral
    assert response.data["content"] == "Sorry: the synthesizer caught fire"
    assert inter.original.ephemeral
    # Ephemeral replies are not visible to the channel.
    assert api.channel_messages() == []


async def test_client_side_validation_mirrors_discord(api: DiscordDouble):
    async with api.running(make_bot(api.guild_id)):
        with pytest.raises(ClientWouldRefuse, match="must be in"):
            await api.slash("compose", {"style": "jazz", "bars": 99})
        with pytest.raises(ClientWouldRefuse, match="only offers"):
            await api.slash("compose", {"style": "polka", "bars": 4})
        with pytest.raises(ClientWouldRefuse, match="required option 'bars'"):
            await api.slash("compose", {"style": "jazz"})
        with pytest.raises(ClientWouldRefuse, match="is a group"):
            await api.slash("seed", {})
        with pytest.raises(LookupError, match="no registered command"):
            await api.slash("nonexistent")


async def test_subcommand_with_attachment_option_downloads_from_the_double(api: DiscordDouble):
    seed = api.attachment(MIDI, "my seed.mid")
    async with api.running(make_bot(api.guild_id)):
        inter = await api.slash(
            "seed share", {"file": seed, "note": "hi"}, attachment_size_limit=1234
        )
        reply = await inter.wait_original()
    data = inter.payload["data"]
    assert data["options"][0]["type"] == 1 and data["options"][0]["name"] == "share"
    assert data["resolved"]["attachments"][str(seed.id)]["filename"] == "my_seed.mid"
    digest = hashlib.sha256(MIDI).hexdigest()[:12]
    assert reply.content == f"my_seed.mid {len(MIDI)} bytes sha={digest} limit=1234 note=hi"
    downloads = [r for r in api.requests if r.path.startswith("/attachments/")]
    assert len(downloads) == 1 and downloads[0].status == 200


async def test_upload_over_the_interaction_limit_is_refused(api: DiscordDouble):
    async with api.running(make_bot(api.guild_id)):
        small = await api.slash("upload", {"size": 100}, attachment_size_limit=1024)
        ok = await small.wait_original()
        big = await api.slash("upload", {"size": 2048}, attachment_size_limit=1024)
        refused = await big.wait_original()
    # The first followup after an ephemeral deferral resolves the placeholder, staying ephemeral.
    assert ok.ephemeral and ok.file("blob.bin") == b"x" * 100 and small.followups == []
    # The refused upload left the placeholder loading, so the bot's next followup resolved it.
    assert refused.content == "upload refused: 413 40005" and refused.ephemeral
    assert [r.status for r in big.errors] == [413]
    assert big.followups == []


async def test_reconnect_resumes_the_same_session(api: DiscordDouble):
    async with api.running(make_bot(api.guild_id)):
        session = await api.reconnect()
        assert session.resumes == 1 and len(api.sessions) == 1
        assert api.gateway.heartbeats >= 2  # discord.py beats once on every HELLO
        inter = await api.slash("compose", {"style": "rock", "bars": 1})
        assert (await inter.wait_followup()).content == "Clip 7 (rock, 1 bars)"


async def test_unknown_routes_get_a_discord_404_and_are_recorded(api: DiscordDouble):
    async with api.running(make_bot(api.guild_id)) as bot:
        with pytest.raises(discord.NotFound) as caught:
            await bot.http.request(discord.http.Route("GET", "/stickers/{id}", id=1))
        assert caught.value.code == 0
        with pytest.raises(discord.NotFound) as caught:
            await bot.http.get_message(api.channel_id, 12345)
        assert caught.value.code == 10008
    assert [r.path for r in api.unknown_requests] == ["/stickers/1"]


async def test_double_restores_discord_and_leaves_nothing_running():
    before_tasks = asyncio.all_tasks()
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with DiscordDouble() as api:
        assert api.api_url == discord.http.Route.BASE
        port = api.port
        async with api.running(make_bot(api.guild_id)):
            inter = await api.slash("fail")
            await inter.wait_response()
        # Plain aiohttp can read the REST side too, with the bot token.
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bot {api.token}"}
            async with session.get(f"{api.api_url}/users/@me", headers=headers) as resp:
                assert (await resp.json())["id"] == str(api.application_id)
            async with session.get(f"{api.api_url}/users/@me") as resp:
                assert resp.status == 401
    assert base == discord.http.Route.BASE
    assert gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before_tasks if not t.done()]
    assert leaked == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_select_edits_in_place_and_button_opens_a_modal(api: DiscordDouble):
    async with api.running(make_widget_bot(api.guild_id, [])):
        inter = await api.slash("pick")
        menu = await inter.wait_original()
        assert menu.custom_ids == ["pick:style", "pick:close", "pick:name"]
        assert menu.component("pick:style")["options"][1]["value"] == "rock"

        chose = await api.select(menu, "pick:style", ["rock"])
        assert (await chose.wait_response()).type == 7
        with pytest.raises(ClientWouldRefuse, match="offers"):
            await api.select(menu, "pick:style", ["polka"])

        opener = await api.click(menu, "pick:name")
        modal = (await opener.wait_response()).data
        assert modal["custom_id"] and modal["title"] == "Name your clip"
        submitted = await api.submit_modal(opener, {"form:title": "Night Drive"})
        titled = await submitted.wait_original()

        closer = await api.click(menu, "pick:close")
        assert (await closer.wait_response()).type == 6
        gone = await closer.wait_original(lambda m: m.deleted)
        with pytest.raises(LookupError, match="deleted"):
            await api.click(menu, "pick:name")
    assert gone.id == menu.id and api.channel_messages() == []
    # The select's UPDATE_MESSAGE edited the menu message itself, which is chose's @original.
    assert chose.original.id == menu.id and api.message(menu.id).content == "Picked rock"
    assert [m.content for m in api.history(menu.id)] == ["Pick one", "Picked rock", "Picked rock"]
    assert api.history(menu.id)[-1].deleted
    assert chose.payload["data"]["values"] == ["rock"]
    assert titled.content == "Titled: Night Drive" and titled.ephemeral
    meta = titled.interaction_metadata
    assert meta["type"] == 5 and meta["triggering_interaction_metadata"]["id"] == str(opener.id)


async def test_autocomplete_offers_the_bots_choices(api: DiscordDouble):
    async with api.running(make_widget_bot(api.guild_id, [])):
        typing = await api.autocomplete("search", {"style": "ja"}, focused="style")
        response = await typing.wait_response()
    assert response.type == 8
    assert [c["value"] for c in response.choices] == ["jazz", "jazz-funk"]
    assert typing.payload["data"]["options"][0] == {
        "name": "style",
        "type": 3,
        "value": "ja",
        "focused": True,
    }


async def test_channel_posts_are_stored_and_dispatched_back_to_the_bot(api: DiscordDouble):
    seen: list[str] = []
    async with api.running(make_widget_bot(api.guild_id, seen)):
        inter = await api.slash("announce", {"text": "New clip!"})
        await inter.wait_original()
        post = await api.wait_for_request(
            lambda r: r.route == "POST /channels/{channel_id}/messages"
        )
        await api.changes.wait_for(lambda: seen, timeout=5, what="on_message")
    assert post.files[0].filename == "a.mp3" and post.files[0].data == b"ID3"
    assert post.json["content"] == "New clip!"
    [message] = api.channel_messages()
    assert message.content == "New clip!" and message.file("a.mp3") == b"ID3"
    assert message.attachments[0]["content_type"] == "audio/mpeg"
    # The ephemeral "Posted" is not a channel message and is not dispatched over the gateway.
    assert seen == [f"MESSAGE_CREATE 'New clip!' by {api.bot_user_id}"]
    assert api.sessions[0].zlib_stream  # discord.py asked for zlib-stream and decoded it


async def test_a_callback_after_the_deadline_is_unknown(api: DiscordDouble):
    api.callback_deadline = 0.1
    seen: list[str] = []
    async with api.running(make_widget_bot(api.guild_id, seen)):
        inter = await api.slash("slow")
        await api.changes.wait_for(lambda: seen, timeout=5, what="the bot to give up")
    assert seen == ["callback refused: 10062"]
    assert inter.response is None and [r.status for r in inter.errors] == [404]
    with pytest.raises(TimeoutError, match=r"refused: POST /interactions/.* -> 404 .*10062"):
        await inter.wait_response(timeout=0.1)


async def test_login_and_intents_are_checked_like_discord(api: DiscordDouble):
    members_only = discord.Intents.default()
    members_only.members = True
    bot = commands.Bot(command_prefix="!", intents=members_only, guild_ready_timeout=0.05)
    api.add_member(name="alice")
    async with api.running(bot):
        # With the members intent discord.py chunks the guild over the gateway (op 8).
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        names = sorted(m.name for m in bot.get_guild(api.guild_id).members)
    assert names == ["Cadenza", "alice", "guild-owner", "tester"]
    assert "GUILD_MEMBERS_CHUNK" in api.sessions[0].event_names()

    api.allowed_privileged_intents = 0  # the portal toggles are off
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with api.running(commands.Bot(command_prefix="!", intents=members_only)):
            pass
    wrong = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await wrong.login("not-the-token")
    await wrong.close()
