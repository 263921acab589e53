"""`flarectl context set NAME --controlplane HOST:PORT [--token T] [--use]`."""

from __future__ import annotations

import typer

from flarectl.console import out
from flarectl.contexts import load_contexts, save_contexts
from flarectl.console import fail_from
from services.common.errors import FlareError


def set_context(
    name: str = typer.Argument(..., help="Context name."),
    controlplane: str | None = typer.Option(None, "--controlplane", help="Control-plane address host:port."),
    token: str | None = typer.Option(None, "--token", help="Token for this control plane."),
    use: bool = typer.Option(False, "--use", help="Also make it the current context."),
) -> None:
    """Create or update a context (only the options given change)."""
    try:
        data = load_contexts()
    except FlareError as exc:
        fail_from(exc)
    entry = dict(data["contexts"].get(name) or {})
    if controlplane is not None:
        entry["controlplane"] = controlplane
    if token is not None:
        entry["token"] = token
    data["contexts"][name] = entry
    if use or not data.get("current"):
        data["current"] = name
    path = save_contexts(data)
    out.print(f"context {name} saved in {path}" + (" (current)" if data["current"] == name else ""), highlight=False)
