"""Control-plane roles. Operator roles, weakest first: each can do what the ones before it
can. `service` stands apart: an instance's config stream (Subscribe) and nothing else, and
no operator role implies it, so a viewer cannot put an instance into the topology."""

from __future__ import annotations

from services.common.auth import ROLE_SERVICE

__all__ = ["ROLES", "ISSUABLE_ROLES", "role_allows"]

ROLES = ("viewer", "operator", "admin")
ISSUABLE_ROLES = (*ROLES, ROLE_SERVICE)


def role_allows(role: str | None, needed: str) -> bool:
    if ROLE_SERVICE in (role, needed):
        return role == needed
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)
