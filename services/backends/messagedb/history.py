"""The schema-history vocabulary shared by the adapters and the migrator.

Each adapter keeps one row per attempt in its `flare_schema_history` table (Flyway's
model): version, description, kind, sha256 of the file that ran, who ran it, when, how
long it took and whether it succeeded. Rows are never updated; the schema's state is what
replaying the successful rows in order gives (`applied_versions`).
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from services.common.errors import BackendError, FlareError

__all__ = [
    "HISTORY_TABLE",
    "HistoryKind",
    "HistoryRow",
    "SchemaHistory",
    "applied_versions",
    "default_applied_by",
    "MigrationError",
    "MigrationLocked",
    "MigrationFailed",
    "ChecksumDrift",
    "NoDownScript",
    "SchemaBehind",
    "ArchiveLocked",
]

HISTORY_TABLE = "flare_schema_history"
HistoryKind = Literal["migrate", "undo", "baseline"]


def default_applied_by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    rank: int
    version: int
    description: str
    kind: HistoryKind
    checksum: str
    applied_by: str
    applied_at_ms: int
    execution_ms: int
    success: bool
    error: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "rank": self.rank, "version": self.version, "description": self.description, "kind": self.kind,
            "checksum": self.checksum, "applied_by": self.applied_by, "applied_at_ms": self.applied_at_ms,
            "execution_ms": self.execution_ms, "success": self.success, "error": self.error,
        }


def applied_versions(rows: Sequence[HistoryRow]) -> dict[int, HistoryRow]:
    """Version -> the row that put it in effect, replaying successful rows by rank. A
    baseline puts every version up to its own in effect (the rows it adopted)."""
    applied: dict[int, HistoryRow] = {}
    for row in sorted(rows, key=lambda r: r.rank):
        if not row.success:
            continue
        if row.kind == "migrate":
            applied[row.version] = row
        elif row.kind == "undo":
            applied.pop(row.version, None)
        elif row.kind == "baseline":
            for version in range(1, row.version + 1):
                applied.setdefault(version, row)
    return applied


class SchemaHistory(Protocol):
    """What an adapter gives the migrator: its dialect, its history table, a migration lock,
    and a way to run one file's SQL and record the attempt."""

    dialect: str

    async def read_history(self) -> list[HistoryRow]:
        """Every row by rank; [] when the table does not exist yet."""

    def migration_lock(self, *, timeout_s: float) -> AbstractAsyncContextManager[None]:
        """Hold the database's migration lock: try, back off, retry until timeout_s, then
        raise MigrationLocked. Never a blocking wait (see flyway#1654)."""

    async def run_migration(self, sql: str, *, transactional: bool, version: int, description: str,
                            kind: HistoryKind, checksum: str, applied_by: str) -> HistoryRow:
        """Run sql and record the attempt. Transactional: the SQL and its success row commit
        together; on failure the schema is as before, a failed row is recorded and
        MigrationFailed raised."""

    async def record(self, *, version: int, description: str, kind: HistoryKind, checksum: str,
                     applied_by: str) -> HistoryRow:
        """Record a successful row without running anything (baseline)."""

    async def after_migrate(self) -> None:
        """Maintenance that follows a migration under the same lock (partitions)."""

    async def table_has_rows(self, table: str) -> bool | None:
        """Whether the table holds any row; None when it does not exist (for the linter)."""


class MigrationError(BackendError):
    code = "migration_error"


class MigrationLocked(MigrationError):
    """Another migrator held the lock for longer than the caller would wait."""

    code = "migration_locked"


class MigrationFailed(MigrationError):
    code = "migration_failed"


class ChecksumDrift(MigrationError):
    """An applied migration's file no longer has the content that ran."""

    code = "checksum_drift"


class NoDownScript(MigrationError):
    code = "no_down_script"


class SchemaBehind(FlareError):
    """The database lacks migrations this code needs (split services refuse to start)."""

    code = "schema_behind"


class ArchiveLocked(MigrationLocked):
    """Another archive run, verify or restore held the archive lock too long."""

    code = "archive_locked"
