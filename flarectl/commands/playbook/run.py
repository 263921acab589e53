"""`flarectl playbook run NAME|FILE [--dry-run] [--resume RUN] [--yes] [--var k=v] [-o json]`."""

from __future__ import annotations

from pathlib import Path

import typer

from flarectl.console import OutputFormat, emit, err, fail, fail_from, out
from flarectl.exitcodes import ExitCode
from flarectl.playbook import Engine, RunStore, interactive_confirm
from services.common.errors import FlareError, InvalidInput

from .common import DATA_DIR_OPTION, data_dir_of, load, who_runs


def _vars(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--var {pair!r}: expected NAME=VALUE", field="var")
        values[name] = value
    return values


def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A playbook name (flarectl playbook list) or file."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Run the read-only checks; print what each step would do."),
    resume: str | None = typer.Option(None, "--resume", help="Continue run RUN from its failed or killed step."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Answer yes at approval gates."),
    var: list[str] = typer.Option([], "--var", help="NAME=VALUE for a playbook variable (repeatable)."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    data_dir: Path | None = DATA_DIR_OPTION,
) -> None:
    """Run a playbook's steps; a failed step rolls back the completed ones, newest first."""
    path, text, book = load(name)
    store = RunStore(data_dir_of(data_dir))
    quiet = output is not OutputFormat.table

    def report(line: str) -> None:
        (err if quiet else out).print(line, highlight=False, markup=False)

    engine = Engine(playbook=book, source=str(path.resolve()), source_text=text, root=ctx.find_root().command,
                    store=store, who=who_runs(), yes=yes, dry_run=dry_run, confirm=interactive_confirm(),
                    report=report)
    try:
        if resume is not None:
            if var:
                raise InvalidInput("--var with --resume: a resumed run keeps its variables", field="var")
            code = engine.resume(store.load(resume))
        else:
            code = engine.start(_vars(var))
    except KeyboardInterrupt:
        fail(f"interrupted; continue with --resume {engine.run.get('run_id')}", ExitCode.INTERRUPTED)
    except FlareError as exc:
        fail_from(exc)
    summary = {k: engine.run.get(k) for k in ("run_id", "playbook", "status", "who", "dry_run", "vars", "captured",
                                               "steps", "rollbacks")}
    if quiet:
        emit(summary, output)
    else:
        out.print(f"run {summary['run_id']}: {summary['status']}", highlight=False)
    raise typer.Exit(int(code))
