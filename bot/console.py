"""Offline console: reads the lines a Discord member types (``/compose style:jazz bars:8``).

Parsing turns a line into a command name and raw option strings; validation is
``bot.options.parse_options``, the same as the Discord adapter's.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from bot.app import Cadenza, UserRef
from bot.errors import UserError
from bot.options import COMMANDS, parse_options
from bot.service import ComposeRequest
from bot.store import GroupStats
from bot.styles import STYLES

log = logging.getLogger(__name__)

PROMPT = "cadenza> "


@dataclass(frozen=True)
class Line:
    command: str
    options: dict[str, str]


def parse_line(text: str) -> Line | None:
    """``/compose style:jazz key:"F#m"`` -> Line('compose', {...}); blank/comment -> None."""
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    try:
        parts = shlex.split(text)
    except ValueError as e:
        raise UserError(f"can't read that line: {e} (close your quotes)") from None
    head = parts[0]
    if not head.startswith("/"):
        raise UserError(f"commands start with /, e.g. /compose style:jazz (got {head[:20]!r})")
    words = [head[1:].lower()]
    rest = parts[1:]
    # subcommands ("/seed share ...") are the words before the first name:value pair
    while rest and ":" not in rest[0] and " ".join([*words, rest[0].lower()]) in COMMANDS:
        words.append(rest.pop(0).lower())
    command = " ".join(words)
    opts: dict[str, str] = {}
    positional: list[str] = []
    for tok in rest:
        name, sep, value = tok.partition(":")
        if not sep:
            positional.append(tok)  # "/clip 12": values without names fill options in order
            continue
        if not name:
            raise UserError(f"expected name:value, got {tok[:30]!r} (e.g. bars:8)")
        name = name.lower()
        if name in opts:
            raise UserError(f"option {name} given twice")
        opts[name] = value
    if positional:
        spec = COMMANDS.get(command)
        free = [o.name for o in spec.options if o.name not in opts] if spec else []
        if len(positional) > len(free):
            raise UserError(f"expected name:value, got {positional[len(free)][:30]!r} "
                            "(e.g. bars:8)")
        opts.update(zip(free, positional, strict=False))
    return Line(command, opts)


def stats_lines(rows: list[GroupStats]) -> list[str]:
    """One line per model or style: clips, raters, votes and MOS ± 95% CI (as /stats shows)."""
    lines = []
    for g in rows:
        if g.mos is None:
            score = "no votes yet"
        elif g.ci95 is None:
            score = f"MOS {g.mos:.2f} (one vote: no interval)"
        else:
            score = f"MOS {g.mos:.2f} ± {g.ci95:.2f}"
        lines.append(f"{g.group}: {g.clips} clip(s), {g.raters} rater(s), {g.votes} vote(s), "
                     f"{score}")
    return lines


def help_text() -> str:
    lines = ["Commands (the same as in Discord):"]
    for spec in COMMANDS.values():
        opts = " ".join(f"{o.name}:<{o.kind if o.kind != 'choice' else '|'.join(o.choices or ())}>"
                        if o.required else f"[{o.name}:…]" for o in spec.options)
        lines.append(f"  /{spec.name} {opts}".rstrip() + f" — {spec.description}")
    lines.append("Styles: " + "; ".join(f"{s.name} ({s.description})" for s in STYLES.values()))
    lines.append("Example: /compose style:blues bars:12 tempo:96 key:E seed:7")
    lines.append("Leave with /quit or Ctrl-D.")
    return "\n".join(lines)


class Console:
    """Executes parsed lines against the application; prints results like the bot posts them."""

    def __init__(self, app: Cadenza, user: UserRef, out: TextIO = sys.stdout) -> None:
        self.app, self.user, self.out = app, user, out
        self.handlers: dict[str, Callable] = {
            "compose": self._compose, "rate": self._rate, "clip": self._clip, "top": self._top,
            "stats": self._stats, "help": self._help,
        }

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def execute(self, text: str) -> bool:
        """Run one line; returns False when the user asked to quit. User errors are printed."""
        try:
            if text.strip().lower() in ("/quit", "/exit", "quit", "exit"):
                return False
            line = parse_line(text)
            if line is None:
                return True
            opts = parse_options(line.command, line.options)
            await self.handlers[line.command](opts)
        except UserError as e:
            self.say(f"error: {e}")
        return True

    async def run(self, stream: TextIO = sys.stdin, interactive: bool = True) -> None:
        if interactive:
            self.say("Cadenza console: type /help for commands, /quit to leave.")
        while True:
            if interactive:
                print(PROMPT, end="", file=self.out, flush=True)
            line = stream.readline()
            if not line:
                break
            if not await self.execute(line):
                break

    async def _compose(self, opts: dict) -> None:
        req = ComposeRequest.from_options(opts)
        resolved = self.app.resolve(req)
        self.say(f"composing {resolved.bars} bars of {resolved.style} (seed {resolved.seed})…")
        res = await self.app.compose(resolved, self.user)
        self.say(res.summary())
        self.say(f"  files: {res.files.mp3}  {res.files.mid}  {res.files.png}")
        self.say(f"  rate it: /rate clip:{res.clip_id} stars:<1-5>")

    async def _rate(self, opts: dict) -> None:
        r = await self.app.rate(opts["clip"], self.user, opts["stars"])
        change = f" (was {r.previous})" if r.previous and r.previous != r.stars else ""
        mean = f"{r.mean:.2f}" if r.mean is not None else "n/a"
        self.say(f"rated clip #{r.clip_id}: {r.stars} stars{change}; "
                 f"{r.count} rating(s), mean {mean} (your own clip's votes are not counted)")

    async def _clip(self, opts: dict) -> None:
        res = await self.app.clip(opts["clip"])
        self.say(res.summary() + (f" by {res.author}" if res.author else ""))
        mean = f"{res.rating_mean:.2f}" if res.rating_mean is not None else "no votes yet"
        self.say(f"  rating: {mean} ({res.rating_count} vote(s))")
        self.say(f"  files: {res.files.mp3}  {res.files.mid}  {res.files.png}")

    async def _top(self, opts: dict) -> None:
        rows = await self.app.top(style=opts.get("style"), model=opts.get("model"),
                                  period=opts.get("period"))
        if not rows:
            self.say("no rated clips yet")
            return
        for e in rows:
            self.say(f"{e.rank:>2}. clip #{e.clip_id} {e.style} ({e.model}) by {e.user_name}: "
                     f"score {e.score:.2f}, {e.rating_mean:.2f} from {e.rating_count} vote(s)")

    async def _stats(self, opts: dict) -> None:
        tables = await self.app.stats(period=opts.get("period"))
        if not any(tables.values()):
            self.say("no clips yet")
            return
        for by, rows in tables.items():
            self.say(f"by {by}:")
            for line in stats_lines(rows):
                self.say("  " + line)

    async def _help(self, opts: dict) -> None:
        self.say(help_text())
