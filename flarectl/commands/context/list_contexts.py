"""`flarectl context list`: tokens are never printed, only whether one is set."""

from __future__ import annotations

import typer

from flarectl.console import OutputFormat, emit, table
from flarectl.contexts import load_contexts
from flarectl.console import fail_from
from services.common.errors import FlareError


def list_contexts(output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o")) -> None:
    """List contexts; * marks the current one."""
    try:
        data = load_contexts()
    except FlareError as exc:
        fail_from(exc)
    rows = [{"name": name, "current": name == data["current"], "controlplane": (c or {}).get("controlplane", ""),
             "token": "set" if (c or {}).get("token") else ""} for name, c in sorted(data["contexts"].items())]
    emit(rows, output, human=lambda rs: table(["CURRENT", "NAME", "CONTROLPLANE", "TOKEN"],
                                              [["*" if r["current"] else "", r["name"], r["controlplane"], r["token"]]
                                               for r in rs]))
