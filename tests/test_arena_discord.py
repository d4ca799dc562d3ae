"""The arena through the real discord.py bot and the loopback Discord double: /arena new posts A
and B with the models hidden and four vote buttons; clicks store and change votes, the reveal
names the models and makes the vote final; the buttons work after a restart, an interrupted
pair is retried; /arena leaderboard; console parity."""

from __future__ import annotations

import io
import json
import re

import pytest
from discord_double import DiscordDouble, MessageSnapshot
from test_arena_store import literal_votes
from test_discord_bot import SLOW, cadenza, rows

from cadenza import bradley_terry
from cadenza.console import Console
from cadenza.members import UserRef
from cadenza.store import Store

VOTE_BUTTONS = ["arena:1:a", "arena:1:b", "arena:1:tie", "arena:1:bad"]


@pytest.fixture
async def api():
    async with DiscordDouble() as double:
        yield double


def is_arena(message: MessageSnapshot) -> bool:
    return bool(message.embeds) and message.embeds[0].get("title", "").startswith("Arena #")


def names_a_model(message: MessageSnapshot, models: list[str]) -> list[str]:
    """Model names anywhere in what the message shows (text, embeds, file names, buttons)."""
    shown = json.dumps({"content": message.content, "embeds": message.embeds,
                        "files": message.filenames, "components": message.components})
    return [m for m in models if re.search(rf"\b{m}\b", shown, flags=re.IGNORECASE)]


