"""The Discord double shards as Discord does: discord.py's AutoShardedBot, in one process or
split over two, gets each guild's events on the shard ``(guild_id >> 22) % shard_count``."""

from __future__ import annotations

import discord
import pytest
from discord.ext import commands
from discord_double import DiscordDouble, GatewaySession
from discord_double.gateway import INVALID_SHARD, SHARDING_REQUIRED


def shard_of(guild_id: int, count: int) -> int:
    return (guild_id >> 22) % count


def ready_guilds(session: GatewaySession) -> set[int]:
    """The guilds READY named to a session."""
    ready = next(data for _, name, data in session.events if name == "READY")
    return {int(g["id"]) for g in ready["guilds"]}


def make_bot(name: str, **shards: object) -> commands.AutoShardedBot:
    """A sharded bot whose /where answers with the bot's name and the shard it heard on."""
    bot = commands.AutoShardedBot(command_prefix=commands.when_mentioned,
                                  intents=discord.Intents.none() | discord.Intents(guilds=True),
                                  **shards)  # type: ignore[arg-type]

    @bot.tree.command(name="where", description="Which process and shard answers")
    async def where(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"{name} shard {interaction.guild.shard_id}")

    bot.heard = where  # type: ignore[attr-defined]  # keep a reference
    return bot


async def where_answer(api: DiscordDouble, channel_id: int, member) -> str:  # type: ignore[no-untyped-def]
    inter = await api.slash("where", {}, channel_id=channel_id, user=member)
    return (await inter.wait_response()).data["content"]


@pytest.fixture
async def api():  # type: ignore[no-untyped-def]
    async with DiscordDouble() as double:
        yield double


async def test_guilds_get_ids_on_the_shard_asked_for(api: DiscordDouble) -> None:
    guilds = [api.add_guild(f"g{n}", shard=(n % 4, 4)) for n in range(8)]
    assert [shard_of(g.id, 4) for g in guilds] == [0, 1, 2, 3, 0, 1, 2, 3]
    ids = [g.id for g in guilds]
    assert ids == sorted(ids) and len(set(ids)) == 8  # still increasing snowflakes


async def test_two_processes_each_get_only_their_shards_guilds(api: DiscordDouble) -> None:
    first = api.add_guild("on zero", shard=(0, 2))
    second = api.add_guild("on one", shard=(1, 2))
    fan0 = api.add_member(name="fan0", guild=first)
    fan1 = api.add_member(name="fan1", guild=second)
    a = make_bot("A", shard_ids=[0], shard_count=2)
    b = make_bot("B", shard_ids=[1], shard_count=2)
    async with api.running(a), api.running(b):
        a_guilds = ready_guilds(await api.wait_identified(shard=(0, 2)))
        b_guilds = ready_guilds(await api.wait_identified(shard=(1, 2)))
        assert a_guilds == {g.id for g in api.guilds.values() if shard_of(g.id, 2) == 0}
        assert b_guilds == {g.id for g in api.guilds.values() if shard_of(g.id, 2) == 1}
        assert first.id in a_guilds and second.id in b_guilds
        assert a_guilds.isdisjoint(b_guilds)
        # discord.py's own cache agrees: each process holds only its shard's guilds
        await a.wait_until_ready()
        await b.wait_until_ready()
        assert a.get_guild(first.id) is not None and a.get_guild(second.id) is None
        assert b.get_guild(second.id) is not None and b.get_guild(first.id) is None
        await a.tree.sync()
        assert await where_answer(api, first.channel_id, fan0) == "A shard 0"
        assert await where_answer(api, second.channel_id, fan1) == "B shard 1"
    api.assert_no_errors()


async def test_one_process_with_every_shard_hears_each_guild_on_its_own(
        api: DiscordDouble) -> None:
    guilds = [api.add_guild(f"g{n}", shard=(n % 3, 3)) for n in range(3)]
    members = [api.add_member(name=f"m{n}", guild=g) for n, g in enumerate(guilds)]
    bot = make_bot("all", shard_count=3)
    async with api.running(bot):
        await bot.wait_until_ready()
        assert sorted(s.shard for s in api.sessions) == [(0, 3), (1, 3), (2, 3)]
        await bot.tree.sync()
        for n, (guild, member) in enumerate(zip(guilds, members, strict=True)):
            assert bot.get_guild(guild.id).shard_id == n
            assert await where_answer(api, guild.channel_id, member) == f"all shard {n}"


async def test_without_a_shard_count_the_bot_takes_the_recommended_one(
        api: DiscordDouble) -> None:
    api.max_guilds_per_shard = 2500
    bot = make_bot("auto")
    async with api.running(bot):
        await bot.wait_until_ready()
        assert bot.shard_count == 1  # GET /gateway/bot: one shard per 1,000 guilds
        assert api.sessions[-1].shard == (0, 1)


async def test_a_shard_out_of_range_is_refused(api: DiscordDouble) -> None:
    bot = make_bot("bad", shard_ids=[2], shard_count=2)
    with pytest.raises(discord.ConnectionClosed) as caught:
        async with api.running(bot, timeout=5):
            pass
    assert caught.value.code == INVALID_SHARD


async def test_too_many_guilds_on_one_shard_is_sharding_required(api: DiscordDouble) -> None:
    api.max_guilds_per_shard = 2
    for n in range(2):
        api.add_guild(f"extra {n}", shard=(0, 2))
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.ConnectionClosed) as caught:
        async with api.running(client, timeout=5):
            pass
    assert caught.value.code == SHARDING_REQUIRED
    # split over two shards each holds few enough: shard 1 has only the default guild at most
    bot = make_bot("split", shard_ids=[1], shard_count=2)
    async with api.running(bot):
        await api.wait_identified(shard=(1, 2))


async def test_guild_events_go_to_their_shard_only(api: DiscordDouble) -> None:
    first = api.add_guild("on zero", shard=(0, 2))
    second = api.add_guild("on one", shard=(1, 2))
    voice = api.add_voice_channel("Lounge", guild=second)
    member = api.add_member(name="singer", guild=second)
    intents = discord.Intents.none() | discord.Intents(guilds=True, voice_states=True)
    a = commands.AutoShardedBot(command_prefix="!", intents=intents, shard_ids=[0],
                                shard_count=2)
    b = commands.AutoShardedBot(command_prefix="!", intents=intents, shard_ids=[1],
                                shard_count=2)
    async with api.running(a), api.running(b):
        await a.wait_until_ready()
        await b.wait_until_ready()
        await api.join_voice(member, voice)
        s0, s1 = (await api.wait_identified(shard=(0, 2)), await api.wait_identified(shard=(1, 2)))
        assert "VOICE_STATE_UPDATE" in s1.event_names()
        assert "VOICE_STATE_UPDATE" not in s0.event_names()
        assert first.id not in ready_guilds(s1) and second.id in ready_guilds(s1)
