"""`flarectl context use NAME`."""

from __future__ import annotations

import typer

from flarectl.console import fail, out
from flarectl.contexts import config_path, load_contexts, save_contexts
from flarectl.console import fail_from
from flarectl.exitcodes import ExitCode
from services.common.errors import FlareError


def use_context(name: str = typer.Argument(..., help="Context name.")) -> None:
    """Make NAME the current context."""
    try:
        data = load_contexts()
    except FlareError as exc:
        fail_from(exc)
    if name not in data["contexts"]:
        fail(f"no context named {name!r} in {config_path()}", ExitCode.NOT_FOUND)
    data["current"] = name
    save_contexts(data)
    out.print(f"current context is {name}", highlight=False)
