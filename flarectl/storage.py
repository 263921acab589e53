"""What the commands that work on the stores directly (`migrate`, `archive`, `check`) share:
the options and URL resolution (a Flare config file, or URLs given outright), and the one
frame each of them runs in (`run_on_stores`): open the stores, do the work, print the result
as `-o` asks, and leave with the exit code the error names."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import typer

from services.common.config import FlareConfig, load_config
from services.common.errors import FlareError

from .console import OutputFormat, emit, fail, fail_from
from .exitcodes import ExitCode

__all__ = ["CONFIG_OPTION", "URL_OPTION", "OBJECTS_OPTION", "DATA_DIR_OPTION", "load", "messagedb_url",
           "objectstore_url", "ErrorExit", "run_on_stores"]

R = TypeVar("R")

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="Flare config file; its [backends] URLs are used.")
URL_OPTION = typer.Option(None, "--url", help="MessageDB URL (sqlite:///… or postgresql://…); overrides --config.")
OBJECTS_OPTION = typer.Option(None, "--objects", help="ObjectStore URL (file://… or s3://…); overrides --config.")
DATA_DIR_OPTION = typer.Option(None, "--data-dir", help="Embedded data directory (default from the config, .flare).")


def load(config: Path | None, data_dir: Path | None) -> FlareConfig:
    try:
        return load_config(config, data_dir=data_dir)
    except (OSError, ValueError) as exc:
        fail(f"cannot load config: {exc}", ExitCode.INVALID)


def messagedb_url(config: Path | None, url: str | None, data_dir: Path | None) -> str:
    return url or load(config, data_dir).backend_url("messagedb")


def objectstore_url(config: Path | None, url: str | None, data_dir: Path | None) -> str:
    return url or load(config, data_dir).backend_url("objectstore")


@dataclass(frozen=True, slots=True)
class ErrorExit:
    """How one kind of error leaves a command: with `code` (None: the code of the error's kind,
    as any Flare error gets) and a `hint` for the operator, or a function of the error giving one."""

    kind: type[FlareError]
    code: ExitCode | None = None
    hint: str | Callable[[FlareError], str | None] | None = None


def run_on_stores(use: Callable[..., Awaitable[R]], *, opened: AbstractAsyncContextManager[tuple] | None = None,
                  output: OutputFormat, human: Callable[[R], object], errors: Sequence[ErrorExit] = (),
                  failed: Callable[[R], bool] | None = None) -> R:
    """Run `use(*handles)` inside `opened` (the stores the command works on; None: `use()` opens
    its own), print its result as `output` asks, and exit 1 when `failed(result)` says the check
    it ran found a problem. A Flare error leaves with the first matching `errors` entry's code
    and hint, or the code of its kind."""

    async def work() -> R:
        if opened is None:
            return await use()
        async with opened as handles:
            return await use(*handles)

    try:
        result = asyncio.run(work())
    except FlareError as exc:
        _leave(exc, errors)
    emit(result, output, human=human)
    if failed is not None and failed(result):
        raise typer.Exit(int(ExitCode.FAILURE))
    return result


def _leave(exc: FlareError, errors: Sequence[ErrorExit]) -> NoReturn:
    rule = next((e for e in errors if isinstance(exc, e.kind)), _BY_KIND)
    hint = rule.hint(exc) if callable(rule.hint) else rule.hint
    if rule.code is None:
        fail_from(exc, hint=hint)
    fail(str(exc), rule.code, hint=hint)


_BY_KIND = ErrorExit(FlareError)
