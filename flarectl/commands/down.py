"""`flarectl down`: stop a split deployment started by `flarectl up --split`."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["COMMANDS", "down"]


def down(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="The deployment's data_dir [default: ./.flare]."),
) -> None:
    """Stop every process of the split deployment recorded in DATA_DIR/split.json
    (SIGTERM, then SIGKILL after split.stop_timeout_s) and remove the record."""
    from flarectl.split import down as stop_split

    stop_split(data_dir)


COMMANDS = {"down": down}
