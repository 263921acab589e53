"""KafkaLog: the Log port on Apache Kafka (aiokafka).

`kafka://host:port[,host:port][?client_id=…&linger_ms=…&replication_factor=…]`

The producer is idempotent with acks=all, so a retried send never duplicates or
reorders records of a partition; keys go through Kafka's default murmur2 partitioner
(the partition reported is the one the broker stored the record in).
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code

from services.backends.log import LogConsumer, RebalanceCallback, RecordMetadata
from services.common.errors import BackendUnavailable, InvalidInput, NotFound

from ._consumer import KafkaConsumer
from ._errors import translated

__all__ = ["KafkaLog"]

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_TOPIC_ALREADY_EXISTS = 36


class KafkaLog:
    def __init__(self, bootstrap_servers: str, *, client_id: str = "flare", linger_ms: int = 5,
                 replication_factor: int | None = None, request_timeout_ms: int = 30_000) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self._linger_ms = linger_ms
        self._replication_factor = replication_factor
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._client: AIOKafkaClient | None = None
        self._offsets: AIOKafkaConsumer | None = None  # group-less, for end/beginning offsets
        self._consumers: weakref.WeakSet[KafkaConsumer] = weakref.WeakSet()
        self._started = False

    @classmethod
    def from_url(cls, url: str) -> KafkaLog:
        parts = urlsplit(url)
        if parts.scheme != "kafka" or not parts.netloc:
            raise InvalidInput("KafkaLog needs kafka://host:port[,host:port]", url=url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            return cls(
                parts.netloc,
                client_id=query.get("client_id", "flare"),
                linger_ms=int(query.get("linger_ms", 5)),
                replication_factor=int(query["replication_factor"]) if "replication_factor" in query else None,
            )
        except ValueError as exc:
            raise InvalidInput(f"bad kafka URL option: {exc}", url=url) from exc

    # -- lifecycle ------------------------------------------------------------------------
    def _common(self) -> dict:
        return {"bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id,
                "request_timeout_ms": self._request_timeout_ms}

    async def start(self) -> None:
        if self._started:
            return
        try:
            with translated("connect to Kafka", bootstrap_servers=self.bootstrap_servers):
                self._client = AIOKafkaClient(**self._common())
                await self._client.bootstrap()
                self._admin = AIOKafkaAdminClient(**self._common())
                await self._admin.start()
                self._producer = AIOKafkaProducer(
                    **self._common(), acks="all", enable_idempotence=True, linger_ms=self._linger_ms,
                )
                await self._producer.start()
                self._offsets = AIOKafkaConsumer(**self._common(), group_id=None, enable_auto_commit=False)
                await self._offsets.start()
        except BaseException:
            await self._close_clients()
            raise
        self._started = True

    async def close(self) -> None:
        self._started = False
        # Members still in a group leave it with the log (without committing).
        for consumer in list(self._consumers):
            try:
                await consumer.stop()
            except Exception:  # noqa: BLE001 - a broken member must not keep the log open
                pass
        await self._close_clients()

    async def _close_clients(self) -> None:
        for name in ("_offsets", "_producer", "_admin"):
            client = getattr(self, name)
            setattr(self, name, None)
            if client is not None:
                try:
                    await client.stop() if hasattr(client, "stop") else await client.close()
                except Exception:  # noqa: BLE001 - closing a half-broken client must not mask the cause
                    pass
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass

    def _check(self) -> None:
        if not self._started:
            raise BackendUnavailable("the Kafka log is not started or already closed")

    # -- topics ----------------------------------------------------------------------------
    async def _partition_count(self, topic: str) -> int | None:
        with translated("read Kafka metadata", topic=topic):
            cluster = await self._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic)
        return len(partitions) if partitions else None

    async def partitions_for(self, topic: str) -> int:
        self._check()
        count = await self._partition_count(topic)
        if count is None:
            raise NotFound(f"no topic {topic!r}", topic=topic)
        return count

    async def create_topic(self, topic: str, *, partitions: int, retention_ms: int | None = None,
                           retention_bytes: int | None = None) -> None:
        self._check()
        if not _TOPIC_NAME.match(topic):
            raise InvalidInput("topic names use letters, digits, '.', '_' and '-' only", topic=topic)
        if partitions < 1:
            raise InvalidInput("a topic needs at least one partition", partitions=partitions)
        configs = {}
        for name, key, value in (("retention_ms", "retention.ms", retention_ms),
                                 ("retention_bytes", "retention.bytes", retention_bytes)):
            if value is not None:
                if not isinstance(value, int) or value <= 0:
                    raise InvalidInput(f"{name} must be a positive integer", **{name: value})
                configs[key] = str(value)
        existing = await self._partition_count(topic)
        with translated("create Kafka topic", topic=topic):
            if existing is not None and configs:
                await self._admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
            if existing is None:
                replication = self._replication_factor or min(3, len(self._client.cluster.brokers()) or 1)
                response = await self._admin.create_topics(
                    [NewTopic(topic, num_partitions=partitions, replication_factor=replication,
                              topic_configs=configs or None)])
                for entry in response.topic_errors:
                    code = entry[1]
                    if code and code != _TOPIC_ALREADY_EXISTS:
                        raise for_code(code)(f"create topic {topic}: {entry[2] if len(entry) > 2 else ''}")
                existing = await self._wait_for_topic(topic, 1)
            if existing < partitions:
                await self._admin.create_partitions({topic: NewPartitions(total_count=partitions)})
        await self._wait_for_topic(topic, partitions)

    async def _wait_for_topic(self, topic: str, partitions: int, *, timeout: float = 30.0) -> int:
        """Creation is asynchronous in Kafka: wait until the metadata shows the partitions."""
        deadline = time.monotonic() + timeout
        while True:
            count = await self._partition_count(topic)
            if count is not None and count >= partitions:
                return count
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"topic {topic!r} did not appear in the metadata", topic=topic)
            await asyncio.sleep(0.05)

    async def _partitions(self, topic: str) -> list[KafkaTP]:
        return [KafkaTP(topic, p) for p in range(await self.partitions_for(topic))]

    async def end_offsets(self, topic: str) -> dict[int, int]:
        partitions = await self._partitions(topic)
        with translated("read Kafka end offsets", topic=topic):
            offsets = await self._offsets.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in sorted(offsets.items())}

    async def beginning_offsets(self, topic: str) -> dict[int, int]:
        partitions = await self._partitions(topic)
        with translated("read Kafka beginning offsets", topic=topic):
            offsets = await self._offsets.beginning_offsets(partitions)
        return {tp.partition: offset for tp, offset in sorted(offsets.items())}

    async def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        self._check()
        with translated("read committed offsets", group=group, topic=topic):
            offsets = await self._admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in sorted(offsets.items())
                if tp.topic == topic and meta.offset >= 0}

    # -- produce ----------------------------------------------------------------------------
    async def _send(self, topic: str, value: bytes, key: bytes | None, partition: int | None,
                    timestamp_ms: int | None) -> asyncio.Future:
        if not isinstance(value, bytes) or (key is not None and not isinstance(key, bytes)):
            raise InvalidInput("log keys and values are bytes")
        with translated("produce to Kafka", topic=topic):
            return await self._producer.send(topic, value, key=key, partition=partition,
                                             timestamp_ms=timestamp_ms if timestamp_ms is not None
                                             else int(time.time() * 1000))

    @staticmethod
    async def _metadata(future: asyncio.Future, topic: str) -> RecordMetadata:
        with translated("produce to Kafka", topic=topic):
            meta = await future
        return RecordMetadata(topic=meta.topic, partition=meta.partition, offset=meta.offset,
                              timestamp_ms=meta.timestamp)

    async def produce(self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
                      timestamp_ms: int | None = None) -> RecordMetadata:
        self._check()
        if partition is not None and partition >= await self.partitions_for(topic):
            raise InvalidInput(f"topic {topic!r} has no partition {partition}", topic=topic)
        return await self._metadata(await self._send(topic, value, key, partition, timestamp_ms), topic)

    async def produce_batch(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[RecordMetadata]:
        self._check()
        # Queue every record first (the producer batches them per partition), then wait for all.
        futures = [await self._send(topic, value, key, None, None) for key, value in records]
        return [await self._metadata(future, topic) for future in futures]

    # -- consume ----------------------------------------------------------------------------
    def consumer(self, group: str, topics: Sequence[str], *, on_assign: RebalanceCallback | None = None,
                 on_revoke: RebalanceCallback | None = None) -> LogConsumer:
        if not group:
            raise InvalidInput("a consumer group needs a name")
        consumer = KafkaConsumer(self._common(), group, list(topics), on_assign=on_assign, on_revoke=on_revoke)
        self._consumers.add(consumer)
        return consumer
