"""`flarectl migrate validate`: applied checksums against the files; exit 1 naming every file
whose content changed (or vanished) since it ran."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat
from flarectl.storage import run_on_stores

from ._common import CONFIG_OPTION, DATA_DIR_OPTION, MIGRATE_ERRORS, MIGRATIONS_OPTION, URL_OPTION, messagedb_url, \
    opened


def render(data: object) -> str:
    d: dict = data  # type: ignore[assignment]
    if d["valid"]:
        return f"ok: {d['checked']} applied migration(s) match their files"
    return "\n".join(f"DRIFT {p['problem']}" for p in d["drift"])


def validate(
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    migrations: Path | None = MIGRATIONS_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Compare each applied migration's recorded sha256 with its file today."""
    target = messagedb_url(config, url, data_dir)

    async def use(_db, migrator) -> dict:
        st = await migrator.status()
        return {"valid": not st.drift, "checked": sum(1 for r in st.applied if r.checksum),
                "drift": [{"version": d.version, "file": d.filename, "applied_sha256": d.applied_checksum,
                           "file_sha256": d.file_checksum, "problem": d.describe()} for d in st.drift]}

    # Drift is a finding, not an error: the report is printed, then the exit code says it.
    run_on_stores(use, opened=opened(target, migrations=migrations), errors=MIGRATE_ERRORS, output=output,
                  human=render, failed=lambda d: not d["valid"])
