"""`flarectl config apply -f FILE [--dry-run] [--expect-version N]`."""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, emit
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane, read_manifest


def _human(data: object) -> str:
    r: dict = data  # type: ignore[assignment]
    if not r["changed"]:
        return f"{r['kind']} unchanged (v{r['version']})"
    if r["dry_run"]:
        return f"{r['kind']} would become v{r['version']} (dry run; now v{r['previous_version']})\n{r['diff']}".rstrip()
    return f"{r['kind']} v{r['version']} applied (was v{r['previous_version']})"


def apply(
    file: str = typer.Option(..., "--file", "-f", help="Document file {kind, spec} (YAML or JSON; - for stdin)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the diff; change nothing."),
    expect_version: int | None = typer.Option(None, "--expect-version",
                                              help="Apply only if the current version is N (0: none yet)."),
    comment: str = typer.Option("", "--comment", "-m", help="Recorded in the history."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Validate a document and make it the new version; instances get it pushed."""
    manifest = read_manifest(file)
    result = call_controlplane(
        lambda c: c.apply(manifest, expect_version=expect_version, dry_run=dry_run, comment=comment), context=context)
    emit(result, output, human=_human)
