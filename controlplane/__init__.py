"""Flare's control plane: desired config in the ConfigStore, validated, versioned, pushed to
every instance over a gRPC stream, with per-instance status (ARCHITECTURE §7).

Public surface: `ControlPlane` (the daemon), `ConfigAgent` (the instance side),
`AdminClient` (what flarectl talks to).
"""

from __future__ import annotations

__all__ = ["ControlPlane", "ConfigAgent", "AdminClient"]


def __getattr__(name: str):
    # Lazy, so importing one module (`controlplane.keys`) does not pull in gRPC.
    if name == "ControlPlane":
        from .daemon import ControlPlane
        return ControlPlane
    if name == "ConfigAgent":
        from .agent import ConfigAgent
        return ConfigAgent
    if name == "AdminClient":
        from .client import AdminClient
        return AdminClient
    raise AttributeError(name)
