"""`flarectl migrate baseline --version V [--yes]`: adopt a database whose schema is already at
version V (made by hand, or by another tool): versions up to V count as applied, unrun."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, confirm_or_abort
from flarectl.storage import run_on_stores

from ._common import (
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    LOCK_TIMEOUT_OPTION,
    MIGRATIONS_OPTION,
    URL_OPTION,
    messagedb_url,
    MIGRATE_ERRORS,
    opened,
    row_dict,
)


def baseline(
    version: int = typer.Option(..., "--version", help="The version the existing schema is at."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    migrations: Path | None = MIGRATIONS_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Record a baseline at VERSION in an empty schema history (refused if any is applied)."""
    target = messagedb_url(config, url, data_dir)
    confirm_or_abort(f"record that this database's schema is already at version {version}?", yes=yes)

    async def use(_db, migrator) -> dict:
        row = await migrator.baseline(version=version, lock_timeout_s=lock_timeout)
        return {"baseline": row_dict(row)}

    run_on_stores(use, opened=opened(target, migrations=migrations), errors=MIGRATE_ERRORS, output=output,
                  human=lambda d: f"baselined at version {d['baseline']['version']}")
