"""Lint of migration files: destructive or locking changes, flagged in `plan`, refused by `up`
unless `--allow-destructive`.

PostgreSQL files go through squawk (the `squawk-cli` package ships its binary, so it runs
offline; it is the linter Postgres shops use for exactly this). squawk parses only
PostgreSQL, so SQLite files — and PostgreSQL ones on a machine without squawk — get a
small built-in rule set covering the same destructive kinds: drops, renames, type changes,
NOT NULL without a default, row deletion, and index builds on tables that already exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import orjson

from services.backends.messagedb.migrations import Migration

__all__ = ["Finding", "lint", "linter_name", "BLOCKING_RULES", "INDEX_RULE", "index_table"]

# squawk rules that mean "destructive or locking": refused by `up` without --allow-destructive.
# Every other squawk rule (timeouts, bigint, robust statements …) is shown as advice only.
BLOCKING_RULES = frozenset({
    "ban-drop-table", "ban-drop-column", "ban-drop-database", "ban-truncate-cascade", "changing-column-type",
    "adding-required-field", "adding-not-nullable-field", "require-concurrent-index-creation",
    "require-concurrent-index-deletion", "renaming-column", "renaming-table", "adding-field-with-default",
    "disallowed-unique-constraint", "adding-foreign-key-constraint", "constraint-missing-not-valid",
    "adding-serial-primary-key-field", "ban-alter-domain-with-add-constraint", "delete-rows", "truncate",
})
# Irrelevant here: every transactional file is rolled back whole on failure, so it can be rerun.
_SQUAWK_EXCLUDED = ("prefer-robust-stmts",)
# Blocking only on a populated table: the caller downgrades it when the table is empty or new.
INDEX_RULE = "require-concurrent-index-creation"
_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class Finding:
    file: str
    line: int  # 1-based
    rule: str
    message: str
    blocking: bool

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "rule": self.rule, "message": self.message,
                "blocking": self.blocking}


def _squawk() -> str | None:
    beside_python = Path(sysconfig.get_path("scripts")) / "squawk"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")


def linter_name(dialect: str) -> str:
    return "squawk" if dialect == "postgres" and _squawk() else "builtin"


def lint(migration: Migration, dialect: str, *, sql: str | None = None, filename: str | None = None) -> list[Finding]:
    """Findings for one file (the migration's up file unless sql/filename say otherwise)."""
    sql = migration.sql if sql is None else sql
    filename = filename or migration.filename
    binary = _squawk() if dialect == "postgres" else None
    if binary is not None:
        return _with_squawk(binary, sql, filename, transactional=migration.transactional)
    return _builtin(sql, filename, dialect)


def _with_squawk(binary: str, sql: str, filename: str, *, transactional: bool) -> list[Finding]:
    argv = [binary, "--reporter", "json", "--stdin-filepath", filename, "--exclude", ",".join(_SQUAWK_EXCLUDED)]
    if transactional:
        argv.append("--assume-in-transaction")  # lets squawk see tables created earlier in the same file
    proc = subprocess.run(argv, input=sql.encode(), capture_output=True, timeout=_TIMEOUT_S, check=False)
    try:
        reports = orjson.loads(proc.stdout or b"[]")
    except orjson.JSONDecodeError:
        return [Finding(filename, 0, "linter-failed", f"squawk gave no report: {proc.stderr.decode()[:300]}", True)]
    return [
        Finding(filename, int(r.get("line", 0)) + 1, r.get("rule_name", "?"), r.get("message", ""),
                r.get("rule_name") in BLOCKING_RULES or r.get("level") == "Error")
        for r in reports
    ]


_COMMENT = re.compile(r"--[^\n]*")
_CREATED = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)", re.I)
_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("ban-drop-table", re.compile(r"\bDROP\s+TABLE\b", re.I), "drops a table and its rows"),
    ("ban-drop-column", re.compile(r"\bDROP\s+COLUMN\b", re.I), "drops a column and its values"),
    ("renaming-table", re.compile(r"\bALTER\s+TABLE\s+\S+\s+RENAME\s+TO\b", re.I), "renames a table under its readers"),
    ("renaming-column", re.compile(r"\bRENAME\s+(?:COLUMN\s+)?\w+\s+TO\b", re.I), "renames a column under its readers"),
    ("changing-column-type", re.compile(r"\bALTER\s+COLUMN\s+\w+\s+(?:SET\s+DATA\s+)?TYPE\b", re.I),
     "changes a column type (may narrow it, rewrites the table)"),
    ("delete-rows", re.compile(r"\bDELETE\s+FROM\b", re.I), "deletes rows"),
    ("truncate", re.compile(r"\bTRUNCATE\b", re.I), "deletes every row"),
]
_ADD_NOT_NULL = re.compile(r"\bADD\s+(?:COLUMN\s+)?\w+\s+[^,;]*?\bNOT\s+NULL\b[^,;]*", re.I)
_INDEX = re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?\w*\s*ON\s+\"?(\w+)", re.I)
_DROP_INDEX = re.compile(r"\bDROP\s+INDEX\s+(CONCURRENTLY\s+)?", re.I)


def index_table(sql: str, line: int) -> str | None:
    """The table the CREATE INDEX at (1-based) line builds on, when it can be read off."""
    lines = sql.splitlines()
    text = " ".join(lines[line - 1 : line + 2]) if 0 < line <= len(lines) else ""
    match = _INDEX.search(_COMMENT.sub("", text))
    return match.group(2) if match else None


def _builtin(sql: str, filename: str, dialect: str) -> list[Finding]:
    findings: list[Finding] = []
    created = {name.lower() for name in _CREATED.findall(sql)}
    for number, raw in enumerate(sql.splitlines(), start=1):
        line = _COMMENT.sub("", raw)
        for rule, pattern, why in _RULES:
            if pattern.search(line):
                findings.append(Finding(filename, number, rule, why, True))
        for match in _ADD_NOT_NULL.finditer(line):
            if not re.search(r"\bDEFAULT\b", match.group(), re.I):
                findings.append(Finding(filename, number, "adding-required-field",
                                        "adds a NOT NULL column without a default: existing rows cannot satisfy it", True))
        for match in _INDEX.finditer(line):
            if match.group(2).lower() not in created and not match.group(1):
                lock = "blocks writes to the table while it builds" + (
                    "; use CREATE INDEX CONCURRENTLY in a -- flare:no-transaction file" if dialect == "postgres"
                    else " (SQLite: the whole database)")
                findings.append(Finding(filename, number, "require-concurrent-index-creation",
                                        f"index on existing table {match.group(2)} {lock}", True))
        if dialect == "postgres" and (m := _DROP_INDEX.search(line)) and not m.group(1):
            findings.append(Finding(filename, number, "require-concurrent-index-deletion",
                                    "DROP INDEX without CONCURRENTLY locks the table", True))
    return findings
