"""`flarectl config get KIND`: the version being served, as a document file you can edit and apply."""

from __future__ import annotations

import typer
import yaml

from flarectl.console import OutputFormat, emit
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane


def _human(data: object) -> str:
    doc: dict = data  # type: ignore[assignment]
    header = f"# {doc['kind']} v{doc['version']} ({doc['digest']}), updated {doc['updated_at']} by {doc['updated_by']}"
    body = yaml.safe_dump({"kind": doc["kind"], "spec": doc["spec"]}, sort_keys=False, allow_unicode=True)
    return f"{header}\n{body.rstrip()}"


def get(
    kind: str = typer.Argument(..., help="filter-rules, push, tiering, routing or topology."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Print the current document of KIND."""
    doc = call_controlplane(lambda c: c.get(kind), context=context)
    emit(doc, output, human=_human)
