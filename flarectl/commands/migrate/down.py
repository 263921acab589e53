"""`flarectl migrate down --to V [--dry-run] [--yes]`: run undo files (U<NNN>__….sql) newest first.
A migration without an undo file is refused (exit 11) before anything runs."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, confirm_or_abort, err
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


def render(data: object) -> str:
    d: dict = data  # type: ignore[assignment]
    if d["dry_run"]:
        return f"dry run: would undo {', '.join(d['would_undo']) or 'nothing'}"
    if not d["undone"]:
        return f"nothing to undo: at version {d['current_version']}"
    return "\n".join([f"undid {r['version']:>3} {r['description']}" for r in d["undone"]]
                     + [f"now at version {d['current_version']}"])


def down(
    to: int = typer.Option(..., "--to", help="The version to go back to (0: empty schema)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be undone; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    migrations: Path | None = MIGRATIONS_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Undo applied migrations above --to (their tables and rows are dropped)."""
    target = messagedb_url(config, url, data_dir)

    async def use(_db, migrator) -> dict:
        undo = await migrator.down_plan(to=to)  # NoDownScript here: nothing has run
        rows = []
        if undo and not dry_run:
            confirm_or_abort(f"undo {', '.join(m.name for m in undo)} and drop what they made?", yes=yes)
            if output is OutputFormat.table:
                err.print(f"undoing {', '.join(m.name for m in undo)} …", highlight=False)
            rows = await migrator.down(to=to, lock_timeout_s=lock_timeout)
        st = await migrator.status()
        return {"dry_run": dry_run, "would_undo": [m.name for m in undo] if dry_run else [],
                "undone": [row_dict(r) for r in rows], "current_version": st.current_version}

    run_on_stores(use, opened=opened(target, migrations=migrations), errors=MIGRATE_ERRORS, output=output,
                  human=render)
