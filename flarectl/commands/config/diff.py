"""`flarectl config diff -f FILE`: what applying FILE would change. Exit 0: no change, 1: changes
(like `kubectl diff` and `diff`, so scripts can branch on it)."""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, emit
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane, read_manifest
from flarectl.exitcodes import ExitCode


def diff(
    file: str = typer.Option(..., "--file", "-f", help="Document file {kind, spec} (YAML or JSON; - for stdin)."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Validate FILE and show the unified diff against the served version."""
    manifest = read_manifest(file)
    result = call_controlplane(lambda c: c.apply(manifest, dry_run=True), context=context)
    emit(result, output, human=lambda r: r["diff"].rstrip() if r["changed"] else f"{r['kind']}: no changes")
    if result["changed"]:
        raise typer.Exit(int(ExitCode.FAILURE))