async def test_a_pair_is_posted_blind_voted_on_changed_revealed_and_survives_a_restart(
        api, tmp_path, tiny_registry):
    fan, critic = api.add_member(name="fan"), api.add_member(name="critic")
    models = tiny_registry.names()
    async with cadenza(api, tmp_path, tiny_registry) as h:
        inter = await api.slash("arena new", {"style": "jazz", "bars": 1})
        assert (await inter.wait_response()).type == 5  # deferred, public
        post = await inter.wait_original(is_arena, timeout=SLOW)
        first = await (await api.click(post, "arena:1:a", user=fan)).wait_original()
        changed = await (await api.click(post, "arena:1:b", user=fan)).wait_original()
        shown = await (await api.click(changed, "arena:1:reveal", user=fan)).wait_original()
        final = await (await api.click(post, "arena:1:a", user=fan)).wait_original()
        early = await (await api.click(changed, "arena:1:reveal", user=critic)).wait_original()
    model_a, model_b = rows(h.db, "SELECT model_a, model_b FROM arena_pairs")[0]

    # Progress like /compose, clip A then clip B, and never a model's name.
    states = [m.content for m in inter.original_history]
    assert any(s.startswith("🎼 Composing clip A — writing the melody") for s in states)
    assert any(s.startswith("🎼 Composing clip B — ") and "(10/10)" in s for s in states)
    assert all(not names_a_model(m, models) for m in inter.original_history)
    assert all("two hidden models" in s for s in states[1:] if s)

    embed = post.embeds[0]
    assert embed["title"] == "Arena #1 — jazz" and not post.ephemeral
    assert [f["name"] for f in embed["fields"]] == ["Style", "Key", "Tempo", "Meter", "Bars",
                                                     "Seed"]
    assert post.filenames == ["arena-1-A.mp3", "arena-1-B.mp3"]
    clip_a, clip_b = rows(h.db, "SELECT clip_a, clip_b FROM arena_pairs")[0]
    assert post.file("arena-1-A.mp3") == (tmp_path / "out" / f"clip-{clip_a}.mp3").read_bytes()
    assert post.file("arena-1-B.mp3") == (tmp_path / "out" / f"clip-{clip_b}.mp3").read_bytes()
    assert post.custom_ids == VOTE_BUTTONS
    assert [post.component(c)["label"] for c in VOTE_BUTTONS] == ["A better", "B better", "Tie",
                                                                 "Both bad"]
    assert names_a_model(post, models) == []
    assert model_a != model_b
    assert rows(h.db, "SELECT message_id, channel_id FROM arena_pairs") == [(post.id,
                                                                             api.channel_id)]
    assert rows(h.db, "SELECT status, clip_id FROM jobs") == [("done", clip_a)]

    # Votes are ephemeral; the second replaces the first; the reveal makes it final.
    assert all(m.ephemeral for m in (first, changed, shown, final, early))
    assert first.content == (
        "Your vote on arena #1: **A better**. 1 vote(s) so far: A 1 · B 0 · tie 0 · both bad 0.\n"
        "Press **Reveal the models** to see which model made A and which B; your vote is final "
        "then.")
    assert first.custom_ids == ["arena:1:reveal"]
    assert changed.content.startswith("Your vote on arena #1: **B better** (was A better). "
                                      "1 vote(s) so far: A 0 · B 1 ·")
    assert shown.content == (f"Arena #1: **A** was **{model_a}**, **B** was **{model_b}**. "
                             f"Your vote: B better ({model_b}) — final.")
    assert final.content == ("You have seen which model made A and B on arena #1, so your vote "
                             "there is final")
    assert early.content == ("Vote on arena #1 first: the models stay hidden until you have "
                             "voted")
    assert rows(h.db, "SELECT user_id, choice, revealed_at IS NOT NULL FROM arena_votes") == [
        (fan.id, "b", 1)]

    # A new process (new store, app and bot on the same file, no stored views): the buttons
    # on the old post still vote, and the old confirmation's reveal still reveals.
    # Until a member has revealed the pair, its clips cannot be looked up or built on (the
    # clip's embed, or a new clip's, would name the model).
    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as again:
        peek = await (await api.slash("clip", {"clip": clip_a}, user=critic)).wait_original()
        vary = await (await api.slash("vary", {"clip": clip_b}, user=critic)).wait_original()
        tie = await (await api.click(post, "arena:1:tie", user=critic)).wait_original()
        told = await (await api.click(tie, "arena:1:reveal", user=critic)).wait_original()
        seen = await (await api.slash("clip", {"clip": clip_a}, user=critic)).wait_original(
            lambda m: bool(m.embeds), timeout=SLOW)
        board = await (await api.slash("arena leaderboard")).wait_original()
    assert (peek.ephemeral, vary.ephemeral) == (True, True)
    assert peek.content == (f"Clip #{clip_a} is A of arena #1: its model stays hidden until you "
                            "have voted on the pair and revealed it")
    assert vary.content.startswith(f"Clip #{clip_b} is B of arena #1: ")
    assert names_a_model(peek, models) == names_a_model(vary, models) == []
    assert model_a in json.dumps(seen.embeds)  # revealed: the clip shows as usual
    assert tie.content.startswith("Your vote on arena #1: **Tie**. 2 vote(s) so far: A 0 · B 1 · "
                                  "tie 1 · both bad 0.")
    assert told.content.startswith(f"Arena #1: **A** was **{model_a}**")
    assert rows(again.db, "SELECT user_id, choice FROM arena_votes ORDER BY choice") == [
        (fan.id, "b"), (critic.id, "tie")]
    assert rows(again.db, "SELECT COUNT(*) FROM clips") == [(2,)]  # the refused /vary: nothing
    lines = board.embeds[0]["description"].split("\n")
    assert [line.split(" — ")[0] for line in lines] == [f"**1.** {model_b}", f"**2.** {model_a}"]
    assert "from 2 vote(s) by 2 member(s)" in board.embeds[0]["footer"]["text"]
    api.assert_no_errors()


