"""The Log port: a partitioned, durable, replayable record log (Kafka's model).

Adapters: `file://DIR` (embedded segment files, services.backends.embedded.filelog) and
`kafka://host:port[,host:port]` (aiokafka). One contract suite: tests/contract/test_log.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["TopicPartition", "LogRecord", "RecordMetadata", "Log", "LogConsumer", "RebalanceCallback"]


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int


RebalanceCallback = Callable[[set[TopicPartition]], Awaitable[None]]


@runtime_checkable
class LogConsumer(Protocol):
    """A member of a consumer group.

    Partitions of the subscribed topics are divided among the group's live members;
    each partition has exactly one owner at a time. `on_assign` runs before the first
    record of a newly owned partition is returned, `on_revoke` before a partition is
    taken away (so the owner can flush and commit). Positions start at the group's
    committed offset, or at the beginning of the partition if none was committed.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Leave the group. Does not commit."""

    async def getmany(self, *, timeout_ms: int = 1000, max_records: int = 1000) -> dict[TopicPartition, list[LogRecord]]:
        """Records in offset order per partition; {} if none arrived within timeout_ms."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the NEXT record to read."""

    async def committed(self, tp: TopicPartition) -> int | None: ...

    async def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def seek_to_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int:
        """Move to the first record with timestamp >= timestamp_ms; return that offset
        (the end offset if there is none)."""

    def assignment(self) -> set[TopicPartition]: ...


@runtime_checkable
class Log(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create_topic(self, topic: str, *, partitions: int, retention_ms: int | None = None,
                           retention_bytes: int | None = None) -> None:
        """Create the topic if it does not exist (idempotent; never shrinks).

        Retention (Kafka's retention.ms / retention.bytes, bytes per partition): records
        older, or beyond the size, are deleted whole segments at a time, whether or not
        a consumer read them (it then resumes at the new start). Given for an existing
        topic, it replaces the topic's retention; None keeps what the topic has.
        """

    async def partitions_for(self, topic: str) -> int: ...

    async def produce(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        """Append one record and return once it is durable (acks=all).

        Records with the same key go to the same partition (a stable hash of the key),
        so per-key order is append order.
        """

    async def produce_batch(
        self, topic: str, records: Sequence[tuple[bytes | None, bytes]]
    ) -> list[RecordMetadata]:
        """Append (key, value) records; return their metadata in the same order."""

    def consumer(
        self, group: str, topics: Sequence[str], *,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> LogConsumer: ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""

    async def beginning_offsets(self, topic: str) -> dict[int, int]: ...

    async def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets (partitions with no commit are absent)."""
