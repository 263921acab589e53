"""`flarectl config history KIND`: every kept version, newest first."""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, emit, table
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane


def history(
    kind: str = typer.Argument(..., help="filter-rules, push, tiering, routing or topology."),
    limit: int = typer.Option(20, "--limit", min=0, help="How many versions (0: all kept)."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """List the versions of KIND that can be rolled back to."""
    entries = call_controlplane(lambda c: c.history(kind, limit=limit), context=context)
    emit(entries, output, human=lambda rows: table(
        ["VERSION", "UPDATED", "BY", "DIGEST", "COMMENT"],
        [[e["version"], e["updated_at"], e["updated_by"], e["digest"], e["comment"]] for e in rows]))
