"""Registers every command and command group on the root app.

One line per command module: a module exposes either `app` (a Typer group, registered
under its `NAME`) or `command` (a function registered as a top-level command under `NAME`).
"""

from __future__ import annotations

import importlib

import typer

MODULES = [
    "flarectl.commands.up",
    "flarectl.commands.down",
    "flarectl.commands.token",
    "flarectl.commands.chat",
    "flarectl.commands.loadtest",
    "flarectl.commands.status",
    "flarectl.commands.tui",
    "flarectl.commands.config",
    "flarectl.commands.controlplane",
    "flarectl.commands.auth",
    "flarectl.commands.context",
    "flarectl.commands.migrate",
    "flarectl.commands.archive",
    "flarectl.commands.check",
    "flarectl.commands.replay",
    "flarectl.commands.playbook",
    "flarectl.commands.restart",
]


def register_all(root: typer.Typer) -> None:
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, fn in getattr(module, "COMMANDS", {}).items():
            root.command(name)(fn)
        if hasattr(module, "app"):
            root.add_typer(module.app, name=module.NAME)
