"""`flarectl token issue USER`: mint a signed client token with the server's secret."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, emit, fail, unwrapped
from flarectl.exitcodes import ExitCode
from flarectl.durations import parse_duration
from services.common.auth import issue_token
from services.common.model import validate_name
from services.common.paths import DEFAULT_DATA_DIR, read_secret, token_secret_path


def issue(
    user: str = typer.Argument(..., help="The user id the token is for."),
    ttl: str = typer.Option("24h", "--ttl", help="Lifetime: 30s, 15m, 24h, 7d."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Where `flarectl up` keeps token.secret."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Print a client token for USER (pass it as ?token=… when connecting)."""
    try:
        validate_name(user, "user")
        ttl_s = int(parse_duration(ttl))
    except ValueError as exc:
        fail(str(exc), ExitCode.INVALID)
    secret = read_secret(data_dir)
    if secret is None:
        fail(f"no token secret at {token_secret_path(data_dir)}", ExitCode.NOT_FOUND,
             hint="run `flarectl up` once (it creates the secret) or pass --data-dir")
    token = issue_token(secret, user, ttl_s=ttl_s)
    emit({"user": user, "token": token, "ttl_s": ttl_s}, output, human=lambda d: unwrapped(d["token"]))
