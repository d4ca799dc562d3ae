"""Secrets stay out of the logs: interaction tokens (discord.py prints every webhook URL at DEBUG)
and the bot token."""

from __future__ import annotations

import logging

import pytest
from discord_double import DiscordDouble
from test_discord_bot import cadenza, is_clip

from cadenza.discord.redact import TokenFilter, redact


@pytest.fixture
async def api():
    async with DiscordDouble() as double:
        yield double


def test_tokens_in_webhook_and_callback_urls_are_redacted() -> None:
    url = ("POST https://discord.com/api/v10/interactions/1234/aW50ZXJhY3Rpb246MTIzNDpzZWNyZXQ"
           "/callback with None has returned 204")
    assert redact(url) == ("POST https://discord.com/api/v10/interactions/1234/<token>/callback "
                           "with None has returned 204")
    hook = "PATCH http://127.0.0.1:5/api/v10/webhooks/99/tok.en-_x/messages/@original?wait=1"
    assert redact(hook) == ("PATCH http://127.0.0.1:5/api/v10/webhooks/99/<token>/messages/"
                            "@original?wait=1")
    event = "WebSocket Event: {'op': 0, 'd': {'id': '5', 'token': 'aW50ZXJh.c3Rpb24', 'v': 1}}"
    assert redact(event) == ("WebSocket Event: {'op': 0, 'd': {'id': '5', 'token': '<token>', "
                             "'v': 1}}")
    record = logging.LogRecord("discord.http", logging.DEBUG, __file__, 1, "%s %s has returned %s",
                               ("GET", "https://x/webhooks/1/secret-token-here", 200), None)
    assert TokenFilter().filter(record) and record.getMessage() == (
        "GET https://x/webhooks/1/<token> has returned 200")


async def test_no_interaction_or_bot_token_reaches_a_debug_log(api, tmp_path, tiny_registry,
                                                               caplog) -> None:
    caplog.set_level(logging.DEBUG)
    async with cadenza(api, tmp_path, tiny_registry) as h:
        inter = await api.slash("compose", {"bars": 1, "seed": 3})
        clip = await inter.wait_original(is_clip, timeout=60)
        click = await api.click(clip, "rate:1:4")
        await click.wait_original()
        tokens = [inter.token, click.token]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/webhooks/" in text and "<token>" in text  # the URLs were logged, redacted
    for token in [*tokens, api.token]:
        assert token not in text
    assert h.db.exists()
