"""Offline console: reads the lines a Discord member types (``/compose style:jazz bars:8``).

Parsing turns a line into a command name and raw option strings; validation is
``cadenza.options.parse_options``, the same as the Discord adapter's. Uploads are file paths
(``/seed share name:riff file:song.mid``); the console's own user may delete any seed. A bare
``/arena`` is ``/arena new`` (Discord needs the subcommand).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cadenza.app import Cadenza, publish_text
from cadenza.arena import CHOICE_WORDS, Leaderboard
from cadenza.deadlines import StageTimeout
from cadenza.errors import ResourceError, UserError, new_error_id, shown
from cadenza.library import ClipResult
from cadenza.listening import VOICE_NEEDS_DISCORD
from cadenza.members import CONSOLE_USER_ID, UserRef, Where
from cadenza.models.errors import ModelError
from cadenza.music.motif import Motif
from cadenza.music.score import Meter
from cadenza.options import COMMANDS, CONSOLE_DEFAULTS, NOTES_HELP, parse_options
from cadenza.origin import Origin
from cadenza.seeds import DEFAULT_CONTINUE_BARS, SeedResult, Upload, check_upload_size
from cadenza.service import Resolved
from cadenza.store_rows import GroupStats, Seed
from cadenza.styles import STYLES

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
    subs = [name.split(" ", 1)[1] for name in COMMANDS if name.startswith(command + " ")]
    if command not in COMMANDS and subs:
        if command in CONSOLE_DEFAULTS and (not rest or ":" in rest[0]):
            command = CONSOLE_DEFAULTS[command]
        else:
            given = f" {rest[0][:20]!r}" if rest else ""
            raise UserError(f"/{command} has no subcommand{given}: use {', '.join(subs)}")
    opts: dict[str, str] = {}
    positional: list[str] = []
    last: str | None = None  # the option the words typed now belong to
    for i, tok in enumerate(rest):
        name, sep, value = tok.partition(":")
        if not sep and last is not None:
            # "key:D minor", "file:my song.mid": in Discord, text after an option's value
            # is more of that value; read as the next free option it named the wrong one
            # ("unknown style 'minor'")
            opts[last] = f"{opts[last]} {tok}"
            continue
        if not sep:
            positional.append(tok)  # "/clip 12": values without names fill options in order
            continue
        if not name:
            raise UserError(f"expected name:value, got {tok[:30]!r} (e.g. bars:8)")
        name = name.lower()
        if not value and _has_option(command, name):
            # "bars: 12" splits into "bars:" and a positional "12" that would fill another
            # option ("tempo must be between 40 and 240 (got 12)"); "key:" alone would quietly
            # mean the default. Either way the member meant to give a value here. (An unknown
            # name is left to parse_options, which lists the known ones.)
            example = _example(command, name, rest, i)
            raise UserError(f"{name}: needs a value (write {name}:{example}, with no space "
                            "after the colon)")
        if name in opts:
            # a name no option has is quoted (cut short, control characters escaped)
            raise UserError(f"option {name if _has_option(command, name) else shown(name)} "
                            "given twice")
        opts[name] = value
        last = name
    if positional:
        spec = COMMANDS.get(command)
        free = [o.name for o in spec.options if o.name not in opts] if spec else []
        if len(positional) > len(free):
            raise UserError(f"expected name:value, got {positional[len(free)][:30]!r} "
                            "(e.g. bars:8)")
        opts.update(zip(free, positional, strict=False))
    return Line(command, opts)


def _has_option(command: str, name: str) -> bool:
    spec = COMMANDS.get(command)
    return spec is not None and any(o.name == name for o in spec.options)


def _example(command: str, name: str, rest: list[str], i: int) -> str:
    """The value the member probably meant (the word after "name:"), else a sample one."""
    following = rest[i + 1] if i + 1 < len(rest) else ""
    if following and ":" not in following:
        return f'"{following}"' if " " in following else following
    return COMMANDS[command].option(name).example()


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
    lines.append(NOTES_HELP)
    lines.append("Files are paths here: /seed share name:tune file:song.mid")
    lines.append("Leave with /quit or Ctrl-D.")
    return "\n".join(lines)


def seed_line(seed: Seed) -> str:
    """'“riff” by alice — 2 bars, C, 4/4, 120 bpm, public (from notes)'."""
    motif = Motif.from_json(seed.motif_json)
    bars = "bar" if motif.bars == 1 else "bars"
    where = "public" if seed.public else "private"
    return (f"“{seed.name}” by {seed.user_name} — {motif.bars} {bars}, {motif.key.name}, "
            f"{motif.meter[0]}/{motif.meter[1]}, {motif.tempo:.0f} bpm, {where} "
            f"(from {seed.source_kind}: {seed.source_ref[:60]})")


def file_upload(path_text: str) -> Upload:
    """A console upload: a local MIDI file, size-checked before it is read."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"no file {path_text!r}" if not path.exists() else
                        f"{path_text!r} is not a file")
    size = path.stat().st_size
    check_upload_size(size)

    async def read() -> bytes:
        try:
            return path.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {path_text!r}: {e.strerror}") from None

    return Upload(path.name, size, read)


