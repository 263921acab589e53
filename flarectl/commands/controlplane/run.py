"""`flarectl controlplane run`: the daemon in the foreground (same as `python -m controlplane`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from flarectl.console import err, fail_from
from services.common.errors import FlareError


def run(
    config: Path | None = typer.Option(None, "--config", "-c", help="Flare config file (TOML/YAML)."),
    store: str | None = typer.Option(None, "--store", help="etcd://host:port[,host:port] or sqlite:///path."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where token.secret and admin.token live."),
    host: str | None = typer.Option(None, "--host"),
    port: int | None = typer.Option(None, "--port", help="gRPC port (default 8702; 0 picks one)."),
    resync_interval: float = typer.Option(10.0, "--resync-interval", help="Seconds between level-triggered resyncs."),
    log_level: str = typer.Option("INFO", "--log-level"),
) -> None:
    """Run the control plane: validate, version and push config; track every instance."""
    from controlplane.runner import configure_logging, run_daemon, settings_from

    configure_logging(log_level)
    settings = settings_from(str(config) if config else None, store=store, data_dir=data_dir, host=host, port=port,
                             resync_interval_s=resync_interval)

    def ready(address: str, token_path: Path) -> None:
        err.print(f"controlplane listening on {address}; admin token in {token_path}", highlight=False)

    try:
        asyncio.run(run_daemon(settings, on_ready=ready))
    except FlareError as exc:
        fail_from(exc)
    except KeyboardInterrupt:
        pass
