"""Where flarectl finds the control plane and its token, like kubeconfig.

File: $FLARECTL_CONFIG or ~/.config/flare/contexts.yaml

    current: prod
    contexts:
      prod: {controlplane: "10.0.0.5:8702", token: "…"}

Precedence: FLARE_CONTROLPLANE / FLARE_TOKEN env > the chosen context (--context, else
`current`) > the local defaults (127.0.0.1:8702 and the admin.token that a local daemon
writes into ./.flare).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.common.errors import InvalidInput, NotFound
from services.common.paths import default_data_dir, read_admin_token, write_private

from services.common.safeyaml import load_file

__all__ = ["Target", "config_path", "load_contexts", "save_contexts", "resolve_target", "DEFAULT_ADDRESS"]

DEFAULT_ADDRESS = "127.0.0.1:8702"


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    token: str | None
    context: str | None


def config_path() -> Path:
    env = os.environ.get("FLARECTL_CONFIG")
    return Path(env) if env else Path.home() / ".config" / "flare" / "contexts.yaml"


def load_contexts() -> dict:
    path = config_path()
    if not path.exists():
        return {"current": None, "contexts": {}}
    data = load_file(path) or {}  # DocumentError (InvalidInput) names the file and the problem
    if not isinstance(data, dict) or not isinstance(data.get("contexts", {}), dict):
        raise InvalidInput(f"{path}: expected a mapping with 'contexts'")
    data.setdefault("contexts", {})
    data.setdefault("current", None)
    return data


def save_contexts(data: dict) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    write_private(tmp, yaml.safe_dump(data, sort_keys=True).encode())  # it holds tokens: 0600 from the start
    tmp.replace(path)
    return path


def resolve_target(context: str | None = None) -> Target:
    data = load_contexts()
    name = context or data.get("current")
    entry: dict = {}
    if name:
        if name not in data["contexts"]:
            raise NotFound(f"no context named {name!r} in {config_path()}")
        entry = data["contexts"][name] or {}
        if not isinstance(entry, dict):
            raise InvalidInput(f"{config_path()}: context {name!r} must be a mapping (controlplane, token)")
    address = os.environ.get("FLARE_CONTROLPLANE") or entry.get("controlplane") or DEFAULT_ADDRESS
    token = os.environ.get("FLARE_TOKEN") or entry.get("token")
    if not token and not name:
        token = read_admin_token(default_data_dir())
    return Target(address=address, token=token or None, context=name)
