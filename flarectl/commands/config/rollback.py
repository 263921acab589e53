"""`flarectl config rollback KIND --to N [--yes]`: publish version N's spec as a new version (admin)."""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, confirm_or_abort, emit
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane


def rollback(
    kind: str = typer.Argument(..., help="filter-rules, push, tiering, routing or topology."),
    to: int = typer.Option(..., "--to", min=1, help="The version to go back to (see `config history`)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the diff; change nothing."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Roll KIND back to version N; every instance gets it pushed."""
    if not dry_run:
        confirm_or_abort(f"roll {kind} back to v{to} on every instance?", yes=yes)
    result = call_controlplane(lambda c: c.rollback(kind, to, dry_run=dry_run), context=context)

    def human(r: dict) -> str:
        if not r["changed"]:
            return f"{kind} already serves the spec of v{to} (v{r['version']}); nothing to do"
        verb = "would become" if r["dry_run"] else "rolled back to"
        return f"{kind} {verb} v{to} as v{r['version']} (was v{r['previous_version']})" + (
            f"\n{r['diff'].rstrip()}" if r["dry_run"] else "")

    emit(result, output, human=human)
