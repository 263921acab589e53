"""`flarectl auth token issue --role viewer|operator|admin|service` (needs an admin token)."""

from __future__ import annotations

import enum

import typer

from flarectl.console import OutputFormat, emit, fail, unwrapped
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane
from flarectl.durations import parse_duration
from flarectl.exitcodes import ExitCode


class Role(str, enum.Enum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"
    service = "service"


def issue(
    role: Role = typer.Option(..., "--role", help="viewer reads, operator applies, admin rolls back, issues and revokes tokens; "
                                           "service is an instance's config stream (FLARE_SERVICE_TOKEN)."),
    subject: str = typer.Option("flarectl", "--subject", help="Who the token is for (recorded as updated_by)."),
    ttl: str = typer.Option("7d", "--ttl", help="Lifetime: 30m, 24h, 7d."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Mint a control-plane token with ROLE, signed by the daemon."""
    try:
        ttl_s = int(parse_duration(ttl))
    except ValueError as exc:
        fail(str(exc), ExitCode.INVALID)
    result = call_controlplane(lambda c: c.issue_token(role.value, subject=subject, ttl_s=ttl_s), context=context)
    emit(result, output, human=lambda r: unwrapped(r["token"]))
