"""``cadenza run`` against the loopback Discord double (for tests that need the real process):
discord.py's REST and gateway addresses are pointed at the double given by
``CADENZA_TEST_API`` and ``CADENZA_TEST_GATEWAY``, then the real launcher runs.

Run as ``python tests/bot_under_double.py``; extra arguments go to ``cadenza run``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # render children import this file too: they must not run it
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = os.environ["CADENZA_TEST_API"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["CADENZA_TEST_GATEWAY"])

    from cadenza.cli import run

    sys.argv = ["cadenza", "run", *sys.argv[1:]]
    run()
