"""`flarectl archive restore --chunk ID | --conversation C [--since T] [--until T]`: put archived
rows back into L1. Idempotent: a second restore of the same adds nothing."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, fail
from flarectl.exitcodes import ExitCode
from flarectl.storage import CONFIG_OPTION, DATA_DIR_OPTION, OBJECTS_OPTION, URL_OPTION, messagedb_url, run_on_stores

from ._common import ARCHIVE_ERRORS, LOCK_TIMEOUT_OPTION, POLICY_OPTION, opened, parse_time, policy_from


def restore(
    chunk: str | None = typer.Option(None, "--chunk", help="Restore this whole chunk."),
    conversation: str | None = typer.Option(None, "--conversation", help="Restore this conversation's ranges."),
    since: str | None = typer.Option(None, "--since", help="With --conversation: ranges ending at/after (ISO or ms)."),
    until: str | None = typer.Option(None, "--until", help="With --conversation: ranges starting before (ISO or ms)."),
    policy: Path | None = POLICY_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    objects: str | None = OBJECTS_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Copy archived rows back into L1 (whole ranges per chunk and conversation)."""
    if (chunk is None) == (conversation is None):
        fail("give exactly one of --chunk ID or --conversation C", ExitCode.USAGE)
    if chunk is not None and (since or until):
        fail("--since/--until go with --conversation", ExitCode.USAGE)
    since_ms, until_ms = parse_time(since, "--since"), parse_time(until, "--until")
    tier = policy_from(policy, config=config, data_dir=data_dir, objects=objects, lock_timeout_s=lock_timeout)
    db_url = messagedb_url(config, url, data_dir)

    async def use(_db, _objects, archiver) -> dict:
        added = await archiver.restore(chunk_id=chunk, conversation_id=conversation, since_ms=since_ms,
                                       until_ms=until_ms)
        return {"restored": added, "rows": sum(added.values())}

    run_on_stores(use, opened=opened(db_url, tier), errors=ARCHIVE_ERRORS, output=output,
                  human=lambda d: f"restored {d['rows']} rows from {len(d['restored'])} chunk(s)")
