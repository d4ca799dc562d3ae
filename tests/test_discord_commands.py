"""The bot's command surface through the Discord double: parity with the shared command layer,
autocomplete, /top, /stats, /clip, owner-only /sync, and the runner's wiring (token never logged).
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import re
import signal
from pathlib import Path

import mido
import pytest
from discord_double import ClientWouldRefuse, DiscordDouble
from test_discord_bot import SLOW, cadenza, clip_buttons, is_clip, rows

from cadenza.app import Cadenza
from cadenza.config import Settings
from cadenza.console import Console
from cadenza.discord.runner import open_bot, run_bot
from cadenza.errors import UserError
from cadenza.members import UserRef, Where
from cadenza.options import COMMANDS, GROUPS
from cadenza.store import Store
from cadenza.store_rows import NewClip

ADMINISTRATOR = 1 << 3
OPTION_TYPES = {"int": 4, "float": 10, "str": 3, "choice": 3, "bool": 5, "file": 11}
SUB_COMMAND = 1
TOP_LEVEL = {name.split()[0] for name in COMMANDS}  # "seed share" is a subcommand of /seed


def flattened(registered: list[dict]) -> dict[str, dict]:
    """Registered commands by their full name: a group's subcommands as "seed share"."""
    out = {}
    for command in registered:
        subs = [o for o in command.get("options", []) if o["type"] == SUB_COMMAND]
        if subs:
            assert command["description"] == GROUPS[command["name"]]
            for sub in subs:
                out[f"{command['name']} {sub['name']}"] = sub
        else:
            out[command["name"]] = command
    return out


@pytest.fixture
async def api():
    async with DiscordDouble() as double:
        yield double


@pytest.fixture
def unfreeze():  # type: ignore[no-untyped-def]
    """The runner freezes the heap for the garbage collector (runner.settle_heap); undo that
    after the test so the rest of the test session collects normally."""
    yield
    gc.unfreeze()


# ---------------------------------------------------------------------------------------------
# One command layer


async def test_registered_commands_match_the_shared_specs(api, tmp_path, tiny_registry):
    async with cadenza(api, tmp_path, tiny_registry):
        registered = flattened(api.guild_commands)
    assert set(registered) == set(COMMANDS) | {"sync"}
    # The arena is a group on Discord (a command with subcommands cannot itself be run).
    assert {"arena new", "arena vote", "arena reveal", "arena leaderboard"} <= set(registered)
    for name, spec in COMMANDS.items():
        command = registered[name]
        assert command["description"] == spec.description
        options = command.get("options", [])
        assert [o["name"] for o in options] == [o.name for o in spec.options], name
        for opt, sent in zip(spec.options, options, strict=True):
            where = f"/{name} {opt.name}"
            assert sent["type"] == OPTION_TYPES[opt.kind], where
            assert sent["description"] == opt.description, where
            assert sent.get("required", False) == opt.required, where
            if opt.kind in ("int", "float"):
                assert (sent["min_value"], sent["max_value"]) == (opt.min, opt.max), where
            else:
                assert "min_value" not in sent and "max_value" not in sent, where
            if opt.kind == "choice":
                assert [c["value"] for c in sent["choices"]] == list(opt.choices or ()), where
                assert not sent.get("autocomplete"), where
            else:
                assert "choices" not in sent, where
            # Free text (key, model, seed names) is suggested, not restricted: the validator
            # decides; names for new things and typed notes are not suggested.
            assert bool(sent.get("autocomplete")) == (opt.suggest is not None), where
        # Discord wants required options first.
        flags = [o.get("required", False) for o in options]
        assert flags == sorted(flags, reverse=True), name
    sync = registered["sync"]
    assert sync["default_member_permissions"] == str(ADMINISTRATOR)


