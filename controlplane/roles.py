"""Operator roles, weakest first: each role can do what the ones before it can."""

from __future__ import annotations

__all__ = ["ROLES", "role_allows"]

ROLES = ("viewer", "operator", "admin")


def role_allows(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)
