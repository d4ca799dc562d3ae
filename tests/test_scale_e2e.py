"""End to end, scaled out: two gateway processes (shards 0 and 1 of 2) against the Discord
double, a Ray Serve app with two render replicas (`cadenza serve`, its own local cluster),
PostgreSQL. Members in guilds on both shards compose and vote; the shard-1 gateway is killed
with SIGKILL mid-job and mid-vote while the shard-0 gateway composes one of its own, then
restarted: every acknowledged vote is stored once, every job ends in exactly one clip or one
failure message (the dead gateway's taken over once its lease runs out, the live one's never),
and the guild on the other shard never notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from discord_double import DiscordDouble, GuildMember, MessageSnapshot
from discord_double import payloads as p
from test_bot_process import SLOW, Ledger, bot_env, bot_process
from test_discord_bot import is_clip

pytest.importorskip("ray.serve")

MEMBERS = 12  # per guild
LEASE = "3"  # seconds a dead gateway's jobs stay its own (CADENZA_JOB_LEASE)
SERVE_START = 300.0  # a local cluster, 3 replicas importing torch, on a busy 2-core machine


@pytest.fixture
async def api() -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble() as double:
        yield double


@contextlib.asynccontextmanager
async def serve_process(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """``cadenza serve`` with its own local Ray cluster; yields the address it prints."""
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cadenza", "serve", "-v", env=env, cwd=log.parent,
            stdout=asyncio.subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), SERVE_START)
        except TimeoutError:
            line = b""
        if not line.strip():
            raise AssertionError("cadenza serve did not start:\n"
                                 + log.read_text(errors="replace")[-3000:])
        yield line.decode().strip()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)  # stops its cluster with it
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def gateway(api: DiscordDouble, env: dict[str, str], shard: int,
                  log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``cadenza run --shard-ids <shard> --shard-count 2``, once its shard has identified."""
    async with bot_process(api, env, log, "--shard-ids", str(shard), "--shard-count", "2",
                           shard=(shard, 2)) as proc:
        yield proc


async def vote(api: DiscordDouble, ledger: Ledger, member: GuildMember, clip: MessageSnapshot,
               stars: int, stop: asyncio.Event, shard: int) -> bool:
    """Click ``stars`` under ``clip`` (its guild's clip #1: buttons carry the guild's number);
    False when no answer came because ``stop`` was set (the member's gateway was killed)."""
    if stop.is_set():
        return False
    ledger.clicks += 1
    key = (member.id, shard)
    click = await api.click(clip, f"rate:1:{stars}", user=member)
    deadline = asyncio.get_running_loop().time() + SLOW
    while (answer := click.original) is None or "rated" not in answer.content:
        if stop.is_set() or asyncio.get_running_loop().time() > deadline:
            ledger.unacked.setdefault(key, []).append(stars)
            return False
        await asyncio.sleep(0.02)
    assert answer.ephemeral and answer.content.startswith("You rated clip #1")
    ledger.acked.setdefault(key, []).append(stars)
    return True


def notices(api: DiscordDouble, channel_id: int) -> list[MessageSnapshot]:
    return [m for m in api.channel_messages(channel_id) if " sorry — " in m.content]


def clips(api: DiscordDouble, channel_id: int) -> list[MessageSnapshot]:
    return [m for m in api.channel_messages(channel_id) if is_clip(m)]


