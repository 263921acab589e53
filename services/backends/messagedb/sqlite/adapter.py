"""`sqlite:////abs/path.db` — the MessageDB port on SQLite in WAL mode.

Every write is one transaction on the single writer thread (embedded/_sqlite.py), so a
per-conversation event_id allocated with MAX()+1 inside it cannot race another writer.
Each table's SQL lives in its own module; this class only wires them onto one database.
"""

from __future__ import annotations

from services.backends.embedded._sqlite import SQLiteThreads, sqlite_path_from_url

from .archive import SQLiteArchive
from .cursors import SQLiteCursors
from .events import SQLiteEvents
from .integrity import SQLiteIntegrity
from .membership import SQLiteGroups, SQLiteMembership
from .messages import SQLiteMessages
from .schema import SQLiteSchema

__all__ = ["SQLiteMessageDB"]


class SQLiteMessageDB(SQLiteSchema, SQLiteMessages, SQLiteEvents, SQLiteCursors, SQLiteMembership, SQLiteGroups,
                      SQLiteArchive, SQLiteIntegrity):
    def __init__(self, path) -> None:
        self._db = SQLiteThreads(path, "messagedb")

    @classmethod
    def from_url(cls, url: str) -> SQLiteMessageDB:
        return cls(sqlite_path_from_url(url))

    @property
    def path(self):
        return self._db.path

    async def create_database_if_missing(self) -> bool:
        if self._db.path.exists():
            return False
        self._db.path.parent.mkdir(parents=True, exist_ok=True)
        self._db.path.touch()
        return True

    async def start(self) -> None:
        await self._db.start()

    async def close(self) -> None:
        await self._db.close()
