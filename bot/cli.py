"""The ``cadenza`` launcher: compose, console, run, train, db, export, models."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cadenza.config import Settings, db_target
from cadenza.errors import UserError
from cadenza.wiring import open_app

log = logging.getLogger("cadenza")

EXIT_USER_ERROR = 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=db_target, help="SQLite file, sqlite:PATH or postgresql://URL "
                   "(default $CADENZA_DB or ./cadenza.db)")
    p.add_argument("--soundfont", type=Path, help="SF2/SF3 file (default: FluidR3_GM, else the "
                   "TimGM6mb inside pretty_midi)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")


def build_parser() -> argparse.ArgumentParser:
    from cadenza.options import COMMANDS

    ap = argparse.ArgumentParser(prog="cadenza", description="Cadenza composes music on command.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("compose", help="compose one clip: writes .mp3, .mid and .png")
    for opt in COMMANDS["compose"].options:
        # strings on purpose: validation is the shared command layer's, not argparse's
        c.add_argument(f"--{opt.name}", help=opt.description)
    # A string, not a Path: Path() drops the trailing slash that marks a folder.
    c.add_argument("-o", "--output", default=None,
                   help="MP3 path (the .mid and .png go beside it), or a folder (ending in / "
                        "or existing) for clip-<id>.mp3/.mid/.png; default cadenza-output/")
    _common(c)

    con = sub.add_parser("console", help="offline console taking the Discord command lines")
    con.add_argument("--output", type=Path, help="folder for clips (default ./cadenza-output)")
    con.add_argument("--user", default="console", help="your name in ratings")
    _common(con)

    r = sub.add_parser("run", help="start the Discord bot (or the console without a token)")
    r.add_argument("--output", type=Path)
    r.add_argument("--shard-ids", help="the shards this gateway process runs, e.g. 0-3 "
                   "(default $CADENZA_SHARD_IDS; unset: every shard)")
    r.add_argument("--shard-count", type=int, help="shards over every gateway process "
                   "(default $CADENZA_SHARD_COUNT; unset: as Discord recommends)")
    _common(r)

    s = sub.add_parser("serve", help="deploy the Ray Serve workers (generation, rendering) to "
                       "the cluster at $CADENZA_SERVE; `local` starts one here and keeps it up")
    s.add_argument("--address", help="Ray cluster address (default $CADENZA_SERVE)")
    _common(s)

    from cadenza import cli_models

    cli_models.register(sub)  # train, models, eval

    d = sub.add_parser("db", help="database maintenance")
    d.add_argument("action", choices=("upgrade", "version", "copy"),
                   help="copy: every row of --from into --to, verified by counts and checksums")
    d.add_argument("--from", dest="source", type=db_target, metavar="DB",
                   help="copy from this database (sqlite:PATH or postgresql://...)")
    d.add_argument("--to", dest="target", type=db_target, metavar="DB",
                   help="copy into this database (created or upgraded; must be empty)")
    d.add_argument("--replace", action="store_true",
                   help="copy even into a database with rows, deleting them first")
    _common(d)

    e = sub.add_parser("export", help="export data for offline analysis")
    e.add_argument("what", choices=("ratings", "arena"),
                   help="ratings: every vote with its clip's parameters (self-votes flagged); "
                        "arena: every A/B vote with its pair's models, clips and prompt")
    e.add_argument("--format", choices=("csv", "json"), default="csv", help="default csv")
    e.add_argument("-o", "--output", type=Path, default=None,
                   help="file to write (default: standard output)")
    _common(e)
    return ap


def settings_from(args: argparse.Namespace) -> Settings:
    from cadenza.config import parse_shard_ids

    raw_ids = getattr(args, "shard_ids", None)
    count = getattr(args, "shard_count", None)
    if count is not None and count < 1:
        raise UserError(f"--shard-count must be at least 1 (got {count})")
    return Settings.from_env(
        shard_ids=parse_shard_ids(raw_ids) if raw_ids else None,
        shard_count=count,
        serve=getattr(args, "address", None),
        db_path=getattr(args, "db", None),
        soundfont=getattr(args, "soundfont", None),
        output_dir=getattr(args, "output", None)
        if getattr(args, "cmd", "") not in ("compose", "export") else None,
    )


async def cmd_compose(args: argparse.Namespace, settings: Settings) -> int:
    from cadenza.console import check_output_dir
    from cadenza.members import CONSOLE_USER_ID, UserRef, Where
    from cadenza.options import COMMANDS, parse_options

    raw = {o.name: getattr(args, o.name) for o in COMMANDS["compose"].options
           if getattr(args, o.name) is not None}
    opts = parse_options("compose", raw)  # refused before the models load
    out_dir, stem = settings.output_dir, None
    if args.output:
        target = Path(args.output).expanduser()
        if args.output.endswith(("/", os.sep)) or target.is_dir():
            out_dir = target  # a folder: the files are named clip-<id>.* inside it
        else:
            out_dir, stem = target.parent, target.stem
            if target.suffix.lower() not in ("", ".mp3"):
                raise UserError(f"-o wants an .mp3 path or a folder (got {target.name})")
    check_output_dir(out_dir)  # before loading the models
    user, where = UserRef(CONSOLE_USER_ID, "console"), Where()
    # one clip: its render gets every core
    async with open_app(replace(settings, workers=1)) as app:
        # the render process starts (and loads the soundfont) on the other core while
        # generation imports torch and samples
        preparing = asyncio.ensure_future(app.workers.clip_pool.warm_up())
        try:
            # Planned like the console's /compose, so motif:<seed> works here too.
            resolved, origin = await app.seeds.plan_compose(opts, user, where)
            res = await app.compose(resolved, user, where, origin=origin, out_dir=out_dir,
                                    stem=stem)
        finally:
            preparing.cancel()
            await asyncio.gather(preparing, return_exceptions=True)
    print(res.summary(), file=sys.stderr)
    if res.built_on:
        print(f"built on: {res.built_on}", file=sys.stderr)
    print(f"wrote {res.files.mp3}, {res.files.mid}, {res.files.png}", file=sys.stderr)
    print(res.number)
    return 0


async def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from cadenza.console import Console, check_output_dir, console_user

    check_output_dir(settings.output_dir)  # before loading models: a one-line error, exit 2
    user = console_user(getattr(args, "user", "console"))
    async with open_app(settings) as app:
        await Console(app, user).run(sys.stdin, interactive=sys.stdin.isatty())
    return 0


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.token:
        print("No Discord token configured (set CADENZA_TOKEN): starting the offline console "
              "instead.", file=sys.stderr)
        return await cmd_console(args, settings)
    from cadenza.discord.runner import run_bot

    return await run_bot(settings)


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from cadenza.models.registry import ModelRegistry
    from cadenza.serve_workers import run_workers
    from cadenza.synth import find_soundfont

    soundfont = find_soundfont(settings.soundfont)
    return await run_workers(settings, soundfont, ModelRegistry.discover().names())


async def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from cadenza.store import Store

    if args.action == "copy":
        return await cmd_db_copy(args)
    store = await Store.open(settings.db_path, migrate=False)
    try:
        if args.action == "upgrade":
            applied = await store.upgrade()
            print(f"{settings.db_path}: applied {applied}" if applied else
                  f"{settings.db_path}: up to date")
        print(f"schema version {await store.schema_version()}")
    finally:
        await store.close()
    return 0


async def cmd_db_copy(args: argparse.Namespace) -> int:
    from cadenza.store import Store
    from cadenza.store_copy import copy_database

    if args.source is None or args.target is None:
        raise UserError("db copy needs --from and --to (e.g. --from sqlite:cadenza.db "
                        "--to postgresql://user@host/cadenza)")
    if isinstance(args.source, Path) and not args.source.is_file():
        raise UserError(f"no database at {args.source} to copy from")
    source = await Store.open(args.source, migrate=False)  # read only: never changed
    try:
        target = await Store.open(args.target)
        try:
            copied = await copy_database(source, target, replace=args.replace)
        finally:
            await target.close()
    finally:
        await source.close()
    for table in copied:
        print(f"{table.table:<12} {table.rows:>8} rows  sha256 {table.checksum[:16]}  ok")
    print(f"copied {sum(t.rows for t in copied)} rows from {source.path} to {target.path}; "
          "every table's count and checksum match")
    return 0


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from cadenza.arena import format_arena
    from cadenza.exports import format_ratings
    from cadenza.store import Store

    if isinstance(settings.db_path, Path) and not settings.db_path.exists():
        raise UserError(f"no database at {settings.db_path} (set CADENZA_DB or --db)")
    store = await Store.open(settings.db_path)
    try:
        if args.what == "arena":
            rows = await store.export_arena()
        else:
            rows = await store.export_ratings()
    finally:
        await store.close()
    if args.what == "arena":
        text, noun = format_arena(rows, args.format), "arena vote(s)"
    else:
        text, noun = format_ratings(rows, args.format), "rating(s)"
    if args.output is None:
        sys.stdout.write(text)
    else:
        # Written beside the target and moved into place: an interrupted export never leaves
        # a truncated file where an older complete one was.
        tmp = args.output.with_name(args.output.name + ".tmp")
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8", newline="")
            tmp.replace(args.output)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise UserError(f"cannot write {args.output}: {e.strerror}") from None
        print(f"wrote {len(rows)} {noun} to {args.output}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a report records as made by
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from cadenza.deadlines import StageTimeout
    from cadenza.models.errors import ModelError

    try:
        from cadenza import cli_models

        if cli_models.handles(args.cmd):
            return cli_models.run(args)
        settings = settings_from(args)
        handler = {"compose": cmd_compose, "console": cmd_console, "run": cmd_run,
                   "serve": cmd_serve, "db": cmd_db, "export": cmd_export}[args.cmd]
        return asyncio.run(handler(args, settings))
    except (UserError, ModelError, StageTimeout) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # disk full, a folder that vanished, permissions: the user can act
        print(f"error: {os_error_text(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:  # noqa: BLE001 - a bug: one line for the user, the traceback in a file
        print(f"error: {report_bug()}", file=sys.stderr)
        return EXIT_USER_ERROR


def os_error_text(error: OSError) -> str:
    """'cannot write /x/clip.png: No space left on device' from an OSError, on one line."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{reason}: {error.filename}" if error.filename is not None else reason


def report_bug() -> str:
    """Write the current exception's traceback to a file; the line that tells the user."""
    import tempfile
    import traceback

    from cadenza.errors import new_error_id

    error_id = new_error_id()
    log.debug("unexpected error (error id %s)", error_id, exc_info=True)
    try:
        fd, name = tempfile.mkstemp(prefix=f"cadenza-error-{error_id}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(traceback.format_exc())
    except OSError:  # the disk may be the problem: then the error id is all there is
        return f"something went wrong (error id {error_id})"
    return f"something went wrong (error id {error_id}; the details are in {name})"


def run() -> None:
    """The ``cadenza`` executable (and ``python -m cadenza``): ``main``, then exit."""
    argv = sys.argv[1:]
    status = main(argv)
    if argv[:1] == ["compose"]:
        # The clip is written, its row committed, the store and the workers closed: nothing
        # is left to clean up, so the process ends without the interpreter's teardown of
        # torch's and numpy's objects (0.4-1 s here, a fifth of the command's time).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    run()