async def rows(url: str, sql: str) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_two_gateways_over_serve_survive_a_sigkill(  # type: ignore[no-untyped-def]
        api, tmp_path, tiny_models, pg_url) -> None:
    rng = random.Random(13)
    g0 = api.add_guild("shard zero", shard=(0, 2))
    g1 = api.add_guild("shard one", shard=(1, 2))
    owner = api.add_member(name="owner", permissions=p.ADMINISTRATOR)
    fans = {0: [api.add_member(name=f"a{i}", guild=g0) for i in range(MEMBERS)],
            1: [api.add_member(name=f"b{i}", guild=g1) for i in range(MEMBERS)]}
    channel = {0: g0.channel_id, 1: g1.channel_id}
    # Ray's own token authentication, shared by the cluster and the gateways that join it
    ray_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    serve_env = bot_env(api, tmp_path, tiny_models, **ray_env, CADENZA_SERVE="local",
                        CADENZA_SERVE_MODELS="lstm", CADENZA_SERVE_RENDER_REPLICAS="2",
                        CADENZA_SERVE_REPLICA_CPUS="0.5", CADENZA_DEADLINE_RENDER="20",
                        # clips titled "seed 99" hang in their render: a job is mid-render
                        # when its gateway dies
                        CADENZA_INJECT_FAULT="render:hang:seed 99")
    ledger = Ledger()
    plan = {m.id: [rng.randint(1, 5) for _ in range(5)] for ms in fans.values() for m in ms}
    stop = {0: asyncio.Event(), 1: asyncio.Event()}
    done: dict[int, int] = {m.id: 0 for ms in fans.values() for m in ms}
    slots = asyncio.Semaphore(8)

    async def votes(shard: int, clip: MessageSnapshot, upto: int) -> None:
        async def one(member: GuildMember) -> None:
            async with slots:
                while done[member.id] < upto and not stop[shard].is_set():
                    i = done[member.id]
                    done[member.id] += 1
                    if not await vote(api, ledger, member, clip, plan[member.id][i],
                                      stop[shard], shard):
                        return

        await asyncio.gather(*(one(m) for m in fans[shard]))

    async with serve_process(serve_env, tmp_path / "serve.log") as address:
        env = bot_env(api, tmp_path, tiny_models, **ray_env, CADENZA_SERVE=address,
                      CADENZA_OWNER_IDS=str(owner.id), CADENZA_DB=pg_url,
                      CADENZA_JOB_LEASE=LEASE)
        env.pop("CADENZA_INJECT_FAULT", None)
        logs = {s: tmp_path / f"gateway{s}.log" for s in (0, 1)}
        async with gateway(api, env, 0, logs[0]), gateway(api, env, 1, logs[1]) as second:
            # one copy of the commands in the dev guild (from the process holding its
            # shard), then the owner publishes them globally, once
            assert len(api.requests_to(
                "PUT /applications/{application_id}/guilds/{guild_id}/commands")) == 1
            assert not api.requests_to("PUT /applications/{application_id}/commands")
            synced = await api.slash("sync", {"scope": "global"}, user=owner)
            await synced.wait_original(lambda m: "everywhere" in m.content, timeout=SLOW)

            first = {s: await (await api.slash("compose", {"bars": 1, "seed": s + 1},
                                               user=fans[s][0], channel_id=channel[s]))
                     .wait_original(is_clip, timeout=SLOW) for s in (0, 1)}
            for s in (0, 1):  # each guild numbers its own clips
                assert first[s].embeds[0]["title"].startswith("Clip #1 —")
            voting = {s: asyncio.create_task(votes(s, first[s], 3)) for s in (0, 1)}
            while sum(map(len, ledger.acked.values())) < MEMBERS:
                await asyncio.sleep(0.05)
            # One after the other: sent together, the gateway may take the second first, and
            # then seed 98 renders and seed 99 hangs with nothing queued behind it.
            stuck = await api.slash("compose", {"bars": 1, "seed": 99}, user=fans[1][1],
                                    channel_id=channel[1])
            await stuck.wait_original(lambda m: "rendering" in m.content, timeout=SLOW)
            waiting = await api.slash("compose", {"bars": 1, "seed": 98}, user=fans[1][2],
                                      channel_id=channel[1])
            await waiting.wait_original(lambda m: "Queued" in m.content, timeout=SLOW)
            # the live gateway has a job in flight too: it must stay that gateway's
            live = await api.slash("compose", {"bars": 1, "seed": 6}, user=fans[0][4],
                                   channel_id=channel[0])
            await live.wait_original(lambda m: "Queued" in m.content or "writing" in m.content
                                     or "render" in m.content or is_clip(m), timeout=SLOW)
            stop[1].set()
            second.send_signal(signal.SIGKILL)  # mid-render, mid-vote
            await second.wait()
            await voting[1]
            # the other shard's members go on being answered meanwhile
            await voting[0]
            assert all(done[m.id] == 3 for m in fans[0])
            assert (await live.wait_original(is_clip, timeout=SLOW)).embeds[0]["title"] \
                .startswith("Clip #2 —")
            zero_more = await (await api.slash("compose", {"bars": 1, "seed": 5},
                                               user=fans[0][3], channel_id=channel[0])) \
                .wait_original(is_clip, timeout=SLOW)
            assert zero_more.embeds[0]["title"].startswith("Clip #3 —")

            async with gateway(api, env, 1, logs[1]):
                told = [await api.changes.wait_for(
                    lambda m=m: next((n for n in notices(api, channel[1])
                                      if n.content.startswith(f"<@{m.id}> sorry")), None),
                    timeout=SLOW, what="a restart notice") for m in fans[1][1:3]]
                # the waiting one is tried again (seed 99 would only hang again)
                retry = next(c for c in told[1].custom_ids if c.startswith("retry:"))
                retried = await api.click(told[1], retry, user=fans[1][2])
                remade = await retried.wait_original(is_clip, timeout=SLOW)
                assert remade.embeds[0]["title"].startswith("Clip #2 —")
                stop[1].clear()  # shard 1 answers again: its members finish voting
                await asyncio.gather(votes(0, first[0], 5), votes(1, first[1], 5))
                assert all(done[m.id] == 5 for ms in fans.values() for m in ms)

    # every vote confirmed is stored once, with the member's last value
    db = pg_url
    final = {(m.id, s): plan[m.id][4] for s in (0, 1) for m in fans[s]}
    ratings = await rows(db, "SELECT c.guild_id, r.user_id, r.stars FROM ratings r "
                       "JOIN clips c ON c.id = r.clip_id")
    by_guild = {g0.id: 0, g1.id: 1}
    stored = {(u, by_guild[g]): s for g, u, s in ratings}
    assert len(ratings) == len(stored) == len(final) and stored == final
    # and those are the last votes each member saw confirmed
    assert {key: acked[-1] for key, acked in ledger.acked.items()} == final
    # every job: one clip or one failure message, never both, never none
    jobs = await rows(db, "SELECT id, status, interrupted, guild_id FROM jobs ORDER BY id")
    assert [s for _, s, _, _ in jobs].count("done") == len(clips(api, channel[0])) + len(
        clips(api, channel[1])) == 5  # seeds 1, 2, 5 and 6, and the one tried again
    interrupted = [j for j in jobs if j[2]]
    assert len(interrupted) == 2 and all(j[1] == "failed" and j[3] == g1.id
                                         for j in interrupted)
    assert len(notices(api, channel[1])) == 2 and not notices(api, channel[0])
    assert {j[1] for j in jobs} == {"done", "failed"} and len(jobs) == 7
    assert ledger.clicks == sum(map(len, ledger.acked.values())) + sum(
        map(len, ledger.unacked.values()))
    assert len(api.requests_to("PUT /applications/{application_id}/commands")) == 1
    api.assert_no_errors()
    assert os.environ.get("CADENZA_SERVE") is None  # the test's own process stayed in-process
