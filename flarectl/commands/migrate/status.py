"""`flarectl migrate status`: applied, pending, failed and drifted migrations, one row each."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from flarectl.console import OutputFormat, table
from flarectl.storage import run_on_stores

from ._common import (
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    MIGRATE_ERRORS,
    MIGRATIONS_OPTION,
    URL_OPTION,
    messagedb_url,
    opened,
    status_dict,
)


def _when(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def render(data: object) -> object:
    d: dict = data  # type: ignore[assignment]
    rows = [[m["version"], m["name"], m["state"], _when(m["applied_at_ms"]), m["applied_by"] or "",
             "" if m["execution_ms"] is None else m["execution_ms"], (m["sha256"] or "")[:12]]
            for m in d["migrations"]]
    title = (f"{d['dialect']}: version {d['current_version']} of {d['latest_version']}"
             + (" (up to date)" if d["up_to_date"] else f" — {len(d['pending'])} pending"))
    return table(["VERSION", "NAME", "STATE", "APPLIED AT (UTC)", "BY", "MS", "SHA256"], rows, title=title)


def status(
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    migrations: Path | None = MIGRATIONS_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Show every migration: applied (when, by whom, how long), pending, failed, drifted."""
    target = messagedb_url(config, url, data_dir)

    async def use(_db, migrator) -> dict:
        return status_dict(await migrator.status(), migrator)

    run_on_stores(use, opened=opened(target, migrations=migrations), errors=MIGRATE_ERRORS, output=output,
                  human=render)
