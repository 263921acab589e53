"""Backend-neutral migration logic over an adapter's schema history (Flyway's model).

status, plan, up, down, validate and baseline compare the dialect's versioned files
(migrations/) with the rows of the history table (history.py). The adapters'
`migrate()` (what the embedded monolith runs on start) is `Migrator(db).up()`;
`flarectl migrate` drives the same object with its flags.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from services.common.errors import Conflict, InvalidInput

from .history import (
    ChecksumDrift,
    HistoryRow,
    NoDownScript,
    SchemaBehind,
    SchemaHistory,
    applied_versions,
    default_applied_by,
)
from .migrations import Migration, checksum, load_migrations

__all__ = ["Drift", "SchemaStatus", "Migrator", "DEFAULT_LOCK_TIMEOUT_S"]

DEFAULT_LOCK_TIMEOUT_S = 60.0

Step = Callable[[Migration, str], Awaitable[None]]  # (migration, "up" | "down") before it runs


@dataclass(frozen=True, slots=True)
class Drift:
    version: int
    filename: str
    applied_checksum: str
    file_checksum: str | None  # None: the file is gone

    def describe(self) -> str:
        if self.file_checksum is None:
            return f"{self.filename}: applied but no longer among the migration files"
        return (f"{self.filename}: content changed since it was applied "
                f"(applied sha256 {self.applied_checksum[:12]}…, file {self.file_checksum[:12]}…)")


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    dialect: str
    current_version: int  # highest version in effect (0: empty schema)
    latest_version: int  # highest version among the files
    applied: list[HistoryRow] = field(default_factory=list)  # the row in effect per version, ascending
    pending: list[Migration] = field(default_factory=list)
    failed: list[HistoryRow] = field(default_factory=list)  # last attempt failed, version not in effect
    drift: list[Drift] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.pending


class Migrator:
    def __init__(self, history: SchemaHistory, migrations: Sequence[Migration] | None = None) -> None:
        self._history = history
        self.migrations = list(migrations) if migrations is not None else load_migrations(history.dialect)
        self._by_version = {m.version: m for m in self.migrations}

    @property
    def latest_version(self) -> int:
        return self.migrations[-1].version if self.migrations else 0

    def name_of(self, version: int) -> str:
        m = self._by_version.get(version)
        return m.name if m else f"V{version:03d}"

    # -- reading -----------------------------------------------------------------------------
    async def status(self) -> SchemaStatus:
        rows = await self._history.read_history()
        applied = applied_versions(rows)
        drift = []
        for version, row in sorted(applied.items()):
            m = self._by_version.get(version)
            if row.kind == "baseline" or not row.checksum:
                continue  # adopted, not run by us: nothing to compare
            if m is None:
                drift.append(Drift(version, f"V{version:03d}__{row.description}.sql", row.checksum, None))
            elif m.checksum != row.checksum:
                drift.append(Drift(version, m.filename, row.checksum, m.checksum))
        last_attempt: dict[int, HistoryRow] = {}
        for row in sorted(rows, key=lambda r: r.rank):
            if row.kind == "migrate":
                last_attempt[row.version] = row
        failed = [row for v, row in sorted(last_attempt.items()) if not row.success and v not in applied]
        return SchemaStatus(
            dialect=self._history.dialect,
            current_version=max(applied, default=0),
            latest_version=self.latest_version,
            applied=[applied[v] for v in sorted(applied)],
            pending=[m for m in self.migrations if m.version not in applied],
            failed=failed,
            drift=drift,
        )

    async def validate(self) -> list[Drift]:
        return (await self.status()).drift

    async def plan(self, *, to: int | None = None) -> list[Migration]:
        """The migrations `up --to` would run, in order."""
        target = self._target(to)
        return [m for m in (await self.status()).pending if m.version <= target]

    async def down_plan(self, *, to: int) -> list[Migration]:
        """The migrations `down --to` would undo, newest first; NoDownScript names the first
        one that has no undo file (nothing runs then)."""
        if to < 0 or to > self.latest_version:
            raise InvalidInput(f"--to must be between 0 and {self.latest_version}", to=to)
        st = await self.status()
        undo = []
        for row in reversed(st.applied):
            if row.version <= to:
                continue
            m = self._by_version.get(row.version)
            if m is None or m.down_sql is None:
                raise NoDownScript(
                    f"{self.name_of(row.version)} has no undo file (U{row.version:03d}__….sql); "
                    f"cannot go down to version {to}", version=row.version)
            if row.kind == "baseline":
                raise NoDownScript(f"{m.name} was adopted by a baseline, not run here; it cannot be undone",
                                   version=row.version)
            undo.append(m)
        return undo

    async def require_current(self) -> None:
        """Raise SchemaBehind, naming the command that fixes it, when migrations are pending."""
        st = await self.status()
        if st.pending:
            raise SchemaBehind(
                f"the message database schema is at version {st.current_version}, this code needs "
                f"{st.latest_version} (pending: {', '.join(m.name for m in st.pending)}); "
                "run `flarectl migrate up` first",
                current=st.current_version, needed=st.latest_version)

    # -- changing ----------------------------------------------------------------------------
    async def up(self, *, to: int | None = None, applied_by: str | None = None,
                 lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, before: Step | None = None) -> list[HistoryRow]:
        """Apply pending migrations up to `to` (default: all), each in its own transaction,
        under the migration lock; refuse while an applied file has drifted. [] when there
        was nothing to do (that is success, not an error)."""
        target = self._target(to)
        by = applied_by or default_applied_by()
        rows: list[HistoryRow] = []
        async with self._history.migration_lock(timeout_s=lock_timeout_s):
            st = await self.status()  # re-read under the lock: another migrator may have just run
            if st.drift:
                raise ChecksumDrift("; ".join(d.describe() for d in st.drift) + " — run `flarectl migrate validate`",
                                    files=[d.filename for d in st.drift])
            for m in (m for m in st.pending if m.version <= target):
                if before is not None:
                    await before(m, "up")
                rows.append(await self._history.run_migration(
                    m.sql, transactional=m.transactional, version=m.version, description=m.description,
                    kind="migrate", checksum=m.checksum, applied_by=by))
            await self._history.after_migrate()
        return rows

    async def down(self, *, to: int, applied_by: str | None = None,
                   lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, before: Step | None = None) -> list[HistoryRow]:
        by = applied_by or default_applied_by()
        rows: list[HistoryRow] = []
        async with self._history.migration_lock(timeout_s=lock_timeout_s):
            for m in await self.down_plan(to=to):
                if before is not None:
                    await before(m, "down")
                assert m.down_sql is not None
                rows.append(await self._history.run_migration(
                    m.down_sql, transactional=True, version=m.version, description=m.description,
                    kind="undo", checksum=checksum(m.down_sql), applied_by=by))
        return rows

    async def baseline(self, *, version: int, applied_by: str | None = None,
                       lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> HistoryRow:
        """Adopt a database whose schema already is at `version` (made by hand or by another
        tool): versions up to it count as applied without running."""
        if not 1 <= version <= self.latest_version:
            raise InvalidInput(f"--version must be between 1 and {self.latest_version}", version=version)
        async with self._history.migration_lock(timeout_s=lock_timeout_s):
            st = await self.status()
            if st.applied:
                raise Conflict(f"the schema history already has version {st.current_version} applied; "
                               "baseline only adopts a database with no history", current=st.current_version)
            return await self._history.record(version=version, description=f"baseline at {self.name_of(version)}",
                                              kind="baseline", checksum="", applied_by=applied_by or default_applied_by())

    def _target(self, to: int | None) -> int:
        if to is None:
            return self.latest_version
        if not 0 <= to <= self.latest_version:
            raise InvalidInput(f"--to must be between 0 and {self.latest_version}", to=to)
        return to
