"""Options and URL resolution shared by the commands that work on the stores directly
(`migrate`, `archive`, `check`): a Flare config file, or URLs given outright."""

from __future__ import annotations

from pathlib import Path

import typer

from services.common.config import FlareConfig, load_config

from .console import fail
from .exitcodes import ExitCode

__all__ = ["CONFIG_OPTION", "URL_OPTION", "OBJECTS_OPTION", "DATA_DIR_OPTION", "load", "messagedb_url",
           "objectstore_url"]

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