@pytest.mark.parametrize(("options", "console_line"), [
    ({"key": "H"}, "/compose key:H"),
    ({"key": "x#m"}, '/compose key:"x#m"'),
    ({"model": "nope"}, "/compose model:nope"),
    ({"model": "LSTM"}, "/compose model:LSTM"),
])
async def test_discord_and_console_refuse_the_same_input_the_same_way(
        api, tmp_path, tiny_registry, options, console_line):
    async with cadenza(api, tmp_path, tiny_registry) as h:
        inter = await api.slash("compose", {"bars": 1, **options})
        discord_text = (await inter.wait_original()).content
        out = io.StringIO()
        await Console(h.app, UserRef(0, "console"), out=out).execute(console_line + " bars:1")
    console_text = out.getvalue().strip().removeprefix("error: ")
    assert inter.original.ephemeral
    assert discord_text == console_text[:1].upper() + console_text[1:]
    assert rows(h.db, "SELECT COUNT(*) FROM jobs") == [(0,)]


async def test_autocomplete_suggests_keys_and_installed_models(api, tmp_path, tiny_registry):
    async with cadenza(api, tmp_path, tiny_registry):
        key = await api.autocomplete("compose", {"key": "f#"}, focused="key")
        model = await api.autocomplete("compose", {"model": "r"}, focused="model")
        top = await api.autocomplete("top", {"model": ""}, focused="model")
        answers = [await x.wait_response() for x in (key, model, top)]
    assert [c["value"] for c in answers[0].choices] == ["F#m"]
    # Names starting with what was typed come first, then names containing it.
    suggested = [c["value"] for c in answers[1].choices]
    assert suggested[0] == "rnn" and "gru" in suggested and "lstm" not in suggested
    assert [c["value"] for c in answers[2].choices] == tiny_registry.names()


# ---------------------------------------------------------------------------------------------
# Charts


def midi_bytes() -> bytes:
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=480)])
    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


async def seed_votes(db: Path, guild_id: int) -> None:
    """Four clips made in the guild and a literal vote set; alice (1) and bob (2) are authors,
    10-12 listeners."""
    async with await Store.open(db) as store:
        for user_id, name in ((1, "alice"), (2, "bob")):
            await store.ensure_user(user_id, name)
        for model, style, author in (("lstm", "jazz", 1), ("lstm", "blues", 2),
                                     ("gru", "jazz", 1), ("rnn", "folk", 2)):
            await store.add_clip(NewClip(
                style=style, bars=1, tempo=120.0, key="C", meter="4/4", temperature=1.0,
                seed=1, model=model, midi=midi_bytes(), duration_s=2.0, user_id=author,
                guild_id=guild_id))
        votes = [(1, 1, 5), (1, 10, 4), (1, 11, 5), (1, 12, 3),  # alice on her own clip 1
                 (2, 10, 2), (2, 11, 3),
                 (3, 12, 5), (3, 2, 4), (3, 1, 1)]  # alice on her own clip 3
        names = {1: "alice", 2: "bob"}
        for clip_id, user_id, stars in votes:
            await store.set_rating(clip_id, user_id, stars, names.get(user_id, f"user{user_id}"))


async def test_top_ranks_by_bayesian_average(api, tmp_path, tiny_registry):
    await seed_votes(tmp_path / "cadenza.db", api.guild_id)
    async with cadenza(api, tmp_path, tiny_registry):
        chart = await (await api.slash("top")).wait_original()
        jazz = await (await api.slash("top", {"style": "jazz", "model": "gru"})).wait_original()
        empty = await (await api.slash("top", {"style": "ragtime"})).wait_original()
    # Counted votes 4,5,3 | 2,3 | 5,4: prior mean 26/7 with weight 3.
    #   #3: (78/7 + 9) / 5 = 4.03;  #1: (78/7 + 12) / 6 = 3.86;  #2: (78/7 + 5) / 5 = 3.23
    assert chart.embeds[0]["title"] == "Top clips"
    assert chart.embeds[0]["description"].split("\n") == [
        "**1.** #3 jazz · gru · by alice — **4.03** (4.50★ from 2 vote(s))",
        "**2.** #1 jazz · lstm · by alice — **3.86** (4.00★ from 3 vote(s))",
        "**3.** #2 blues · lstm · by bob — **3.23** (2.50★ from 2 vote(s))",
    ]
    assert not chart.ephemeral
    assert jazz.embeds[0]["title"] == "Top clips (jazz · gru)"
    assert jazz.embeds[0]["description"].startswith("**1.** #3 jazz")
    assert empty.embeds[0]["description"] == "No rated clips yet: rate some with ⭐!"


