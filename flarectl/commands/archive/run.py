"""`flarectl archive run [--older-than D] [--limit N] [--dry-run]`: move old L1 rows to L2.

Chunked; each chunk is deleted from L1 only after it was read back and verified. Safe to
kill at any point and rerun (the rerun finishes or discards the chunk in flight).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from flarectl.console import OutputFormat, err
from flarectl.storage import CONFIG_OPTION, DATA_DIR_OPTION, OBJECTS_OPTION, URL_OPTION, messagedb_url, run_on_stores

from ._common import ARCHIVE_ERRORS, LOCK_TIMEOUT_OPTION, POLICY_OPTION, before_ms, opened, policy_from


def render(data: object) -> str:
    d: dict = data  # type: ignore[assignment]
    if d["dry_run"]:
        return f"dry run: would archive {d['rows_archived']} rows"
    lines = [f"resumed chunk {c} left by an interrupted run" for c in d["resumed"]]
    lines += [f"discarded incomplete chunk {c} (its rows stay in L1)" for c in d["discarded"]]
    lines += [f"chunk {c['chunk_id']}: {c['rows']} rows, {c['bytes']} bytes, {c['conversations']} conversation(s)"
              for c in d["chunks"]]
    lines.append(f"archived {d['rows_archived']} rows in {len(d['chunks'])} chunk(s), {d['bytes_written']} bytes "
                 f"({d['rows_per_s']:.0f} rows/s)" if d["rows_archived"] else "nothing to archive")
    return "\n".join(lines)


def run(
    older_than: str | None = typer.Option(None, "--older-than", help="Age cutoff, e.g. 30d (default: l1_retention)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Archive at most this many rows."),
    conversation: str | None = typer.Option(None, "--conversation", help="Only this conversation."),
    chunk_rows: int | None = typer.Option(None, "--chunk-rows", min=1, max=1_000_000, help="Rows per chunk (10000)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would move; change nothing."),
    policy: Path | None = POLICY_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    config: Path | None = CONFIG_OPTION,
    url: str | None = URL_OPTION,
    objects: str | None = OBJECTS_OPTION,
    data_dir: Path | None = DATA_DIR_OPTION,
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Archive L1 rows older than the cutoff into Parquet chunks in the object store."""
    import time

    tier = policy_from(policy, config=config, data_dir=data_dir, objects=objects, chunk_rows=chunk_rows,
                       lock_timeout_s=lock_timeout)
    db_url, cutoff = messagedb_url(config, url, data_dir), before_ms(older_than, tier)
    show_progress = output is OutputFormat.table and sys.stderr.isatty() and not dry_run
    progress = Progress(TextColumn("archiving"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err,
                        disable=not show_progress)
    task = progress.add_task("archive", total=None, rate="")
    started = time.monotonic()

    def on_step(step: str, details: dict) -> None:
        if step in ("chunk_archived", "chunk_resumed"):
            progress.advance(task, details["rows"])
            done = progress.tasks[0].completed
            progress.update(task, rate=f"{done / max(time.monotonic() - started, 1e-6):.0f} rows/s")

    async def use(_db, _objects, archiver) -> dict:
        if show_progress:
            planned = sum(r.row_count for r in await archiver.plan(before_ms=cutoff, conversation_id=conversation))
            progress.update(task, total=min(planned, limit) if limit else planned)
        with progress:
            report = await archiver.run(before_ms=cutoff, limit=limit, conversation_id=conversation,
                                        dry_run=dry_run)
        elapsed = time.monotonic() - started
        return {"dry_run": report.dry_run, "before_ms": report.before_ms, "rows_archived": report.rows_archived,
                "rows_deleted_from_l1": report.rows_left_l1, "bytes_written": report.bytes_written,
                "chunks": report.chunks, "resumed": report.resumed, "discarded": report.discarded,
                "seconds": round(elapsed, 3), "rows_per_s": report.rows_archived / elapsed if elapsed else 0.0,
                "codec": tier.policy.codec}

    run_on_stores(use, opened=opened(db_url, tier, on_step=on_step), errors=ARCHIVE_ERRORS, output=output,
                  human=render)
