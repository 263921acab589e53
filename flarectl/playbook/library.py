"""Where playbooks are found by name: $FLARE_PLAYBOOKS (':'-separated dirs), ./playbooks, and
the playbooks/ folder shipped beside the flarectl package."""

from __future__ import annotations

import os
from pathlib import Path

from services.common.errors import NotFound

__all__ = ["playbook_dirs", "playbooks", "find_playbook"]

_SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"


def playbook_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("FLARE_PLAYBOOKS", "").split(os.pathsep) if p]
    dirs += [Path("playbooks"), _SHIPPED]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in {o.resolve() for o in out}:
            out.append(d)
    return out


def playbooks() -> dict[str, Path]:
    """name -> file; an earlier directory wins."""
    found: dict[str, Path] = {}
    for directory in playbook_dirs():
        for path in sorted(directory.glob("*.y*ml")):
            found.setdefault(path.stem, path)
    return found


def find_playbook(name_or_file: str) -> Path:
    """A path to a file, or the name of a playbook in the library."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or os.sep in name_or_file:
        if not path.is_file():
            raise NotFound(f"no playbook file {name_or_file}")
        return path
    found = playbooks().get(name_or_file)
    if found is None:
        known = ", ".join(sorted(playbooks())) or "none"
        raise NotFound(f"no playbook named {name_or_file!r} (known: {known})")
    return found
