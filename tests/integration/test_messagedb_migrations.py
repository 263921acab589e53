"""The MessageDB's versioned migrations and schema history, on SQLite and a real PostgreSQL.

Each test gets a fresh, empty database: migrations are about what an empty (or old)
schema becomes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

import pytest

from services.backends.messagedb.history import ChecksumDrift, MigrationFailed, MigrationLocked, NoDownScript
from services.backends.messagedb.migrations import Migration, checksum, load_migrations
from services.backends.messagedb.migrator import Migrator
from services.common.errors import BackendError, Conflict
from services.common.model import ConversationEvent, SyncType


@dataclass
class Fresh:
    db: Any
    dialect: str
    tables: Any  # () -> set of table names, read by an independent client

    def table_exists(self, name: str) -> bool:
        return name in self.tables()

    def raw(self, sql: str) -> None:
        self._raw(sql)


async def _sqlite(tmp_path, unique):
    from services.backends.messagedb.sqlite import SQLiteMessageDB

    path = tmp_path / f"m-{unique}.db"
    db = SQLiteMessageDB.from_url(f"sqlite:///{path}")

    def tables():
        with sqlite3.connect(path) as conn:
            return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def raw(sql):
        conn = sqlite3.connect(path, isolation_level=None)
        conn.executescript(sql)
        conn.close()

    fresh = Fresh(db, "sqlite", tables)
    fresh._raw = raw
    return fresh


async def _postgres(request, unique):
    from services.backends.messagedb.postgres import PostgresMessageDB

    server = request.getfixturevalue("postgres_server")
    name = f"mig_{unique}"
    db = PostgresMessageDB.from_url(server.create_database(name))

    def tables():
        out = server.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", database=name)
        return set(out.split())

    fresh = Fresh(db, "postgres", tables)
    fresh._raw = lambda sql: server.psql(sql, database=name)
    return fresh


@pytest.fixture
def unique() -> str:
    import uuid

    return uuid.uuid4().hex[:10]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def fresh(request, tmp_path, unique):
    made = await (_sqlite(tmp_path, unique) if request.param == "sqlite" else _postgres(request, unique))
    await made.db.start()
    yield made
    await made.db.close()


def _event(conv: str) -> ConversationEvent:
    return ConversationEvent(conversation_id=conv, sync_type=SyncType.RECALL, msg_id=1, seq=1,  # type: ignore[arg-type]
                             actor_id="alice", timestamp=1, payload={})  # type: ignore[arg-type]


async def test_fresh_database_runs_every_file_and_records_it(fresh):
    files = load_migrations(fresh.dialect)
    migrator = Migrator(fresh.db)
    before = await migrator.status()
    assert (before.current_version, [m.name for m in before.pending]) == (0, [m.name for m in files])
    rows = await migrator.up(applied_by="ci@test")
    assert [(r.version, r.kind, r.success, r.applied_by) for r in rows] == [
        (m.version, "migrate", True, "ci@test") for m in files]
    # The recorded checksum is the sha256 of the file's bytes as shipped.
    assert [r.checksum for r in rows] == [checksum(m.sql) for m in files]
    after = await migrator.status()
    assert after.up_to_date and after.current_version == files[-1].version and not after.drift
    assert await fresh.db.applied_migrations() == [m.name for m in files]
    assert {"messages", "events", "cursors", "members", "flare_schema_history"} <= fresh.tables()
    assert await migrator.up() == []  # nothing to do is success


async def test_up_to_a_version_then_the_rest(fresh):
    migrator = Migrator(fresh.db)
    later = [m.version for m in load_migrations(fresh.dialect)][1:]
    assert [r.version for r in await migrator.up(to=1)] == [1]
    assert [m.version for m in (await migrator.status()).pending] == later
    assert not fresh.table_exists("events")
    assert [m.version for m in await migrator.plan()] == later
    assert [m.version for m in await migrator.plan(to=2)] == [2]
    assert [r.version for r in await migrator.up()] == later
    assert fresh.table_exists("events")


async def test_down_runs_undo_files_and_refuses_where_none_exists(fresh):
    files = load_migrations(fresh.dialect)
    n = files[-1].version
    reactions = Migration(version=n + 1, description="reactions", sql="CREATE TABLE reactions (msg_id bigint);\n",
                          down_sql="DROP TABLE reactions;\n")
    migrator = Migrator(fresh.db, [*files, reactions])
    await migrator.up()
    rows = await migrator.down(to=n)
    assert [(r.version, r.kind, r.success) for r in rows] == [(n + 1, "undo", True)]
    assert not fresh.table_exists("reactions") and fresh.table_exists("messages")
    with pytest.raises(NoDownScript, match=f"{files[-1].name} has no undo file"):
        await migrator.down(to=n - 1)
    assert fresh.table_exists("archive_chunks")  # the refusal ran nothing
    assert [r.version for r in await migrator.up()] == [n + 1]


async def test_the_shipped_undo_of_v002(fresh):
    migrator = Migrator(fresh.db)
    await migrator.up(to=2)
    await fresh.db.append_event(_event("group:a"))
    rows = await migrator.down(to=1)
    assert [(r.version, r.kind, r.success) for r in rows] == [(2, "undo", True)]
    assert not fresh.table_exists("events") and fresh.table_exists("messages")
    with pytest.raises(BackendError):
        await fresh.db.append_event(_event("group:a"))
    with pytest.raises(NoDownScript, match="V001__messages has no undo file"):
        await migrator.down(to=0)
    assert fresh.table_exists("messages")
    assert [r.version for r in await migrator.up(to=2)] == [2]
    assert (await fresh.db.append_event(_event("group:a"))).event_id == 1


async def test_an_edited_applied_file_is_drift_and_blocks_up(fresh):
    files = load_migrations(fresh.dialect)
    await Migrator(fresh.db).up()
    edited = [files[0], replace(files[1], sql=files[1].sql + "\n-- tweaked\n"), *files[2:]]
    migrator = Migrator(fresh.db, edited)
    drift = await migrator.validate()
    assert [(d.version, d.filename) for d in drift] == [(2, "V002__events_cursors_members.sql")]
    assert drift[0].applied_checksum == files[1].checksum != drift[0].file_checksum
    with pytest.raises(ChecksumDrift, match="V002__events_cursors_members.sql"):
        await migrator.up()
    assert await Migrator(fresh.db).validate() == []


async def test_a_failing_migration_leaves_the_schema_unchanged(fresh):
    files = load_migrations(fresh.dialect)
    n = files[-1].version
    broken = Migration(version=n + 1, description="broken",
                       sql="CREATE TABLE half_done (x integer);\nINSERT INTO no_such_table VALUES (1);\n")
    migrator = Migrator(fresh.db, [*files, broken])
    with pytest.raises(MigrationFailed, match=f"V{n + 1:03d}__broken"):
        await migrator.up()
    assert not fresh.table_exists("half_done")
    st = await migrator.status()
    assert st.current_version == n and [m.version for m in st.pending] == [n + 1]
    assert [(r.version, r.success) for r in st.failed] == [(n + 1, False)]
    assert "no_such_table" in st.failed[0].error
    # The failure is recorded, and fixing the file lets the next run apply it.
    fixed = replace(broken, sql="CREATE TABLE half_done (x integer);\n")
    assert [(r.version, r.success) for r in await Migrator(fresh.db, [*files, fixed]).up()] == [(n + 1, True)]
    assert fresh.table_exists("half_done")


async def test_baseline_adopts_an_existing_schema(fresh):
    files = load_migrations(fresh.dialect)
    for m in files:  # a schema someone made by hand, no history
        fresh.raw(m.sql)
    migrator = Migrator(fresh.db)
    with pytest.raises(MigrationFailed):
        await migrator.up()  # V001 would create tables that exist
    n = files[-1].version
    row = await migrator.baseline(version=n, applied_by="ops")
    assert (row.kind, row.version) == ("baseline", n)
    st = await migrator.status()
    assert st.up_to_date and st.current_version == n
    assert await fresh.db.migrate() == []
    with pytest.raises(Conflict):
        await migrator.baseline(version=1)


async def test_the_name_only_history_of_earlier_releases_is_adopted(fresh):
    files = load_migrations(fresh.dialect)
    for m in files[:2]:  # what the releases before versioned files made
        fresh.raw(m.sql)
    stamp = "1700000000000" if fresh.dialect == "sqlite" else "now()"
    kind = "INTEGER" if fresh.dialect == "sqlite" else "timestamptz"
    fresh.raw(f"CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at {kind} NOT NULL);"
              f"INSERT INTO schema_migrations VALUES ('0001_messages', {stamp}), "
              f"('0002_events_cursors_members', {stamp});")
    assert await fresh.db.applied_migrations() == [m.name for m in files[:2]]
    assert await fresh.db.migrate() == [m.name for m in files[2:]]  # adopted, then brought up to date
    assert (await Migrator(fresh.db).status()).up_to_date
    assert await fresh.db.applied_migrations() == [m.name for m in files]


async def test_a_held_lock_makes_up_give_up_with_a_named_error(fresh):
    migrator = Migrator(fresh.db)
    async with fresh.db.migration_lock(timeout_s=1):
        with pytest.raises(MigrationLocked):
            await migrator.up(lock_timeout_s=0.3)
    assert (await migrator.status()).current_version == 0
    waiter = asyncio.create_task(migrator.up(lock_timeout_s=5))
    async with fresh.db.migration_lock(timeout_s=1):
        await asyncio.sleep(0.2)
        assert not waiter.done()  # waits (with backoff) while the lock is held
    assert len(await waiter) == len(load_migrations(fresh.dialect))


@pytest.mark.servers
async def test_a_no_transaction_file_runs_statement_by_statement(request, tmp_path, unique):
    """CREATE INDEX CONCURRENTLY refuses a transaction (and a multi-statement query, which is one)."""
    made = await _postgres(request, unique)
    await made.db.start()
    try:
        files = load_migrations("postgres")
        n = files[-1].version
        concurrent = Migration(version=n + 1, description="keys_by_sender", sql=(
            "-- flare:no-transaction\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_keys_sender ON message_keys (sender_id);\n"
            "DO $$ BEGIN PERFORM 1; END $$; -- a dollar-quoted body with a ; inside stays whole\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_keys_created ON message_keys (created_at);\n"))
        assert not concurrent.transactional
        rows = await Migrator(made.db, [*files, concurrent]).up()
        assert [(r.version, r.success) for r in rows][-1] == (n + 1, True)
        server = request.getfixturevalue("postgres_server")
        names = server.psql("SELECT indexname FROM pg_indexes WHERE tablename = 'message_keys'",
                            database=f"mig_{unique}").split()
        assert {"message_keys_sender", "message_keys_created"} <= set(names)
    finally:
        await made.db.close()


def test_split_statements_keeps_quoted_and_dollar_quoted_text_whole():
    from services.backends.messagedb.postgres._statements import split_statements

    sql = ("-- a comment; with a semicolon\nCREATE TABLE a (x text DEFAULT 'a;b');\n"
           "DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$;\n/* block; comment */ SELECT \"odd;name\" FROM a;\n"
           "-- only a comment at the end;\n")
    assert split_statements(sql) == [
        "-- a comment; with a semicolon\nCREATE TABLE a (x text DEFAULT 'a;b')",
        "DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$",
        '/* block; comment */ SELECT "odd;name" FROM a',
    ]
