"""Console lines end to end (real store, real MP3s), the shared option layer, and the CLI."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cadenza.console import Console, parse_line
from cadenza.errors import UserError
from cadenza.members import UserRef
from cadenza.options import COMMANDS, parse_options


def test_parse_line_reads_discord_style_options_quotes_and_positionals() -> None:
    line = parse_line('/compose style:jazz bars:8 key:"F# minor"')
    assert line is not None
    assert (line.command, line.options) == ("compose", {"style": "jazz", "bars": "8",
                                                        "key": "F# minor"})
    assert parse_line("/clip 12").options == {"clip": "12"}
    assert parse_line("/rate 12 4").options == {"clip": "12", "stars": "4"}
    # after a name:value, words without a name are more of that value, as in Discord
    assert parse_line("/compose bars:2 key:D minor").options == {"bars": "2", "key": "D minor"}
    assert parse_line("/seed share name:sp file:my song (1).mid").options == {
        "name": "sp", "file": "my song (1).mid"}
    assert parse_line("   ") is None and parse_line("# comment") is None


@pytest.mark.parametrize(("line", "message"), [
    ("compose style:jazz", "commands start with /"),
    ('/compose key:"F#', "close your quotes"),
    ("/compose style:jazz style:blues", "option style given twice"),
    ("/compose :8", "expected name:value"),
    ("/help extra", "expected name:value"),
])
def test_malformed_lines_give_specific_messages(line: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_options(*_parsed(line))


def _parsed(line: str) -> tuple[str, dict]:
    parsed = parse_line(line)
    assert parsed is not None
    return parsed.command, parsed.options


@pytest.mark.parametrize(("line", "message"), [
    ("/compose style:polka", "unknown style 'polka': choose one of jazz, blues"),
    ("/compose bars:40", r"bars must be between 1 and 32 \(got 40\)"),
    ("/compose bars:0", r"bars must be between 1 and 32 \(got 0\)"),
    ("/compose bars:eight", "bars must be a whole number"),
    ("/compose tempo:500", r"tempo must be between 40 and 240 \(got 500\)"),
    ("/compose temperature:3", r"temperature must be between 0.1 and 2 \(got 3\)"),
    ("/compose temperature:nan", "temperature must be a finite number"),
    ("/compose seed:-1", "seed must be between 0 and 2147483647"),
    ("/compose seed:riff", "seed: is the random seed, a whole number; to build on the shared "
                           "seed “riff”, use motif:riff"),
    ('/compose seed:"night owl"', "use motif:\"night owl\""),
    ("/compose seed:7.5", r"seed must be a whole number \(got '7.5'\)"),
    ("/compose key:H", "unknown key 'H'"),
    ("/compose colour:red", "/compose has no option 'colour'"),
    ("/rate clip:1", "/rate needs stars"),
    ("/rate clip:1 stars:6", r"stars must be between 1 and 5 \(got 6\)"),
    ("/dance", "unknown command /dance"),
    ("/compose style:blues bars: 12",
     r"^bars: needs a value \(write bars:12, with no space after the colon\)$"),
    ("/compose style: blues", r"^style: needs a value \(write style:blues, with no space"),
    ("/compose bars:", r"^bars: needs a value \(write bars:12, with no space"),
    ('/compose key:""', r"^key: needs a value \(write key:E, with no space"),
    ('/seed share name: "my riff" notes:C', r'^name: needs a value \(write name:"my riff",'),
    ("/compose colour:", "/compose has no option 'colour'"),
])
def test_bad_options_are_rejected_with_one_line_messages(line: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as e:
        parse_options(*_parsed(line))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("raw", [{"key": ""}, {"bars": "  "}])
def test_options_given_empty_are_refused_not_defaulted(raw: dict[str, str]) -> None:
    name = next(iter(raw))
    with pytest.raises(UserError, match=f"^{name} needs a value"):
        parse_options("compose", raw)


def test_valid_options_are_converted_and_normalised() -> None:
    opts = parse_options(*_parsed('/compose style:Blues bars:12 tempo:96 key:"e minor" '
                                  "temperature:0.8 seed:7"))
    assert opts == {"style": "blues", "bars": 12, "tempo": 96, "key": "Em",
                    "temperature": 0.8, "seed": 7}
    assert set(COMMANDS) >= {"compose", "rate", "clip", "top", "help"}


async def test_console_session_composes_rates_lists_and_shows_clips(app, tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(app, UserRef(0, "console"), out=out)
    for line in ["/help", "/compose style:jazz bars:2 seed:3", "/compose style:folk bars:2",
                 "/rate clip:1 stars:4", "/rate 1 5", "/top", "/clip 1", "/clip 99",
                 "/compose bars:99", "/rate clip:7 stars:3"]:
        assert await console.execute(line)
    assert not await console.execute("/quit")
    text = out.getvalue()
    assert "/compose [style:…]" in text and "Styles: jazz" in text
    assert "clip #1: jazz, 2 bars" in text and "seed 3" in text and "clip #2: folk" in text
    assert "rated clip #1: 4 stars" in text and "rated clip #1: 5 stars (was 4)" in text
    assert "error: no clip #99" in text
    assert "error: bars must be between 1 and 32 (got 99)" in text
    assert "error: no clip #7" in text
    # the console user rates their own clips: stored, but not counted on the chart
    assert "no rated clips yet" in text
    for ext in ("mp3", "mid", "png"):
        assert (tmp_path / "out" / f"clip-1.{ext}").stat().st_size > 0
    clip = await app.store.get_clip(1)
    assert clip is not None and clip.seed == 3 and clip.midi[:4] == b"MThd"
    rows = sqlite3.connect(tmp_path / "cadenza.db").execute(
        "select clip_id, user_id, stars from ratings").fetchall()
    assert rows == [(1, 0, 5)]


async def test_other_members_votes_reach_the_chart(app) -> None:
    out = io.StringIO()
    alice = Console(app, UserRef(0, "console"), out=out)
    await alice.execute("/compose style:blues bars:1 seed:5")
    bob = Console(app, UserRef(42, "bob"), out=out)
    await bob.execute("/rate clip:1 stars:4")
    await bob.execute("/top style:blues")
    assert "1. clip #1 blues (lstm) by console: score" in out.getvalue()
    await bob.execute("/top model:foo")  # a chart of a model no clip can have is refused
    assert out.getvalue().endswith("error: unknown model 'foo': choose one of gan, gru, lstm, "
                                   "rnn, vae\n")


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cadenza", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture()
def cli_env(tmp_path: Path, tiny_models: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update({"CADENZA_MODELS": str(tiny_models), "CADENZA_DB": str(tmp_path / "c.db")})
    env.pop("CADENZA_TOKEN", None)
    # CI runners set CI, and pyfluidsynth then prints where it found the library: run every
    # CLI test that way so stdout stays ours (the clip id alone) wherever the suite runs.
    env["CI"] = "true"
    return env


def test_cli_compose_writes_three_files_stores_the_clip_and_prints_its_id(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    res = _cli(["compose", "--style", "ragtime", "--bars", "2", "--tempo", "96", "--seed", "7",
                "-o", str(tmp_path / "song" / "clip.mp3")], cli_env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"
    for ext in ("mp3", "mid", "png"):
        assert (tmp_path / "song" / f"clip.{ext}").stat().st_size > 0
    again = _cli(["compose", "--style", "ragtime", "--bars", "2", "--tempo", "96", "--seed", "7",
                  "-o", str(tmp_path / "again.mp3")], cli_env, tmp_path)
    assert again.stdout.strip() == "2"
    assert (tmp_path / "again.mid").read_bytes() == (tmp_path / "song" / "clip.mid").read_bytes()


@pytest.mark.parametrize(("args", "message"), [
    (["compose", "--bars", "33"], "error: bars must be between 1 and 32 (got 33)"),
    (["compose", "--style", "polka"], "error: unknown style 'polka'"),
    (["compose", "--model", "nope"], "error: unknown model 'nope'"),
    (["compose", "--soundfont", "/nonexistent.sf2"], "error: soundfont not found: /nonexistent"),
    (["compose", "-o", "x.wav"], "error: -o wants an .mp3 path"),
    # huge and long values: one short line, never a traceback or a wall of input
    (["compose", "--tempo", "9" * 400], "error: tempo is out of range (got 9999999999999999999…)"),
    (["compose", "--tempo", "1e999"], "error: tempo must be a whole number (got '1e999')"),
    (["compose", "--temperature", "nan"], "error: temperature must be a finite number"),
    (["compose", "--style", "x" * 10_000], "error: unknown style 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
])
def test_cli_user_errors_exit_2_with_one_line_and_store_nothing(
    tmp_path: Path, cli_env: dict[str, str], args: list[str], message: str
) -> None:
    res = _cli(args, cli_env, tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(message) and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr and len(res.stderr) < 300
    db = Path(cli_env["CADENZA_DB"])
    if db.exists():
        assert sqlite3.connect(db).execute("select count(*) from clips").fetchone() == (0,)


def test_cli_composes_without_ffmpeg(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Encoding is in-process: a machine without ffmpeg (or anything else on PATH) composes."""
    env = dict(cli_env, PATH=str(tmp_path / "empty-bin"))
    res = _cli(["compose", "--bars", "1", "-o", "clip.mp3"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "clip.mp3").read_bytes()[:3] == b"ID3"
    assert sqlite3.connect(cli_env["CADENZA_DB"]).execute(
        "select count(*) from clips").fetchone() == (1,)


def test_cli_run_without_token_starts_the_console(tmp_path: Path, cli_env: dict[str, str]) -> None:
    res = subprocess.run([sys.executable, "-m", "cadenza", "run"], input="/compose bars:1 seed:2\n",
                         capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "No Discord token configured" in res.stderr
    assert "clip #1: jazz, 1 bars" in res.stdout
    assert (tmp_path / "cadenza-output" / "clip-1.mp3").exists()


def test_db_upgrade_is_idempotent(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from cadenza.store import load_migrations

    def schema() -> tuple[list, list]:
        conn = sqlite3.connect(cli_env["CADENZA_DB"])
        try:
            return (conn.execute("PRAGMA user_version").fetchall(),
                    conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                 "ORDER BY type, name").fetchall())
        finally:
            conn.close()

    first = _cli(["db", "upgrade"], cli_env, tmp_path)
    assert first.returncode == 0 and "applied [1" in first.stdout
    upgraded = schema()
    assert upgraded[0] == [(load_migrations()[-1].version,)] and upgraded[1]
    second = _cli(["db", "upgrade"], cli_env, tmp_path)
    assert second.returncode == 0 and "up to date" in second.stdout
    assert schema() == upgraded  # same version, same tables, indexes and triggers


def test_settings_read_queue_limits_and_never_show_the_token() -> None:
    from cadenza.config import Settings

    s = Settings.from_env({"CADENZA_TOKEN": "secret-token", "CADENZA_QUEUE_SIZE": "5",
                           "CADENZA_PER_MEMBER": "2", "CADENZA_WORKERS": "3"})
    assert (s.queue_size, s.per_user_queue, s.workers) == (5, 2, 3)
    assert "secret-token" not in repr(s) and "secret-token" not in str(s)
    assert Settings.from_env({}).queue_size == 16


async def test_console_survives_an_unexpected_error_and_logs_it_with_an_id(
    app, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging
    import re

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("model exploded")

    monkeypatch.setattr(app.composer, "compose", broken)
    out = io.StringIO()
    console = Console(app, UserRef(0, "console"), out=out)
    with caplog.at_level(logging.ERROR, logger="cadenza.console"):
        assert await console.execute("/compose bars:1 seed:1") is True
    match = re.search(r"error: something went wrong \(error id ([0-9a-f]+)\)", out.getvalue())
    assert match and "Traceback" not in out.getvalue()
    record = next(r for r in caplog.records if match.group(1) in r.getMessage())
    assert record.exc_info and "model exploded" in str(record.exc_info[1])
    assert await console.execute("/help") is True  # the session goes on
    assert "Commands (the same as in Discord)" in out.getvalue()


async def test_console_refuses_an_output_folder_that_is_a_file(app, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    app.output_dir = blocker / "clips"
    out = io.StringIO()
    await Console(app, UserRef(0, "console"), out=out).execute("/compose bars:1 seed:1")
    assert out.getvalue() == (f"error: cannot make output folder {blocker / 'clips'}: {blocker} "
                              "is a file (choose another with --output)\n")
    assert await app.store.get_clip(1) is None


def test_check_output_dir_accepts_new_and_existing_folders_and_refuses_files(
    tmp_path: Path
) -> None:
    from cadenza.console import check_output_dir
    from cadenza.errors import ResourceError

    check_output_dir(tmp_path)
    check_output_dir(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # nothing is created by the check
    (tmp_path / "f").write_text("")
    with pytest.raises(ResourceError, match="is a file"):
        check_output_dir(tmp_path / "f")


def test_cli_console_with_an_output_under_a_file_exits_2_with_one_line(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "f").write_text("")
    res = subprocess.run([sys.executable, "-m", "cadenza", "console", "--output",
                          str(tmp_path / "f" / "clips")], input="/compose bars:1\n",
                         capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: cannot make output folder")
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_cli_compose_builds_on_a_shared_seed_and_refuses_an_unknown_one(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    missing = _cli(["compose", "--motif", "riff", "--bars", "1"], cli_env, tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.startswith("error: no seed named “riff” here")
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    shared = subprocess.run([sys.executable, "-m", "cadenza", "console"],
                            input='/seed share name:riff notes:"C4/8 E4/8 G4/4 | A4/2"\n',
                            capture_output=True, text=True, env=cli_env, cwd=tmp_path,
                            timeout=300)
    assert "shared seed “riff”" in shared.stdout, shared.stdout + shared.stderr
    res = _cli(["compose", "--motif", "riff", "--bars", "1", "--seed", "3", "-o",
                str(tmp_path / "riff.mp3")], cli_env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "(2 from the seed + 1 new)" in res.stderr
    assert "built on: continues seed “riff” by console" in res.stderr
    assert res.stdout.strip() == "1" and (tmp_path / "riff.mid").exists()


def test_console_user_names_get_stable_distinct_ids() -> None:
    from cadenza.console import console_user

    assert console_user("console") == UserRef(0, "console")  # existing databases keep working
    alice, bob = console_user("alice"), console_user("bob")
    assert alice.id != bob.id and 0 < alice.id < 2**63 and 0 < bob.id < 2**63
    assert console_user("Alice").id == alice.id and console_user("Alice").name == "Alice"
    with pytest.raises(UserError, match="--user needs a name"):
        console_user("  ")


async def test_console_users_by_name_rate_without_overwriting_each_other(app) -> None:
    from cadenza.console import console_user

    out = io.StringIO()
    await Console(app, console_user("console"), out=out).execute("/compose bars:1 seed:5")
    for name, stars in (("alice", 4), ("bob", 2)):
        await Console(app, console_user(name), out=out).execute(f"/rate clip:1 stars:{stars}")
    assert "2 rating(s), mean 3.00" in out.getvalue()
    # a vote on someone else's clip counts, and is not told otherwise
    assert "rated clip #1: 2 stars; 2 rating(s), mean 3.00\n" in out.getvalue()
    assert "own clip" not in out.getvalue()
    await Console(app, console_user("console"), out=out).execute("/rate clip:1 stars:5")
    assert out.getvalue().endswith("rated clip #1: 5 stars; 2 rating(s), mean 3.00 (it is your "
                                   "own clip: the vote is stored but not counted in /top or "
                                   "/stats)\n")


def test_cli_console_user_rates_under_its_own_id(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from cadenza.console import console_user

    res = subprocess.run([sys.executable, "-m", "cadenza", "console", "--user", "alice"],
                         input="/compose bars:1 seed:2\n/rate clip:1 stars:5\n",
                         capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    conn = sqlite3.connect(cli_env["CADENZA_DB"])
    assert conn.execute("select u.id, u.name from clips c join users u on u.id = c.user_id"
                        ).fetchall() == [
        (console_user("alice").id, "alice")]
    assert conn.execute("select user_id from ratings").fetchall() == [(console_user("alice").id,)]


async def test_open_app_gives_the_composer_one_batcher(
    tmp_path: Path, tiny_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cadenza.batching import MelodyBatcher
    from cadenza.config import Settings
    from cadenza.members import CONSOLE_USER_ID
    from cadenza.service import ComposeRequest
    from cadenza.wiring import open_app

    monkeypatch.setenv("CADENZA_MODELS", str(tiny_models))
    async with open_app(Settings.from_env({}, db_path=tmp_path / "c.db",
                                          output_dir=tmp_path / "out")) as app:
        batcher = app.composer.batcher
        assert isinstance(batcher, MelodyBatcher)
        await app.compose(ComposeRequest(bars=1, seed=1), UserRef(CONSOLE_USER_ID, "console"))
        assert batcher.batches and set(batcher.batches) == {1}  # generation went through it
        store, clip_pool = app.store, app.workers.clip_pool
    # the root closed what it opened: the batcher's thread, the store, the render pool
    assert not batcher._thread.is_alive()
    assert clip_pool._closed
    from cadenza.store import StoreError

    with pytest.raises(StoreError, match="closed"):
        await store.get_clip(1)


async def test_one_worker_samples_in_its_own_thread_on_every_core(
    tmp_path: Path, tiny_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One generation worker (`cadenza compose`, the console) has nobody to batch with: no
    batcher, so torch runs in that worker's thread alone, with the cores (up to the cap);
    several workers share steps through the batcher on one torch thread."""
    from cadenza.config import Settings, cpu_count
    from cadenza.members import CONSOLE_USER_ID
    from cadenza.service import ComposeRequest
    from cadenza.wiring import SAMPLING_THREADS_CAP, open_app, serving_threads

    assert serving_threads(1) == min(cpu_count(), SAMPLING_THREADS_CAP)
    assert serving_threads(2) == serving_threads(16) == 1
    monkeypatch.setenv("CADENZA_MODELS", str(tiny_models))
    async with open_app(Settings.from_env({}, db_path=tmp_path / "c.db",
                                          output_dir=tmp_path / "out", workers=1)) as app:
        assert app.composer.batcher is None
        res = await app.compose(ComposeRequest(bars=1, seed=1),
                                UserRef(CONSOLE_USER_ID, "console"))
        assert res.files.mp3.stat().st_size > 0


def test_cli_compose_into_a_folder_names_the_files_by_clip_id(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    new = _cli(["compose", "--bars", "1", "--seed", "1", "-o", str(tmp_path / "new") + "/"],
               cli_env, tmp_path)
    assert new.returncode == 0, new.stderr
    existing = tmp_path / "existing"
    existing.mkdir()
    again = _cli(["compose", "--bars", "1", "--seed", "2", "-o", str(existing)], cli_env,
                 tmp_path)
    assert again.returncode == 0, again.stderr
    for folder, clip_id in ((tmp_path / "new", 1), (existing, 2)):
        assert sorted(p.name for p in folder.iterdir()) == [
            f"clip-{clip_id}.mid", f"clip-{clip_id}.mp3", f"clip-{clip_id}.png"]
    assert not (tmp_path / "new.mp3").exists() and not (tmp_path / "existing.mp3").exists()


def test_cli_compose_under_a_file_is_a_one_line_error(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "f").write_text("")
    res = _cli(["compose", "--bars", "1", "-o", str(tmp_path / "f" / "x.mp3")], cli_env,
               tmp_path)
    assert res.returncode == 2
    assert res.stderr == (f"error: output folder {tmp_path / 'f'} is a file: choose another "
                          "with --output\n")


def test_a_seed_with_a_newline_gets_a_one_line_message() -> None:
    """Found by the options fuzz test: seed "0\n0" put the newline into the message."""
    with pytest.raises(UserError) as e:
        parse_options("compose", {"seed": "0\n0"})
    assert "\n" not in str(e.value) and 'use motif:"0 0"' in str(e.value)
