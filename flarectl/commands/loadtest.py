"""flarectl loadtest: drive a Flare gateway with simulated clients and verify every delivery."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from flarectl.console import OutputFormat, emit, err, fail, out
from flarectl.exitcodes import ExitCode
from flarectl.loadtest import LoadTestError, ParamsError, build_params, render_report, run_loadtest

__all__ = ["loadtest", "COMMANDS"]


def loadtest(
    gateway: str = typer.Option(None, "--gateway", help="Gateway WebSocket URL [default: ws://127.0.0.1:8700/ws]."),
    users: int = typer.Option(None, "--users", help="Simulated users (≥ 2) [default: 100]."),
    devices_per_user: int = typer.Option(None, "--devices-per-user", help="Devices per user [default: 1]."),
    groups: int = typer.Option(None, "--groups", help="Groups created before the run [default: 0]."),
    group_size: int = typer.Option(None, "--group-size", help="Members per group [default: 5]."),
    group_fraction: float = typer.Option(None, "--group-fraction", help="Share of sends going to groups [default: 0.3]."),
    contacts: int = typer.Option(None, "--contacts", help="1:1 peers per user, fixed for the run; 0 = anyone [default: 8]."),
    rate: float = typer.Option(None, "--rate", help="Messages per second across all senders [default: 100]."),
    duration: str = typer.Option(None, "--duration", help="How long to send, e.g. 30s, 2m [default: 10s]."),
    ramp: str = typer.Option(None, "--ramp", help="Ramp the rate up from 0 over this long [default: 0]."),
    churn: float = typer.Option(None, "--churn", help="Disconnect/reconnect events per minute [default: 0]."),
    offline_fraction: float = typer.Option(None, "--offline-fraction", help="Users connected only at the end [default: 0]."),
    workers: int = typer.Option(None, "--workers", help="Client processes [default: 1]."),
    token_secret_file: Path = typer.Option(None, "--token-secret-file", help="The server's token secret [default: ./.flare/token.secret]."),
    token_secret: str = typer.Option(None, "--token-secret", help="The server's token secret, inline."),
    max_p99: str = typer.Option(None, "--max-p99", help="Fail when send→arrival p99 is above this, e.g. 50ms."),
    max_loss: int = typer.Option(None, "--max-loss", help="Fail above this many lost messages [default: 0]."),
    max_duplicates: int = typer.Option(None, "--max-duplicates", help="Fail above this many duplicates [default: 0]."),
    max_out_of_order: int = typer.Option(None, "--max-out-of-order", help="[default: 0]"),
    max_errors: int = typer.Option(None, "--max-errors", help="Connection errors + error frames + unconfirmed sends [default: 0]."),
    max_recovered: int = typer.Option(None, "--max-recovered", help="Fail above this many deliveries that only sync brought to a connected device."),
    min_rate: str = typer.Option(None, "--min-rate", help="Fail when stored/target is below this [default: 0.95]."),
    final_sync: bool = typer.Option(None, "--final-sync/--no-final-sync", help="Live-only verification: no gap sync, no final sync [default: final sync]."),
    drain_timeout: str = typer.Option(None, "--drain-timeout", help="How long to wait for acks and deliveries after sending [default: 15s]."),
    connect_timeout: str = typer.Option(None, "--connect-timeout", help="[default: 5s]"),
    allow_remote: bool = typer.Option(None, "--allow-remote", help="Allow a gateway that is not on this host."),
    server_pid: int = typer.Option(None, "--server-pid", help="Also report this process's CPU use."),
    seed: int = typer.Option(None, "--seed", help="Seed for the choice of groups and senders."),
    body_bytes: int = typer.Option(None, "--body-bytes", help="Padding added to each message body [default: 0]."),
    compact: bool = typer.Option(None, "--compact/--no-compact",
                                 help="Compact frames: batches, merged acks, cumulative acks [default: compact]."),
    scenario: Path = typer.Option(None, "--scenario", help="YAML file with any of these options; flags override it."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o", help="table, json or yaml."),
) -> None:
    """Load-test a gateway with simulated clients; exit 8 when a threshold is breached."""
    given = dict(
        gateway=gateway, users=users, devices_per_user=devices_per_user, groups=groups, group_size=group_size,
        group_fraction=group_fraction, contacts=contacts, rate=rate, duration=duration, ramp=ramp, churn=churn,
        offline_fraction=offline_fraction, workers=workers, token_secret_file=token_secret_file,
        token_secret=token_secret, max_loss=max_loss, max_duplicates=max_duplicates, max_out_of_order=max_out_of_order,
        max_errors=max_errors, max_recovered=max_recovered, min_rate=min_rate, final_sync=final_sync,
        drain_timeout=drain_timeout, connect_timeout=connect_timeout, allow_remote=allow_remote, server_pid=server_pid,
        seed=seed, body_bytes=body_bytes, compact=compact, max_p99=max_p99,
    )
    try:
        params = build_params(scenario=scenario, **given)
        params.secret_bytes()
    except ParamsError as exc:
        code = ExitCode.UNAUTHORIZED if str(exc).startswith("--token-secret") else ExitCode.INVALID
        fail(str(exc), code)

    live = output is OutputFormat.table and sys.stdout.isatty()
    try:
        if live:
            from flarectl.loadtest.progress import LiveProgress

            with LiveProgress(out) as progress:
                report = asyncio.run(run_loadtest(params, on_progress=progress.update))
        else:
            report = asyncio.run(run_loadtest(params))
    except LoadTestError as exc:
        fail(str(exc), exc.exit_code, hint=exc.hint)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    emit(report, output, human=render_report)
    if not report["ok"]:
        if output is OutputFormat.table:
            err.print(f"[bold red]threshold breached:[/] {', '.join(report['breached'])}", highlight=False)
        raise typer.Exit(int(ExitCode.THRESHOLD))


COMMANDS = {"loadtest": loadtest}
