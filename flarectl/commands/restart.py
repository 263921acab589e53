"""`flarectl restart INSTANCE [--data-dir D]`: restart one instance of a detached split deployment.

Stops the instance (SIGTERM, SIGKILL after the deployment's stop timeout), starts it with the
command line split.json recorded, waits until it serves and /healthz answers, and records its
new pid and ports so `flarectl down` stops the new process. A deployment running in the
foreground (`flarectl up --split` without --detach) supervises its own children: restart those
by stopping and starting the deployment.
"""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, confirm_or_abort, emit, fail
from flarectl.exitcodes import ExitCode
from services.common.config import load_config
from services.common.errors import FlareError
from services.wiring.split import read_state, restart_from_state


def restart(
    instance: str = typer.Argument(..., help="The instance id, e.g. store-1 (see split.json or flarectl status)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="The split deployment's data dir."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for it to be healthy again."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be restarted; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Restart without asking."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
) -> None:
    """Restart one instance and wait until it is healthy."""
    directory = Path(data_dir or load_config(None).data_dir).resolve()
    state = read_state(directory)
    if state is None:
        fail(f"no split deployment recorded in {directory / 'split.json'}", ExitCode.NOT_FOUND,
             hint="flarectl up --split --config F --detach")
    if dry_run:
        entry = next((p for p in state["processes"] if p["instance_id"] == instance and p["service"] != "controlplane"),
                     None)
        if entry is None:
            fail(f"no instance {instance!r} in {directory / 'split.json'}", ExitCode.NOT_FOUND)
        emit({"instance_id": instance, "pid": entry["pid"], "argv": entry["argv"], "dry_run": True}, output,
             human=lambda d: f"would restart {d['instance_id']} (pid {d['pid']}): {' '.join(d['argv'])}")  # type: ignore[index]
        return
    confirm_or_abort(f"restart {instance}?", yes=yes)
    try:
        result = restart_from_state(directory, instance, timeout=timeout)
    except FlareError as exc:
        code = ExitCode.NOT_FOUND if str(exc).startswith("no instance") else ExitCode.UNAVAILABLE
        fail(str(exc), code)
    emit(result, output, human=lambda d: f"{d['instance_id']} restarted (pid {d['old_pid']} -> {d['pid']}) "  # type: ignore[index]
                                         f"and healthy in {d['seconds']}s")  # type: ignore[index]


COMMANDS = {"restart": restart}
