"""`flarectl up`: run the whole platform in one process on embedded backends (or a config's)."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from pathlib import Path

import typer

from flarectl.console import err, fail, fail_from, out
from flarectl.exitcodes import ExitCode
from services.common.config import load_config
from services.common.errors import FlareError
from services.common.logs import setup_logging
from services.common.runtime import freeze_startup_heap, tune_interpreter
from services.common.stalls import watchdog_from_env
from services.wiring.gateway_workers import default_worker_count

__all__ = ["COMMANDS", "up"]


def up(
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file (TOML/YAML); default: embedded."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where embedded data lives [default: ./.flare]."),
    host: str | None = typer.Option(None, "--host", help="Gateway bind address [default: 127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", "-p", help="Gateway WebSocket port [default: 8700]."),
    admin_port: int | None = typer.Option(None, "--admin-port", help="Metrics/health port [default: 8701]."),
    controlplane_port: int | None = typer.Option(
        None, "--controlplane-port", help="Control-plane gRPC port for flarectl [default: 8702]."),
    log_level: str = typer.Option("info", "--log-level"),
    log_format: str = typer.Option("auto", "--log-format", help="json | text | auto"),
    gateway_workers: int | None = typer.Option(
        None, "--gateway-workers", min=0, max=64,
        help="Gateway worker processes next to the core (\\[gateway] workers). Default: 1 on a machine with 2+ "
             "cores (the WebSocket work on one core, everything else on the other: the send->deliver p99 at "
             "1,300 msg/s measured 29-52 ms vs 77-93 ms with none), else 0 (the gateway in the core's process)."),
    split: bool = typer.Option(False, "--split", help="One process per service instance ([split] in the config)."),
    detach: bool = typer.Option(False, "--detach", help="With --split: return once up; stop with `flarectl down`."),
) -> None:
    """Start Flare in one process (monolith), or split: one process per service instance.
    Ctrl-C stops it cleanly; data survives restarts."""
    if split:
        from flarectl.split import up_split

        up_split(config, data_dir, detach=detach, log_level=log_level)
        return
    from services.wiring.monolith import Monolith

    setup_logging(log_level, fmt=log_format)
    tune_interpreter()
    try:
        cfg = load_config(config, data_dir=data_dir)
    except (OSError, ValueError) as exc:
        fail(f"cannot load config: {exc}", ExitCode.INVALID)
    if host is not None:
        cfg.gateway.host = host
    if port is not None:
        cfg.gateway.port = port
    if admin_port is not None:
        cfg.admin.port = admin_port
    if controlplane_port is not None:
        cfg.controlplane.port = controlplane_port
    if gateway_workers is not None:
        cfg.gateway.workers = gateway_workers
    elif "workers" not in cfg.gateway.model_fields_set:  # the config file did not say
        cfg.gateway.workers = default_worker_count()

    taken = _taken_port(cfg)
    if taken is not None:  # before anything is created: no data dir, no half-started backends
        fail(taken, ExitCode.UNAVAILABLE)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        monolith = Monolith(cfg)
        try:
            await monolith.start()
        except OSError as exc:
            await monolith.stop()
            fail(f"cannot start: {exc}", ExitCode.UNAVAILABLE)
        freeze_startup_heap()
        stalls = watchdog_from_env()  # opt-in: log where the loop was whenever it stalls
        out.print(f"[bold green]Flare is up[/]  gateway [cyan]{monolith.gateway_url}[/]  "
                  f"control plane [cyan]{monolith.controlplane_address}[/]  metrics [cyan]{monolith.admin_url}/metrics[/]  "
                  f"data [cyan]{monolith.data_dir}[/]", highlight=False)
        out.print(f"mint a client token: [bold]flarectl token issue alice --data-dir {monolith.data_dir}[/]   "
                  "chat: [bold]flarectl chat alice --to bob[/]   stop: Ctrl-C", highlight=False)
        try:
            await stop.wait()
        finally:
            err.print("stopping…")
            if stalls is not None:
                stalls.stop()
            await monolith.stop()

    try:
        _run(main())
    except FlareError as exc:
        fail_from(exc)  # an unreachable backend is 4, as the README says


def _taken_port(cfg) -> str | None:
    """The first configured port something else already listens on, said in one line."""
    for what, host, port in (("gateway", cfg.gateway.host, cfg.gateway.port),
                             ("admin (metrics)", cfg.admin.host, cfg.admin.port),
                             ("control plane", cfg.controlplane.host, cfg.controlplane.port)):
        if not port:
            continue  # 0: the system picks a free one
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no owner
            try:
                probe.bind((host, port))
            except OSError as exc:
                reason = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
                return f"port {port} ({what}, {host}) is {reason}; pick another with --port/--admin-port/--controlplane-port"
    return None


def _run(coro) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(coro)
    else:
        uvloop.run(coro)


COMMANDS = {"up": up}