async def test_stats_show_mos_with_confidence_intervals_without_self_votes(
        api, tmp_path, tiny_registry):
    await seed_votes(tmp_path / "cadenza.db", api.guild_id)
    async with cadenza(api, tmp_path, tiny_registry):
        stats = await (await api.slash("stats")).wait_original()
    fields = {f["name"]: f["value"] for f in stats.embeds[0]["fields"]}
    # lstm: votes 4,5,3,2,3 -> mean 3.40, sd 1.140, t(0.975, 4) = 2.776 -> ± 1.42
    # gru: 5,4 -> 4.50 ± 12.706 * 0.5 = 6.35; rnn: no votes. jazz: 4,5,3,5,4 -> 4.20 ± 1.04
    assert fields["By model"] == "```\n" + "\n".join([
        "model clips raters votes  MOS  ±95%",
        "gru       1      2     2 4.50  6.35",
        "lstm      2      3     5 3.40  1.42",
        "rnn       1      0     0    –     –",
    ]) + "\n```"
    assert fields["By style"] == "```\n" + "\n".join([
        "style clips raters votes  MOS  ±95%",
        "blues     1      2     2 2.50  6.35",
        "folk      1      0     0    –     –",
        "jazz      2      4     5 4.20  1.04",
    ]) + "\n```"


async def test_clip_reposts_a_stored_clip_with_its_buttons(api, tmp_path, tiny_registry):
    async with cadenza(api, tmp_path, tiny_registry) as h:
        made = await h.app.compose(h.app.composer.resolve_installed(_request(bars=1, seed=21)),
                                   UserRef(api.member.id, "tester"),
                                   Where(api.guild_id, api.channel_id))
        for path in (made.files.mp3, made.files.mid, made.files.png):
            path.unlink()  # /clip re-renders from the stored MIDI
        inter = await api.slash("clip", {"clip": made.clip_id})
        assert (await inter.wait_response()).type == 5
        clip = await inter.wait_original(is_clip, timeout=SLOW)
        missing = await api.slash("clip", {"clip": 99})
        refused = await missing.wait_original()
    assert clip.embeds[0]["title"] == "Clip #1 — jazz"
    assert clip.custom_ids == clip_buttons(1)
    assert clip.filenames == ["cadenza-1.mp3", "cadenza-1.mid", "cadenza-1.png"]
    assert clip.file("cadenza-1.mid") == rows(h.db, "SELECT midi FROM clips")[0][0]
    assert refused.content == "No clip #99" and refused.ephemeral


def _request(**options):  # type: ignore[no-untyped-def]
    from cadenza.service import ComposeRequest

    return ComposeRequest(**options)


async def test_rate_command_takes_the_same_path_as_the_buttons(api, tmp_path, tiny_registry):
    await seed_votes(tmp_path / "cadenza.db", api.guild_id)
    async with cadenza(api, tmp_path, tiny_registry):
        first = await (await api.slash("rate", {"clip": 2, "stars": 5})).wait_original()
        unknown = await (await api.slash("rate", {"clip": 77, "stars": 5})).wait_original()
    assert first.content == ("You rated clip #2 ★★★★★. The clip now has 3 vote(s), average "
                             "3.33.")
    assert unknown.content == "No clip #77" and unknown.ephemeral


# ---------------------------------------------------------------------------------------------
# Administration and start-up


