"""Keeps interaction tokens out of the logs: discord.py's DEBUG lines name every webhook URL.

An interaction token lets whoever holds it answer as the bot for 15 minutes, so it is a secret
like the bot token (which discord.py never logs). The filter rewrites the records of the loggers
that print request URLs, whatever handler or level the operator configured.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

# /webhooks/<application id>/<token>... and /interactions/<id>/<token>/callback
_TOKEN_IN_PATH = re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/\s?'\"]+")
# 'token': '...' in a logged payload (the gateway prints every INTERACTION_CREATE at DEBUG)
_TOKEN_FIELD = re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+""")
REDACTED = "<token>"
# The loggers whose messages carry request URLs (discord.http's "POST https://... has
# returned 200", the webhook adapter's "Webhook ID ... with POST https://...") or payloads
# (discord.gateway's "WebSocket Event: {...}").
URL_LOGGERS = ("discord.http", "discord.webhook.async_", "discord.webhook.sync",
               "discord.gateway")


def redact(text: str) -> str:
    text = _TOKEN_IN_PATH.sub(lambda m: m[1] + REDACTED, text)
    return _TOKEN_FIELD.sub(lambda m: m[1] + REDACTED, text)


class TokenFilter(logging.Filter):
    """Replaces interaction and webhook tokens in a record's message with ``<token>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's business, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = TokenFilter()


def install() -> None:
    """Attach the filter to discord.py's URL-logging loggers (idempotent)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
