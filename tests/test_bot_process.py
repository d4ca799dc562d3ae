"""The real ``cadenza run`` process against the Discord double (tests/bot_under_double.py).

The crash test: 200 members click 1,000 stars, changing their votes, and the bot is killed with
SIGKILL in the middle while one clip renders and another waits; restarted on the same database,
every vote a member saw confirmed is stored, exactly once, with its final value, and both
interrupted requests are reported with a Try again button that works. The stuck-encoder test:
a render child whose encoder never returns is stopped at its deadline with a message, the next
job runs, and SIGTERM ends the process within 10 s while an encode hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from discord_double import DiscordDouble, GuildMember, MessageSnapshot
from test_discord_bot import is_clip

LAUNCHER = Path(__file__).with_name("bot_under_double.py")
START = 120.0  # seconds a bot process may take to connect on a busy CI machine
SLOW = 90.0
MEMBERS = 200
CONCURRENT = 40  # members clicking at once (each clicks, waits for the answer, clicks again)


@pytest.fixture
async def api() -> AsyncIterator[DiscordDouble]:
    async with DiscordDouble() as double:
        yield double


def bot_env(api: DiscordDouble, tmp_path: Path, tiny_models: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CADENZA_INJECT_FAULT", None)
    env.update({
        "CADENZA_TOKEN": api.token, "CADENZA_DB": str(tmp_path / "cadenza.db"),
        "CADENZA_OUTPUT": str(tmp_path / "out"), "CADENZA_MODELS": str(tiny_models),
        "CADENZA_DEV_GUILD": str(api.guild_id), "CADENZA_WORKERS": "1", "CI": "true",
        "CADENZA_TEST_API": api.api_url, "CADENZA_TEST_GATEWAY": api.gateway_url,
    })
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def bot_process(api: DiscordDouble, env: dict[str, str], log: Path, *args: str,
                      shard: tuple[int, int] | None = None,
                      ) -> AsyncIterator[asyncio.subprocess.Process]:
    """A ``cadenza run [args]`` process, once it (or its ``shard``) has identified with the
    double; killed on the way out if alive."""
    after = len(api.sessions)
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(LAUNCHER), "-v", *args, env=env, cwd=log.parent,
            stdout=out, stderr=out)
    try:
        waiting = asyncio.ensure_future(api.wait_identified(timeout=START, after=after,
                                                            shard=shard))
        exited = asyncio.ensure_future(proc.wait())
        done, _ = await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            waiting.cancel()
            raise AssertionError(f"cadenza run {' '.join(args)} exited ({proc.returncode}):\n"
                                 + log.read_text(errors="replace")[-3000:])
        exited.cancel()
        waiting.result()
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, grandchildren...), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [c for c, p in parents.items() if p in frontier]
        found += kids
        frontier = kids
    return found


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@dataclass
class Ledger:
    """Every click and what the member was told about it."""

    acked: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (member, clip)
    unacked: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    clicks: int = 0


async def vote(api: DiscordDouble, ledger: Ledger, member: GuildMember, clip: MessageSnapshot,
               clip_number: int, stars: int, stop: asyncio.Event) -> bool:
    """Click ``stars`` under ``clip``; False when the answer never came (``stop``: the bot
    was killed; an answer not in by then never comes)."""
    if stop.is_set():
        return False
    ledger.clicks += 1
    key = (member.id, clip_number)
    click = await api.click(clip, f"rate:{clip_number}:{stars}", user=member)
    deadline = time.monotonic() + 60
    while (answer := click.original) is None or "rated" not in answer.content:
        if stop.is_set() or time.monotonic() > deadline:  # the process died: no answer comes
            ledger.unacked.setdefault(key, []).append(stars)
            return False
        await asyncio.sleep(0.02)
    assert answer.ephemeral and answer.content.startswith(f"You rated clip #{clip_number}")
    ledger.acked.setdefault(key, []).append(stars)
    return True


async def test_acknowledged_votes_survive_sigkill_and_interrupted_jobs_can_be_retried(
        api, tmp_path, tiny_models) -> None:
    rng = random.Random(7)
    members = [api.add_member(name=f"fan{i}") for i in range(MEMBERS)]
    db, log = tmp_path / "cadenza.db", tmp_path / "bot.log"
    # Clips titled "seed 99" hang in their render child: a job is running when the bot dies.
    env = bot_env(api, tmp_path, tiny_models, CADENZA_INJECT_FAULT="render:hang:seed 99")
    ledger = Ledger()
    plan = {m.id: [rng.randint(1, 5) for _ in range(5)] for m in members}
    slots = asyncio.Semaphore(CONCURRENT)
    stop = asyncio.Event()

    async with bot_process(api, env, log) as first:
        clips = [await (await api.slash("compose", {"bars": 1, "seed": s})).wait_original(
            is_clip, timeout=SLOW) for s in (1, 2)]

        # each member: A, B, A again (a changed vote) now; B and A again after the restart
        order = [(clips[0], 1, 0), (clips[1], 2, 1), (clips[0], 1, 2), (clips[1], 2, 3),
                 (clips[0], 1, 4)]
        done: dict[int, int] = {m.id: 0 for m in members}  # clicks sent so far

        async def phase_one(member: GuildMember) -> None:
            async with slots:
                while done[member.id] < 3 and not stop.is_set():
                    clip, number, i = order[done[member.id]]
                    done[member.id] += 1
                    if not await vote(api, ledger, member, clip, number, plan[member.id][i],
                                      stop):
                        return

        voting = [asyncio.create_task(phase_one(m)) for m in members]
        while sum(map(len, ledger.acked.values())) < 250:
            await asyncio.sleep(0.05)
        stuck = await api.slash("compose", {"bars": 1, "seed": 99}, user=members[0])
        waiting = await api.slash("compose", {"bars": 1, "seed": 98}, user=members[1])
        await stuck.wait_original(lambda m: "rendering" in m.content, timeout=SLOW)
        await waiting.wait_original(lambda m: "Queued" in m.content, timeout=SLOW)
        stop.set()
        children = descendants(first.pid)  # the render pool's forkserver and its stuck child
        first.send_signal(signal.SIGKILL)  # mid-vote, mid-render
        await first.wait()
        await asyncio.gather(*voting)
    assert first.returncode == -signal.SIGKILL
    # A killed bot leaves no process behind: its render children see it die and end.
    assert children
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{pid}").exists() for pid in children) and \
            time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    # what a process killed while writing a clip leaves (its pid in the name): the next start
    # removes it
    out = tmp_path / "out"
    (out / f".pending-{first.pid}-clip-3-123.mid").write_bytes(b"MThd")

    # Every vote confirmed before the kill is on disk: the last confirmed one, or a click that
    # was in flight when the process died (stored, never confirmed); nothing else.
    stored = {(u, c): s for c, u, s in rows(db, "SELECT clip_id, user_id, stars FROM ratings")}
    for key, confirmed in ledger.acked.items():
        assert stored.get(key) in (confirmed[-1], *ledger.unacked.get(key, [])), key
    assert set(stored) <= set(ledger.acked) | set(ledger.unacked)
    assert ledger.unacked or len(stored) == len(ledger.acked)
    jobs_before = rows(db, "SELECT status FROM jobs ORDER BY id")
    assert jobs_before[-2:] == [("running",), ("queued",)]

    async with bot_process(api, bot_env(api, tmp_path, tiny_models), log) as second:
        # both members are told, with a Try again button; the first presses it
        notices = []
        for member in members[:2]:
            notice = await api.changes.wait_for(
                lambda m=member: next((s for s in api.channel_messages()
                                       if s.content.startswith(f"<@{m.id}> sorry")), None),
                timeout=SLOW, what="a restart notice")
            notices.append(notice)
        leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith((".pending-",
                                                                                ".encode-")))
        retry_id = next(c for c in notices[0].custom_ids if c.startswith("retry:"))
        retried = await api.click(notices[0], retry_id, user=members[0])
        remade = await retried.wait_original(is_clip, timeout=SLOW)

        async def phase_two(member: GuildMember) -> None:
            async with slots:
                while done[member.id] < len(order):
                    clip, number, i = order[done[member.id]]
                    done[member.id] += 1
                    assert await vote(api, ledger, member, clip, number, plan[member.id][i],
                                      asyncio.Event())

        await asyncio.gather(*(phase_two(m) for m in members))
        t0 = time.monotonic()
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)
        stopped = time.monotonic() - t0
    assert second.returncode == 0 and stopped < 10
    assert leftovers == []

    # 1,000 clicks, every one answered but those in flight when the process was killed
    assert ledger.clicks == 5 * MEMBERS == 1000
    assert ledger.clicks == sum(map(len, ledger.acked.values())) + sum(
        map(len, ledger.unacked.values()))
    # The final votes (all confirmed, after the restart): exactly these, once each.
    final = {(m.id, 1): plan[m.id][4] for m in members} | {(m.id, 2): plan[m.id][3]
                                                           for m in members}
    ratings = rows(db, "SELECT clip_id, user_id, stars FROM ratings")
    assert len(ratings) == len(final) == 2 * MEMBERS
    assert {(u, c): s for c, u, s in ratings} == final
    assert remade.embeds[0]["title"].startswith("Clip #3 —")
    statuses = rows(db, "SELECT status, interrupted, error FROM jobs ORDER BY id")
    interrupted = [s for s in statuses if s[1]]
    assert len(interrupted) == 2 and all(s[0] == "failed" for s in interrupted)
    assert statuses[-1][0] == "done"  # the retry
    assert "; tried again as request #" in interrupted[0][2]
    api.assert_no_errors()


async def test_a_stuck_encoder_is_stopped_and_sigterm_ends_the_process_within_10_s(
        api, tmp_path, tiny_models) -> None:
    env = bot_env(api, tmp_path, tiny_models, CADENZA_INJECT_FAULT="encode:hang:seed 13",
                  CADENZA_DEADLINE_ENCODE="3")
    async with bot_process(api, env, tmp_path / "bot.log") as proc:
        stuck = await api.slash("compose", {"bars": 1, "seed": 13})
        told = await stuck.wait_followup(timeout=SLOW)
        nxt = await (await api.slash("compose", {"bars": 1, "seed": 14})).wait_original(
            is_clip, timeout=SLOW)
        again = await api.slash("compose", {"bars": 1, "seed": 13})
        await again.wait_original(lambda m: "encoding the MP3" in m.content, timeout=SLOW)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # while the encoder hangs (deadline 3 s not yet up)
        await asyncio.wait_for(proc.wait(), 30)
        stopped = time.monotonic() - t0
    assert told.content.startswith("Sorry — this clip could not be made: encoding the MP3 took "
                                   "longer than 3 s and was stopped; the admins have been told "
                                   "(error id ")
    assert nxt.embeds[0]["title"].startswith("Clip #1 —")
    assert proc.returncode == 0 and stopped < 10, stopped
    assert rows(tmp_path / "cadenza.db", "SELECT status FROM jobs ORDER BY id") == [
        ("failed",), ("done",), ("running",)]  # the last is reported at the next start
