"""`flarectl status [--watch]`: every instance of every service (gateways too) with its health,
its rates and each config kind's sync state, from the control plane's aggregated picture
(`Watch`, controlplane/aggregate.py) — the same stream the TUI reads."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Group
from rich.text import Text

from controlplane.aggregate import apply_changes
from controlplane.client import AdminClient
from flarectl.console import OutputFormat, emit, err, fail_from, out, table
from flarectl.cpclient import CONTEXT_OPTION, TOKEN_HINT, call_controlplane
from flarectl.contexts import resolve_target
from services.common.errors import BackendUnavailable, FlareError, Unauthorized

__all__ = ["status", "render", "as_status", "short_kind", "kind_cell", "headline_rate", "p99_ms", "load_cell"]

SHORT_KINDS = {"filter-rules": "filter"}


def short_kind(kind: str) -> str:
    return SHORT_KINDS.get(kind, kind)


def kind_cell(kind: dict) -> str:
    if kind["state"] == "SYNCED":
        return f"SYNCED v{kind['applied_version']}"
    if kind["state"] == "NOT SENT":
        return "NOT SENT"
    return f"{kind['state']} v{kind['applied_version']}/v{kind['desired_version']}"


def headline_rate(row: dict) -> str:
    rates = row.get("rates") or {}
    for name in ("in", "out", "deliveries"):
        if name in rates:
            return f"{rates[name]:.1f}"
    return "-"


def p99_ms(row: dict) -> str:
    latency = row.get("latency_ms") or {}
    for name in ("delivered_p99", "stored_p99", "received_p99"):
        if name in latency:
            return f"{latency[name]:g}"
    return "-"


def load_cell(row: dict) -> str:
    if row["service"] == "gateway":
        return f"{row.get('connections', 0)} conn"
    if row.get("lag"):
        mark = "↑" if row.get("lag_growing") else " stalled" if row.get("lag_stalled_s") else ""
        return f"lag {sum(row['lag'].values())}{mark}"
    return "-"


def as_status(picture: dict) -> dict:
    """The JSON `flarectl status -o json` prints: instances (each with kinds, rates, latency),
    alerts, rejections, documents."""
    rows = [{k: v for k, v in row.items() if k != "spark"} for row in picture["rows"].values()]
    return {"instances": sorted(rows, key=lambda r: (r["service"], r["instance_id"])),
            "alerts": picture["alerts"], "rejections": picture.get("rejections", []),
            "documents": picture.get("documents", {})}


def render(data: object) -> object:
    status: dict = data  # type: ignore[assignment]
    rows = []
    for inst in status["instances"]:
        config = ", ".join(f"{short_kind(k['kind'])} {kind_cell(k)}" for k in inst["kinds"]) or "-"
        rows.append([inst["service"], inst["instance_id"], inst["health"], headline_rate(inst), p99_ms(inst),
                     load_cell(inst), config])
    parts: list[object] = [table(["SERVICE", "INSTANCE", "HEALTH", "MSG/s", "P99ms", "LOAD", "CONFIG"], rows,
                                 compact=True)]
    for inst in status["instances"]:
        for k in inst["kinds"]:
            if k["state"] == "NACKED":
                parts.append(Text(f"NACK {inst['service']}/{inst['instance_id']} {k['kind']} "
                                  f"v{k['desired_version']}: {k['error']}"))
    for alert in status.get("alerts", []):
        if alert["alert"] != "NACKED":  # said just above, with its reason
            parts.append(Text(f"ALERT {alert['alert']} {alert['instance']}: {alert['reason']}"))
    for rej in status["rejections"]:
        parts.append(Text(f"REJECTED direct write to {rej['kind']} (revision {rej['mod_revision']}): {rej['error']}; "
                          f"serving v{rej['serving_version']}"))
    if not status["instances"]:
        parts.append(Text("no instances registered"))
    return Group(*parts)


async def _watch(address: str, token: str | None, interval: float, output: OutputFormat) -> None:
    """Follow the change stream; on a dropped link say so and reconnect."""
    delay = 0.5
    while True:
        picture = None
        try:
            async with AdminClient(address, token=token) as client:
                async for update in client.watch(interval_s=interval):
                    picture = apply_changes(picture, update)
                    delay = 0.5
                    if output is OutputFormat.table:
                        out.clear()
                    emit(as_status(picture), output, human=render)
        except Unauthorized:
            raise
        except BackendUnavailable as exc:
            err.print(f"control plane unreachable ({exc}); reconnecting in {delay:.1f}s", highlight=False)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


def status(
    watch: bool = typer.Option(False, "--watch", "-w", help="Follow changes until interrupted."),
    interval: float = typer.Option(1.0, "--interval", help="At most one refresh per this many seconds with --watch."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Every instance of every service: health, rates, and each config kind as SYNCED / STALE / NACKED / NOT SENT."""
    if not watch:
        picture = call_controlplane(lambda c: c.health(), context=context)
        emit(as_status(apply_changes(None, picture)), output, human=render)
        return
    try:
        target = resolve_target(context)
        asyncio.run(_watch(target.address, target.token, interval, output))
    except KeyboardInterrupt:
        return
    except Unauthorized as exc:
        fail_from(exc, hint=TOKEN_HINT)
    except FlareError as exc:
        fail_from(exc)


COMMANDS = {"status": status}
