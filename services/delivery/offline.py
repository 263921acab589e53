"""The offline topic: one record per message for the members who had no device online.

The notification service (a later issue) consumes it. Each record is written once per
message, not once per offline member (a 100,001-member group used to write 100,000
records per message: 257 MB for two messages), keyed by conversation:

    {"conversation_id", "seq", "msg_id", "sender_id", "offline_users": [...], "message": {...}}

The topic has a retention (`offline_retention_s`, `offline_retention_bytes` per
partition): a push notification hours late is worthless, and nothing may grow forever.
Its consumer group (`offline_consumer_group`) is given a committed position at the start
of the topic the first time, so the consumer finds everything written since, and
`flare_offline_lag_records` shows how far behind it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from prometheus_client import Gauge

from services.backends.log import Log, TopicPartition
from services.common import codec
from services.common.config import RouterConfig
from services.common.errors import FlareError
from services.common.health import Faults
from services.common.model import Message

__all__ = ["OfflineTopic", "OFFLINE_LAG"]

log = logging.getLogger("flare.delivery")

OFFLINE_LAG = Gauge("flare_offline_lag_records", "Offline-topic records its consumer group has not committed")
_PARTITIONS = 4
_LAG_INTERVAL_S = 15.0


class OfflineTopic:
    def __init__(self, log_: Log, config: RouterConfig) -> None:
        self._log = log_
        self._config = config
        self._task: asyncio.Task | None = None
        self._faults = Faults("offline topic", log)

    @property
    def topic(self) -> str:
        return self._config.offline_topic

    def problems(self) -> list[str]:
        return self._faults.reasons()

    async def start(self) -> None:
        await self._log.create_topic(self.topic, partitions=_PARTITIONS,
                                     retention_ms=self._config.offline_retention_s * 1000,
                                     retention_bytes=self._config.offline_retention_bytes)
        self._task = asyncio.create_task(self._keep_position(), name="offline-topic-position")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def write(self, message: Message, offline_users: Sequence[str]) -> None:
        record = codec.dumps({
            "conversation_id": message.conversation_id, "seq": message.seq, "msg_id": str(message.msg_id),
            "sender_id": message.sender_id, "offline_users": list(offline_users), "message": message.to_wire(),
        })
        try:
            await self._log.produce(self.topic, record, key=message.conversation_id.encode())
            self._faults.recover("write")
        except FlareError as exc:  # the message is stored; only its push notification is lost
            self._faults.fail("write", f"push notifications skipped: {exc}")

    async def lag(self) -> int:
        ends = await self._log.end_offsets(self.topic)
        committed = await self._log.committed_offsets(self._config.offline_consumer_group, self.topic)
        starts = await self._log.beginning_offsets(self.topic)
        return sum(max(0, end - max(committed.get(p, starts[p]), starts[p])) for p, end in ends.items())

    async def _keep_position(self) -> None:
        try:
            await self._ensure_position()
        except FlareError:
            log.warning("could not give %r a position on %s", self._config.offline_consumer_group, self.topic,
                        exc_info=True)
        while True:
            with contextlib.suppress(FlareError):
                OFFLINE_LAG.set(await self.lag())
            await asyncio.sleep(_LAG_INTERVAL_S)

    async def _ensure_position(self) -> None:
        """Commit the start of each partition for the consumer group, where it has none."""
        group = self._config.offline_consumer_group
        if len(await self._log.committed_offsets(group, self.topic)) >= _PARTITIONS:
            return
        consumer = None

        async def assigned(tps: set[TopicPartition]) -> None:
            starts = await self._log.beginning_offsets(self.topic)
            fresh = {tp: starts[tp.partition] for tp in tps if await consumer.committed(tp) is None}
            if fresh:
                await consumer.commit(fresh)

        consumer = self._log.consumer(group, [self.topic], on_assign=assigned)
        await consumer.start()
        try:
            for _ in range(20):  # Kafka assigns on the first fetches
                await consumer.getmany(timeout_ms=500, max_records=1)
                if consumer.assignment():
                    break
        finally:
            await consumer.stop()
