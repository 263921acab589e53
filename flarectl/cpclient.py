"""Run one admin call against the control plane and turn Flare errors into exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
import yaml

from controlplane.client import AdminClient
from services.common.errors import FlareError, InvalidInput, Unauthorized

from .console import fail_from
from .contexts import resolve_target

__all__ = ["call_controlplane", "read_manifest", "CONTEXT_OPTION", "TOKEN_HINT"]

T = TypeVar("T")

CONTEXT_OPTION = typer.Option(None, "--context", help="Context from the flarectl contexts file.")

# Said wherever a token is missing or refused: the order resolve_target looks in.
TOKEN_HINT = ("flarectl takes the token from FLARE_TOKEN, else the current context (`flarectl context set NAME "
              "--token …`), else ./.flare/admin.token (or $FLARE_DATA_DIR/admin.token) written by a local "
              "`flarectl up` — run from that directory or set FLARE_TOKEN=$(cat /path/to/.flare/admin.token)")


def call_controlplane(operation: Callable[[AdminClient], Awaitable[T]], *, context: str | None = None) -> T:
    try:
        target = resolve_target(context)

        async def run() -> T:
            async with AdminClient(target.address, token=target.token) as client:
                return await operation(client)

        return asyncio.run(run())
    except Unauthorized as exc:
        fail_from(exc, hint=TOKEN_HINT)
    except FlareError as exc:
        fail_from(exc)


def read_manifest(path: str) -> dict:
    """A document file ({kind, spec}) as YAML or JSON; `-` reads stdin."""
    try:
        text = typer.get_text_stream("stdin").read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        fail_from(InvalidInput(f"cannot read {path}: {exc.strerror or exc}"))
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        fail_from(InvalidInput(f"{path} is neither YAML nor JSON: {exc}"))
    if not isinstance(data, dict):
        fail_from(InvalidInput(f"{path}: expected a document {{kind, spec}}"))
    return data
