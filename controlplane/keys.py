"""The key layout under /flare/ (ARCHITECTURE §7), in one place."""

from __future__ import annotations

# Gateways read the revocation list too, so its names live below both (backends floor).
from services.backends.revocations import REVOCATIONS, REVOKED_TOKENS, REVOKED_USERS

__all__ = ["ROOT", "CONFIG", "HISTORY", "TOPOLOGY", "STATUS", "REJECTED",
           "REVOCATIONS", "REVOKED_TOKENS", "REVOKED_USERS",
           "config_key", "history_key", "history_prefix", "topology_key", "status_key", "rejected_key"]

ROOT = "/flare/"
CONFIG = ROOT + "config/"
HISTORY = ROOT + "config-history/"
TOPOLOGY = ROOT + "topology/"
STATUS = ROOT + "status/"
REJECTED = ROOT + "config-rejected/"  # why the last direct write of a kind was refused


def config_key(kind: str) -> str:
    return CONFIG + kind


def history_prefix(kind: str) -> str:
    return f"{HISTORY}{kind}/"


def history_key(kind: str, version: int) -> str:
    # Zero-padded so the store's key order is version order.
    return f"{HISTORY}{kind}/{version:010d}"


def topology_key(service: str, instance_id: str) -> str:
    return f"{TOPOLOGY}{service}/{instance_id}"


def status_key(service: str, instance_id: str, kind: str) -> str:
    return f"{STATUS}{service}/{instance_id}/{kind}"


def rejected_key(kind: str) -> str:
    return REJECTED + kind
