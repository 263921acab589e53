"""`flarectl playbook show NAME|FILE`."""

from __future__ import annotations

import typer
from rich.console import Group

from flarectl.console import OutputFormat, emit, table

from .common import load


def _command(value: object) -> str:
    return value if isinstance(value, str) else " ".join(value or [])  # type: ignore[arg-type]


def show(name: str = typer.Argument(..., help="A playbook name or file."),
         output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o")) -> None:
    """The playbook's variables and steps (what each does, and its rollback)."""
    path, _, book = load(name)
    steps = []
    for step in book.steps:
        what = {"run": lambda s: _command(s.run), "check": lambda s: f"{_command(s.check.run)} until {s.check.until}",
                "wait": lambda s: f"{s.wait:g}s", "approve": lambda s: s.approve,
                "for_each": lambda s: f"for each of {s.for_each}: " + ", ".join(
                    f"{sub.name} ({sub.kind})" for sub in s.steps)}[step.kind](step)
        steps.append({"name": step.name, "kind": step.kind, "what": what, "read_only": step.read_only,
                      "rollback": _command(step.rollback) if step.rollback else None})
    data = {"name": book.name, "description": book.description, "file": str(path),
            "vars": {k: v.model_dump() for k, v in book.vars.items()}, "steps": steps}

    def human(d: object) -> object:
        r: dict = d  # type: ignore[assignment]
        parts: list[object] = [f"{r['name']}: {r['description']} ({r['file']})"]
        if r["vars"]:
            parts.append(table(["VAR", "DEFAULT", "DESCRIPTION"],
                               [[k, v["default"], v["description"]] for k, v in r["vars"].items()]))
        parts.append(table(["#", "STEP", "KIND", "WHAT", "ROLLBACK"],
                           [[i + 1, s["name"], s["kind"], s["what"], s["rollback"] or "-"]
                            for i, s in enumerate(r["steps"])]))
        return Group(*parts)

    emit(data, output, human=human)
