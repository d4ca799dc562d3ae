"""The test PostgreSQL server itself: it runs, takes connections, and gives each test a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg


async def test_server_takes_connections_and_gives_fresh_databases(pg_server, pg_url) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == pg_url.rsplit("/", 1)[1]
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                   "'public'") == 0
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
        assert (await conn.fetchval("SELECT lower('ÄÖÉ')")) == "äöé"
    finally:
        await conn.close()
    assert pg_server.create_database() != pg_url


def test_server_runs_for_another_process_until_stdin_closes() -> None:
    script = Path(__file__).with_name("pg_server.py")
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("postgresql://cadenza@127.0.0.1:")
        done = subprocess.run(["psql", "-X", "-A", "-t", "-d", url, "-c", "SELECT 40 + 2"],
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.strip() == "42", done.stderr
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=60) == 0
    done = subprocess.run(["psql", "-X", "-d", url, "-c", "SELECT 1"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0  # stopped
