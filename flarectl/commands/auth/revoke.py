"""`flarectl auth token revoke ID|TOKEN [--yes] [--dry-run]`: revoke one token by its id (admin)."""

from __future__ import annotations

import datetime as dt

import typer

from flarectl.console import OutputFormat, confirm_or_abort, emit, fail
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane
from flarectl.exitcodes import ExitCode
from services.common.auth import peek_token
from services.common.errors import Unauthorized


def revoke(
    token_id: str = typer.Argument(..., metavar="ID", help="The token id (`id` from `auth token issue -o json`), "
                                                          "or the whole token."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be revoked; change nothing."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Revoke one token (operator, service or client) by its id.

    The control plane and every gateway refuse it from now on; other tokens of the same
    subject keep working."""
    expires_at = 0
    if "." in token_id:  # a whole token: its id, and its expiry so the entry can go after it
        try:
            payload = peek_token(token_id)
        except Unauthorized as exc:
            fail(f"ID: {exc}", ExitCode.INVALID)
        token_id = payload["jti"]
        expires_at = payload.get("exp") if isinstance(payload.get("exp"), int) else 0
    if not dry_run:
        confirm_or_abort(f"revoke token {token_id}?", yes=yes)
    result = call_controlplane(lambda c: c.revoke(token_id=token_id, expires_at=expires_at, dry_run=dry_run),
                               context=context)

    def human(r: dict) -> str:
        if r["dry_run"]:
            return f"token {r['id']} would be revoked" + (" (it already is)" if r["already"] else "")
        return f"token {r['id']} revoked" + (" (it already was)" if r["already"] else "") + f" at {_iso(r['revoked_at'])}"

    emit(result, output, human=human)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