async def test_commands_sync_to_the_dev_guild_at_start_and_otherwise_only_by_owner_command(
        api, tmp_path, tiny_registry):
    admin = api.add_member(name="admin", permissions=ADMINISTRATOR)
    async with cadenza(api, tmp_path, tiny_registry):
        guild_puts = api.requests_to("PUT /applications/{application_id}/guilds/{guild_id}/"
                                     "commands")
        assert len(guild_puts) == 1 and api.requests_to("PUT /applications/{application_id}/"
                                                        "commands") == []
        refused = await (await api.slash("sync", {"scope": "global"}, user=admin)) \
            .wait_original()
        assert refused.content == "Only Cadenza's owners can do that." and refused.ephemeral
        assert api.global_commands == []
        owner = await api.slash("sync", {"scope": "global"}, user=api.guild.owner)
        done = await owner.wait_original()
    assert done.ephemeral and done.content.startswith(
        f"{len(TOP_LEVEL) + 1} command(s) everywhere (Discord may take up to an hour to show "
        "them): /compose")
    assert {c["name"] for c in api.global_commands} == TOP_LEVEL | {"sync"}
    with pytest.raises(ClientWouldRefuse, match="needs permissions"):
        await api.slash("sync", user=api.add_member(name="pleb"))

    # Without a dev guild nothing is synced at start, and CADENZA_OWNER_IDS names the owners.
    before = len(api.requests)
    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False,
                       owner_ids=frozenset({admin.id})):
        assert not [r for r in api.requests[before:] if r.method == "PUT"]
        cleared = await (await api.slash("sync", {"scope": "clear"}, user=admin)) \
            .wait_original()
    assert cleared.content == "0 command(s) removed from this server (global commands stay): none"
    assert api.guild_commands == []


async def test_runner_wires_the_bot_from_settings_and_never_logs_the_token(
        api, tmp_path, tiny_models, monkeypatch, caplog, unfreeze):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CADENZA_MODELS", str(tiny_models))
    settings = Settings.from_env({
        "CADENZA_TOKEN": api.token, "CADENZA_DB": str(tmp_path / "bot.db"),
        "CADENZA_OUTPUT": str(tmp_path / "out"), "CADENZA_DEV_GUILD": str(api.guild_id),
    })
    async with open_bot(settings) as bot, api.running(bot):
        assert isinstance(bot.app, Cadenza) and bot.app.store.path == tmp_path / "bot.db"
        # warmed up beside connecting (never before it), then the heap was settled
        deadline = asyncio.get_running_loop().time() + SLOW
        while gc.get_freeze_count() == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert gc.get_freeze_count() > 0
        inter = await api.slash("compose", {"bars": 1, "seed": 2})
        clip = await inter.wait_original(is_clip, timeout=SLOW)
        helped = await (await api.slash("help")).wait_original()
        batcher = bot.app.composer.batcher
    assert batcher is not None and not batcher._thread.is_alive()  # closed with the bot
    assert clip.embeds[0]["title"] == "Clip #1 — jazz"
    assert helped.ephemeral and helped.embeds[0]["title"] == "Cadenza composes music on command"
    assert api.token not in caplog.text and api.token not in repr(settings)
    assert all(api.token not in str(r.args) for r in caplog.records)

    bad = Settings.from_env({"CADENZA_TOKEN": "MTIz.bad.token", "CADENZA_DB": str(
        tmp_path / "bot.db"), "CADENZA_OUTPUT": str(tmp_path / "out")})
    with pytest.raises(UserError, match="Discord refused the bot token") as refused:
        await run_bot(bad)
    assert "MTIz.bad.token" not in str(refused.value) and "MTIz.bad.token" not in caplog.text


