"""`flarectl token revoke USER [--yes] [--dry-run]`: log USER out everywhere (admin)."""

from __future__ import annotations

import typer

from flarectl.commands.auth.revoke import _iso
from flarectl.console import OutputFormat, confirm_or_abort, emit, fail
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane
from flarectl.exitcodes import ExitCode
from services.common.model import validate_name


def revoke(
    user: str = typer.Argument(..., help="The user whose client tokens to revoke."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would happen; change nothing."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Log USER out everywhere: revoke every client token USER holds now.

    Gateways refuse those tokens and close USER's open connections; tokens issued after
    this (`flarectl token issue USER`) work. Goes through the control plane, so it needs an
    admin token (FLARE_TOKEN or a context)."""
    try:
        validate_name(user, "user")
    except ValueError as exc:
        fail(str(exc), ExitCode.INVALID)
    if not dry_run:
        confirm_or_abort(f"revoke every token {user} holds now and disconnect {user}?", yes=yes)
    result = call_controlplane(lambda c: c.revoke(user=user, dry_run=dry_run), context=context)

    def human(r: dict) -> str:
        when = _iso(r["not_before"])
        if r["dry_run"]:
            return f"{r['id']}: client tokens issued before {when} would be refused (dry run)"
        return f"{r['id']}: client tokens issued before {when} are refused; open connections closed"

    emit(result, output, human=human)
