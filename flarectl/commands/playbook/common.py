"""What the playbook commands share: loading with named errors, the data dir, who runs it."""

from __future__ import annotations

import base64
import getpass
from pathlib import Path

import orjson
import typer

from flarectl.console import fail_from
from flarectl.contexts import resolve_target
from flarectl.playbook import Playbook, find_playbook, parse_playbook
from services.common.errors import FlareError, InvalidInput
from services.common.paths import default_data_dir

DATA_DIR_OPTION = typer.Option(None, "--data-dir", help="Where run files and the audit log live [default: ./.flare].")


def data_dir_of(data_dir: Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir()


def load(name_or_file: str) -> tuple[Path, str, Playbook]:
    try:
        path = find_playbook(name_or_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
        return path, text, parse_playbook(text, source=str(path))
    except FlareError as exc:
        fail_from(exc)


def who_runs() -> str:
    """The subject of the token flarectl presents (the server checks its signature on every
    call; here it only names the operator), else the local user."""
    try:
        token = resolve_target(None).token
    except FlareError:
        token = None
    if token:
        try:
            payload = token.split(".", 1)[0]
            subject = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("sub")
            if subject:
                return str(subject)
        except (ValueError, orjson.JSONDecodeError):
            pass
    return f"local:{getpass.getuser()}"
