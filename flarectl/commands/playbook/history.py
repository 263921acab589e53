"""`flarectl playbook history [RUN]`: runs from the audit log, or one run's events."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, emit, fail, fail_from, table
from flarectl.exitcodes import ExitCode
from flarectl.playbook import RunStore
from services.common.errors import FlareError

from .common import DATA_DIR_OPTION, data_dir_of


def history(
    run_id: str | None = typer.Argument(None, help="One run's events; all runs without it."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    data_dir: Path | None = DATA_DIR_OPTION,
) -> None:
    """Every playbook run (who, when, how it ended), or every event of one run."""
    try:
        events = RunStore(data_dir_of(data_dir)).events()
    except FlareError as exc:
        fail_from(exc)
    if run_id is not None:
        mine = [e for e in events if e["run_id"] == run_id]
        if not mine:
            fail(f"no playbook run {run_id} in the audit log", ExitCode.NOT_FOUND)
        emit(mine, output, human=lambda d: table(
            ["WHEN", "STEP", "RESULT", "EXIT", "OUTPUT DIGEST"],
            [[e["when"], e["step"], e["result"], e["exit_code"], (e["output_digest"] or "-")[:19]]
             for e in d]))  # type: ignore[union-attr]
        return
    runs: dict[str, dict] = {}
    for e in events:
        r = runs.setdefault(e["run_id"], {"run_id": e["run_id"], "playbook": e["playbook"], "who": e["who"],
                                          "started": e["when"], "dry_run": e["dry_run"], "status": "running"})
        if e["step"] == "run" and e["result"] not in ("started", "resumed"):
            r["status"] = e["result"]
        r["last"] = e["when"]
    emit(list(runs.values()), output, human=lambda d: table(
        ["RUN", "PLAYBOOK", "WHO", "STARTED", "STATUS"],
        [[r["run_id"], r["playbook"], r["who"], r["started"], r["status"] + (" (dry run)" if r["dry_run"] else "")]
         for r in d]))  # type: ignore[union-attr]
