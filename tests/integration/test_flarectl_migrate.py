"""`flarectl migrate` against SQLite and a real PostgreSQL: the CI jobs as a pipeline runs them.

Two real processes race for the migration lock; a changed file fails validate by name; a
failing migration leaves the schema as it was; destructive files are refused.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from importlib import resources
from pathlib import Path

import pytest

from services.backends.messagedb.migrations import load_migrations

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {d: load_migrations(d) for d in ("sqlite", "postgres")}
N = SHIPPED["sqlite"][-1].version
assert N == SHIPPED["postgres"][-1].version, "both dialects ship the same versions"
NAMES = [m.name for m in SHIPPED["sqlite"]]


@pytest.fixture
def cli(cli):
    """The shared runner (tests/cli_runner.py), taking paths and numbers as arguments too."""
    return lambda *args: cli(*(str(a) for a in args))


class Target:
    """One fresh database and an independent way to look at its tables."""

    def __init__(self, dialect: str, url: str, tables, sql) -> None:
        self.dialect, self.url, self.tables, self.sql = dialect, url, tables, sql


def _sqlite_target(tmp_path: Path) -> Target:
    path = tmp_path / "messages.db"

    def tables() -> set[str]:
        if not path.exists():
            return set()
        with sqlite3.connect(path) as conn:
            return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def sql(query: str) -> str:
        with sqlite3.connect(path) as conn:
            return "\n".join("|".join(str(v) for v in row) for row in conn.execute(query))

    return Target("sqlite", f"sqlite:///{path}", tables, sql)


def _postgres_target(server) -> Target:
    name = f"cli_{uuid.uuid4().hex[:10]}"
    url = server.create_database(name)

    def tables() -> set[str]:
        return set(server.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", database=name).split())

    return Target("postgres", url, tables, lambda q: server.psql(q, database=name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
def target(request, tmp_path) -> Target:
    if request.param == "sqlite":
        return _sqlite_target(tmp_path)
    return _postgres_target(request.getfixturevalue("postgres_server"))


def _migrations_with(tmp_path: Path, dialect: str, extra: dict[str, str]) -> Path:
    """A copy of the shipped files of the dialect plus `extra` (file name -> SQL)."""
    folder = tmp_path / "migrations" / dialect
    folder.mkdir(parents=True)
    shipped = resources.files("services.backends.messagedb.migrations").joinpath(dialect)
    for entry in shipped.iterdir():
        if entry.name.endswith(".sql"):
            (folder / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    for name, sql in extra.items():
        (folder / name).write_text(sql, encoding="utf-8")
    return folder.parent


def _json(result) -> dict:
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_status_up_status_and_up_again_is_exit_0(cli, target):
    before = _json(cli("migrate", "status", "--url", target.url, "-o", "json"))
    assert (before["current_version"], before["pending"]) == (0, NAMES)
    assert [m["state"] for m in before["migrations"]] == ["pending"] * N

    up = _json(cli("migrate", "up", "--url", target.url, "-o", "json", "--applied-by", "ci-job-7"))
    assert [(r["version"], r["success"], r["applied_by"]) for r in up["applied"]] == [
        (v, True, "ci-job-7") for v in range(1, N + 1)]
    assert up["up_to_date"] and {"messages", "events", "cursors", "members"} <= target.tables()

    after = _json(cli("migrate", "status", "--url", target.url, "-o", "json"))
    assert [(m["state"], m["applied_by"]) for m in after["migrations"]] == [("applied", "ci-job-7")] * N
    assert all(len(m["sha256"]) == 64 and m["execution_ms"] >= 0 for m in after["migrations"])

    again = cli("migrate", "up", "--url", target.url)
    assert again.exit_code == 0 and again.stdout.strip() == f"already up to date at version {N}"
    history = target.sql("SELECT count(*) FROM flare_schema_history WHERE success")
    assert history.strip() == str(N)  # nothing ran twice


def test_plan_shows_the_sql_in_order_and_dry_run_changes_nothing(cli, target):
    plan = _json(cli("migrate", "plan", "--url", target.url, "--to", "1", "-o", "json"))
    assert [s["name"] for s in plan["steps"]] == ["V001__messages"]
    assert "CREATE TABLE messages" in plan["steps"][0]["sql"] and plan["destructive"] == []
    dry = _json(cli("migrate", "up", "--url", target.url, "--dry-run", "-o", "json"))
    assert [s["name"] for s in dry["would_apply"]] == NAMES
    assert dry["applied"] == [] and "messages" not in target.tables()
    human = cli("migrate", "plan", "--url", target.url)
    assert human.exit_code == 0
    assert human.stdout.index("V001__messages.sql") < human.stdout.index("V002__events_cursors_members.sql")


def test_validate_names_the_file_whose_content_changed(cli, target, tmp_path):
    assert cli("migrate", "up", "--url", target.url).exit_code == 0
    ok = cli("migrate", "validate", "--url", target.url)
    assert ok.exit_code == 0 and ok.stdout.strip() == f"ok: {N} applied migration(s) match their files"
    folder = _migrations_with(tmp_path, target.dialect, {})
    edited = folder / target.dialect / "V002__events_cursors_members.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    bad = cli("migrate", "validate", "--url", target.url, "--migrations", folder)
    assert bad.exit_code == 1
    assert bad.stdout.startswith("DRIFT V002__events_cursors_members.sql: content changed since it was applied")
    data = json.loads(cli("migrate", "validate", "--url", target.url, "--migrations", folder, "-o", "json").stdout)
    assert [d["file"] for d in data["drift"]] == ["V002__events_cursors_members.sql"] and not data["valid"]
    refused = cli("migrate", "up", "--url", target.url, "--migrations", folder)
    assert refused.exit_code == 1 and "V002__events_cursors_members.sql" in refused.stderr


def test_a_failing_migration_leaves_the_schema_unchanged_and_a_failed_row(cli, target, tmp_path):
    new = f"V{N + 1:03d}__add_reactions"
    folder = _migrations_with(tmp_path, target.dialect, {
        f"{new}.sql": "CREATE TABLE reactions (msg_id bigint NOT NULL);\n"
                      "INSERT INTO no_such_table VALUES (1);\n"})
    failed = cli("migrate", "up", "--url", target.url, "--migrations", folder)
    assert failed.exit_code == 1 and new in failed.stderr
    assert "reactions" not in target.tables() and "messages" in target.tables()
    st = _json(cli("migrate", "status", "--url", target.url, "--migrations", folder, "-o", "json"))
    assert st["current_version"] == N and st["failed"] == [new]
    assert st["migrations"][N]["state"] == "failed" and "no_such_table" in st["migrations"][N]["error"]
    assert target.sql(f"SELECT version, success FROM flare_schema_history WHERE version = {N + 1}").strip() in (
        f"{N + 1}|0", f"{N + 1}|f")


def test_destructive_changes_are_flagged_by_plan_and_refused_by_up(cli, target, tmp_path):
    assert cli("migrate", "up", "--url", target.url).exit_code == 0
    drop, role = f"V{N + 1:03d}__drop_cursors", f"V{N + 2:03d}__members_role"
    folder = _migrations_with(tmp_path, target.dialect, {
        f"{drop}.sql": "DROP TABLE cursors;\n",
        f"{role}.sql": "ALTER TABLE members ADD COLUMN role text NOT NULL;\n"})
    plan = _json(cli("migrate", "plan", "--url", target.url, "--migrations", folder, "-o", "json"))
    rules = {s["name"]: {w["rule"] for w in s["warnings"] if w["blocking"]} for s in plan["steps"]}
    assert "ban-drop-table" in rules[drop]
    assert "adding-required-field" in rules[role]
    refused = cli("migrate", "up", "--url", target.url, "--migrations", folder)
    assert refused.exit_code == 11 and f"{drop}.sql:1 ban-drop-table" in refused.stderr
    assert "cursors" in target.tables()  # nothing ran
    allowed = cli("migrate", "up", "--url", target.url, "--migrations", folder, "--to", N + 1, "--allow-destructive")
    assert allowed.exit_code == 0 and "cursors" not in target.tables()


def test_down_undoes_where_an_undo_file_exists_and_refuses_otherwise(cli, target):
    assert cli("migrate", "up", "--url", target.url, "--to", "2").exit_code == 0
    no_yes = cli("migrate", "down", "--url", target.url, "--to", "1")
    assert no_yes.exit_code == 9 and "events" in target.tables()  # no terminal, no --yes
    done = _json(cli("migrate", "down", "--url", target.url, "--to", "1", "--yes", "-o", "json"))
    assert [(r["version"], r["kind"]) for r in done["undone"]] == [(2, "undo")] and done["current_version"] == 1
    assert "events" not in target.tables()
    refused = cli("migrate", "down", "--url", target.url, "--to", "0", "--yes")
    assert refused.exit_code == 11 and "V001__messages has no undo file" in refused.stderr
    assert "messages" in target.tables()
    assert cli("migrate", "up", "--url", target.url).exit_code == 0
    latest = SHIPPED[target.dialect][-1]
    assert latest.down_sql is None  # the archive catalog is not undone: L2 would become unreachable
    refused = cli("migrate", "down", "--url", target.url, "--to", N - 1, "--yes")
    assert refused.exit_code == 11 and f"{latest.name} has no undo file" in refused.stderr


def test_baseline_adopts_a_schema_made_elsewhere(cli, target, tmp_path):
    folder = _migrations_with(tmp_path, target.dialect, {})
    for path in sorted((folder / target.dialect).glob("V*.sql")):
        if target.dialect == "sqlite":
            with sqlite3.connect(target.url.removeprefix("sqlite:///")) as conn:
                conn.executescript(path.read_text())
        else:
            target.sql(path.read_text())
    assert cli("migrate", "up", "--url", target.url).exit_code == 1  # V001's tables exist already
    done = _json(cli("migrate", "baseline", "--url", target.url, "--version", N, "--yes", "-o", "json"))
    assert (done["baseline"]["kind"], done["baseline"]["version"]) == ("baseline", N)
    assert cli("migrate", "up", "--url", target.url).stdout.strip() == f"already up to date at version {N}"
    again = cli("migrate", "baseline", "--url", target.url, "--version", "1", "--yes")
    assert again.exit_code == 6


# -- PostgreSQL only ---------------------------------------------------------------------------

def _flarectl(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flarectl.main", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin",
                                                                    "HOME": str(Path.home())})


@pytest.mark.servers
def test_two_processes_migrating_at_once_apply_each_migration_once(postgres_server, tmp_path):
    target = _postgres_target(postgres_server)
    folder = _migrations_with(tmp_path, "postgres", {
        f"V{N + 1:03d}__slow.sql": "SELECT pg_sleep(5);\nCREATE TABLE slow_marker (x bigint);\n"})
    args = ("migrate", "up", "--url", target.url, "--migrations", str(folder), "-o", "json")
    first, second = _flarectl(*args, "--lock-timeout", "30"), _flarectl(*args, "--lock-timeout", "30")
    try:
        deadline = time.monotonic() + 20
        # Wait until one of them runs the slow migration (so it holds the lock for ~5 s more).
        while target.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%'").strip() != "1":
            assert time.monotonic() < deadline, "no migrator reached the slow migration"
            time.sleep(0.05)
        impatient = _flarectl(*args, "--lock-timeout", "0.3")
        out, errors = impatient.communicate(timeout=30)
        assert impatient.returncode == 10, errors
        assert "another migration holds the PostgreSQL advisory lock" in errors
        results = [p.communicate(timeout=60) for p in (first, second)]
    finally:
        for p in (first, second):
            p.kill()
    assert [p.returncode for p in (first, second)] == [0, 0], results
    applied = [[r["version"] for r in json.loads(out)["applied"]] for out, _ in results]
    assert sorted(applied) == [[], list(range(1, N + 2))]  # one did everything, the other found nothing to do
    counts = target.sql("SELECT version, count(*) FROM flare_schema_history WHERE success GROUP BY version "
                        "ORDER BY version")
    assert counts.split() == [f"{v}|1" for v in range(1, N + 2)]
    assert "slow_marker" in target.tables()


@pytest.mark.servers
def test_a_missing_database_is_named_and_create_database_makes_it(cli, postgres_server):
    url = postgres_server.url_for(f"absent_{uuid.uuid4().hex[:8]}")
    missing = cli("migrate", "up", "--url", url)
    assert missing.exit_code == 7 and "does not exist" in missing.stderr and "--create-database" in missing.stderr
    made = cli("migrate", "up", "--url", url, "--create-database", "-o", "json")
    assert [r["version"] for r in _json(made)["applied"]] == list(range(1, N + 1))
    again = cli("migrate", "up", "--url", url, "--create-database")
    assert again.exit_code == 0 and again.stdout.strip() == f"already up to date at version {N}"
    postgres_server.psql(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.mark.servers
def test_a_split_service_refuses_a_schema_behind_naming_the_command(cli, postgres_server, tmp_path):
    target = _postgres_target(postgres_server)
    config = tmp_path / "flare.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[backends]\nmessagedb = "{target.url}"\n')
    proc = subprocess.run([sys.executable, "-m", "services.sync", "--config", str(config), "--instance-id", "sync-1",
                           "--port", "0", "--admin-port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4
    assert "sync sync-1: the message database schema is at version 0" in proc.stderr
    assert "run `flarectl migrate up` first" in proc.stderr
    assert "messages" not in target.tables()  # it did not migrate behind the operator's back


def test_an_index_build_blocks_only_on_a_populated_table(cli, target, tmp_path):
    assert cli("migrate", "up", "--url", target.url).exit_code == 0
    name = f"V{N + 1:03d}__members_by_user"
    folder = _migrations_with(tmp_path, target.dialect, {
        f"{name}.sql": "CREATE INDEX members_by_user_only ON members (user_id);\n"})
    empty = _json(cli("migrate", "plan", "--url", target.url, "--migrations", folder, "-o", "json"))
    (warning,) = [w for w in empty["steps"][0]["warnings"] if w["rule"] == "require-concurrent-index-creation"]
    assert not warning["blocking"] and "members is empty" in warning["message"] and empty["destructive"] == []
    target.sql("INSERT INTO members (conversation_id, user_id) VALUES ('group:x', 'u1')")
    full = _json(cli("migrate", "plan", "--url", target.url, "--migrations", folder, "-o", "json"))
    assert full["destructive"] == ["require-concurrent-index-creation"]
    refused = cli("migrate", "up", "--url", target.url, "--migrations", folder)
    assert refused.exit_code == 11 and f"{name}.sql:1 require-concurrent-index-creation" in refused.stderr
