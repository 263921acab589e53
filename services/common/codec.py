"""The one JSON codec for frames, log records and documents (orjson: fast, bytes in/out)."""

from __future__ import annotations

import orjson

__all__ = ["dumps", "loads", "dumps_str", "JSONDecodeError"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: object) -> bytes:
    return orjson.dumps(value)


def dumps_str(value: object) -> str:
    return orjson.dumps(value).decode()


def loads(data: bytes | bytearray | memoryview | str) -> object:
    return orjson.loads(data)
