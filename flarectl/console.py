"""All flarectl output goes through here: tables for people, json/yaml for scripts.

Errors go to stderr. NO_COLOR is honoured by Rich itself. Commands call `emit(data, …)`
with plain data (dicts/lists) and a table renderer for the human format, and `fail(…)`
to print an error and exit with a named code.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import orjson
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.common.errors import (
    BackendUnavailable,
    Conflict,
    FlareError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)

from .exitcodes import ExitCode

__all__ = ["OutputFormat", "out", "err", "emit", "show", "fail", "fail_from", "table", "confirm_or_abort",
           "unwrapped"]

class _Console(Console):
    """Rich's console, except that with no terminal nothing is wrapped or cut at 80 columns:
    a pipe has no width, and scripts capture tokens, paths and YAML from what is printed
    (`COLUMNS` still sets a width when given)."""

    def print(self, *objects, **kwargs) -> None:  # type: ignore[override]
        if not self.is_terminal:
            kwargs.setdefault("soft_wrap", True)
            if not os.environ.get("COLUMNS"):
                kwargs.setdefault("width", 10_000)
        super().print(*objects, **kwargs)


out = _Console(soft_wrap=False)
err = _Console(stderr=True)


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


def table(columns: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None,
          compact: bool = False) -> Table:
    """`compact`: no borders, one space between columns, so a wide picture fits 80 columns."""
    if compact:
        t = Table(title=title, header_style="bold", box=None, pad_edge=False, padding=(0, 1))
    else:
        t = Table(title=title, header_style="bold")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


class unwrapped(str):  # noqa: N801 - reads as a marker at the call site: human=lambda r: unwrapped(r["token"])
    """A line that must survive copy and paste whole (a token): written as is, never
    wrapped at the terminal width or read as markup."""


def emit(data: object, fmt: OutputFormat = OutputFormat.table, *, human: Callable[[object], object] | None = None) -> None:
    """Print `data` as json/yaml, or through `human` (which returns a Rich renderable or str)."""
    if fmt is OutputFormat.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    elif fmt is OutputFormat.yaml:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        show(human(data) if human is not None else data)


def show(renderable: object) -> None:
    """Print for people. A plain string goes out exactly as it is (no markup, no wrapping:
    scripts capture tokens and YAML from it)."""
    if isinstance(renderable, str):
        sys.stdout.write(renderable if renderable.endswith("\n") else renderable + "\n")
        sys.stdout.flush()
        return
    out.print(renderable)


def fail(message: str, code: ExitCode = ExitCode.FAILURE, *, hint: str | None = None) -> NoReturn:
    # Messages quote user input (a key, a file name): escaped, or "[/x]" in a file is markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if hint:
        err.print(f"[dim]hint: {escape(hint)}[/]", highlight=False)
    raise typer.Exit(int(code))


_EXIT_FOR_ERROR: list[tuple[type[FlareError], ExitCode]] = [
    (InvalidInput, ExitCode.INVALID),
    (Unauthorized, ExitCode.UNAUTHORIZED),
    (Forbidden, ExitCode.UNAUTHORIZED),
    (Conflict, ExitCode.CONFLICT),
    (NotFound, ExitCode.NOT_FOUND),
    (BackendUnavailable, ExitCode.UNAVAILABLE),
]


def fail_from(exc: FlareError, *, hint: str | None = None) -> NoReturn:
    """Exit with the code that matches a Flare error's kind."""
    code = next((c for kind, c in _EXIT_FOR_ERROR if isinstance(exc, kind)), ExitCode.FAILURE)
    fail(str(exc) or exc.code, code, hint=hint)


def confirm_or_abort(question: str, *, yes: bool) -> None:
    """Destructive steps ask first; `--yes` (or no TTY, which must pass --yes) decides."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{question} — refusing without --yes (no terminal to ask on)", ExitCode.ABORTED)
    if not typer.confirm(question, default=False):
        fail("aborted", ExitCode.ABORTED)
