"""`flarectl playbook validate FILE`: the schema's verdict, errors naming line and field."""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, emit

from .common import load


def validate(file: str = typer.Argument(..., help="A playbook file (or name)."),
             output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o")) -> None:
    """Check a playbook against the schema; exit 3 with file:line: field: reason on errors."""
    path, _, book = load(file)
    emit({"file": str(path), "name": book.name, "valid": True, "steps": len(book.steps)}, output,
         human=lambda d: f"{d['file']}: valid, {d['steps']} steps")  # type: ignore[index]
