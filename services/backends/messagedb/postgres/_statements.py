"""Split a SQL script into statements (for migrations that must run outside a transaction).

Knows just enough PostgreSQL lexing to be safe on what migrations contain: quoted
strings and identifiers, dollar-quoted bodies (DO blocks, functions) and comments.
"""

from __future__ import annotations

import re

__all__ = ["split_statements"]

_DOLLAR = re.compile(r"\$[A-Za-z_0-9]*\$")


def split_statements(sql: str) -> list[str]:
    statements, start, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            i = sql.find("\n", i)
            i = n if i < 0 else i + 1
        elif c == "/" and sql.startswith("/*", i):
            i = sql.find("*/", i + 2)
            i = n if i < 0 else i + 2
        elif c in "'\"":
            i = sql.find(c, i + 1)
            i = n if i < 0 else i + 1
        elif c == "$" and (m := _DOLLAR.match(sql, i)):
            end = sql.find(m.group(), m.end())
            i = n if end < 0 else end + len(m.group())
        elif c == ";":
            statements.append(sql[start:i])
            start = i = i + 1
        else:
            i += 1
    statements.append(sql[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    without_comments = re.sub(r"--[^\n]*", "", statement)
    return bool(without_comments.strip())
