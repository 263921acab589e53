"""`flarectl status [--watch]`: every instance, its health, and each kind's sync state."""

from __future__ import annotations

import time

import typer
from rich.console import Group
from rich.text import Text

from flarectl.console import OutputFormat, emit, out, table
from flarectl.cpclient import CONTEXT_OPTION, call_controlplane


def _cell(kind: dict) -> str:
    if kind["state"] == "SYNCED":
        return f"SYNCED v{kind['applied_version']}"
    if kind["state"] == "NOT SENT":
        return "NOT SENT"
    return f"{kind['state']} v{kind['applied_version']}/v{kind['desired_version']}"


def render(data: object) -> object:
    status: dict = data  # type: ignore[assignment]
    kinds = list(dict.fromkeys(k["kind"] for inst in status["instances"] for k in inst["kinds"]))
    rows = []
    for inst in status["instances"]:
        by_kind = {k["kind"]: k for k in inst["kinds"]}
        rows.append([inst["service"], inst["instance_id"], inst["address"], inst["health"],
                     *(_cell(by_kind[k]) if k in by_kind else "-" for k in kinds)])
    parts: list[object] = [table(["SERVICE", "INSTANCE", "ADDRESS", "HEALTH", *(k.upper() for k in kinds)], rows)]
    for inst in status["instances"]:
        for k in inst["kinds"]:
            if k["state"] == "NACKED":
                parts.append(Text(f"NACK {inst['service']}/{inst['instance_id']} {k['kind']} "
                                  f"v{k['desired_version']}: {k['error']}"))
    for rej in status["rejections"]:
        parts.append(Text(f"REJECTED direct write to {rej['kind']} (revision {rej['mod_revision']}): {rej['error']}; "
                          f"serving v{rej['serving_version']}"))
    if not status["instances"]:
        parts.append(Text("no instances registered"))
    return Group(*parts)


def status(
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until interrupted."),
    interval: float = typer.Option(2.0, "--interval", help="Seconds between refreshes with --watch."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    context: str | None = CONTEXT_OPTION,
) -> None:
    """Show each instance × config kind as SYNCED / STALE / NACKED / NOT SENT."""
    while True:
        data = call_controlplane(lambda c: c.status(), context=context)
        if watch and output is OutputFormat.table:
            out.clear()
        emit(data, output, human=render)
        if not watch:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


COMMANDS = {"status": status}
