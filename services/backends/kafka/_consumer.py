"""A consumer-group member on aiokafka: manual commits, rebalance callbacks, seeks."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTP

from services.backends.log import LogRecord, RebalanceCallback, TopicPartition
from services.common.errors import BackendUnavailable

from ._errors import translated

__all__ = ["KafkaConsumer"]


def _ours(tps) -> set[TopicPartition]:
    return {TopicPartition(tp.topic, tp.partition) for tp in tps}


class _Listener(ConsumerRebalanceListener):
    """aiokafka awaits these during the rebalance, before any record of the new assignment
    is fetched, so `on_revoke` can flush and commit while the partitions are still ours."""

    def __init__(self, on_assign: RebalanceCallback | None, on_revoke: RebalanceCallback | None) -> None:
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    async def on_partitions_revoked(self, revoked) -> None:
        if self._on_revoke is not None and revoked:
            await self._on_revoke(_ours(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        if self._on_assign is not None and assigned:
            await self._on_assign(_ours(assigned))


class KafkaConsumer:
    def __init__(self, client_options: dict, group: str, topics: list[str], *,
                 on_assign: RebalanceCallback | None = None, on_revoke: RebalanceCallback | None = None) -> None:
        self._options = client_options
        self.group = group
        self.topics = topics
        self._listener = _Listener(on_assign, on_revoke)
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            **self._options,
            group_id=self.group,
            enable_auto_commit=False,  # offsets move only when the owner commits
            auto_offset_reset="earliest",
            heartbeat_interval_ms=500,  # notice a rebalance quickly
            session_timeout_ms=10_000,
            fetch_max_wait_ms=100,
            metadata_max_age_ms=5_000,
        )
        with translated("start Kafka consumer", group=self.group):
            await consumer.start()
            consumer.subscribe(self.topics, listener=self._listener)
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with translated("stop Kafka consumer", group=self.group):
                await consumer.stop()

    def _live(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise BackendUnavailable("the consumer is not started or already stopped", group=self.group)
        return self._consumer

    async def getmany(self, *, timeout_ms: int = 1000, max_records: int = 1000) -> dict[TopicPartition, list[LogRecord]]:
        consumer = self._live()
        with translated("consume from Kafka", group=self.group):
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: dict[TopicPartition, list[LogRecord]] = {}
        for tp, records in batches.items():
            if records:
                out[TopicPartition(tp.topic, tp.partition)] = [
                    LogRecord(topic=r.topic, partition=r.partition, offset=r.offset, timestamp_ms=r.timestamp,
                              key=r.key, value=r.value if r.value is not None else b"")
                    for r in records
                ]
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        with translated("commit Kafka offsets", group=self.group):
            await self._live().commit({KafkaTP(tp.topic, tp.partition): offset for tp, offset in offsets.items()})

    async def committed(self, tp: TopicPartition) -> int | None:
        with translated("read committed offset", group=self.group):
            offset = await self._live().committed(KafkaTP(tp.topic, tp.partition))
        return offset if offset is not None and offset >= 0 else None

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        with translated("seek", group=self.group, topic=tp.topic, partition=tp.partition):
            self._live().seek(KafkaTP(tp.topic, tp.partition), offset)

    async def seek_to_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int:
        consumer = self._live()
        kafka_tp = KafkaTP(tp.topic, tp.partition)
        with translated("seek to timestamp", group=self.group, topic=tp.topic, partition=tp.partition):
            found = (await consumer.offsets_for_times({kafka_tp: max(0, timestamp_ms)})).get(kafka_tp)
            offset = found.offset if found is not None else (await consumer.end_offsets([kafka_tp]))[kafka_tp]
            consumer.seek(kafka_tp, offset)
        return offset

    def assignment(self) -> set[TopicPartition]:
        if self._consumer is None:
            return set()
        return _ours(self._consumer.assignment())