def console_user(name: str) -> UserRef:
    """The member a console session stands for. Each ``--user`` name has its own stable id, so
    ratings by different names do not overwrite each other and count as votes on one another's
    clips; the default name keeps ``CONSOLE_USER_ID`` (existing databases use it)."""
    name = name.strip()
    if not name:
        raise UserError("--user needs a name")
    key = name.casefold()
    if key == "console":
        return UserRef(CONSOLE_USER_ID, name)
    # Positive and below 2**63, like a Discord snowflake, so it fits SQLite's INTEGER; a hash
    # rather than a table so the same name gets the same id in every database.
    user_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") & (2**63 - 1)
    return UserRef(user_id or 1, name)


def check_output_dir(path: Path) -> None:
    """Refuse (ResourceError) a clip folder that cannot be used: one that is a file, sits under
    a file, or whose nearest existing folder is not writable. Nothing is created here, so a
    session that never composes leaves no folder behind."""
    path = Path(path).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe == path and path.exists() and not path.is_dir():
        raise ResourceError(f"output folder {path} is a file: choose another with --output")
    if probe.exists() and not probe.is_dir():
        raise ResourceError(f"cannot make output folder {path}: {probe} is a file "
                            "(choose another with --output)")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        what = "output folder" if probe == path else "a folder in"
        raise ResourceError(f"cannot write clips to {path}: {what} {probe} is not writable "
                            "(choose another with --output)")


