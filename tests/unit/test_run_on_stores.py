"""flarectl.storage.run_on_stores, the frame `migrate`, `archive` and `check` commands run in:
open, work, print as -o asks, and leave with the exit code (and hint) the error names."""

from __future__ import annotations

from contextlib import asynccontextmanager

import orjson
import typer

from flarectl.console import OutputFormat
from flarectl.exitcodes import ExitCode
from flarectl.storage import ErrorExit, run_on_stores
from services.common.errors import BackendError, BackendUnavailable, NotFound
from tests.cli_runner import run_cli


class Locked(BackendError):
    pass


class LockedLonger(Locked):
    pass


ERRORS = (
    ErrorExit(LockedLonger, ExitCode.REFUSED),  # the first entry that matches wins
    ErrorExit(Locked, ExitCode.LOCKED, hint="raise --lock-timeout"),
    ErrorExit(NotFound, hint=lambda exc: "make it first" if "missing" in str(exc) else None),
)


def _app(events: list[str]) -> typer.Typer:
    app = typer.Typer()

    @asynccontextmanager
    async def opened(name: str):
        events.append(f"open {name}")
        try:
            yield name, 2
        finally:
            events.append(f"close {name}")

    @app.command()
    def work(raise_: str = typer.Option("", "--raise"), bad: bool = typer.Option(False, "--bad"),
             output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o")) -> None:
        async def use(name: str, count: int) -> dict:
            events.append(f"use {name} {count}")
            failures = {"locked": Locked("held by job 7"), "longer": LockedLonger("held an hour"),
                        "missing": NotFound("database missing"), "gone": NotFound("row gone"),
                        "down": BackendUnavailable("store down")}
            if raise_:
                raise failures[raise_]
            return {"name": name, "ok": not bad}

        run_on_stores(use, opened=opened("db"), errors=ERRORS, output=output,
                      human=lambda d: f"{d['name']}: {'ok' if d['ok'] else 'BAD'}", failed=lambda d: not d["ok"])

    return app


def test_the_result_is_printed_as_asked_and_the_stores_are_closed():
    events: list[str] = []
    table = run_cli(_app(events), [])
    assert (table.exit_code, table.stdout) == (0, "db: ok\n")
    as_json = run_cli(_app(events), ["-o", "json"])
    assert as_json.exit_code == 0 and orjson.loads(as_json.stdout) == {"name": "db", "ok": True}
    assert events == ["open db", "use db 2", "close db"] * 2


def test_a_failed_check_prints_its_report_then_exits_1():
    result = run_cli(_app([]), ["--bad"])
    assert (result.exit_code, result.stdout) == (int(ExitCode.FAILURE), "db: BAD\n")


def test_an_error_leaves_with_its_entry_code_and_hint_and_closes_the_stores():
    events: list[str] = []
    locked = run_cli(_app(events), ["--raise", "locked"])
    assert locked.exit_code == int(ExitCode.LOCKED) and locked.stdout == ""
    assert locked.stderr == "error: held by job 7\nhint: raise --lock-timeout\n"
    assert events[-1] == "close db"
    longer = run_cli(_app(events), ["--raise", "longer"])
    assert (longer.exit_code, longer.stderr) == (int(ExitCode.REFUSED), "error: held an hour\n")


def test_an_entry_without_a_code_keeps_the_code_of_the_kind_and_a_hint_may_depend_on_the_error():
    missing = run_cli(_app([]), ["--raise", "missing"])
    assert (missing.exit_code, missing.stderr) == (int(ExitCode.NOT_FOUND), "error: database missing\nhint: make it first\n")
    gone = run_cli(_app([]), ["--raise", "gone"])
    assert (gone.exit_code, gone.stderr) == (int(ExitCode.NOT_FOUND), "error: row gone\n")
    down = run_cli(_app([]), ["--raise", "down"])  # no entry: any Flare error's code
    assert (down.exit_code, down.stderr) == (int(ExitCode.UNAVAILABLE), "error: store down\n")


def test_without_opened_the_work_opens_its_own():
    app = typer.Typer()

    @app.command()
    def work() -> None:
        async def use() -> dict:
            return {"opened": "by itself"}

        run_on_stores(use, output=OutputFormat.json, human=str)

    result = run_cli(app, [])
    assert result.exit_code == 0 and orjson.loads(result.stdout) == {"opened": "by itself"}
