"""The MessageDB on PostgreSQL (asyncpg): one module per table, wired in adapter.py."""

from __future__ import annotations

__all__ = ["PostgresMessageDB"]


def __getattr__(name: str):
    if name == "PostgresMessageDB":
        from .adapter import PostgresMessageDB

        return PostgresMessageDB
    raise AttributeError(name)
