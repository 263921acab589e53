"""What every `flarectl migrate` command shares: the options that find the database, opening
it, and which exit code each migration error leaves with (the frame they run in is
flarectl.storage.run_on_stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import typer

from flarectl.exitcodes import ExitCode
from flarectl.storage import CONFIG_OPTION, DATA_DIR_OPTION, URL_OPTION, ErrorExit, messagedb_url
from services.backends.messagedb.history import (
    ChecksumDrift,
    HistoryRow,
    MigrationFailed,
    MigrationLocked,
    NoDownScript,
)
from services.backends.messagedb.migrations import Migration, load_migrations
from services.backends.messagedb.migrator import DEFAULT_LOCK_TIMEOUT_S, Migrator, SchemaStatus
from services.backends.registry import open_messagedb
from services.common.errors import FlareError, NotFound

from ._lint import INDEX_RULE, Finding, index_table, lint

__all__ = [
    "CONFIG_OPTION", "URL_OPTION", "DATA_DIR_OPTION", "MIGRATIONS_OPTION", "LOCK_TIMEOUT_OPTION",
    "messagedb_url", "opened", "MIGRATE_ERRORS", "status_dict", "migration_dict", "row_dict", "findings_for",
]

MIGRATIONS_OPTION = typer.Option(
    None, "--migrations", help="A folder of V*.sql/U*.sql files to use instead of the shipped ones (DIR/<dialect>/ or DIR).")
LOCK_TIMEOUT_OPTION = typer.Option(DEFAULT_LOCK_TIMEOUT_S, "--lock-timeout", min=0.0,
                                   help="Seconds to wait for another migration's lock, then exit 10.")


@asynccontextmanager
async def opened(url: str, *, migrations: Path | None = None,
                 create_database: bool = False) -> AsyncIterator[tuple[object, Migrator]]:
    db = open_messagedb(url)
    if create_database:
        await db.create_database_if_missing()  # type: ignore[attr-defined]
    await db.start()
    try:
        files = load_migrations(db.dialect, migrations) if migrations else None  # type: ignore[attr-defined]
        yield db, Migrator(db, files)  # type: ignore[arg-type]
    finally:
        await db.close()


def _missing_database_hint(exc: FlareError) -> str | None:
    return "add --create-database to make it" if "does not exist" in str(exc) else None


MIGRATE_ERRORS = (
    ErrorExit(MigrationLocked, ExitCode.LOCKED, hint="raise --lock-timeout, or wait for the other migration to finish"),
    ErrorExit(NoDownScript, ExitCode.REFUSED),
    ErrorExit(ChecksumDrift, ExitCode.FAILURE),
    ErrorExit(MigrationFailed, ExitCode.FAILURE),
    ErrorExit(NotFound, hint=_missing_database_hint),
)


def migration_dict(m: Migration, dialect: str, *, findings: list[Finding] | None = None) -> dict[str, object]:
    out: dict[str, object] = {"version": m.version, "name": m.name, "file": f"{dialect}/{m.filename}",
                              "sha256": m.checksum, "transactional": m.transactional,
                              "has_down": m.down_sql is not None}
    if findings is not None:
        out["warnings"] = [f.to_dict() for f in findings]
    return out


def row_dict(row: HistoryRow) -> dict[str, object]:
    return row.to_dict()


def status_dict(st: SchemaStatus, migrator: Migrator) -> dict[str, object]:
    applied = {row.version: row for row in st.applied}
    failed = {row.version: row for row in st.failed}
    drifted = {d.version: d for d in st.drift}
    versions = sorted({*applied, *(m.version for m in migrator.migrations)})
    rows = []
    for version in versions:
        row = applied.get(version)
        state = ("drift" if version in drifted else "baseline" if row and row.kind == "baseline"
                 else "applied" if row else "failed" if version in failed else "pending")
        rows.append({
            "version": version, "name": migrator.name_of(version), "state": state,
            "applied_at_ms": row.applied_at_ms if row else None, "applied_by": row.applied_by if row else None,
            "execution_ms": row.execution_ms if row else None, "sha256": row.checksum if row else None,
            "error": failed[version].error if version in failed else None,
        })
    return {
        "dialect": st.dialect, "current_version": st.current_version, "latest_version": st.latest_version,
        "up_to_date": st.up_to_date, "migrations": rows,
        "pending": [m.name for m in st.pending], "failed": [migrator.name_of(r.version) for r in st.failed],
        "drift": [{"version": d.version, "file": d.filename, "applied_sha256": d.applied_checksum,
                   "file_sha256": d.file_checksum, "problem": d.describe()} for d in st.drift],
    }


async def findings_for(migrations: list[Migration], dialect: str, db) -> dict[int, list[Finding]]:
    """Lint each file; an index build blocks only on a table that holds rows now (one that is
    empty, or made by a pending migration, locks nobody out)."""
    out: dict[int, list[Finding]] = {}
    for m in migrations:
        findings = []
        for f in lint(m, dialect):
            if f.rule == INDEX_RULE and f.blocking:
                table = index_table(m.sql, f.line)
                populated = await db.table_has_rows(table) if table else True
                if not populated:
                    why = "does not exist yet" if populated is None else "is empty"
                    f = replace(f, blocking=False, message=f"{f.message} (not blocking: {table} {why})")
            findings.append(f)
        out[m.version] = findings
    return out
