"""bench/bot_load.py's Discord side: the double and the members, in a process of their own.

Lives apart from bot_load.py so that the spawned process finds its entry point by import
(bench/lag_trace.py runs bot_load.py through runpy, where `__main__` is another module);
bot_load.py puts tests/ (the double) on the path, which the spawned process inherits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import random
import traceback
from multiprocessing.connection import Connection
from typing import Any

from discord_double import DiscordDouble, MessageSnapshot

from cadenza.styles import STYLE_NAMES


class MemberSide:
    """The Discord double and the simulated members in a process of their own, as Discord's
    servers and its users are not inside the bot's process: their CPU still competes for the
    machine's cores, but not for the bot's GIL, and their records (every request, message and
    interaction the double keeps) stay out of the bot's heap and its garbage collections.
    Talks to the bot's process over a pipe: ("address", ...), ("identified", None),
    ("results", ...) or ("error", traceback) one way, "go" and "close" the other."""

    def __init__(self, args: argparse.Namespace) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=member_side, args=(child, args),
                                   name="discord-double", daemon=True)
        self.process.start()
        child.close()  # so a dead child reads as EOF here

    async def receive(self, kind: str, bot: asyncio.Task[None] | None = None) -> Any:
        """The next message, which must be of ``kind``; fails early if ``bot`` ends first."""
        reading = asyncio.ensure_future(asyncio.to_thread(self._conn.recv))
        waiting: set[asyncio.Future[Any]] = {reading} if bot is None else {reading, bot}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not reading.done() and bot is not None:
            bot.result()  # the bot's startup error, if that is why it ended
            raise SystemExit("FAILED: the bot stopped before the members were done")
        try:
            got, payload = reading.result()
        except EOFError:
            raise SystemExit("FAILED: the Discord double's process ended without a word") from None
        if got == "error":
            raise SystemExit(f"FAILED: the Discord double's process failed:\n{payload}")
        if got != kind:
            raise SystemExit(f"FAILED: expected {kind!r} from the double's process, got {got!r}")
        return payload

    def send(self, message: str) -> None:
        self._conn.send(message)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.send("close")
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
        self._conn.close()


def member_side(conn: Connection, args: argparse.Namespace) -> None:
    """The double's process: serves the Discord API and acts as the members."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(act_as_members(conn, args))
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
        raise
    finally:
        conn.close()


async def act_as_members(conn: Connection, args: argparse.Namespace) -> None:
    api = DiscordDouble()
    await api.start()
    try:
        members = [api.add_member(name=f"member{i}") for i in range(args.members)]
        conn.send(("address", {"token": api.token, "guild_id": api.guild_id,
                               "api_url": api.api_url, "gateway_url": api.gateway_url}))
        await api.wait_identified(timeout=30)
        conn.send(("identified", None))
        if await asyncio.to_thread(conn.recv) != "go":
            return
        latencies: list[float] = []
        posted: list[MessageSnapshot] = []
        # (clip, member) -> the stars of the last vote the bot confirmed; votes it refused
        # (store busy past its wait, said so to the member) are counted apart
        sent: dict[tuple[int, int], int] = {}
        refusals: dict[str, int] = {}
        clicks = 0
        rng = random.Random(1)
        composing = args.members

        async def compose(index: int) -> None:
            nonlocal composing
            loop = asyncio.get_running_loop()
            for k in range(args.clips):
                style = STYLE_NAMES[(index + k) % len(STYLE_NAMES)]
                t0 = loop.time()
                inter = await api.slash(
                    "compose", {"style": style, "bars": args.bars, "seed": index * 100 + k},
                    user=members[index])
                clip = await inter.wait_original(is_clip, timeout=args.timeout)
                latencies.append(loop.time() - t0)
                posted.append(clip)
            composing -= 1

        async def vote(index: int) -> None:
            nonlocal clicks
            member = members[index]
            done: set[int] = set()
            while composing or len(done) < len(posted):
                for clip in [c for c in posted if c.id not in done]:
                    done.add(clip.id)
                    clip_id = int(clip.embeds[0]["title"].split("#")[1].split()[0])
                    # some change their vote
                    for _ in range(2 if rng.random() < 0.25 else 1):
                        stars = rng.randint(1, 5)
                        click = await api.click(clip, f"rate:{clip_id}:{stars}", user=member)
                        answer = await click.wait_original(timeout=args.timeout)
                        clicks += 1
                        if answer.content.startswith("You rated"):
                            sent[(clip_id, member.id)] = stars
                        else:
                            refusals[answer.content[:80]] = \
                                refusals.get(answer.content[:80], 0) + 1
                await asyncio.sleep(0.05)

        await asyncio.gather(*(compose(i) for i in range(args.members)),
                             *(vote(i) for i in range(args.members)))
        conn.send(("results", {"latencies": latencies, "sent": sent, "refusals": refusals,
                               "clicks": clicks,
                               "refused": [r.summary() for r in api.errors]}))
        # the bot closes its gateway session and HTTP client against a double still up
        await asyncio.to_thread(conn.recv)
    finally:
        await api.close()


def is_clip(message: MessageSnapshot) -> bool:
    return bool(message.embeds) and message.embeds[0].get("title", "").startswith("Clip #")
