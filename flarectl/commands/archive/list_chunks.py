"""`flarectl archive list`: the chunks in the L1 catalog, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from flarectl.console import OutputFormat, table
from flarectl.storage import CONFIG_OPTION, DATA_DIR_OPTION, OBJECTS_OPTION, URL_OPTION, messagedb_url, run_on_stores

from ._common import ARCHIVE_ERRORS, POLICY_OPTION, opened, policy_from


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else ""


def render(data: object) -> object:
    rows = [[c["chunk_id"], c["state"], c["rows"], c["conversations"], f"{_when(c['min_created_ms'])} .. "
             f"{_when(c['max_created_ms'])}", c["codec"], c["sha256"][:12]] for c in data["chunks"]]  # type: ignore[index]
    return table(["CHUNK", "STATE", "ROWS", "CONVERSATIONS", "CREATED (UTC)", "CODEC", "SHA256"], rows)


def list_chunks(
    policy: Path | None = POLICY_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    objects: str | None = OBJECTS_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Every chunk: state, rows, conversations, time range, codec, checksum."""
    tier = policy_from(policy, config=config, data_dir=data_dir, objects=objects)
    db_url = messagedb_url(config, url, data_dir)

    async def use(_db, _objects, archiver) -> dict:
        chunks = await archiver.list()
        return {"chunks": [{
            "chunk_id": c.chunk_id, "state": c.state, "rows": c.row_count, "conversations": len(c.ranges),
            "min_created_ms": min((r.min_created_ms for r in c.ranges), default=0),
            "max_created_ms": max((r.max_created_ms for r in c.ranges), default=0),
            "codec": c.codec, "sha256": c.sha256, "object_key": c.object_key, "manifest_key": c.manifest_key,
            "ranges": [{"conversation_id": r.conversation_id, "min_seq": r.min_seq, "max_seq": r.max_seq,
                        "rows": r.row_count} for r in c.ranges],
        } for c in chunks]}

    run_on_stores(use, opened=opened(db_url, tier), errors=ARCHIVE_ERRORS, output=output, human=render)
