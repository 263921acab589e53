"""The MessageDB on SQLite (embedded, WAL): one module per table, wired in adapter.py."""

from __future__ import annotations

__all__ = ["SQLiteMessageDB"]


def __getattr__(name: str):
    if name == "SQLiteMessageDB":
        from .adapter import SQLiteMessageDB

        return SQLiteMessageDB
    raise AttributeError(name)