async def test_console_stats_report_the_same_numbers_as_discord(api, tmp_path, tiny_registry):
    await seed_votes(tmp_path / "cadenza.db", api.guild_id)
    async with cadenza(api, tmp_path, tiny_registry) as h:
        embed = (await (await api.slash("stats")).wait_original()).embeds[0]
        out = io.StringIO()
        # a console standing in the same server sees the same clips
        console = Console(h.app, UserRef(0, "console"), out=out,
                          where=Where(api.guild_id, api.channel_id))
        await console.execute("/stats")
        await console.execute("/stats period:century")
    lines = out.getvalue().splitlines()
    assert lines == [
        "by model:",
        "  gru: 1 clip(s), 2 rater(s), 2 vote(s), MOS 4.50 ± 6.35",
        "  lstm: 2 clip(s), 3 rater(s), 5 vote(s), MOS 3.40 ± 1.42",
        "  rnn: 1 clip(s), 0 rater(s), 0 vote(s), no votes yet",
        "by style:",
        "  blues: 1 clip(s), 2 rater(s), 2 vote(s), MOS 2.50 ± 6.35",
        "  folk: 1 clip(s), 0 rater(s), 0 vote(s), no votes yet",
        "  jazz: 2 clip(s), 4 rater(s), 5 vote(s), MOS 4.20 ± 1.04",
        "error: unknown period 'century': choose one of day, week, month, all",
    ]
    # Row for row, the same figures as the Discord embed's tables.
    console_rows: dict[str, list[list[str]]] = {"model": [], "style": []}
    for line in lines:
        if line.startswith("by "):
            rows_now = console_rows[line[3:-1]]
        elif m := re.fullmatch(r"  (\w+): (\d+) clip\(s\), (\d+) rater\(s\), (\d+) vote\(s\), "
                               r"(?:MOS (\S+) ± (\S+)|no votes yet)", line):
            rows_now.append([g or "–" for g in m.groups()])
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    for kind in ("model", "style"):
        table = fields[f"By {kind}"].strip("`\n").splitlines()[1:]  # rows below the header
        assert [row.split() for row in table] == console_rows[kind], kind


async def test_run_bot_stops_cleanly_on_sigterm(api, tmp_path, tiny_models, monkeypatch,  # type: ignore[no-untyped-def]
                                               unfreeze):
    monkeypatch.setenv("CADENZA_MODELS", str(tiny_models))
    settings = Settings.from_env({
        "CADENZA_TOKEN": api.token, "CADENZA_DB": str(tmp_path / "bot.db"),
        "CADENZA_OUTPUT": str(tmp_path / "out")})
    running = asyncio.create_task(run_bot(settings))
    try:
        await api.wait_identified(timeout=60)
        # Only signal ourselves once the bot's handler is in place (else SIGTERM kills pytest).
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        running.cancel()
    assert not api.sessions[-1].open
    assert api.requests_to("PUT /applications/{application_id}/guilds/{guild_id}/commands") == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler removed again


# ---------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize(("var", "value", "expects"), [
    ("CADENZA_DEV_GUILD", "12345x", "a Discord server id"),
    ("CADENZA_DEV_GUILD", "99999999999999999999", "a Discord server id"),
    ("CADENZA_WORKERS", "0", "a whole number of at least 1"),
    ("CADENZA_WORKERS", "two", "a whole number of at least 1"),
    ("CADENZA_QUEUE_SIZE", "16.5", "a whole number of at least 1"),
    ("CADENZA_PER_MEMBER", "-3", "a whole number of at least 1"),
    ("CADENZA_OWNER_IDS", "123, 45б6", "Discord user ids"),
])
def test_a_mistyped_setting_stops_cadenza_run_with_one_line(
        var, value, expects, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    # These used to be dropped silently: the bot started with the default (or no dev guild,
    # or no owners) and nobody was told why.
    with pytest.raises(UserError, match=f"^{var} must be {expects}"):
        Settings.from_env({var: value})
    monkeypatch.setenv("CADENZA_TOKEN", "MTIz.secret.token")
    monkeypatch.setenv(var, value)
    from cadenza.cli import EXIT_USER_ERROR, main

    assert main(["run"]) == EXIT_USER_ERROR
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"error: {var} must be ")
    assert repr(value.split(",")[-1].strip()) in err and "MTIz.secret.token" not in err


