"""The one JSON codec for frames, log records and documents (orjson: fast, bytes in/out)."""

from __future__ import annotations

import orjson

__all__ = ["dumps", "loads", "dumps_str", "JSONDecodeError"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: object) -> bytes:
    # orjson hands back its growth buffer as the bytes object (measured: a 60-byte result holds
    # ~4 KiB, a 2 KiB message 32 KiB). Values kept in memory (sessions, the log tail, L0, dedup
    # entries, queued frames) then cost several times their size: issue 10's "25-31 KB of RSS
    # per message", 40 MiB of session records at 10,000 connections. A right-sized copy: ~0.2 µs.
    return bytes(memoryview(orjson.dumps(value)))


def dumps_str(value: object) -> str:
    return orjson.dumps(value).decode()


def loads(data: bytes | bytearray | memoryview | str) -> object:
    return orjson.loads(data)
