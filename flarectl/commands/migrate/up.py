"""`flarectl migrate up [--to V] [--dry-run] [--allow-destructive] [--create-database]`.

"Already up to date" is success (exit 0): a CI step that migrates on every deploy must not
fail on the deploys that bring no migration (golang-migrate#485).
"""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, err, fail
from flarectl.exitcodes import ExitCode
from flarectl.storage import run_on_stores
from services.backends.messagedb.history import default_applied_by
from services.backends.messagedb.migrations import Migration

from ._common import (
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    LOCK_TIMEOUT_OPTION,
    MIGRATIONS_OPTION,
    URL_OPTION,
    findings_for,
    messagedb_url,
    migration_dict,
    MIGRATE_ERRORS,
    opened,
    row_dict,
)


def render(data: object) -> str:
    d: dict = data  # type: ignore[assignment]
    if d["dry_run"]:
        names = ", ".join(s["name"] for s in d["would_apply"]) or "nothing"
        return f"dry run: would apply {names} (now at version {d['current_version']})"
    if not d["applied"]:
        return f"already up to date at version {d['current_version']}"
    lines = [f"applied {r['version']:>3} {r['description']} ({r['execution_ms']} ms)" for r in d["applied"]]
    return "\n".join(lines + [f"now at version {d['current_version']} of {d['latest_version']}"])


def up(
    to: int | None = typer.Option(None, "--to", help="Stop at this version (default: the latest)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run; change nothing."),
    allow_destructive: bool = typer.Option(False, "--allow-destructive",
                                           help="Run migrations the linter flags as destructive or locking."),
    create_database: bool = typer.Option(False, "--create-database", help="Create the database first if missing."),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    applied_by: str | None = typer.Option(None, "--applied-by", help="Recorded in the history (default user@host)."),
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    migrations: Path | None = MIGRATIONS_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Apply pending migrations in order, each in its own transaction, under the migration lock."""
    target = messagedb_url(config, url, data_dir)
    progress = output is OutputFormat.table

    async def before(m: Migration, _direction: str) -> None:
        if progress:
            err.print(f"applying {m.name} …", highlight=False)

    async def use(db, migrator) -> dict:
        dialect = db.dialect
        steps = await migrator.plan(to=to)
        findings = await findings_for(steps, dialect, db)
        blocking = [f for fs in findings.values() for f in fs if f.blocking]
        if blocking and not allow_destructive and not dry_run:
            listed = "; ".join(f"{f.file}:{f.line} {f.rule}" for f in blocking)
            fail(f"refusing destructive or locking changes: {listed}", ExitCode.REFUSED,
                 hint="review `flarectl migrate plan`, then rerun with --allow-destructive")
        rows = [] if dry_run else await migrator.up(
            to=to, applied_by=applied_by or default_applied_by(), lock_timeout_s=lock_timeout, before=before)
        st = await migrator.status()
        return {
            "dialect": dialect, "dry_run": dry_run, "current_version": st.current_version,
            "latest_version": st.latest_version, "up_to_date": st.up_to_date,
            "would_apply": [migration_dict(m, dialect, findings=findings[m.version]) for m in steps] if dry_run else [],
            "applied": [row_dict(r) for r in rows],
        }

    run_on_stores(use, opened=opened(target, migrations=migrations, create_database=create_database),
                  errors=MIGRATE_ERRORS, output=output, human=render)