class Console:
    """Executes parsed lines against the application; prints results like the bot posts them."""

    def __init__(self, app: Cadenza, user: UserRef, out: TextIO = sys.stdout,
                 where: Where | None = None, *, manager: bool | None = None) -> None:
        self.app, self.user, self.out = app, user, out
        self.where = where or Where()
        # The console's own user runs this Cadenza and may delete any seed (like Manage
        # Server); a console standing in for another member may not.
        self.manager = user.id == CONSOLE_USER_ID if manager is None else manager
        self.handlers: dict[str, Callable] = {
            "compose": self._compose, "rate": self._rate, "clip": self._clip, "top": self._top,
            "publish": self._publish,
            "stats": self._stats, "help": self._help, "continue": self._continue,
            "vary": self._vary, "reroll": self._reroll, "seed share": self._seed_share,
            "seed list": self._seed_list, "seed show": self._seed_show,
            "seed delete": self._seed_delete, "seed tree": self._seed_tree,
            "seed blend": self._seed_blend, "arena new": self._arena_new,
            "arena vote": self._arena_vote, "arena reveal": self._arena_reveal,
            "arena leaderboard": self._arena_leaderboard,
            "play": self._play, "queue": self._no_voice, "skip": self._no_voice,
            "stop": self._no_voice, "party new": self._no_voice, "party arena": self._no_voice,
        }

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def execute(self, text: str) -> bool:
        """Run one line; returns False when the user asked to quit. User errors are printed;
        anything else is a bug or a broken resource: it is logged with its traceback under a
        short id and the session goes on (one bad line must not end a long session)."""
        try:
            if text.strip().lower() in ("/quit", "/exit", "quit", "exit"):
                return False
            line = parse_line(text)
            if line is None:
                return True
            opts = parse_options(line.command, line.options)
            await self.handlers[line.command](opts)
        except (UserError, ModelError) as e:  # both carry messages meant for the user
            self.say(f"error: {e}")
        except StageTimeout as e:
            error_id = new_error_id()
            log.error("console line stopped: %s (error id %s)", e, error_id)
            self.say(f"error: {e} (error id {error_id})")
        except Exception:
            error_id = new_error_id()
            log.exception("console line failed (error id %s): %r", error_id, text.strip()[:200])
            self.say(f"error: something went wrong (error id {error_id}); the details are in "
                     "the log")
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
        await self._make(*await self.app.seeds.plan_compose(opts, self.user, self.where))

    async def _continue(self, opts: dict) -> None:
        await self._make(*await self.app.seeds.plan_continue(
            opts["clip"], opts.get("bars", DEFAULT_CONTINUE_BARS), opts.get("seed"),
            viewer=self.user, where=self.where))

    async def _vary(self, opts: dict) -> None:
        await self._make(*await self.app.seeds.plan_variation(opts["clip"], opts.get("seed"),
                                                        viewer=self.user, where=self.where))

    async def _reroll(self, opts: dict) -> None:
        await self._make(*await self.app.seeds.plan_reroll(opts["clip"], viewer=self.user,
                                                     where=self.where))

    async def _seed_blend(self, opts: dict) -> None:
        await self._make(*await self.app.seeds.plan_blend(
            opts["a"], opts["b"], self.user, self.where, bars=opts.get("bars"),
            style=opts.get("style"), seed=opts.get("seed")))

    async def _make(self, resolved: Resolved, origin: Origin) -> None:
        # Checked before the (slow) generation: the folder may have been removed or replaced
        # by a file since the session started.
        check_output_dir(self.app.output_dir)
        what = origin.describe()
        self.say(f"composing {resolved.bars} bars of {resolved.style} (seed {resolved.seed})"
                 + (f", {what}" if what else "") + "…")
        res = await self.app.compose(resolved, self.user, self.where, origin=origin)
        self._show_clip(res)
        self.say(f"  rate it: /rate clip:{res.number} stars:<1-5>")

    def _show_clip(self, res: ClipResult) -> None:
        self.say(res.summary() + (f" by {res.author}" if res.author else ""))
        if res.built_on:
            self.say(f"  built on: {res.built_on}")
        for remark in res.remarks:
            self.say(f"  note: {remark}")
        self.say(f"  files: {res.files.mp3}  {res.files.mid}  {res.files.png}")

    async def _rate(self, opts: dict) -> None:
        r = await self.app.rate(opts["clip"], self.user, opts["stars"], self.where)
        change = f" (was {r.previous})" if r.previous and r.previous != r.stars else ""
        mean = f"{r.mean:.2f}" if r.mean is not None else "n/a"
        own = (" (it is your own clip: the vote is stored but not counted in /top or /stats)"
               if r.own_clip else "")
        self.say(f"rated clip #{r.clip_id}: {r.stars} stars{change}; "
                 f"{r.count} rating(s), mean {mean}{own}")

    async def _clip(self, opts: dict) -> None:
        res = await self.app.library.clip(opts["clip"], viewer=self.user, where=self.where)
        self._show_clip(res)
        mean = f"{res.rating_mean:.2f}" if res.rating_mean is not None else "no votes yet"
        self.say(f"  rating: {mean} ({res.rating_count} vote(s))")

    async def _publish(self, opts: dict) -> None:
        public_id = await self.app.publish(opts["clip"], self.user, self.where,
                                           public=not opts.get("withdraw", False))
        self.say(publish_text(opts["clip"], public_id))

    # ---- seeds
    async def _seed_share(self, opts: dict) -> None:
        kwargs: dict[str, Any] = {"public": opts.get("public", False)}
        if "clip" in opts:
            kwargs.update(clip_id=opts["clip"], bar_range=opts.get("bars"))
        elif "file" in opts:
            kwargs["upload"] = file_upload(opts["file"])
        else:
            kwargs.update(notes=opts["notes"], meter=opts.get("meter", Meter(4, 4)))
        result: SeedResult = await self.app.seeds.share_seed(opts["name"], self.user, self.where,
                                                       **kwargs)
        self.say(f"shared seed {seed_line(result.seed)}")
        for warning in result.warnings:
            self.say(f"  note: {warning}")
        self.say(f"  build on it: /compose motif:\"{result.seed.name}\"")

    async def _seed_list(self, opts: dict) -> None:
        page = await self.app.seeds.list_seeds(self.user, self.where, query=opts.get("query"),
                                         page=opts.get("page", 1))
        if not page.seeds:
            self.say("no seeds match" if opts.get("query") else
                     "no seeds yet: share one with /seed share")
            return
        self.say(f"seeds {(page.page - 1) * page.per_page + 1}-"
                 f"{(page.page - 1) * page.per_page + len(page.seeds)} of {page.total} "
                 f"(page {page.page} of {page.pages}):")
        for seed in page.seeds:
            self.say(f"  {seed_line(seed)}")

    async def _seed_show(self, opts: dict) -> None:
        view = await self.app.seeds.show_seed(opts["name"], self.user, self.where)
        self.say(f"seed {seed_line(view.seed)}")
        if view.lineage.parents:
            self.say(f"  built on: {view.lineage.text()}")
        self.say(f"  notes: {view.notes}")
        self.say(f"  files: {view.files.mp3}  {view.files.mid}  {view.files.png}")

    async def _seed_delete(self, opts: dict) -> None:
        seed = await self.app.seeds.delete_seed(opts["name"], self.user, self.where,
                                          can_manage=self.manager)
        self.say(f"deleted seed “{seed.name}”; clips built on it keep their credits")

    async def _seed_tree(self, opts: dict) -> None:
        tree = await self.app.seeds.seed_tree(opts["name"], self.user, self.where)
        for line in tree.lines():
            self.say(line)
        if not tree.links:
            self.say(f"nothing is built on it yet: /compose motif:\"{tree.seed.name}\"")

    # ---- arena
    async def _arena_new(self, opts: dict) -> None:
        check_output_dir(self.app.output_dir)
        resolved, matchup = await self.app.arena.plan(opts.get("style"), opts.get("bars"))
        bars = "bar" if resolved.bars == 1 else "bars"
        self.say(f"composing an arena pair: {resolved.bars} {bars} of {resolved.style} by two "
                 f"hidden models (seed {resolved.seed})…")
        res = await self.app.arena.compose_pair(resolved, matchup, self.user, self.where)
        self.say(res.summary())
        for label, clip in (("A", res.a), ("B", res.b)):
            self.say(f"  {label}: {clip.files.mp3}  {clip.files.mid}  {clip.files.png}")
        self.say(f"  vote: /arena vote pair:{res.pair_id} choice:a|b|tie|bad")

    async def _arena_vote(self, opts: dict) -> None:
        v = await self.app.arena.vote(opts["pair"], self.user, opts["choice"])
        change = f" (was {CHOICE_WORDS[v.previous]})" if v.previous not in (None, v.choice) \
            else ""
        self.say(f"your vote on arena #{v.pair_id}: {CHOICE_WORDS[v.choice]}{change}; "
                 f"{v.votes} vote(s) so far: {v.tally_text()}")
        self.say(f"  see which model made A and B: /arena reveal pair:{v.pair_id} (your vote is "
                 "final then)")

    async def _arena_reveal(self, opts: dict) -> None:
        reveal = await self.app.arena.reveal(opts["pair"], self.user)
        self.say(f"{reveal.text()}; your vote is final")

    async def _arena_leaderboard(self, opts: dict) -> None:
        board: Leaderboard = await self.app.arena.leaderboard(opts.get("style"))
        if not board.ratings and not board.unrated:
            self.say("no arena votes yet" + (f" for {board.style}" if board.style else "")
                     + ": start one with /arena new")
            return
        self.say("arena leaderboard" + (f" ({board.style})" if board.style else "") + ":")
        for line in board.lines():
            self.say("  " + line)
        self.say(board.footnote())

    # ---- voice: the console has none
    async def _play(self, opts: dict) -> None:
        """The clip's MP3, to play with any player (the newest clip without a number)."""
        row = await self.app.listening.clip_to_play(opts.get("clip"), self.where, self.user)
        res = await self.app.library.clip(row.number, viewer=self.user, where=self.where)
        self.say(f"{res.summary()}: play {res.files.mp3} ({VOICE_NEEDS_DISCORD.split(':')[0]} "
                 "to play it for a channel)")

    async def _no_voice(self, opts: dict) -> None:
        self.say(f"error: {VOICE_NEEDS_DISCORD}")

    async def _top(self, opts: dict) -> None:
        rows = await self.app.top(style=opts.get("style"), model=opts.get("model"),
                                  period=opts.get("period"), where=self.where)
        if not rows:
            self.say("no rated clips yet")
            return
        for e in rows:
            self.say(f"{e.rank:>2}. clip #{e.number} {e.style} ({e.model}) by {e.user_name}: "
                     f"score {e.score:.2f}, {e.rating_mean:.2f} from {e.rating_count} vote(s)")

    async def _stats(self, opts: dict) -> None:
        tables = await self.app.stats(period=opts.get("period"), where=self.where)
        if not any(tables.values()):
            self.say("no clips yet")
            return
        for by, rows in tables.items():
            self.say(f"by {by}:")
            for line in stats_lines(rows):
                self.say("  " + line)

    async def _help(self, opts: dict) -> None:
        self.say(help_text())