async def test_leaderboard_shows_the_bradley_terry_numbers(api, tmp_path, tiny_registry):
    async with await Store.open(tmp_path / "cadenza.db") as store:
        await literal_votes(store)
    async with cadenza(api, tmp_path, tiny_registry):
        board = await (await api.slash("arena leaderboard")).wait_original()
        folk = await (await api.slash("arena leaderboard", {"style": "folk"})).wait_original()
        empty = await (await api.slash("arena leaderboard", {"style": "ragtime"})).wait_original()
    expected = bradley_terry.ratings([
        ("lstm", "gru", 1.0), ("lstm", "gru", 1.0), ("lstm", "gru", 0.5), ("lstm", "gru", 1.0),
        ("gru", "vae", 1.0), ("gru", "vae", 0.0),
        ("vae", "lstm", 0.0), ("vae", "lstm", 0.0), ("vae", "lstm", 1.0), ("vae", "lstm", 0.0),
        ("lstm", "vae", 1.0), ("lstm", "vae", 0.5), ("lstm", "vae", 1.0)], boot=200, seed=0)
    bad = {"lstm": 2, "gru": 2, "vae": 1}
    embed = board.embeds[0]
    assert embed["title"] == "Arena leaderboard" and not board.ephemeral
    assert embed["description"].split("\n") == [
        *(f"**{i}.** {r.model} — **{r.rating:.0f}** ({r.low:.0f}–{r.high:.0f}) · {r.votes} "
          f"vote(s) · {r.wins:g} win(s) · {bad[r.model]} both bad · *provisional*"
          for i, r in enumerate(expected, start=1)),
        "**–** rnn — no decisive votes yet · 1 both bad",
    ]
    footer = embed["footer"]["text"]
    assert "from 13 vote(s) by 6 member(s)" in footer
    assert "'Both bad' votes (3) are counted but left out of the ratings." in footer
    assert footer.endswith("1 rater(s) voted for one model only (at least 3 votes, every one "
                           "for the same model).")
    assert folk.embeds[0]["title"] == "Arena leaderboard — folk"
    assert folk.embeds[0]["description"].startswith("**1.** lstm — ")
    assert empty.embeds[0]["description"] == "No arena votes yet: start a pair with `/arena new`."


async def test_an_interrupted_pair_is_reported_without_its_models_and_retried(
        api, tmp_path, tiny_registry):
    alice = api.add_member(name="alice")
    async with cadenza(api, tmp_path, tiny_registry, gated=True) as h:
        inter = await api.slash("arena new", {"style": "blues", "bars": 1}, user=alice)
        await h.wait_until(lambda: h.composer.entered, "clip A to start")
    assert rows(h.db, "SELECT status FROM jobs") == [("running",)]
    models = tiny_registry.names()

    async with cadenza(api, tmp_path, tiny_registry, dev_guild=False) as h2:
        notice = await h2.wait_until(
            lambda: next((m for m in api.channel_messages() if "interrupted" in m.content), None),
            "the restart notice")
        old = api.message(inter.original.id)
        retry = await api.click(notice, "retry:1", user=alice)
        post = await retry.wait_original(is_arena, timeout=SLOW)
    assert notice.content.startswith(f"{alice.mention} sorry — your /arena new was interrupted "
                                     "when Cadenza restarted, so the arena pair was not made "
                                     "(blues · 1 bar · ")
    assert "two hidden models" in notice.content and notice.custom_ids == ["retry:1"]
    assert old.content.startswith("✖ Interrupted — Cadenza restarted before this arena pair "
                                  "was finished.")
    assert names_a_model(notice, models) == [] and names_a_model(old, models) == []
    # The retry makes the same pair: same prompt, same two models in the same order.
    first, second = (json.loads(p) for (p,) in rows(h2.db, "SELECT params_json FROM jobs "
                                                            "ORDER BY id"))
    assert first == second and first["arena"]["a"] != first["arena"]["b"]
    assert rows(h2.db, "SELECT model_a, model_b, style FROM arena_pairs") == [
        (first["arena"]["a"], first["arena"]["b"], "blues")]
    assert post.embeds[0]["title"] == "Arena #1 — blues"
    assert post.custom_ids == VOTE_BUTTONS


@pytest.mark.parametrize(("command", "options", "line"), [
    ("arena vote", {"pair": 99, "choice": "a"}, "/arena vote pair:99 choice:a"),
    ("arena reveal", {"pair": 3}, "/arena reveal pair:3"),
    ("arena new", {"bars": 17}, "/arena bars:17"),
])
async def test_discord_and_console_refuse_arena_input_alike(api, tmp_path, tiny_registry,
                                                            command, options, line):
    async with cadenza(api, tmp_path, tiny_registry) as h:
        answer = await (await api.slash(command, options, validate=False)).wait_original()
        out = io.StringIO()
        await Console(h.app, UserRef(0, "console"), out=out).execute(line)
    console_text = out.getvalue().strip().removeprefix("error: ")
    assert answer.ephemeral
    assert answer.content == console_text[:1].upper() + console_text[1:]
    assert rows(h.db, "SELECT COUNT(*) FROM arena_votes") == [(0,)]
    assert rows(h.db, "SELECT COUNT(*) FROM jobs") == [(0,)]
