"""Run one admin call against the control plane and turn Flare errors into exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from controlplane.client import AdminClient
from services.common.errors import FlareError, InvalidInput, Unauthorized
from services.common.grpcio import ignore_poller_noise

from .console import fail_from
from .contexts import resolve_target
from services.common.safeyaml import DocumentError, load_file, load_stream

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
            ignore_poller_noise(asyncio.get_running_loop())
            async with AdminClient(target.address, token=target.token) as client:
                return await operation(client)

        return asyncio.run(run())
    except Unauthorized as exc:
        fail_from(exc, hint=TOKEN_HINT)
    except FlareError as exc:
        fail_from(exc)


def read_manifest(path: str) -> dict:
    """A document file ({kind, spec}) as YAML or JSON; `-` reads stdin. Parsed with limits
    (services.common.safeyaml); anything that is not a {kind: str, spec: mapping} exits 3 naming why."""
    try:
        if path == "-":
            data = load_stream(typer.get_binary_stream("stdin"), source="stdin")
        else:
            data = load_file(path)
    except DocumentError as exc:
        fail_from(exc)
    source = "stdin" if path == "-" else path
    if not isinstance(data, dict):
        fail_from(InvalidInput(f"{source}: expected a document {{kind, spec}} (a mapping), got {_kind_of(data)}"))
    if "kind" in data and not isinstance(data["kind"], str):
        fail_from(InvalidInput(f"{source}: kind: must be a string, got {_kind_of(data['kind'])}", field="kind"))
    if "spec" in data and not isinstance(data["spec"], dict):
        fail_from(InvalidInput(f"{source}: spec: must be a mapping, got {_kind_of(data['spec'])}", field="spec"))
    return data


def _kind_of(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
             bool: "true/false", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)
