"""A throwaway PostgreSQL server for tests: initdb on a temp dir, pg_ctl on loopback, torn down.

Used by the ``pg_server`` fixture (tests/conftest.py) and, from other processes, as
``python tests/pg_server.py`` (prints the server's URL, stops when stdin closes or on SIGTERM).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SUPERUSER = "cadenza"  # the role initdb creates; trust authentication on loopback only
# The server may not run as root: when we are root it runs as this system user (the
# postgresql package creates it) and owns its data directory.
RUN_AS = "postgres"
START_TIMEOUT = 60  # seconds for pg_ctl -w; a cold start on a busy 2-core machine takes ~2 s


class PgUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed (apt install postgresql)."""


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: $CADENZA_PG_BIN, else Debian's newest
    /usr/lib/postgresql/N/bin, else wherever PATH has them."""
    env = os.environ.get("CADENZA_PG_BIN")
    candidates = [Path(env)] if env else []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates += [v / "bin" for v in versions]
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:``port``."""

    _names = itertools.count(1)

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise PgUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                                "apt-get install postgresql")
        self.bin_dir = found
        self.root: Path | None = None
        self.port = 0
        self._user: str | None = None  # run the server's programs as this user (root only)

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> str:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C.UTF-8"})
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return done.stdout

    def start(self) -> PgServer:
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise PgUnavailable(f"running as root and there is no {RUN_AS!r} user to run "
                                    "PostgreSQL as (apt-get install postgresql makes it)"
                                    ) from None
            self._user = RUN_AS
        # /tmp, not pytest's tmp_path: that one is 0700 root's, which the server user cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="cadenza-pg-"))
        if self._user is not None:
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
            for attempt in range(5):  # another process may take the free port before us
                self.port = free_port()
                try:
                    self._run(
                        "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT), "-D",
                        str(self.data_dir), "-l", str(self.root / "server.log"), "-o",
                        f"-c listen_addresses=127.0.0.1 -p {self.port} "
                        f"-c unix_socket_directories={self.root} "
                        # A test server: durability is not what is tested, speed matters.
                        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                        "-c max_connections=200",
                    )
                    break
                except RuntimeError:
                    if attempt == 4:
                        raise
            log.info("PostgreSQL started on port %d (%s)", self.port, self.data_dir)
        except BaseException:
            self.stop()
            raise
        return self

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command as the superuser; returns its unaligned output."""
        psql = self.bin_dir / "psql"
        cmd = [str(psql) if psql.is_file() else "psql", "-X", "-q", "-A", "-t",
               "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U",
               SUPERUSER, "-d", database, "-c", sql]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast: nothing in it is kept) and delete its files; idempotent."""
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    """Start a server, print its URL, and keep it until stdin closes or SIGTERM."""
    server = PgServer().start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(server.url(), flush=True)
        sys.stdin.read()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
