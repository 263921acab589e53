"""PostgreSQL (Debian postgresql 15), run as the `postgres` user when we are root.

The postmaster runs in the foreground under our process group rather than through
`pg_ctl start` (which daemonizes): kill -9 of the group is then a real crash of the
server and all its backends, and a restart reuses the same data dir and port.
"""

from __future__ import annotations

import signal
import subprocess

from .base import Server
from .install import find_binary

__all__ = ["PostgresServer"]


class PostgresServer(Server):
    kind = "postgres"
    port_names = ("main",)
    run_as = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients to leave
    start_timeout = 60.0
    user = "postgres"
    database = "postgres"

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.address}/{database}"

    def prepare(self) -> None:
        self.run_tool([find_binary("initdb") or "initdb", "-D", str(self.data_dir), "-A", "trust",
                       "-U", self.user, "-E", "UTF8", "--locale=C", "--no-sync"], what="initdb")

    def start(self) -> None:
        # After kill -9 of a server this process did not start, its postmaster can linger as a
        # zombie nobody reaps; postgres then takes the lock file for live and refuses to start.
        lock = self.data_dir / "postmaster.pid"
        if not self.is_running() and lock.exists():
            lock.unlink()
        super().start()

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "fsync": "off",  # tests only: survives a process crash (kill -9), not an OS crash
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
        }
        # TCP only: a Unix socket's lock file would outlive a postmaster killed by another
        # process (its zombie is never reaped in these containers) and block the restart.
        argv = [find_binary("postgres") or "postgres", "-D", str(self.data_dir), "-p", str(self.port), "-k", ""]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        return argv

    def not_ready_reason(self) -> str | None:
        proc = subprocess.run([find_binary("pg_isready") or "pg_isready", "-h", self.host, "-p", str(self.port),
                               "-U", self.user, "-d", self.database, "-t", "2"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return None if proc.returncode == 0 else f"pg_isready: {proc.stdout.strip() or proc.returncode}"

    def psql(self, sql: str, *, database: str | None = None) -> str:
        """Run SQL through psql (unaligned, tuples only): the independent client for tests."""
        return self.run_tool([find_binary("psql") or "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-h", self.host, "-p", str(self.port), "-U", self.user,
                              "-d", database or self.database, "-c", sql], what="psql")

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if it exists); returns its URL."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def endpoints(self) -> dict:
        return {**super().endpoints(), "user": self.user, "database": self.database}
