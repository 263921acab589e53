"""`flarectl migrate plan [--to V]`: the SQL `up` would run, in order, with the linter's warnings."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text

from flarectl.console import OutputFormat
from flarectl.storage import run_on_stores

from ._common import (
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    MIGRATIONS_OPTION,
    MIGRATE_ERRORS,
    URL_OPTION,
    findings_for,
    messagedb_url,
    migration_dict,
    opened,
)
from ._lint import linter_name


def render(data: object) -> object:
    d: dict = data  # type: ignore[assignment]
    if not d["steps"]:
        return Text(f"{d['dialect']}: up to date at version {d['current_version']}; nothing to run")
    parts: list[object] = [Text(f"{d['dialect']}: version {d['current_version']} -> {d['target_version']}, "
                                f"{len(d['steps'])} migration(s), linted by {d['linter']}")]
    for step in d["steps"]:
        mode = "in a transaction" if step["transactional"] else "outside a transaction"
        parts.append(Text(f"\n-- {step['file']} ({mode}, sha256 {step['sha256'][:12]})", style="bold"))
        for w in step["warnings"]:
            level = "DESTRUCTIVE" if w["blocking"] else "warning"
            parts.append(Text(f"   {level} line {w['line']}: {w['rule']}: {w['message']}",
                              style="red" if w["blocking"] else "yellow"))
        parts.append(Syntax(step["sql"].rstrip(), "sql", theme="ansi_dark", background_color="default"))
    if d["destructive"]:
        parts.append(Text("\n`migrate up` refuses these without --allow-destructive", style="red"))
    return Group(*parts)


def plan(
    to: int | None = typer.Option(None, "--to", help="Stop at this version (default: the latest)."),
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    migrations: Path | None = MIGRATIONS_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Print the pending migrations' SQL in the order `up` runs it; flag destructive changes."""
    target = messagedb_url(config, url, data_dir)

    async def use(db, migrator) -> dict:
        steps = await migrator.plan(to=to)
        st = await migrator.status()
        dialect = db.dialect
        findings = await findings_for(steps, dialect, db)
        return {
            "dialect": dialect, "current_version": st.current_version,
            "target_version": to if to is not None else st.latest_version, "linter": linter_name(dialect),
            "steps": [{**migration_dict(m, dialect, findings=findings[m.version]), "sql": m.sql} for m in steps],
            "destructive": sorted({f.rule for fs in findings.values() for f in fs if f.blocking}),
        }

    run_on_stores(use, opened=opened(target, migrations=migrations), errors=MIGRATE_ERRORS, output=output,
                  human=render)
