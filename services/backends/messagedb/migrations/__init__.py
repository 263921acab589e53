"""The versioned SQL migrations of the MessageDB, one folder per dialect.

`V<NNN>__<description>.sql` moves the schema up to version NNN; `U<NNN>__<description>.sql`,
where one makes sense, undoes it (Flyway's naming). The adapters' startup migration and
`flarectl migrate` both read these files through `load_migrations`, and the schema history
records each file's sha256, so an applied file that is edited later is caught by
`migrate validate`. Append new files; never edit an applied one.

A file whose first line is `-- flare:no-transaction` runs outside a transaction (needed by
`CREATE INDEX CONCURRENTLY`); every other file runs in one, so a failure leaves the schema
as it was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from services.common.errors import InvalidInput

__all__ = ["DIALECTS", "Migration", "MigrationFileError", "load_migrations", "checksum"]

DIALECTS = ("sqlite", "postgres")
NO_TRANSACTION = "-- flare:no-transaction"
_NAME = re.compile(r"^(?P<kind>[VU])(?P<version>\d{1,6})__(?P<description>[a-z0-9_]+)\.sql$")


class MigrationFileError(InvalidInput):
    """A migrations folder holds a file that breaks the naming or numbering rules."""


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str
    down_sql: str | None = None

    @property
    def name(self) -> str:
        return f"V{self.version:03d}__{self.description}"

    @property
    def filename(self) -> str:
        return f"{self.name}.sql"

    @property
    def down_filename(self) -> str | None:
        return None if self.down_sql is None else f"U{self.version:03d}__{self.description}.sql"

    @property
    def checksum(self) -> str:
        return checksum(self.sql)

    @property
    def transactional(self) -> bool:
        return not self.sql.lstrip().startswith(NO_TRANSACTION)


def load_migrations(dialect: str, folder: str | Path | None = None) -> list[Migration]:
    """Every migration of the dialect, by ascending version; raises MigrationFileError for a
    misnamed file, a duplicate or missing version, or an undo without its migration.

    `folder` replaces the shipped files (`flarectl migrate --migrations DIR`, to plan or try
    a migration before it is added): DIR/<dialect>/ when that exists, else DIR itself."""
    if dialect not in DIALECTS:
        raise InvalidInput(f"unknown migration dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    ups: dict[int, tuple[str, str]] = {}
    downs: dict[int, tuple[str, str]] = {}
    if folder is None:
        source: Traversable = resources.files(__package__).joinpath(dialect)
    else:
        base = Path(folder)
        if not base.is_dir():
            raise MigrationFileError(f"{base}: not a folder of migration files")
        source = base / dialect if (base / dialect).is_dir() else base
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationFileError(
                f"{dialect}/{entry.name}: expected V<version>__<description>.sql or U<version>__<description>.sql")
        version, description = int(match["version"]), match["description"]
        target = ups if match["kind"] == "V" else downs
        if version in target:
            raise MigrationFileError(f"{dialect}: two files for version {version}: {target[version][0]}, {entry.name}")
        target[version] = (description, entry.read_text(encoding="utf-8"))
    for version, (description, _) in downs.items():
        if ups.get(version, ("",))[0] != description:
            raise MigrationFileError(f"{dialect}: U{version:03d}__{description}.sql undoes no migration of that name")
    expected = list(range(1, len(ups) + 1))
    if sorted(ups) != expected:
        raise MigrationFileError(f"{dialect}: versions must run 1, 2, 3 … without gaps; found {sorted(ups)}")
    return [
        Migration(version=v, description=ups[v][0], sql=ups[v][1], down_sql=downs.get(v, (None, None))[1])
        for v in expected
    ]
