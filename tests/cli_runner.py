"""The one way tests run a Typer app in-process (the `cli` fixture in tests/conftest.py).

Same terminal for every test: no colour, a fixed width (Rich wraps tables and messages at
COLUMNS, so output assertions must not depend on the developer's terminal), and
catch_exceptions=False so a crash inside a command fails the test with its traceback
instead of becoming an exit code 1 that an assertion might accept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from typer.testing import CliRunner, Result

__all__ = ["CLI_ENV", "run_cli"]

CLI_ENV: dict[str, str] = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


def run_cli(app, args: Sequence[str], *, env: Mapping[str, str | None] | None = None,
            input: str | None = None) -> Result:
    """Invoke `app` with args; env adds to (or, with None, unsets from) CLI_ENV for this call."""
    runner = CliRunner(env={**CLI_ENV, **(env or {})})
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)
