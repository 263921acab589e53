"""Run one flarectl command in-process (not a shell) and capture what it printed.

A Ctrl-C inside the command comes back as exit code 130 (Typer turns it into Exit(130));
the engine treats that code as an interruption, never as a failure to roll back.

The root click command is handed in by the caller (the `playbook run` command finds it on
its click context), so this module does not import flarectl.main and no cycle forms.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import typer
from typer.exceptions import TyperException

__all__ = ["Outcome", "invoke"]


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def invoke(root: object, argv: list[str]) -> Outcome:
    """`root` is the root command of the flarectl app (Typer's click command)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            result = root.main(args=list(argv), prog_name="flarectl", standalone_mode=False)  # type: ignore[attr-defined]
            code = result if isinstance(result, int) else 0
        except typer.Exit as exc:
            code = exc.exit_code
        except TyperException as exc:  # usage errors: what click prints, and its code (2)
            stderr.write(f"error: {exc.format_message()}\n")
            code = exc.exit_code
        except typer.Abort:
            stderr.write("error: aborted\n")
            code = 9
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Outcome(code=code, stdout=stdout.getvalue(), stderr=stderr.getvalue())
