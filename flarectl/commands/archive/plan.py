"""`flarectl archive plan [--older-than D]`: what a run would move, per conversation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from flarectl.console import OutputFormat, table
from flarectl.storage import CONFIG_OPTION, DATA_DIR_OPTION, OBJECTS_OPTION, URL_OPTION, messagedb_url, run_on_stores
from services.archive import chunkfile
from services.common import codec

from ._common import ARCHIVE_ERRORS, POLICY_OPTION, before_ms, opened, policy_from

_SAMPLE_ROWS = 2000


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def render(data: object) -> object:
    d: dict = data  # type: ignore[assignment]
    rows = [[c["conversation_id"], f"{c['min_seq']}..{c['max_seq']}", f"{_when(c['min_created_ms'])} .. "
             f"{_when(c['max_created_ms'])}", c["rows"], c["estimated_bytes"]] for c in d["conversations"]]
    return table(["CONVERSATION", "SEQ", "CREATED (UTC)", "ROWS", "EST. BYTES"], rows,
                 title=f"older than {_when(d['before_ms'])} UTC: {d['rows']} rows, ~{d['estimated_bytes']} bytes "
                       f"({d['codec']})")


def plan(
    older_than: str | None = typer.Option(None, "--older-than", help="Age cutoff, e.g. 30d (default: l1_retention)."),
    conversation: str | None = typer.Option(None, "--conversation", help="Only this conversation."),
    policy: Path | None = POLICY_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    objects: str | None = OBJECTS_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Rows, seq and time ranges per conversation, and the compressed size a run would write."""
    tier = policy_from(policy, config=config, data_dir=data_dir, objects=objects)
    db_url, cutoff = messagedb_url(config, url, data_dir), before_ms(older_than, tier)

    async def use(db, _objects, archiver) -> dict:
        ranges = await archiver.plan(before_ms=cutoff, conversation_id=conversation)
        # Estimate from a real sample compressed with the policy's codec, not a guessed ratio.
        sample = await db.archive_batch(before_ms=cutoff, limit=_SAMPLE_ROWS, conversation_id=conversation)
        sample_body = sum(len(codec.dumps(m.body)) for m in sample) or 1
        compressed = len(chunkfile.encode(sample, tier.policy.codec)) if sample else 0
        per_body_byte = compressed / sample_body
        conversations = [{"conversation_id": r.conversation_id, "min_seq": r.min_seq, "max_seq": r.max_seq,
                          "rows": r.row_count, "min_created_ms": r.min_created_ms, "max_created_ms": r.max_created_ms,
                          "body_bytes": r.body_bytes, "estimated_bytes": int(r.body_bytes * per_body_byte)}
                         for r in ranges]
        return {"before_ms": cutoff, "codec": tier.policy.codec, "rows": sum(c["rows"] for c in conversations),
                "estimated_bytes": sum(c["estimated_bytes"] for c in conversations),
                "chunks": -(-sum(c["rows"] for c in conversations) // tier.policy.chunk_rows),
                "conversations": conversations}

    run_on_stores(use, opened=opened(db_url, tier), errors=ARCHIVE_ERRORS, output=output, human=render)
