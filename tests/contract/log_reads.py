"""Reading helpers the Log port's tests share (tests/contract/test_log*.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.backends.log import LogConsumer, LogRecord, TopicPartition

__all__ = ["drain", "settle", "file_log"]


async def drain(consumer: LogConsumer, want: int, *, timeout: float = 15.0) -> list[LogRecord]:
    """Read until `want` records arrived (fails after timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out: list[LogRecord] = []
    while len(out) < want:
        assert loop.time() < deadline, f"only {len(out)} of {want} records arrived"
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            out.extend(records)
    return out


async def settle(consumers: list[LogConsumer], done: Callable[[], bool], *, timeout: float = 30.0) -> dict:
    """Poll every member until `done()`; return what they read meanwhile (rebalances need polls)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    read: dict[TopicPartition, list[LogRecord]] = {}
    while not done():
        assert loop.time() < deadline, "group never settled"
        batches = await asyncio.gather(*(c.getmany(timeout_ms=100) for c in consumers))
        for batch in batches:
            for tp, records in batch.items():
                read.setdefault(tp, []).extend(records)
    return read


def file_log(path):
    from services.backends.embedded.filelog import FileLog

    return FileLog.from_url(f"file://{path}")
