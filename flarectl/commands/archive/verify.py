"""`flarectl archive verify [--all | --chunk ID]`: re-read objects against their manifests and the
L1 catalog; exit 1 naming each chunk that does not match (or is missing)."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, fail
from flarectl.exitcodes import ExitCode
from flarectl.storage import CONFIG_OPTION, DATA_DIR_OPTION, OBJECTS_OPTION, URL_OPTION, messagedb_url, run_on_stores

from ._common import ARCHIVE_ERRORS, LOCK_TIMEOUT_OPTION, POLICY_OPTION, opened, policy_from


def render(data: object) -> str:
    d: dict = data  # type: ignore[assignment]
    lines = [f"MISMATCH {r['problem']}" for r in d["chunks"] if not r["ok"]]
    lines.append(f"{d['ok']} of {len(d['chunks'])} chunk(s) verified, {d['rows']} rows")
    return "\n".join(lines)


def verify(
    all_chunks: bool = typer.Option(False, "--all", help="Every archived chunk."),
    chunk: str | None = typer.Option(None, "--chunk", help="One chunk by id."),
    policy: Path | None = POLICY_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    objects: str | None = OBJECTS_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Check each chunk's sha256, row count and seq ranges against its manifest."""
    if all_chunks == (chunk is not None):
        fail("give exactly one of --all or --chunk ID", ExitCode.USAGE)
    tier = policy_from(policy, config=config, data_dir=data_dir, objects=objects, lock_timeout_s=lock_timeout)
    db_url = messagedb_url(config, url, data_dir)

    async def use(_db, _objects, archiver) -> dict:
        results = await archiver.verify(chunk_id=chunk)
        return {"chunks": [{"chunk_id": r.chunk_id, "ok": r.ok, "rows": r.rows, "problem": r.problem}
                           for r in results],
                "ok": sum(r.ok for r in results), "rows": sum(r.rows for r in results),
                "failed": [r.chunk_id for r in results if not r.ok]}

    # A damaged chunk is a finding, not an error: the report is printed, then the exit code says it.
    run_on_stores(use, opened=opened(db_url, tier), errors=ARCHIVE_ERRORS, output=output, human=render,
                  failed=lambda d: bool(d["failed"]))
