"""`flarectl playbook list`."""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, emit, table
from flarectl.playbook import parse_playbook, playbooks
from services.common.errors import InvalidInput


def list_playbooks(output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o")) -> None:
    """The playbooks flarectl can find by name ($FLARE_PLAYBOOKS, ./playbooks, the shipped ones)."""
    rows = []
    for name, path in sorted(playbooks().items()):
        try:
            book = parse_playbook(path.read_text(encoding="utf-8"), source=str(path))
            rows.append({"name": name, "description": book.description, "steps": len(book.steps),
                         "file": str(path), "valid": True})
        except InvalidInput as exc:
            rows.append({"name": name, "description": str(exc).splitlines()[0], "steps": 0, "file": str(path),
                         "valid": False})
    emit(rows, output, human=lambda d: table(["NAME", "STEPS", "DESCRIPTION", "FILE"],
                                             [[r["name"], r["steps"] if r["valid"] else "INVALID", r["description"],
                                               r["file"]] for r in d]))  # type: ignore[union-attr]