def test_settings_accept_spaced_ids_and_counts() -> None:
    s = Settings.from_env({"CADENZA_DEV_GUILD": " 42 ", "CADENZA_OWNER_IDS": "1, 2 3",
                           "CADENZA_WORKERS": "2", "CADENZA_QUEUE_SIZE": "", "CADENZA_TOKEN": "t"})
    assert (s.dev_guild, s.owner_ids, s.workers, s.queue_size) == (42, frozenset({1, 2, 3}), 2, 16)


def test_cadenza_run_without_a_way_to_discord_says_so_in_one_line(
        tmp_path, tiny_models, monkeypatch, capsys, unfreeze):  # type: ignore[no-untyped-def]
    # A port nothing listens on stands for a machine with no route to discord.com (no
    # DiscordDouble here: discord.py's API base points at the closed port instead).
    import socket

    import discord

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    for var, value in {"CADENZA_TOKEN": "MTIz.secret.token", "CADENZA_MODELS": str(tiny_models),
                       "CADENZA_DB": str(tmp_path / "bot.db"),
                       "CADENZA_OUTPUT": str(tmp_path / "out")}.items():
        monkeypatch.setenv(var, value)
    from cadenza.cli import EXIT_USER_ERROR, main

    assert main(["run"]) == EXIT_USER_ERROR
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("error: cannot reach Discord (Cannot connect to host 127.0.0.1:")
    assert "check this machine's network connection" in err
    assert "Traceback" not in err and "MTIz.secret.token" not in err


# ---------------------------------------------------------------------------------------------
# Discord's limits on what is echoed back


async def test_over_long_input_is_refused_within_discords_limits(api, tmp_path, tiny_registry):
    # Discord accepts string options of up to 6000 characters; refusals quoting them back used
    # to exceed the 2000-character content limit (or a 256-character embed title), so Discord
    # answered 400 and the member heard nothing at all.
    long = "x" * 2500
    async with cadenza(api, tmp_path, tiny_registry) as h:
        key = await (await api.slash("compose", {"key": long})).wait_original()
        model = await (await api.slash("compose", {"model": long})).wait_original()
        top = await (await api.slash("top", {"model": "y" * 300})).wait_original()
        listed = await (await api.slash("seed list", {"query": "z" * 300})).wait_original()
    for refusal in (key, model):
        # the shared layer quotes 39 characters of it back (cadenza.errors.shown)
        assert refusal.ephemeral and len(refusal.content) <= 200
        assert ("x" * 39 + "…'") in refusal.content and ("x" * 40) not in refusal.content
    assert key.content.startswith("Unknown key 'xxx") and key.content.endswith(
        "…': use a note name with an optional m, e.g. C, F#m, Bb")
    assert model.content.startswith("Unknown model 'xxx")
    names = ", ".join(h.app.composer.model_names())
    assert top.ephemeral and top.content == (
        f"Unknown model '{'y' * 39}…': choose one of {names}")
    title = listed.embeds[0]["title"]
    assert len(title) == 256 and title.startswith("Seeds matching “zzz") and title.endswith("…")
    api.assert_no_errors()
    assert rows(h.db, "SELECT COUNT(*) FROM jobs") == [(0,)]


def test_fit_content_shortens_echoed_words_then_cuts_at_a_space() -> None:
    from cadenza.discord.errors import fit_content

    assert fit_content("fits as it is") == "fits as it is"
    wordy = fit_content("word " * 600)
    assert len(wordy) <= 2000 and wordy.endswith("word…")
    assert fit_content("too long: " + "a" * 2500) == "too long: " + "a" * 100 + "…"
    quoted = fit_content("unknown thing '" + "b" * 3000 + "': try another")
    assert quoted == "unknown thing '" + "b" * 99 + "…': try another"
