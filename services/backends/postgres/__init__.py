"""PostgreSQL adapter for the MessageDB port (asyncpg; TimescaleDB when available)."""

from __future__ import annotations

__all__ = ["PostgresMessageDB"]


def __getattr__(name: str):
    if name == "PostgresMessageDB":
        from .messagedb import PostgresMessageDB

        return PostgresMessageDB
    raise AttributeError(name)
